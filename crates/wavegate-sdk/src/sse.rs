//! A minimal server-sent-events parser (the subset wavegate's stream uses: `event`, `id`,
//! `data`, comments).

/// One event.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SseEvent {
    /// The `event:` field (`message` when absent).
    pub event: String,
    /// The `id:` field.
    pub id: Option<String>,
    /// The `data:` lines, joined with newlines.
    pub data: String,
}

/// Accumulates bytes and yields complete events.
#[derive(Debug, Default)]
pub struct SseParser {
    buf: String,
}

/// Largest event accepted (a snapshot of many flags can be large; beyond this the stream is
/// treated as broken rather than growing without bound).
pub const MAX_EVENT_BYTES: usize = 256 * 1024 * 1024;

impl SseParser {
    /// Adds received bytes; returns the events they complete, or an error if the buffer
    /// exceeds [`MAX_EVENT_BYTES`].
    pub fn push(&mut self, bytes: &[u8]) -> Result<Vec<SseEvent>, String> {
        self.buf.push_str(&String::from_utf8_lossy(bytes));
        if self.buf.contains('\r') {
            self.buf = self.buf.replace("\r\n", "\n").replace('\r', "\n");
        }
        let mut out = Vec::new();
        while let Some(i) = self.buf.find("\n\n") {
            let raw: String = self.buf.drain(..i + 2).collect();
            let mut ev = SseEvent { event: "message".into(), ..SseEvent::default() };
            let mut data: Vec<&str> = Vec::new();
            let mut any = false;
            for line in raw.lines() {
                if line.starts_with(':') || line.is_empty() {
                    continue;
                }
                let (field, value) = match line.split_once(':') {
                    Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
                    None => (line, ""),
                };
                any = true;
                match field {
                    "event" => ev.event = value.to_owned(),
                    "id" => ev.id = Some(value.to_owned()),
                    "data" => data.push(value),
                    _ => {}
                }
            }
            if any {
                ev.data = data.join("\n");
                out.push(ev);
            }
        }
        if self.buf.len() > MAX_EVENT_BYTES {
            return Err(format!("an event exceeded {MAX_EVENT_BYTES} bytes"));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_split_across_chunks_and_comments_are_skipped() {
        let mut p = SseParser::default();
        assert!(p.push(b": heartbeat\n\nevent: fl").unwrap().is_empty());
        let evs = p.push(b"ag\nid: 7\ndata: {\"a\":\ndata: 1}\n\ndata: x\r\n\r\n").unwrap();
        assert_eq!(evs.len(), 2);
        assert_eq!(
            evs[0],
            SseEvent { event: "flag".into(), id: Some("7".into()), data: "{\"a\":\n1}".into() }
        );
        assert_eq!((evs[1].event.as_str(), evs[1].data.as_str()), ("message", "x"));
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let mut p = SseParser::default();
        for chunk in [&b"\xff\xfe:\n\n"[..], b"data\n\n", b"::::\n\n\n\n", b"id:\nevent:\n\n"] {
            p.push(chunk).unwrap();
        }
    }
}
