//! Parsing the flags-as-code YAML file, with errors that say where (line and column).
//!
//! **Invariant:** YAML is read with strict booleans: only `true`/`false` are booleans, so the
//! country code `NO` and the variant names `on`/`off` stay strings.

use crate::error::SpecPath;
use crate::flag::{Flag, compile_segments};
use crate::spec::FlagFile;

/// Largest flag file accepted, in bytes.
pub const MAX_FILE_BYTES: usize = 8 * 1024 * 1024;

/// A flag file that does not parse or validate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FlagFileError {
    /// The YAML does not parse or does not fit the format (unknown field, wrong type…).
    #[error("{}{message}", location_prefix(*.line, *.column))]
    Syntax {
        /// 1-based line, when known.
        line: Option<u64>,
        /// 1-based column, when known.
        column: Option<u64>,
        /// What is wrong.
        message: String,
    },
    /// The document parses but a flag or segment is invalid.
    #[error(transparent)]
    Invalid(#[from] crate::error::SpecError),
    /// The file is too large.
    #[error("flag file is {0} bytes; at most {MAX_FILE_BYTES} are allowed")]
    TooLarge(usize),
}

fn location_prefix(line: Option<u64>, column: Option<u64>) -> String {
    match (line, column) {
        (Some(l), Some(c)) => format!("line {l}, column {c}: "),
        (Some(l), None) => format!("line {l}: "),
        _ => String::new(),
    }
}

fn yaml_options() -> serde_saphyr::Options {
    let mut options = serde_saphyr::Options::default();
    options.strict_booleans = true;
    options
}

/// Parses YAML text into `T` with wavegate's options (strict booleans, input budgets), turning
/// errors into [`FlagFileError::Syntax`] with a location.
pub fn parse_yaml<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, FlagFileError> {
    if text.len() > MAX_FILE_BYTES {
        return Err(FlagFileError::TooLarge(text.len()));
    }
    serde_saphyr::from_str_with_options(text, yaml_options()).map_err(|e| {
        let loc = e.location();
        let message = first_line(&e.to_string());
        FlagFileError::Syntax {
            line: loc.map(|l| l.line()),
            column: loc.map(|l| l.column()),
            message,
        }
    })
}

fn first_line(s: &str) -> String {
    // serde-saphyr's Display may append a source snippet; the first line is the message.
    // Its messages read "error: line L column C: …"; the location is reported separately.
    let mut m = s.lines().next().unwrap_or("invalid YAML").trim();
    m = m.strip_prefix("error: ").unwrap_or(m);
    if let Some((_, rest)) = m.split_once(": ").filter(|_| m.starts_with("line ")) {
        m = rest;
    }
    m.to_owned()
}

/// Parses and validates a flag file against the known environments. Segments named in flags
/// must be defined in the file or in `existing_segments`.
pub fn parse_flag_file(text: &str, environments: &[String]) -> Result<FlagFile, FlagFileError> {
    let file: FlagFile = parse_yaml(text)?;
    validate_flag_file(&file, environments, &Default::default())?;
    Ok(file)
}

/// Validates every segment and flag in `file`; `existing` supplies segments defined elsewhere.
pub fn validate_flag_file(
    file: &FlagFile,
    environments: &[String],
    existing: &crate::flag::Segments,
) -> Result<(), crate::error::SpecError> {
    let mut segments = existing.clone();
    segments.extend(compile_segments(&file.segments, &SpecPath::root("segments"))?);
    let root = SpecPath::root("flags");
    for (key, spec) in &file.flags {
        Flag::validate(key, spec, environments, &segments, &root.field(key))?;
    }
    Ok(())
}
