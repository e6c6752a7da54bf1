//! The text encodings every crate that writes HTML or URLs shares: one HTML escape and one
//! percent encoder, so a report, a chart and a link never disagree about what is safe.
//!
//! Pure and total: any `&str` in, its encoding out.

/// Escapes `&`, `<`, `>`, `"` and `'`: safe in element content and in attribute values quoted
/// either way (HTML or SVG). The superset is deliberate; escaping a quote where it was not
/// needed costs nothing, missing one where it was is an injection.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Percent-encodes every byte of the UTF-8 text except RFC 3986's unreserved characters
/// (`A–Z a–z 0–9 - . _ ~`), as `%XX` with upper-case hex: safe as one path segment (a `/` is
/// encoded) and as a query name or value (`&`, `=`, `+`, `#` and spaces are encoded).
pub fn percent_encode(s: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use crate::text::{escape_html, percent_encode};

    #[track_caller]
    fn check(f: fn(&str) -> String, table: &[(&str, &str)]) {
        for (input, expected) in table {
            assert_eq!(f(input), *expected, "input {input:?}");
        }
    }

    #[test]
    fn html_escapes_the_five_specials_and_nothing_else() {
        check(
            escape_html,
            &[
                ("", ""),
                ("plain text 1.0", "plain text 1.0"),
                ("a & b", "a &amp; b"),
                ("<script>alert(1)</script>", "&lt;script&gt;alert(1)&lt;/script&gt;"),
                (r#"" onmouseover="x"#, "&quot; onmouseover=&quot;x"),
                ("' onload='x", "&#39; onload=&#39;x"),
                ("&amp;", "&amp;amp;"),
                ("Zürich → 東京 🦀", "Zürich → 東京 🦀"),
                ("`$={}%\\/", "`$={}%\\/"),
            ],
        );
    }

    #[test]
    fn percent_encoding_keeps_only_the_unreserved() {
        check(
            percent_encode,
            &[
                ("", ""),
                ("AZaz09-._~", "AZaz09-._~"),
                ("a b", "a%20b"),
                ("a/b?c=d&e#f", "a%2Fb%3Fc%3Dd%26e%23f"),
                ("+%", "%2B%25"),
                ("..", ".."),
                ("Zürich", "Z%C3%BCrich"),
                ("🦀", "%F0%9F%A6%80"),
                ("tok_a:b~1", "tok_a%3Ab~1"),
                ("\n\u{0}\u{7f}", "%0A%00%7F"),
            ],
        );
    }

    /// Decodes `%XX` (test-only; the servers decode through their HTTP stacks).
    fn decode(s: &str) -> Vec<u8> {
        let b = s.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'%' {
                out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
                i += 3;
            } else {
                out.push(b[i]);
                i += 1;
            }
        }
        out
    }

    proptest! {
        #[test]
        fn percent_encoding_round_trips_and_leaves_no_reserved_byte(s in any::<String>()) {
            let e = percent_encode(&s);
            prop_assert_eq!(decode(&e), s.as_bytes());
            prop_assert!(e.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~%".contains(&b)));
        }

        #[test]
        fn escaped_html_has_no_special_left(s in any::<String>()) {
            let e = escape_html(&s);
            prop_assert!(!e.contains(['<', '>', '"', '\'']));
            let unescaped = e
                .replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&quot;", "\"")
                .replace("&#39;", "'")
                .replace("&amp;", "&");
            prop_assert_eq!(unescaped, s);
        }
    }
}
