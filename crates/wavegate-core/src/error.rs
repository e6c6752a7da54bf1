//! [`SpecError`]: a flag or segment that does not validate, and where ([`SpecPath`]); and
//! [`root_cause`], the innermost message of any error's chain (what a person can act on).

use std::fmt;

/// Where in a flag file or API body a problem is, like `flags.checkout.environments.prod.rules[1].split`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SpecPath(String);

impl SpecPath {
    /// A path starting at `root`.
    pub fn root(root: impl Into<String>) -> SpecPath {
        SpecPath(root.into())
    }

    /// The path of a field below this one.
    pub fn field(&self, name: &str) -> SpecPath {
        if self.0.is_empty() {
            SpecPath(name.to_owned())
        } else {
            SpecPath(format!("{}.{name}", self.0))
        }
    }

    /// The path of a list item below this one.
    pub fn index(&self, i: usize) -> SpecPath {
        SpecPath(format!("{}[{i}]", self.0))
    }

    /// An error at this path.
    pub fn error(&self, message: impl Into<String>) -> SpecError {
        SpecError { path: self.0.clone(), message: message.into() }
    }

    /// The path as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SpecPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A flag or segment that does not validate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct SpecError {
    /// Where: a dotted path into the document.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

/// The message of the innermost error in `e`'s `source()` chain: for a failed HTTP request,
/// "Connection refused" rather than the client's "error sending request".
pub fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

#[cfg(test)]
mod tests {
    use crate::error::{SpecError, root_cause};

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] SpecError);

    #[test]
    fn root_cause_is_the_innermost_message() {
        let inner = SpecError { path: "flags.x".into(), message: "bad".into() };
        assert_eq!(root_cause(&inner), "flags.x: bad");
        assert_eq!(root_cause(&Outer(inner)), "flags.x: bad");
    }
}
