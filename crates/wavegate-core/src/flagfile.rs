//! Parsing the flags-as-code YAML file, with errors that say where (line and column).
//!
//! **Invariant:** YAML is read with strict booleans: only `true`/`false` are booleans, so the
//! country code `NO` and the variant names `on`/`off` stay strings.

use crate::error::SpecPath;
use crate::flag::{Flag, compile_segments};
use crate::spec::FlagFile;

/// Largest YAML document (a flag file or a plan) accepted, in bytes: 8 MiB.
pub const MAX_FILE_BYTES: usize = 8 * 1024 * 1024;

/// Most YAML nodes (mappings, sequences and scalars) a document may hold: one per two bytes of
/// the largest document, so any document within [`MAX_FILE_BYTES`] fits (the smallest node,
/// a one-character scalar, takes at least two bytes with its separator), while a document
/// that expands through anchors and aliases is still cut off.
pub const MAX_NODES: usize = MAX_FILE_BYTES / 2;

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
    /// The document is too large.
    #[error("the document is {0} bytes; at most {MAX_FILE_BYTES} (8 MiB) are allowed")]
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
    // The parser's default budget (250,000 nodes) refused valid files of 20,000 flags; size it
    // to the byte limit instead. Its other limits (aliases, depth, documents) stay.
    let mut budget = options.budget.clone().unwrap_or_default();
    budget.max_nodes = MAX_NODES;
    budget.max_events = MAX_FILE_BYTES;
    options.budget = Some(budget);
    options
}

/// A budget breach in words, for people (the parser's own text is Rust debug output).
fn budget_message(breach: &serde_saphyr::budget::BudgetBreach) -> String {
    use serde_saphyr::budget::BudgetBreach as B;
    let what = match breach {
        B::Nodes { .. } => format!("more than {MAX_NODES} values (mappings, lists and scalars)"),
        B::Events { .. } => format!("more than {MAX_FILE_BYTES} YAML events"),
        B::Aliases { .. } | B::Anchors { .. } => "too many anchors or aliases".to_owned(),
        B::Depth { .. } => "nesting deeper than 64 levels".to_owned(),
        B::Documents { .. } => "too many YAML documents (`---`)".to_owned(),
        other => format!("a parser limit ({other:?})"),
    };
    format!(
        "the document is too complex for wavegate's YAML limits: {what}; split it or simplify it"
    )
}

/// Parses YAML text into `T` with wavegate's options (strict booleans, input budgets), turning
/// errors into [`FlagFileError::Syntax`] with a location.
pub fn parse_yaml<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, FlagFileError> {
    if text.len() > MAX_FILE_BYTES {
        return Err(FlagFileError::TooLarge(text.len()));
    }
    serde_saphyr::from_str_with_options(text, yaml_options()).map_err(|e| {
        let loc = e.location();
        let message = match e.without_snippet() {
            serde_saphyr::Error::Budget { breach, .. } => budget_message(breach),
            _ => first_line(&e.to_string()),
        };
        FlagFileError::Syntax {
            line: loc.map(|l| l.line()),
            column: loc.map(|l| l.column()),
            message,
        }
    })
}

/// Writes `value` as YAML in wavegate's layout (what [`parse_yaml`] reads back as the same
/// value: strings that would read as something else are quoted).
pub fn to_yaml<T: serde::Serialize>(value: &T) -> Result<String, String> {
    serde_saphyr::to_string(value).map_err(|e| e.to_string())
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A flag file of `n` flags, each with a rule and a split, as people write them.
    fn many_flags(n: usize) -> String {
        let mut s = String::from("flags:\n");
        for i in 0..n {
            s.push_str(&format!(
                "  flag-{i}:\n    variants: {{ \"on\": true, \"off\": false }}\n    default: \"off\"\n    environments:\n      prod:\n        enabled: true\n        rules:\n          - {{ name: gradual, split: {{ \"on\": 10%, \"off\": 90% }} }}\n"
            ));
        }
        s
    }

    #[test]
    fn a_large_valid_file_within_the_size_limit_parses() {
        // 20,000 flags: about 3 MB and 400,000 YAML values, over the parser's default budget
        // of 250,000 that used to refuse it with "budget breached: Nodes { nodes: 250001 }".
        let text = many_flags(20_000);
        assert!(text.len() < MAX_FILE_BYTES, "{} bytes", text.len());
        let file = parse_flag_file(&text, &["prod".to_owned()]).unwrap();
        assert_eq!(file.flags.len(), 20_000);
    }

    #[test]
    fn limits_are_worded_for_people() {
        let deep: String = (0..100).map(|i| format!("{}a:\n", "  ".repeat(i))).collect();
        let e = parse_yaml::<serde_json::Value>(&deep).unwrap_err().to_string();
        assert!(e.ends_with("the document is too complex for wavegate's YAML limits: nesting deeper than 64 levels; split it or simplify it"), "{e}");
        let big = "#".repeat(MAX_FILE_BYTES + 1);
        assert_eq!(
            parse_yaml::<FlagFile>(&big).unwrap_err().to_string(),
            format!(
                "the document is {} bytes; at most 8388608 (8 MiB) are allowed",
                MAX_FILE_BYTES + 1
            )
        );
    }
}
