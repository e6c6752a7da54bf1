//! Durations written as `90s`, `10m`, `1h30m`, `2d`.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A non-negative duration in whole seconds, written like `1h30m`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Span(u64);

impl Span {
    /// From seconds.
    pub const fn from_secs(s: u64) -> Span {
        Span(s)
    }
    /// Seconds.
    pub fn secs(self) -> u64 {
        self.0
    }
    /// As a chrono duration.
    pub fn to_chrono(self) -> chrono::Duration {
        chrono::Duration::seconds(self.0.min(i64::MAX as u64 / 1000) as i64)
    }
}

/// Parses `1h30m`, `45s`, `2d`, `0s`.
pub fn parse_span(s: &str) -> Result<Span, String> {
    let t = s.trim();
    if t.is_empty() {
        return Err("empty duration".into());
    }
    let mut total: u64 = 0;
    let mut num = String::new();
    let mut any = false;
    for c in t.chars() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            'w' => 604_800,
            _ => {
                return Err(format!(
                    "invalid duration {s:?}: use numbers with s, m, h, d or w, like 1h30m"
                ));
            }
        };
        let n: u64 = num
            .parse()
            .map_err(|_| format!("invalid duration {s:?}: a unit needs a number before it"))?;
        total = total
            .checked_add(n.checked_mul(unit).ok_or("duration too large")?)
            .ok_or("duration too large")?;
        num.clear();
        any = true;
    }
    if !num.is_empty() || !any {
        return Err(format!("invalid duration {s:?}: every number needs a unit (s, m, h, d, w)"));
    }
    if total > 10 * 365 * 86_400 {
        return Err(format!("duration {s:?} is longer than ten years"));
    }
    Ok(Span(total))
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = self.0;
        if s == 0 {
            return f.write_str("0s");
        }
        for (unit, len) in [("d", 86_400), ("h", 3600), ("m", 60), ("s", 1)] {
            if s >= len {
                write!(f, "{}{unit}", s / len)?;
                s %= len;
            }
        }
        Ok(())
    }
}

impl Serialize for Span {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Span {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        parse_span(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use crate::duration::parse_span;

    #[test]
    fn spans() {
        for (s, secs, shown) in [
            ("45s", 45, "45s"),
            ("10m", 600, "10m"),
            ("1h30m", 5400, "1h30m"),
            ("2d", 172_800, "2d"),
            ("0s", 0, "0s"),
        ] {
            let p = parse_span(s).unwrap();
            assert_eq!((p.secs(), p.to_string().as_str()), (secs, shown));
        }
        for bad in ["", "10", "m", "1x", "-1s", "99999999999999999999s"] {
            assert!(parse_span(bad).is_err(), "{bad}");
        }
    }
}
