//! Fixed vectors for the audit chain's stored format: RFC 8785 canonical JSON and the chained
//! SHA-256 hashes, hard-coded here rather than computed by the code under test.
//!
//! The chain is built and verified by the same code, so a change to either the canonical form
//! or the hashing would still verify against itself while every stored chain (and every
//! restore of a backup) broke. These vectors pin the bytes.
//!
//! How the expected values were computed, once, independently of this crate:
//! - numbers: Node.js `JSON.stringify(x)` (ECMAScript `Number.prototype.toString`, which
//!   RFC 8785 §3.2.2.3 adopts) on each IEEE-754 bit pattern; they equal RFC 8785 Appendix B;
//! - strings and key order: the RFC's own examples (§3.2.3 sorting, §3.2.4 sample) and Node's
//!   `JSON.stringify`, with keys sorted by JavaScript's UTF-16 code-unit comparison;
//! - the chain: each entry's canonical bytes written out by hand, and hashed with Python's
//!   `hashlib.sha256((prev_hash + canonical).encode("utf-8")).hexdigest()`; cross-checked by
//!   a ten-line JavaScript JCS (`JSON.stringify` for primitives, `Object.keys(o).sort()`) and
//!   Node's `crypto.createHash("sha256")`, which produced the same bytes and hashes.

use serde_json::{Value, json};
use wavegate_core::audit::{AuditEvent, ChainVerifier, ChainedEntry, GENESIS_HASH, entry_hash};
use wavegate_core::canonical::canonical_json;

#[track_caller]
fn check(value: &Value, expected: &str) {
    assert_eq!(canonical_json(value), expected, "canonical form of {value:?}");
}

/// RFC 8785 Appendix B: IEEE-754 bit patterns and their canonical text. (Its NaN and Infinity
/// rows, which JCS refuses, have no counterpart: a `serde_json::Value` cannot hold them.)
#[test]
fn numbers_from_ieee_bits_rfc8785_appendix_b() {
    let table: &[(u64, &str)] = &[
        (0x0000000000000000, "0"),
        (0x8000000000000000, "0"), // -0
        (0x0000000000000001, "5e-324"),
        (0x8000000000000001, "-5e-324"),
        (0x7fefffffffffffff, "1.7976931348623157e+308"),
        (0xffefffffffffffff, "-1.7976931348623157e+308"),
        (0x4340000000000000, "9007199254740992"),
        (0xc340000000000000, "-9007199254740992"),
        (0x4430000000000000, "295147905179352830000"),
        (0x44b52d02c7e14af5, "9.999999999999997e+22"),
        (0x44b52d02c7e14af6, "1e+23"),
        (0x44b52d02c7e14af7, "1.0000000000000001e+23"),
        (0x444b1ae4d6e2ef4e, "999999999999999700000"),
        (0x444b1ae4d6e2ef4f, "999999999999999900000"),
        (0x444b1ae4d6e2ef50, "1e+21"),
        (0x3eb0c6f7a0b5ed8c, "9.999999999999997e-7"),
        (0x3eb0c6f7a0b5ed8d, "0.000001"),
        (0x41b3de4355555553, "333333333.3333332"),
        (0x41b3de4355555554, "333333333.33333325"),
        (0x41b3de4355555555, "333333333.3333333"),
        (0x41b3de4355555556, "333333333.3333334"),
        (0x41b3de4355555557, "333333333.33333343"),
        (0xbecbf647612f3696, "-0.0000033333333333333333"),
        (0x43143ff3c1cb0959, "1424953923781206.2"),
    ];
    for &(bits, expected) in table {
        check(&Value::from(f64::from_bits(bits)), expected);
    }
}

/// Numbers as they arrive in JSON text (integers, floats, exponents, beyond 2^53).
#[test]
fn numbers_from_json_text() {
    let table: &[(&str, &str)] = &[
        ("0", "0"),
        ("-0", "0"),
        ("-0.0", "0"),
        ("1.0", "1"),
        ("100", "100"),
        ("0.1", "0.1"),
        ("1e21", "1e+21"),
        ("1e20", "100000000000000000000"),
        ("1e-7", "1e-7"),
        ("1e-6", "0.000001"),
        ("-1.25e-10", "-1.25e-10"),
        ("333333333.33333329", "333333333.3333333"),
        ("1E30", "1e+30"),
        ("4.50", "4.5"),
        ("2e-3", "0.002"),
        ("0.000001", "0.000001"),
        ("1e+23", "1e+23"),
        ("1.5e300", "1.5e+300"),
        ("9007199254740991", "9007199254740991"),
        ("9007199254740992", "9007199254740992"),
        ("9007199254740993", "9007199254740992"),
        ("-9007199254740993", "-9007199254740992"),
        ("18446744073709551615", "18446744073709552000"),
        ("-9223372036854775808", "-9223372036854776000"),
        ("123456789012345680000", "123456789012345680000"),
    ];
    for &(text, expected) in table {
        let v: Value = serde_json::from_str(text).unwrap();
        check(&v, expected);
    }
}

#[test]
fn string_escaping() {
    let table: &[(&str, &str)] = &[
        ("", r#""""#),
        ("\u{0}", r#""\u0000""#),
        ("\u{b}", r#""\u000b""#),
        ("\u{1f}", r#""\u001f""#),
        ("\u{8}\u{c}\n\r\t", r#""\b\f\n\r\t""#),
        ("\"\\", r#""\"\\""#),
        ("/", r#""/""#),
        // Not escaped: DEL, C1 controls, line/paragraph separators, everything non-ASCII.
        ("\u{7f}\u{80}\u{2028}\u{2029}", "\"\u{7f}\u{80}\u{2028}\u{2029}\""),
        ("Zürich €😀", "\"Zürich €😀\""),
        // No normalisation: a decomposed é stays two code points.
        ("e\u{301}", "\"e\u{301}\""),
    ];
    for &(s, expected) in table {
        check(&json!(s), expected);
    }
}

/// RFC 8785 §3.2.3: keys sorted by UTF-16 code units, so the emoji (a surrogate pair starting
/// 0xD83D) comes before U+FB33, unlike in code-point or UTF-8 order.
#[test]
fn key_order_rfc8785_section_3_2_3() {
    let v = json!({
        "\u{20ac}": "Euro Sign",
        "\r": "Carriage Return",
        "\u{fb33}": "Hebrew Letter Dalet With Dagesh",
        "1": "One",
        "\u{1f600}": "Emoji: Grinning Face",
        "\u{80}": "Control",
        "\u{f6}": "Latin Small Letter O With Diaeresis"
    });
    let expected = concat!(
        r#"{"\r":"Carriage Return","1":"One",""#,
        "\u{80}",
        r#"":"Control","ö":"Latin Small Letter O With Diaeresis","€":"Euro Sign","😀":"Emoji: Grinning Face",""#,
        "\u{fb33}",
        r#"":"Hebrew Letter Dalet With Dagesh"}"#
    );
    check(&v, expected);
    assert_eq!(
        hex(canonical_json(&v).as_bytes()),
        concat!(
            "7b225c72223a2243617272696167652052657475726e222c2231223a224f6e65222c22c280223a22436f",
            "6e74726f6c222c22c3b6223a224c6174696e20536d616c6c204c6574746572204f205769746820446961",
            "657265736973222c22e282ac223a224575726f205369676e222c22f09f9880223a22456d6f6a693a2047",
            "72696e6e696e672046616365222c22efacb3223a22486562726577204c65747465722044616c65742057",
            "69746820446167657368227d"
        )
    );
    // Nested objects are sorted too; arrays keep their order.
    check(
        &json!({"b": [3, 1, {"z": 1, "a": 2}], "a": {"d": 1, "c": 2}}),
        r#"{"a":{"c":2,"d":1},"b":[3,1,{"a":2,"z":1}]}"#,
    );
}

/// RFC 8785 §3.2.4's sample input and output.
#[test]
fn the_rfc8785_sample() {
    let input = r#"{
      "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000001],
      "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
      "literals": [null, true, false]
    }"#;
    let v: Value = serde_json::from_str(input).unwrap();
    check(
        &v,
        r#"{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,0.000001],"string":"€$\u000f\nA'B\"\\\\\"/"}"#,
    );
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

const H1: &str = "ab34ca82a73c05a6be180827e5fd3fca2ad6471dbb2fc0f6d57dd5127d939d5e";
const H2: &str = "c462141812423d06f7b4e7698c31628e7ebe92e658bfb1e0149ca0ab7aacf9d1";
const H3: &str = "ab59f4111bbeefa3038c2c2bba12b77d81ef1631f972f4753f644ca13b1cb885";

const C1: &str = concat!(
    r#"{"action":"flag.create","actor":"admin","at":"2026-11-22T10:00:00.000Z","#,
    r#""details":{"spec":{"default":"off","variants":{"off":false,"on":true}},"version":1},"#,
    r#""prev_hash":"0000000000000000000000000000000000000000000000000000000000000000","#,
    r#""reason":"first cut","seq":1,"target":"flag:new-checkout"}"#
);
const C2: &str = concat!(
    r#"{"action":"rollout.start","actor":"Zoë Ünal","at":"2026-11-22T10:05:30.250Z","#,
    r#""details":{"big":1e+21,"exposure":"5%","rollout":"ro_1","share":0.05,"tiny":1e-7,"wave":1},"#,
    r#""prev_hash":"ab34ca82a73c05a6be180827e5fd3fca2ad6471dbb2fc0f6d57dd5127d939d5e","#,
    r#""reason":null,"seq":2,"target":"rollout:ro_1"}"#
);
const C3: &str = concat!(
    r#"{"action":"rollout.rollback","actor":"controller","at":"2026-11-22T11:00:00.000Z","#,
    r#""details":{"\r":2,"1":3,""#,
    "\u{80}",
    r#"":"\u001f","ö":0,"€":1,"😀":[true,null,333333333.3333333,4.5],""#,
    "\u{fb33}",
    r#"":"x"},"#,
    r#""prev_hash":"c462141812423d06f7b4e7698c31628e7ebe92e658bfb1e0149ca0ab7aacf9d1","#,
    r#""reason":"guardrail \"p99\" failed\n\t→ rolled back 😬","seq":3,"target":"rollout:ro_1"}"#
);

fn events() -> [AuditEvent; 3] {
    [
        AuditEvent {
            at: "2026-11-22T10:00:00.000Z".into(),
            actor: "admin".into(),
            via: None,
            action: "flag.create".into(),
            target: "flag:new-checkout".into(),
            reason: Some("first cut".into()),
            details: json!({"version": 1, "spec": {"variants": {"on": true, "off": false}, "default": "off"}}),
        },
        AuditEvent {
            at: "2026-11-22T10:05:30.250Z".into(),
            actor: "Zoë Ünal".into(),
            via: None,
            action: "rollout.start".into(),
            target: "rollout:ro_1".into(),
            reason: None,
            details: json!({"rollout": "ro_1", "wave": 1, "exposure": "5%", "share": 0.05, "tiny": 1e-7, "big": 1e21}),
        },
        AuditEvent {
            at: "2026-11-22T11:00:00.000Z".into(),
            actor: "controller".into(),
            via: None,
            action: "rollout.rollback".into(),
            target: "rollout:ro_1".into(),
            reason: Some("guardrail \"p99\" failed\n\t→ rolled back 😬".into()),
            details: json!({
                "\u{20ac}": 1, "\r": 2, "1": 3, "\u{f6}": -0.0,
                "\u{1f600}": [true, null, f64::from_bits(0x41b3_de43_5555_5555), 4.50], // 333333333.33333329
                "\u{fb33}": "x", "\u{80}": "\u{1f}"
            }),
        },
    ]
}

fn stored() -> [ChainedEntry; 3] {
    let entry = |seq: i64, prev_hash: &str, hash: &str, canonical: &str| ChainedEntry {
        seq,
        prev_hash: prev_hash.into(),
        hash: hash.into(),
        canonical: canonical.into(),
    };
    [entry(1, GENESIS_HASH, H1, C1), entry(2, H1, H2, C2), entry(3, H2, H3, C3)]
}

#[test]
fn chaining_produces_the_fixed_bytes_and_hashes() {
    let (mut seq, mut prev) = (0, GENESIS_HASH.to_owned());
    for (event, expected) in events().iter().zip(stored()) {
        let e = event.chain(seq, &prev);
        assert_eq!(e, expected, "entry {}", seq + 1);
        (seq, prev) = (e.seq, e.hash);
    }
}

#[test]
fn the_fixed_entries_verify_and_hash_as_stored() {
    let mut v = ChainVerifier::default();
    for e in &stored() {
        assert_eq!(entry_hash(&e.prev_hash, &e.canonical), e.hash, "entry {}", e.seq);
        v.push(e).unwrap();
    }
    assert_eq!((v.verified(), v.head()), (3, H3));

    // One byte changed (the 5% exposure claimed to be 6%) breaks entry 2 and names it.
    let mut altered = stored();
    altered[1].canonical = altered[1].canonical.replace("\"5%\"", "\"6%\"");
    let mut v = ChainVerifier::default();
    let err = altered.iter().try_for_each(|e| v.push(e)).unwrap_err();
    assert_eq!(err.seq, 2);
}
