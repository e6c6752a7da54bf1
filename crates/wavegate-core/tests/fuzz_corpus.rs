//! Runs the fuzz harnesses (`fuzz/src/lib.rs`, shared with the cargo-fuzz targets) over every
//! seed in `fuzz/corpus/`: no input may panic. This is what CI runs; `cargo fuzz` explores
//! further from the same seeds.

use std::path::{Path, PathBuf};

#[path = "../../../fuzz/src/lib.rs"]
mod harness;

/// Runs `harness` on every file of `fuzz/corpus/<target>`; returns (files read, accepted).
fn run_corpus(target: &str, harness: fn(&[u8]) -> bool) -> (usize, usize) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus").join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    let mut accepted = 0;
    let mut panicked = Vec::new();
    for path in &files {
        let data =
            std::fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        match std::panic::catch_unwind(|| harness(&data)) {
            Ok(ok) => accepted += usize::from(ok),
            Err(_) => panicked.push(path.display().to_string()),
        }
    }
    assert!(panicked.is_empty(), "{target}: these seeds panic: {panicked:#?}");
    assert!(files.len() >= 10, "{target}: only {} seeds in {}", files.len(), dir.display());
    (files.len(), accepted)
}

#[test]
fn flag_yaml_corpus_never_panics() {
    let (read, accepted) = run_corpus("flag_yaml", harness::flag_yaml);
    // Some seeds must get past parsing, or compile and evaluation go untested.
    assert!(accepted >= 3, "flag_yaml: only {accepted} of {read} seeds were accepted");
}

#[test]
fn eval_context_corpus_never_panics() {
    let (read, accepted) = run_corpus("eval_context", harness::eval_context);
    assert!(accepted >= 5, "eval_context: only {accepted} of {read} seeds were accepted");
}
