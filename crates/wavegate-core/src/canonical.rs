//! Canonical JSON (RFC 8785, JCS): object keys sorted by UTF-16 code units, no whitespace,
//! ECMAScript number formatting. The audit chain hashes these bytes.

use std::fmt::Write;

/// The canonical encoding of `value`.
pub fn canonical_json(value: &serde_json::Value) -> String {
    let mut out = String::new();
    write_value(&mut out, value);
    out
}

fn write_value(out: &mut String, value: &serde_json::Value) {
    match value {
        serde_json::Value::Null => out.push_str("null"),
        serde_json::Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        serde_json::Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                write_int_or_float(out, i as f64, Some(i.to_string()));
            } else if let Some(u) = n.as_u64() {
                write_int_or_float(out, u as f64, Some(u.to_string()));
            } else {
                write_int_or_float(out, n.as_f64().unwrap_or(0.0), None);
            }
        }
        serde_json::Value::String(s) => write_string(out, s),
        serde_json::Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(out, item);
            }
            out.push(']');
        }
        serde_json::Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.encode_utf16().cmp(b.0.encode_utf16()));
            out.push('{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(out, k);
                out.push(':');
                write_value(out, v);
            }
            out.push('}');
        }
    }
}

fn write_int_or_float(out: &mut String, f: f64, exact: Option<String>) {
    // Integers within 2^53 print exactly; beyond that JCS prints the f64 as ECMAScript would.
    match exact {
        Some(s) if f.abs() < 9_007_199_254_740_992.0 => out.push_str(&s),
        _ => {
            let mut buf = ryu_js::Buffer::new();
            out.push_str(buf.format(f));
        }
    }
}

fn write_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::canonical::canonical_json;

    #[test]
    fn rfc8785_examples() {
        assert_eq!(
            canonical_json(&json!({"b": 1, "a": [true, null, "x\n"], "\u{e9}": 0.5})),
            r#"{"a":[true,null,"x\n"],"b":1,"é":0.5}"#
        );
        assert_eq!(canonical_json(&json!(1.0)), "1");
        assert_eq!(canonical_json(&json!(1e21)), "1e+21");
        assert_eq!(
            canonical_json(&json!({"\u{20ac}": 1, "\r": 2, "1": 3})),
            "{\"\\r\":2,\"1\":3,\"€\":1}"
        );
    }
}

#[cfg(test)]
mod roundtrip {
    use proptest::prelude::*;

    use crate::canonical::canonical_json;

    proptest! {
        /// Verification re-parses stored canonical bytes: the encoding must be a fixed point.
        #[test]
        fn canonical_form_survives_a_parse(x in any::<f64>().prop_filter("finite", |x| x.is_finite()), i in any::<i64>(), s in ".{0,20}") {
            let v = serde_json::json!({"f": x, "i": i, "s": s, "nested": [x / 3.0, {"k": x * 1e-7}]});
            let once = canonical_json(&v);
            let parsed: serde_json::Value = serde_json::from_str(&once).unwrap();
            prop_assert_eq!(canonical_json(&parsed), once);
        }
    }
}
