//! The text encodings every crate that writes HTML, Markdown, Slack messages or URLs shares:
//! one HTML escape, one Markdown escape, one Slack escape, one percent encoder and one URL
//! redaction, so a report, a chart, a message, a link and a log line never disagree about what
//! is safe.
//!
//! Pure and total: any `&str` in, its encoding out.

/// Escapes `&`, `<`, `>`, `"` and `'`: safe in element content and in attribute values quoted
/// either way (HTML or SVG). The superset is deliberate; escaping a quote where it was not
/// needed costs nothing, missing one where it was is an injection.
pub fn escape_html(s: &str) -> String {
    replace_chars(s, |c| match c {
        '"' => Some("&quot;"),
        '\'' => Some("&#39;"),
        c => slack_entity(c),
    })
}

/// Escapes text for Markdown (outside code spans): every character that starts an inline
/// construct (`\`, `` ` ``, `*`, `_`, `~`, `[`, `]`, `<`, `>`, `&`) or a table cell (`|`) gets
/// a backslash, and line breaks become spaces, so a value can neither link, embed an image or
/// raw HTML, restyle the text, split a table cell nor start a heading or list item of its own.
/// CommonMark renders each `\x` as the plain character, so the rendered text reads unchanged.
pub fn escape_markdown(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' | '`' | '*' | '_' | '~' | '[' | ']' | '<' | '>' | '&' | '|' => {
                out.push('\\');
                out.push(c);
            }
            '\r' | '\n' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// Escapes text for Slack's `mrkdwn` (and the plain `text` of a Slack-compatible message): `&`,
/// `<` and `>` become `&amp;`, `&lt;` and `&gt;`, as Slack asks, so a value cannot write a
/// control sequence (`<!here>`, `<!channel>`, `<@U123>`) or a link (`<https://x|text>`).
pub fn escape_slack(s: &str) -> String {
    replace_chars(s, slack_entity)
}

/// The entity Slack (and HTML) write for `&`, `<` and `>`.
fn slack_entity(c: char) -> Option<&'static str> {
    match c {
        '&' => Some("&amp;"),
        '<' => Some("&lt;"),
        '>' => Some("&gt;"),
        _ => None,
    }
}

/// `s` with every character that `with` names a replacement for replaced by it.
fn replace_chars(s: &str, with: impl Fn(char) -> Option<&'static str>) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match with(c) {
            Some(r) => out.push_str(r),
            None => out.push(c),
        }
    }
    out
}

/// What stands in for a secret that [`redact_url`] removed.
pub const REDACTED: &str = "***";

/// `url` without its credentials: the password of `user:password@host` becomes `***` (the
/// user name stays), and so does the value of every query parameter whose name says it holds a
/// secret (`password`, `token`, `secret`, `key`, `auth`, `sig`… as in PostgreSQL's
/// `?password=`). Text that is not a `scheme://` URL (a SQLite file path) comes back as it was.
///
/// The user information ends at the authority's last `@`, as URL parsers read it, so
/// `user:p@ss@host` hides all of `p@ss`; a password holding an unencoded `/`, `?` or `#` is
/// hidden up to the last `@` of the URL. When in doubt more is hidden, never less.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = split_scheme(url) else { return url.to_owned() };
    let (userinfo, after) = split_userinfo(rest);
    let mut out = String::with_capacity(url.len());
    out.push_str(scheme);
    out.push_str("://");
    if let Some(info) = userinfo {
        match info.split_once(':') {
            Some((user, _)) => {
                out.push_str(user);
                out.push(':');
                out.push_str(REDACTED);
            }
            None => out.push_str(info),
        }
        out.push('@');
    }
    let (before_fragment, fragment) = match after.split_once('#') {
        Some((b, f)) => (b, Some(f)),
        None => (after, None),
    };
    match before_fragment.split_once('?') {
        Some((path, query)) => {
            out.push_str(path);
            out.push('?');
            for (i, pair) in query.split('&').enumerate() {
                if i > 0 {
                    out.push('&');
                }
                match pair.split_once('=') {
                    Some((name, _)) if secret_parameter(name) => {
                        out.push_str(name);
                        out.push('=');
                        out.push_str(REDACTED);
                    }
                    _ => out.push_str(pair),
                }
            }
        }
        None => out.push_str(before_fragment),
    }
    if let Some(f) = fragment {
        out.push('#');
        out.push_str(f);
    }
    out
}

/// Only where `url` leads: `scheme://host[:port]/…`, without credentials, path, query or
/// fragment (a webhook URL's path is often its secret: Slack's are). `…` for text that is not
/// a `scheme://` URL.
pub fn url_origin(url: &str) -> String {
    let Some((scheme, rest)) = split_scheme(url) else { return "…".into() };
    let (_, after) = split_userinfo(rest);
    let host = after.split(['/', '?', '#']).next().unwrap_or("");
    format!("{scheme}://{host}/…")
}

/// `text` (an error message, a log line) with every `scheme://…` URL in it passed through
/// [`redact_url`]. A URL runs to the next white space, quote or angle bracket.
pub fn redact_urls_in(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let start = rest[..at]
            .char_indices()
            .rev()
            .take_while(|(_, c)| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
            .last()
            .map_or(at, |(i, _)| i);
        // A scheme starts with a letter.
        let start =
            rest[start..at].find(|c: char| c.is_ascii_alphabetic()).map_or(at, |i| start + i);
        let end = rest[at..]
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '<' | '>' | '`'))
            .map_or(rest.len(), |e| at + e);
        out.push_str(&rest[..start]);
        if start == at {
            // "://" without a scheme before it: not a URL.
            out.push_str(&rest[at..at + 3]);
            rest = &rest[at + 3..];
            continue;
        }
        out.push_str(&redact_url(&rest[start..end]));
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// `(scheme, everything after "://")` when `url` starts with a scheme.
fn split_scheme(url: &str) -> Option<(&str, &str)> {
    let (scheme, rest) = url.split_once("://")?;
    let valid = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    valid.then_some((scheme, rest))
}

/// `(user information, the rest)` of what follows `scheme://`.
fn split_userinfo(rest: &str) -> (Option<&str>, &str) {
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let at = rest[..authority_end].rfind('@').or_else(|| {
        // `user:pa/ss@host`: a parser would stop at the `/`, but what precedes the last `@`
        // is still a password, and better hidden.
        rest[..authority_end].contains(':').then(|| rest.rfind('@')).flatten()
    });
    match at {
        Some(at) => (Some(&rest[..at]), &rest[at + 1..]),
        None => (None, rest),
    }
}

/// Whether a query parameter's name says its value is a secret.
fn secret_parameter(name: &str) -> bool {
    let name: String =
        name.chars().filter(char::is_ascii_alphanumeric).map(|c| c.to_ascii_lowercase()).collect();
    name == "sig"
        || ["pass", "pwd", "secret", "token", "key", "auth", "credential", "signature"]
            .iter()
            .any(|s| name.contains(s))
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

    use crate::text::{
        escape_html, escape_markdown, escape_slack, percent_encode, redact_url, redact_urls_in,
        url_origin,
    };

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

    /// Issue 16, item 9: no credential of a URL survives, whatever shape it has.
    #[test]
    fn urls_lose_their_credentials() {
        check(
            redact_url,
            &[
                ("./wavegate.db", "./wavegate.db"),
                ("sqlite:w.db", "sqlite:w.db"),
                ("postgres://wg@db/wavegate", "postgres://wg@db/wavegate"),
                (
                    "postgres://wg:s3cret@db.internal:5432/wavegate",
                    "postgres://wg:***@db.internal:5432/wavegate",
                ),
                ("postgres://wg:p@ss@db/w", "postgres://wg:***@db/w"),
                ("postgres://wg:p/ss@db/w", "postgres://wg:***@db/w"),
                ("postgres://wg:p?ss@db/w", "postgres://wg:***@db/w"),
                (
                    "postgres://wg@db/w?sslmode=require&password=s3cret",
                    "postgres://wg@db/w?sslmode=require&password=***",
                ),
                (
                    "postgresql://db/w?user=wg&PassWord=s3cret#x",
                    "postgresql://db/w?user=wg&PassWord=***#x",
                ),
                ("http://user:pass@prom:9090", "http://user:***@prom:9090"),
                (
                    "http://prom:9090/api/v1/query?query=up&access_token=t0k",
                    "http://prom:9090/api/v1/query?query=up&access_token=***",
                ),
                ("https://h/x?api-key=1&sig=2&k=3", "https://h/x?api-key=***&sig=***&k=3"),
                ("http://[::1]:9090/x", "http://[::1]:9090/x"),
                ("https://hooks.example.com/a?email=a@b", "https://hooks.example.com/a?email=a@b"),
            ],
        );
    }

    #[test]
    fn origins_keep_only_where_a_url_leads() {
        check(
            url_origin,
            &[
                ("https://hooks.slack.com/services/T0/B0/s3cret", "https://hooks.slack.com/…"),
                ("http://127.0.0.1:9000/x?token=1", "http://127.0.0.1:9000/…"),
                ("https://u:p@ss@h.example/x", "https://h.example/…"),
                ("https://h.example?token=1", "https://h.example/…"),
                ("not a url", "…"),
            ],
        );
    }

    #[test]
    fn urls_inside_messages_are_redacted() {
        check(
            redact_urls_in,
            &[
                ("no url here", "no url here"),
                (
                    "request to http://u:s3cret@127.0.0.1:9/api/v1/query failed: error sending request for url (http://u:s3cret@127.0.0.1:9/api/v1/query?query=up)",
                    "request to http://u:***@127.0.0.1:9/api/v1/query failed: error sending request for url (http://u:***@127.0.0.1:9/api/v1/query?query=up)",
                ),
                (
                    "could not open \"postgres://wg@db/w?password=s3cret\": refused",
                    "could not open \"postgres://wg@db/w?password=***\": refused",
                ),
                ("a://b and ://c", "a://b and ://c"),
                ("(1http://u:p@h)", "(1http://u:***@h)"),
            ],
        );
    }

    #[test]
    fn markdown_escapes_what_would_link_embed_or_restyle() {
        check(
            escape_markdown,
            &[
                ("", ""),
                ("plain text 1.0 - #2", "plain text 1.0 - #2"),
                ("[click](https://evil)", "\\[click\\](https://evil)"),
                ("![x](https://t/p.gif)", "!\\[x\\](https://t/p.gif)"),
                ("<img src=x onerror=alert(1)>", "\\<img src=x onerror=alert(1)\\>"),
                ("a | b", "a \\| b"),
                ("**bold** _it_ ~s~ `c`", "\\*\\*bold\\*\\* \\_it\\_ \\~s\\~ \\`c\\`"),
                ("line\n# heading\r\n- item", "line # heading  - item"),
                ("a\\b &amp;", "a\\\\b \\&amp;"),
            ],
        );
    }

    #[test]
    fn slack_escapes_control_sequences_and_links() {
        check(
            escape_slack,
            &[
                ("", ""),
                ("deploy *now*", "deploy *now*"),
                ("<!here> <!channel> <@U1>", "&lt;!here&gt; &lt;!channel&gt; &lt;@U1&gt;"),
                ("<https://evil|click>", "&lt;https://evil|click&gt;"),
                ("a & b", "a &amp; b"),
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
        fn redacted_urls_never_keep_a_password(
            user in "[a-z]{1,8}",
            password in "[!-~]{1,16}",
            host in "[a-z]{1,8}(:[0-9]{1,5})?",
            tail in "(/[a-z]{0,5})?(\\?[a-z]{1,4}=[a-z]{1,4})?",
        ) {
            let url = format!("postgres://{user}:{password}@{host}{tail}");
            let redacted = redact_url(&url);
            prop_assert!(redacted.starts_with(&format!("postgres://{user}:***@")), "{redacted}");
            prop_assert!(!redacted.contains(&format!(":{password}@")), "{redacted}");
            if !password.contains(['&', '#', '@']) {
                let query = format!("postgres://{host}/db?password={password}");
                prop_assert_eq!(redact_url(&query), format!("postgres://{host}/db?password=***"));
            }
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
