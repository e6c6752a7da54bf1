//! An incremental server-sent-events decoder: bytes in, events out, as the HTML standard's
//! "event stream interpretation" says (<https://html.spec.whatwg.org/multipage/server-sent-events.html#parsing-an-event-stream>).
//!
//! Pure: the caller reads the network and hands over whatever chunks arrive. Every user of an
//! event stream (the SDK, the edge through it, the server's tests, the benchmarks) decodes with
//! this one parser.
//!
//! **Invariant:** bytes are buffered until a whole line is in, and only whole lines are decoded
//! as UTF-8. Line terminators are ASCII, so a multi-byte character split across two network
//! chunks is never cut in half (decoding each chunk on its own turned a split `ü` into two
//! U+FFFD). The result does not depend on how the stream was chunked.
//!
//! Lines end with CRLF, LF or CR; a leading byte-order mark is dropped; a line starting with
//! `:` is a comment; `event`, `data`, `id` and `retry` are the fields; a blank line dispatches
//! the event, unless it carried no `data` (such a block is dropped, as the standard says); an
//! unfinished block at the end of the stream is never dispatched.

/// Largest pending line plus event accepted (a snapshot of many flags can be large; beyond this
/// the stream is treated as broken rather than growing without bound).
pub const MAX_EVENT_BYTES: usize = 256 * 1024 * 1024;

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SseEvent {
    /// The `event:` field (`message` when absent or empty).
    pub event: String,
    /// The `id:` field of this event, if it had one. The standard's "last event ID", which
    /// persists across events and is what a reconnecting client sends as `Last-Event-ID`, is
    /// [`SseParser::last_event_id`].
    pub id: Option<String>,
    /// The `data:` lines, joined with newlines.
    pub data: String,
}

/// What [`SseParser::push_items`] yields: events, and comments for those who watch heartbeats.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SseItem {
    /// A dispatched event.
    Event(SseEvent),
    /// A comment line's text after the `:` (one leading space removed), like `heartbeat`.
    Comment(String),
}

/// Why the stream cannot be decoded further.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SseError {
    /// An event (or one line of it) grew beyond the parser's limit.
    #[error("an event exceeded {limit} bytes")]
    TooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
}

/// Accumulates bytes and yields complete events.
#[derive(Debug)]
pub struct SseParser {
    /// The current line, not yet terminated (raw bytes: it may end inside a character).
    line: Vec<u8>,
    /// The previous chunk ended with CR: an LF starting this one belongs to that line break.
    after_cr: bool,
    /// Some line has been seen (the byte-order mark is only dropped from the first).
    started: bool,
    event: String,
    /// The data lines so far, each followed by LF.
    data: String,
    /// This block's own `id:` field.
    id: Option<String>,
    last_event_id: String,
    retry: Option<u64>,
    limit: usize,
}

impl Default for SseParser {
    fn default() -> Self {
        SseParser::with_limit(MAX_EVENT_BYTES)
    }
}

impl SseParser {
    /// A parser that refuses events larger than `limit` bytes.
    pub fn with_limit(limit: usize) -> SseParser {
        SseParser {
            line: Vec::new(),
            after_cr: false,
            started: false,
            event: String::new(),
            data: String::new(),
            id: None,
            last_event_id: String::new(),
            retry: None,
            limit,
        }
    }

    /// Adds received bytes; returns the events they complete (comments skipped).
    pub fn push(&mut self, bytes: &[u8]) -> Result<Vec<SseEvent>, SseError> {
        let mut out = Vec::new();
        self.feed(bytes, &mut |item| {
            if let SseItem::Event(e) = item {
                out.push(e);
            }
        })?;
        Ok(out)
    }

    /// Adds received bytes; returns the events and comments they complete, in stream order.
    pub fn push_items(&mut self, bytes: &[u8]) -> Result<Vec<SseItem>, SseError> {
        let mut out = Vec::new();
        self.feed(bytes, &mut |item| out.push(item))?;
        Ok(out)
    }

    /// The standard's last event ID: the latest `id:` field seen (empty when none was, or the
    /// latest was empty). A reconnecting client sends it as `Last-Event-ID` unless empty.
    pub fn last_event_id(&self) -> &str {
        &self.last_event_id
    }

    /// The reconnection time in milliseconds the server asked for with `retry:`, if it did.
    pub fn retry(&self) -> Option<u64> {
        self.retry
    }

    fn feed(&mut self, mut bytes: &[u8], emit: &mut dyn FnMut(SseItem)) -> Result<(), SseError> {
        while let Some(&first) = bytes.first() {
            if std::mem::take(&mut self.after_cr) && first == b'\n' {
                bytes = &bytes[1..];
                continue;
            }
            match bytes.iter().position(|&b| b == b'\n' || b == b'\r') {
                None => {
                    self.line.extend_from_slice(bytes);
                    self.check_size()?;
                    break;
                }
                Some(i) => {
                    self.line.extend_from_slice(&bytes[..i]);
                    self.check_size()?;
                    self.after_cr = bytes[i] == b'\r';
                    bytes = &bytes[i + 1..];
                    let line = std::mem::take(&mut self.line);
                    self.process_line(&line, emit);
                    // Keep the allocation for the next line.
                    self.line = line;
                    self.line.clear();
                }
            }
        }
        Ok(())
    }

    fn check_size(&self) -> Result<(), SseError> {
        if self.line.len() + self.data.len() + self.event.len() > self.limit {
            return Err(SseError::TooLarge { limit: self.limit });
        }
        Ok(())
    }

    fn process_line(&mut self, raw: &[u8], emit: &mut dyn FnMut(SseItem)) {
        let decoded = String::from_utf8_lossy(raw);
        let mut line: &str = &decoded;
        if !std::mem::replace(&mut self.started, true) {
            line = line.strip_prefix('\u{feff}').unwrap_or(line);
        }
        if line.is_empty() {
            self.dispatch(emit);
            return;
        }
        if let Some(comment) = line.strip_prefix(':') {
            emit(SseItem::Comment(comment.strip_prefix(' ').unwrap_or(comment).to_owned()));
            return;
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match field {
            "event" => value.clone_into(&mut self.event),
            "data" => {
                self.data.push_str(value);
                self.data.push('\n');
            }
            "id" if !value.contains('\0') => {
                value.clone_into(&mut self.last_event_id);
                self.id = Some(value.to_owned());
            }
            "retry" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                // Too many digits to be a sensible delay: ignored, like any invalid value.
                if let Ok(ms) = value.parse() {
                    self.retry = Some(ms);
                }
            }
            _ => {}
        }
    }

    fn dispatch(&mut self, emit: &mut dyn FnMut(SseItem)) {
        let id = self.id.take();
        if self.data.is_empty() {
            self.event.clear();
            return;
        }
        self.data.pop();
        let event = match std::mem::take(&mut self.event) {
            e if e.is_empty() => "message".to_owned(),
            e => e,
        };
        emit(SseItem::Event(SseEvent { event, id, data: std::mem::take(&mut self.data) }));
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use crate::sse::{SseError, SseEvent, SseItem, SseParser};

    fn ev(event: &str, id: Option<&str>, data: &str) -> SseEvent {
        SseEvent { event: event.into(), id: id.map(Into::into), data: data.into() }
    }

    /// Feeds `chunks` in order to one parser; returns everything it yielded.
    fn run(chunks: &[&[u8]]) -> Vec<SseItem> {
        let mut p = SseParser::default();
        chunks.iter().flat_map(|c| p.push_items(c).unwrap()).collect()
    }

    fn events(input: &str) -> Vec<SseEvent> {
        SseParser::default().push(input.as_bytes()).unwrap()
    }

    /// Multi-byte characters (2, 3 and 4 bytes), every line ending, comments, `id`, `retry`
    /// and multi-line data, in one stream.
    const STREAM: &str = "\u{feff}: héllo\r\nevent: city\nid: 7\ndata: Zürich\r\ndata: 東京 €\r\rdata: 🦀 ünïcödé\n\n: ♥\nretry: 2500\nevent: 💡\ndata:{\"name\":\"Genève\"}\r\n\r\n";

    fn expected() -> Vec<SseItem> {
        vec![
            SseItem::Comment("héllo".into()),
            SseItem::Event(ev("city", Some("7"), "Zürich\n東京 €")),
            SseItem::Event(ev("message", None, "🦀 ünïcödé")),
            SseItem::Comment("♥".into()),
            SseItem::Event(ev("💡", None, "{\"name\":\"Genève\"}")),
        ]
    }

    #[test]
    fn a_character_split_across_chunks_survives_at_every_boundary() {
        let bytes = STREAM.as_bytes();
        assert_eq!(run(&[bytes]), expected());
        for i in 0..=bytes.len() {
            assert_eq!(run(&[&bytes[..i], &bytes[i..]]), expected(), "split at byte {i}");
        }
        for i in 0..=bytes.len() {
            for j in i..=bytes.len() {
                let chunks = [&bytes[..i], &bytes[i..j], &bytes[j..]];
                assert_eq!(run(&chunks), expected(), "split at bytes {i} and {j}");
            }
        }
        let one_by_one: Vec<&[u8]> = bytes.chunks(1).collect();
        assert_eq!(run(&one_by_one), expected());
    }

    #[test]
    fn the_sdk_bug_zurich_split_inside_its_u_umlaut() {
        let mut p = SseParser::default();
        let bytes = "data: Zürich\n\n".as_bytes();
        let cut = "data: Z".len() + 1; // between the two bytes of `ü`
        assert!(p.push(&bytes[..cut]).unwrap().is_empty());
        assert_eq!(p.push(&bytes[cut..]).unwrap(), [ev("message", None, "Zürich")]);
    }

    #[test]
    fn line_endings_crlf_cr_and_lf_mix() {
        assert_eq!(
            events("data: a\rdata: b\r\rdata: c\r\n\r\ndata: d\n\r\n"),
            [ev("message", None, "a\nb"), ev("message", None, "c"), ev("message", None, "d")]
        );
        // A CR at the end of one chunk and the LF starting the next are one line break.
        let mut p = SseParser::default();
        assert!(p.push(b"data: x\r").unwrap().is_empty());
        assert!(p.push(b"\n").unwrap().is_empty());
        assert_eq!(p.push(b"\r").unwrap(), [ev("message", None, "x")]);
        assert!(p.push(b"\n").unwrap().is_empty(), "the LF completes the CR, no second event");
    }

    #[test]
    fn fields_as_the_standard_reads_them() {
        // The standard's own examples: only one leading space is removed; `data` with no colon
        // is an empty data line; a block without data dispatches nothing; the unfinished last
        // block is dropped.
        assert_eq!(
            events("data:test\n\ndata: test\n\ndata:  two\n\n"),
            [ev("message", None, "test"), ev("message", None, "test"), ev("message", None, " two")]
        );
        assert_eq!(
            events("data\n\ndata\ndata\n\ndata:"),
            [ev("message", None, ""), ev("message", None, "\n")]
        );
        assert_eq!(events("event: lonely\nid: 3\n\ndata: x\n\n"), [ev("message", None, "x")]);
        assert_eq!(events("unknown: 1\nevent\ndata: y\n\n"), [ev("message", None, "y")]);
        assert_eq!(events("data: a\ndata:\ndata: b\n\n"), [ev("message", None, "a\n\nb")]);
        // The field name is exact: case and surrounding spaces matter.
        assert_eq!(events("Data: no\n data: no\ndata : no\n\n"), []);
    }

    #[test]
    fn ids_persist_as_the_last_event_id_and_retry_is_kept() {
        let mut p = SseParser::default();
        let got = p.push(b"id: 1\ndata: a\n\ndata: b\n\nid: 2\0x\ndata: c\n\n").unwrap();
        assert_eq!(
            got,
            [ev("message", Some("1"), "a"), ev("message", None, "b"), ev("message", None, "c")]
        );
        assert_eq!(p.last_event_id(), "1", "an id containing NUL is ignored");
        assert_eq!(p.push(b"id\ndata: d\n\n").unwrap(), [ev("message", Some(""), "d")]);
        assert_eq!(p.last_event_id(), "", "an empty id resets it");

        assert_eq!(p.retry(), None);
        p.push(b"retry: 1500\n\nretry: 10s\n\nretry:\n\nretry: -1\n\n").unwrap();
        assert_eq!(p.retry(), Some(1500), "only ASCII digits set the reconnection time");
        p.push(b"retry:99999999999999999999999\n\nretry:0\n\n").unwrap();
        assert_eq!(p.retry(), Some(0));
    }

    #[test]
    fn comments_are_skipped_by_push_and_kept_by_push_items() {
        let input = b": heartbeat\n\n:\ndata: x\n\n";
        assert_eq!(SseParser::default().push(input).unwrap(), [ev("message", None, "x")]);
        assert_eq!(
            run(&[input]),
            [
                SseItem::Comment("heartbeat".into()),
                SseItem::Comment(String::new()),
                SseItem::Event(ev("message", None, "x"))
            ]
        );
    }

    #[test]
    fn invalid_utf8_is_replaced_not_fatal() {
        assert_eq!(events("data: a\u{0}b\n\n"), [ev("message", None, "a\u{0}b")]);
        let got = SseParser::default().push(b"data: \xff\xfe ok\n\n").unwrap();
        assert_eq!(got, [ev("message", None, "\u{fffd}\u{fffd} ok")]);
    }

    #[test]
    fn an_oversized_event_is_an_error() {
        let mut p = SseParser::with_limit(16);
        assert!(p.push(b"data: 0123456789\n").is_ok());
        assert_eq!(p.push(b"data: more"), Err(SseError::TooLarge { limit: 16 }));
        let mut p = SseParser::with_limit(16);
        assert_eq!(p.push(&[b'x'; 17]), Err(SseError::TooLarge { limit: 16 }));
    }

    proptest! {
        /// However the bytes are chunked, the parser yields the same items and never panics.
        #[test]
        fn chunking_never_changes_the_result(
            bytes in proptest::collection::vec(
                prop_oneof![
                    Just(b'\n'), Just(b'\r'), Just(b':'), Just(b' '), Just(0xc3u8), Just(0xbc),
                    Just(b'd'), Just(b'a'), Just(b't'), any::<u8>(),
                ],
                0..200,
            ),
            cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..8),
        ) {
            let whole = run(&[&bytes]);
            let mut at: Vec<usize> = cuts.iter().map(|c| c.index(bytes.len() + 1)).collect();
            at.sort_unstable();
            let mut chunks = Vec::new();
            let mut from = 0;
            for to in at {
                chunks.push(&bytes[from..to]);
                from = to;
            }
            chunks.push(&bytes[from..]);
            prop_assert_eq!(run(&chunks), whole);
        }
    }
}
