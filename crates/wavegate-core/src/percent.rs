//! [`Percent`]: a share in basis points (0.01%), parsed from `"12.5%"` or `12.5`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A percentage with 0.01% resolution, held as basis points (0..=10000).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Percent(u16);

/// Why a percentage did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid percentage {input:?}: expected a number from 0 to 100 with at most two decimals, like \"12.5%\""
)]
pub struct PercentError {
    input: String,
}

impl Percent {
    /// 0%.
    pub const ZERO: Percent = Percent(0);
    /// 100%.
    pub const FULL: Percent = Percent(10_000);

    /// From basis points; `None` above 10000.
    pub fn from_basis_points(bp: u16) -> Option<Percent> {
        (bp <= 10_000).then_some(Percent(bp))
    }

    /// The share in basis points.
    pub fn basis_points(self) -> u16 {
        self.0
    }
}

impl FromStr for Percent {
    type Err = PercentError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || PercentError { input: s.to_owned() };
        let t = s.trim();
        let t = t.strip_suffix('%').unwrap_or(t).trim_end();
        let (whole, frac) = match t.split_once('.') {
            Some((w, f)) => (w, f),
            None => (t, ""),
        };
        if whole.is_empty() || whole.len() > 3 || !whole.bytes().all(|b| b.is_ascii_digit()) {
            return Err(err());
        }
        if frac.len() > 2
            || !frac.bytes().all(|b| b.is_ascii_digit())
            || (t.contains('.') && frac.is_empty())
        {
            return Err(err());
        }
        let whole: u32 = whole.parse().map_err(|_| err())?;
        let mut frac_bp: u32 = if frac.is_empty() { 0 } else { frac.parse().map_err(|_| err())? };
        if frac.len() == 1 {
            frac_bp *= 10;
        }
        let bp = whole * 100 + frac_bp;
        if bp > 10_000 {
            return Err(err());
        }
        Ok(Percent(bp as u16))
    }
}

impl fmt::Display for Percent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (w, r) = (self.0 / 100, self.0 % 100);
        if r == 0 {
            write!(f, "{w}%")
        } else if r % 10 == 0 {
            write!(f, "{w}.{}%", r / 10)
        } else {
            write!(f, "{w}.{r:02}%")
        }
    }
}

impl Serialize for Percent {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Percent {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Percent;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a percentage like \"10%\" or 12.5")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Percent, E> {
                v.parse().map_err(E::custom)
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Percent, E> {
                self.visit_str(&v.to_string())
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Percent, E> {
                self.visit_str(&v.to_string())
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Percent, E> {
                // Round-trip through the shortest decimal text so 12.5 stays 12.5.
                self.visit_str(&v.to_string())
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use crate::percent::Percent;

    #[test]
    fn parses_and_prints() {
        for (input, bp, shown) in [
            ("10%", 1000, "10%"),
            ("12.5%", 1250, "12.5%"),
            ("0.01%", 1, "0.01%"),
            ("100", 10000, "100%"),
            ("0", 0, "0%"),
            (" 33.33 %", 3333, "33.33%"),
        ] {
            let p: Percent = input.parse().unwrap();
            assert_eq!(p.basis_points(), bp, "{input}");
            assert_eq!(p.to_string(), shown);
        }
        for bad in ["", "%", "101%", "1.234%", "-1%", "ten%", "1.%", ".5%", "1e2"] {
            assert!(bad.parse::<Percent>().is_err(), "{bad:?} should not parse");
        }
    }
}
