//! What is kept of a response from the outside world, and who is shown it.
//!
//! A response body (or anything read out of one: a webhook gate's `reason`, a probe's JSON
//! field, a Prometheus error) is kept only as a short excerpt ([`EXCERPT_BYTES`]), quoted
//! between `⟦` and `⟧` by [`quote`]: in check evidence, verdict explanations, audit details,
//! the delivery log and `…/test` answers. The quotes are what [`conceal`] looks for: every
//! answer to a caller other than an admin for all environments has each quoted span replaced by
//! [`WITHHELD`] (`crate::http::conceal`, one layer over the API, and the audit log's own
//! reader for the stream), so an environment-scoped admin who points a check at an internal
//! service learns its status code and nothing of what it said.

use std::borrow::Cow;

use serde_json::Value;

/// The most of a response body kept anywhere, in bytes.
pub const EXCERPT_BYTES: usize = 256;

/// Opens quoted response text.
pub const OPEN: char = '⟦';
/// Closes quoted response text.
pub const CLOSE: char = '⟧';

/// What a caller who may not read responses sees in place of each quoted span.
pub const WITHHELD: &str = "⟦response withheld: shown only to admin tokens for all environments⟧";

/// `text` cut to at most [`EXCERPT_BYTES`] (on a character boundary, `…` marking a cut),
/// trimmed, and quoted. Quote marks inside become plain brackets, so the span cannot end early.
pub fn quote(text: &str) -> String {
    let text = text.trim();
    let mut cut = text.len().min(EXCERPT_BYTES);
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    let more = if cut < text.len() { "…" } else { "" };
    let inner = text[..cut].replace(OPEN, "[").replace(CLOSE, "]");
    format!("{OPEN}{inner}{more}{CLOSE}")
}

/// A JSON value read from a response, quoted: a string as its text, anything else as JSON.
pub fn quote_value(v: &Value) -> String {
    match v {
        Value::String(s) => quote(s),
        other => quote(&other.to_string()),
    }
}

/// `text` with every quoted span (`⟦…⟧`; one left open runs to the end) replaced by
/// [`WITHHELD`].
pub fn conceal(text: &str) -> Cow<'_, str> {
    if !text.contains(OPEN) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(OPEN) {
        out.push_str(&rest[..start]);
        out.push_str(WITHHELD);
        let after = &rest[start + OPEN.len_utf8()..];
        rest = match after.find(CLOSE) {
            Some(end) => &after[end + CLOSE.len_utf8()..],
            None => "",
        };
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// [`conceal`] on every string in `v` (object keys are the server's own and stay).
pub fn conceal_json(v: &mut Value) {
    match v {
        Value::String(s) => {
            if let Cow::Owned(c) = conceal(s) {
                *s = c;
            }
        }
        Value::Array(items) => items.iter_mut().for_each(conceal_json),
        Value::Object(map) => map.values_mut().for_each(conceal_json),
        _ => {}
    }
}

/// Whether `bytes` hold a quoted span (the UTF-8 of [`OPEN`]).
pub fn holds_quote(bytes: &[u8]) -> bool {
    let mut open = [0u8; 4];
    let open = OPEN.encode_utf8(&mut open).as_bytes();
    bytes.windows(open.len()).any(|w| w == open)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_are_short_and_cut_on_a_character() {
        assert_eq!(quote("  ok \n"), "⟦ok⟧");
        assert_eq!(quote(""), "⟦⟧");
        let long = "é".repeat(EXCERPT_BYTES);
        let q = quote(&long);
        let inner = q.trim_start_matches(OPEN).trim_end_matches(CLOSE).trim_end_matches('…');
        assert_eq!(inner.len(), EXCERPT_BYTES, "256 bytes of two-byte characters");
        assert!(q.ends_with("…⟧"));
        assert_eq!(quote("a⟧b⟦c"), "⟦a]b[c⟧", "a response cannot close its own quote");
        assert_eq!(quote_value(&serde_json::json!({"a": 1})), "⟦{\"a\":1}⟧");
        assert_eq!(quote_value(&serde_json::json!("why")), "⟦why⟧");
    }

    #[test]
    fn concealing_replaces_every_quoted_span() {
        assert_eq!(conceal("no quotes"), "no quotes");
        assert_eq!(conceal("HTTP 500: ⟦secret⟧"), format!("HTTP 500: {WITHHELD}"));
        assert_eq!(conceal("a ⟦x⟧ b ⟦y⟧ c"), format!("a {WITHHELD} b {WITHHELD} c"));
        assert_eq!(conceal("open ⟦runs on"), format!("open {WITHHELD}"));
        assert_eq!(conceal(WITHHELD), WITHHELD, "concealing twice changes nothing");
        let mut v = serde_json::json!({"status": 503, "body": quote("{\"k\": \"v\"}"),
            "nested": [{"reason": quote("no")}], "⟦key⟧": 1});
        conceal_json(&mut v);
        assert_eq!(
            v,
            serde_json::json!({"status": 503, "body": WITHHELD, "nested": [{"reason": WITHHELD}], "⟦key⟧": 1})
        );
        assert!(holds_quote(quote("x").as_bytes()) && !holds_quote(b"plain"));
    }

    proptest::proptest! {
        /// Whatever a response says, none of it survives concealment.
        #[test]
        fn nothing_quoted_survives(body in "\\PC{0,300}", before in "[a-z ]{0,10}") {
            let shown = format!("{before}{}", quote(&body));
            let concealed = conceal(&shown);
            proptest::prop_assert_eq!(concealed.as_ref(), format!("{before}{WITHHELD}"));
        }
    }
}
