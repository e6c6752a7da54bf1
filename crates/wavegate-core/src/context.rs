//! [`Context`]: who is asking. Parsed once at the edge from OFREP's JSON `context`, bounded in
//! size, then read many times by evaluation.

/// The attribute that holds the targeting key (Unleash's `userId`).
pub const TARGETING_KEY: &str = "targetingKey";
/// The attribute the server fills with the evaluation time (RFC 3339) for date constraints.
pub const CURRENT_TIME: &str = "currentTime";
/// The session attribute the `default` stickiness falls back to.
pub const SESSION_ID: &str = "sessionId";

/// Size caps on a context (flagd's unbounded contexts were an advisory).
pub mod limits {
    /// Most attributes a context may carry.
    pub const MAX_ATTRIBUTES: usize = 256;
    /// Longest attribute name, in bytes.
    pub const MAX_NAME_BYTES: usize = 256;
    /// Longest string value (and targeting key), in bytes.
    pub const MAX_VALUE_BYTES: usize = 4096;
}

/// One attribute's value. Structured values (objects, arrays) are kept only as "present".
#[derive(Debug, Clone, PartialEq)]
pub enum AttrValue {
    /// A string.
    String(String),
    /// A number.
    Number(f64),
    /// A boolean.
    Bool(bool),
    /// An object or array: present, but matches no constraint.
    Structured,
}

/// Evaluation context: an optional targeting key, attributes, and optional entropy for
/// `random` stickiness (the core draws no random numbers; the caller supplies them).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Context {
    targeting_key: Option<String>,
    /// Sorted by name, names unique. A sorted `Vec` rather than a `BTreeMap`: contexts are small,
    /// and [`Context::find`] scans them comparing lengths first, which skips almost every `memcmp`.
    attributes: Vec<(String, AttrValue)>,
    entropy: Option<u32>,
}

/// Up to this many attributes, [`Context::find`] scans linearly; above, it binary-searches.
const LINEAR_SCAN_MAX: usize = 16;

/// Byte equality that stays inline for strings up to 16 bytes (attribute names and most
/// operands), with a few overlapping word loads instead of a call to `memcmp`. Longer strings
/// use the slice comparison.
#[inline(always)]
pub(crate) fn bytes_eq(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    match n {
        0 => true,
        // Bytes 0, n/2 and n-1 cover every byte of a 1–3 byte string.
        1..=3 => a[0] == b[0] && a[n / 2] == b[n / 2] && a[n - 1] == b[n - 1],
        4..=8 => {
            let w = |s: &[u8]| {
                (
                    u32::from_le_bytes([s[0], s[1], s[2], s[3]]),
                    u32::from_le_bytes([s[n - 4], s[n - 3], s[n - 2], s[n - 1]]),
                )
            };
            w(a) == w(b)
        }
        9..=16 => {
            let w = |s: &[u8]| match (s.first_chunk::<8>(), s.last_chunk::<8>()) {
                (Some(lo), Some(hi)) => (u64::from_le_bytes(*lo), u64::from_le_bytes(*hi)),
                _ => (0, 0),
            };
            w(a) == w(b)
        }
        _ => a == b,
    }
}

/// Why a context was refused (OFREP `INVALID_CONTEXT`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ContextError {
    /// The context is not a JSON object.
    #[error("context must be a JSON object")]
    NotAnObject,
    /// `targetingKey` is present but not a string.
    #[error("context.targetingKey must be a string")]
    TargetingKeyNotString,
    /// Too many attributes.
    #[error("context has {0} attributes; at most {max} are allowed", max = limits::MAX_ATTRIBUTES)]
    TooManyAttributes(usize),
    /// An attribute name is empty or too long.
    #[error("context attribute name {0:?} is empty or longer than {max} bytes", max = limits::MAX_NAME_BYTES)]
    BadName(String),
    /// A string value is too long.
    #[error("context.{0} is longer than {max} bytes", max = limits::MAX_VALUE_BYTES)]
    ValueTooLong(String),
}

impl Context {
    /// A context with this targeting key and no attributes.
    pub fn with_key(key: impl Into<String>) -> Context {
        Context { targeting_key: Some(key.into()), ..Context::default() }
    }

    /// Parses an OFREP/OpenFeature context object. Nulls are dropped; objects and arrays are
    /// kept as [`AttrValue::Structured`].
    pub fn from_json(value: &serde_json::Value) -> Result<Context, ContextError> {
        let obj = value.as_object().ok_or(ContextError::NotAnObject)?;
        if obj.len() > limits::MAX_ATTRIBUTES {
            return Err(ContextError::TooManyAttributes(obj.len()));
        }
        let mut ctx = Context::default();
        for (name, v) in obj {
            if name == TARGETING_KEY {
                match v {
                    serde_json::Value::String(s) => {
                        if s.len() > limits::MAX_VALUE_BYTES {
                            return Err(ContextError::ValueTooLong(name.clone()));
                        }
                        ctx.targeting_key = Some(s.clone());
                    }
                    serde_json::Value::Null => {}
                    _ => return Err(ContextError::TargetingKeyNotString),
                }
                continue;
            }
            if name.is_empty() || name.len() > limits::MAX_NAME_BYTES {
                return Err(ContextError::BadName(name.chars().take(64).collect()));
            }
            let value = match v {
                serde_json::Value::Null => continue,
                serde_json::Value::Bool(b) => AttrValue::Bool(*b),
                serde_json::Value::Number(n) => AttrValue::Number(n.as_f64().unwrap_or(f64::NAN)),
                serde_json::Value::String(s) => {
                    if s.len() > limits::MAX_VALUE_BYTES {
                        return Err(ContextError::ValueTooLong(name.clone()));
                    }
                    AttrValue::String(s.clone())
                }
                serde_json::Value::Array(_) | serde_json::Value::Object(_) => AttrValue::Structured,
            };
            ctx.attributes.push((name.clone(), value));
        }
        // JSON object keys are unique, so an unstable sort keeps the invariant.
        ctx.attributes.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        Ok(ctx)
    }

    /// Sets an attribute (`targetingKey` sets the targeting key if the value is a string).
    pub fn set(&mut self, name: impl Into<String>, value: AttrValue) {
        let name = name.into();
        if name == TARGETING_KEY {
            if let AttrValue::String(s) = value {
                self.targeting_key = Some(s);
            }
            return;
        }
        match self.attributes.binary_search_by(|(k, _)| k.as_str().cmp(&name)) {
            Ok(i) => self.attributes[i].1 = value,
            Err(i) => self.attributes.insert(i, (name, value)),
        }
    }

    /// Builder form of [`Context::set`].
    pub fn with(mut self, name: impl Into<String>, value: AttrValue) -> Context {
        self.set(name, value);
        self
    }

    /// Supplies entropy for `random` stickiness (and the `default` chain's last resort).
    pub fn with_entropy(mut self, entropy: u32) -> Context {
        self.entropy = Some(entropy);
        self
    }

    /// The targeting key, if any.
    pub fn targeting_key(&self) -> Option<&str> {
        self.targeting_key.as_deref()
    }

    /// The entropy supplied for random stickiness, if any.
    pub fn entropy(&self) -> Option<u32> {
        self.entropy
    }

    /// Whether the context carries `currentTime`.
    pub fn has_current_time(&self) -> bool {
        self.find(CURRENT_TIME).is_some()
    }

    /// The attribute named `name` (not the targeting key).
    #[inline]
    fn find(&self, name: &str) -> Option<&AttrValue> {
        if self.attributes.len() <= LINEAR_SCAN_MAX {
            self.attributes
                .iter()
                .find(|(k, _)| bytes_eq(k.as_bytes(), name.as_bytes()))
                .map(|(_, v)| v)
        } else {
            self.attributes
                .binary_search_by(|(k, _)| k.as_str().cmp(name))
                .ok()
                .map(|i| &self.attributes[i].1)
        }
    }

    /// Looks an attribute up; `targetingKey` reads the targeting key.
    #[inline]
    pub fn attribute(&self, name: &str) -> Option<AttrRef<'_>> {
        if bytes_eq(name.as_bytes(), TARGETING_KEY.as_bytes()) {
            return self.targeting_key.as_deref().map(AttrRef::Str);
        }
        self.find(name).map(|v| match v {
            AttrValue::String(s) => AttrRef::Str(s),
            AttrValue::Number(n) => AttrRef::Number(*n),
            AttrValue::Bool(b) => AttrRef::Bool(*b),
            AttrValue::Structured => AttrRef::Structured,
        })
    }

    /// The attributes other than the targeting key, by name.
    pub fn attributes(&self) -> impl Iterator<Item = (&str, &AttrValue)> {
        self.attributes.iter().map(|(k, v)| (k.as_str(), v))
    }
}

/// A borrowed attribute value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AttrRef<'a> {
    /// A string.
    Str(&'a str),
    /// A number.
    Number(f64),
    /// A boolean.
    Bool(bool),
    /// An object or array.
    Structured,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::context::{AttrRef, AttrValue, Context, ContextError, bytes_eq};

    #[test]
    fn parses_ofrep_context() {
        let ctx = Context::from_json(&json!({"targetingKey": "u1", "plan": "pro", "age": 31, "beta": true, "n": null, "o": {"a": 1}})).unwrap();
        assert_eq!(ctx.targeting_key(), Some("u1"));
        assert_eq!(ctx.attribute("plan"), Some(AttrRef::Str("pro")));
        assert_eq!(ctx.attribute("age"), Some(AttrRef::Number(31.0)));
        assert_eq!(ctx.attribute("beta"), Some(AttrRef::Bool(true)));
        assert_eq!(ctx.attribute("n"), None);
        assert_eq!(ctx.attribute("o"), Some(AttrRef::Structured));
        assert_eq!(ctx.attribute("targetingKey"), Some(AttrRef::Str("u1")));
    }

    #[test]
    fn refuses_bad_contexts() {
        assert_eq!(Context::from_json(&json!([1])), Err(ContextError::NotAnObject));
        assert_eq!(
            Context::from_json(&json!({"targetingKey": 5})),
            Err(ContextError::TargetingKeyNotString)
        );
        let big: serde_json::Map<_, _> = (0..300).map(|i| (format!("a{i}"), json!(i))).collect();
        assert!(matches!(
            Context::from_json(&big.into()),
            Err(ContextError::TooManyAttributes(300))
        ));
        assert!(matches!(
            Context::from_json(&json!({"x": "y".repeat(5000)})),
            Err(ContextError::ValueTooLong(_))
        ));
    }

    #[test]
    fn bytes_eq_agrees_with_slice_equality() {
        let words: Vec<Vec<u8>> = (0..=20usize)
            .flat_map(|n| {
                let base: Vec<u8> = (0..n).map(|i| b'a' + (i % 26) as u8).collect();
                let mut variants = vec![base.clone()];
                for i in 0..n {
                    let mut v = base.clone();
                    v[i] ^= 0x20;
                    variants.push(v);
                }
                variants
            })
            .collect();
        for a in &words {
            for b in &words {
                assert_eq!(bytes_eq(a, b), a == b, "{a:?} vs {b:?}");
            }
        }
    }

    #[test]
    fn lookup_set_and_order_small_and_large() {
        for n in [3usize, 40] {
            let mut ctx = Context::default();
            for i in (0..n).rev() {
                ctx.set(format!("a{i:02}"), AttrValue::Number(i as f64));
            }
            ctx.set("a01", AttrValue::Bool(true));
            let from_json = Context::from_json(&serde_json::Value::Object(
                ctx.attributes()
                    .map(|(k, v)| {
                        (
                            k.to_owned(),
                            match v {
                                AttrValue::Number(n) => json!(n),
                                AttrValue::Bool(b) => json!(b),
                                _ => unreachable!(),
                            },
                        )
                    })
                    .collect(),
            ))
            .unwrap();
            assert_eq!(ctx, from_json);
            let names: Vec<_> = ctx.attributes().map(|(k, _)| k.to_owned()).collect();
            assert_eq!(names, (0..n).map(|i| format!("a{i:02}")).collect::<Vec<_>>());
            assert_eq!(ctx.attribute("a01"), Some(AttrRef::Bool(true)));
            assert_eq!(
                ctx.attribute(&format!("a{:02}", n - 1)),
                Some(AttrRef::Number((n - 1) as f64))
            );
            assert_eq!(ctx.attribute("a"), None);
            assert_eq!(ctx.attribute("zz"), None);
        }
    }
}
