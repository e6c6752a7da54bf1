//! [`Failure`]: an error that says which exit code it ends the process with.

/// A failure with a defined exit code (DESIGN.md: 1 the operation failed, 2 usage or input).
#[derive(Debug)]
pub enum Failure {
    /// Usage or input error (exit 2), a 4xx from the server included.
    Input(String),
    /// The operation failed (exit 1): a failed check, a 5xx or a network failure.
    Operation(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Input(m) | Failure::Operation(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for Failure {}

impl Failure {
    /// The process exit code for this failure.
    pub fn exit_code(&self) -> u8 {
        match self {
            Failure::Input(_) => 2,
            Failure::Operation(_) => 1,
        }
    }
}
