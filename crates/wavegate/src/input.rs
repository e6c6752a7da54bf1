//! Reading what people give the CLI: files (or standard input), intervals, digests.

use std::io::Read;
use std::path::Path;

use anyhow::Context as _;

use crate::failure::Failure;

/// The text of `file`, or of standard input when it is `-`, at most
/// [`MAX_FILE_BYTES`](wavegate_core::flagfile::MAX_FILE_BYTES) (8 MiB): the limit is enforced
/// while reading, so a FIFO, a device (`/dev/zero`), standard input or a growing file cannot
/// make it read forever.
pub fn read_text(file: &Path) -> anyhow::Result<String> {
    let limit = wavegate_core::flagfile::MAX_FILE_BYTES;
    let (name, reader): (String, Box<dyn Read>) = if file.as_os_str() == "-" {
        ("standard input".into(), Box::new(std::io::stdin()))
    } else {
        let f = std::fs::File::open(file)
            .map_err(|e| Failure::Input(format!("could not read {}: {e}", file.display())))?;
        (file.display().to_string(), Box::new(f))
    };
    read_bounded(reader, &name, limit)
}

/// The most a secret file may hold: a token, a password, a header value or a few PEM
/// certificates.
pub const MAX_SECRET_FILE_BYTES: usize = 256 * 1024;

/// The text of a file `serve` reads a secret (or certificates) from, for `flag`, with the
/// line break an editor leaves at its end removed; a usage error that names the flag and the
/// file, never the file's content. The one way the server's secret files are read
/// (`--check-secret-file`, `--metrics-token-file`, `--prometheus-*`).
pub fn secret_file(flag: &str, path: &Path) -> Result<String, Failure> {
    let cannot =
        |e: std::io::Error| Failure::Input(format!("{flag}: cannot read {}: {e}", path.display()));
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_SECRET_FILE_BYTES as u64 + 1).read_to_end(&mut bytes))
        .map_err(cannot)?;
    if bytes.len() > MAX_SECRET_FILE_BYTES {
        return Err(Failure::Input(format!(
            "{flag}: {} is larger than {MAX_SECRET_FILE_BYTES} bytes; it should hold one secret",
            path.display()
        )));
    }
    let text = String::from_utf8(bytes)
        .map_err(|_| Failure::Input(format!("{flag}: {} is not UTF-8 text", path.display())))?;
    let text = text.trim_end_matches(['\n', '\r']).to_owned();
    if text.trim().is_empty() {
        return Err(Failure::Input(format!("{flag}: {} is empty", path.display())));
    }
    Ok(text)
}

/// Reads `reader` (named `name` in errors) as UTF-8 text of at most `limit` bytes.
fn read_bounded(reader: impl Read, name: &str, limit: usize) -> anyhow::Result<String> {
    let mut bytes = Vec::new();
    reader
        .take(limit as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Failure::Input(format!("could not read {name}: {e}")))?;
    if bytes.len() > limit {
        return Err(Failure::Input(format!(
            "{name} is larger than {limit} bytes, the most a flag file or plan may be"
        ))
        .into());
    }
    String::from_utf8(bytes)
        .map_err(|e| Failure::Input(format!("{name} is not UTF-8 text: {e}")).into())
}

/// A positive interval option: `250ms`, `2s`, `1m`…
pub fn parse_interval(flag: &str, s: &str) -> Result<std::time::Duration, String> {
    let d = match s.trim().strip_suffix("ms") {
        Some(ms) => std::time::Duration::from_millis(
            ms.parse().map_err(|_| format!("invalid {flag} {s:?}"))?,
        ),
        None => std::time::Duration::from_secs(
            wavegate_rollout::duration::parse_span(s)
                .map_err(|e| format!("invalid {flag}: {e}"))?
                .secs(),
        ),
    };
    if d.is_zero() {
        return Err(format!("{flag} must be more than zero"));
    }
    Ok(d)
}

/// `500ms`, `10s`, `1m`… (at least 10 ms).
pub fn parse_tick(s: &str) -> Result<std::time::Duration, String> {
    let d = match s.trim().strip_suffix("ms") {
        Some(ms) => std::time::Duration::from_millis(
            ms.parse().map_err(|_| format!("invalid --tick {s:?}"))?,
        ),
        None => std::time::Duration::from_secs(
            wavegate_rollout::duration::parse_span(s)
                .map_err(|e| format!("invalid --tick: {e}"))?
                .secs(),
        ),
    };
    if d < std::time::Duration::from_millis(10) {
        return Err(format!("--tick {s:?} is too short; use at least 10ms"));
    }
    Ok(d)
}

/// An artifact's digests, read in one pass: SHA-256 (checked against the plan's
/// `release.artifact_sha256`) and BLAKE2b-512 (what a minisign signature covers), as hex.
pub struct Digests {
    /// SHA-256.
    pub sha256: String,
    /// BLAKE2b-512.
    pub blake2b: String,
}

/// The [`Digests`] of a file, streamed.
pub fn file_digests(path: &Path) -> anyhow::Result<Digests> {
    use sha2::Digest;
    let mut f = std::fs::File::open(path)
        .map_err(|e| Failure::Input(format!("could not open {}: {e}", path.display())))?;
    let mut sha = sha2::Sha256::new();
    let mut blake = blake2::Blake2b512::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf).with_context(|| format!("Failed to read {}", path.display()))?;
        if n == 0 {
            break;
        }
        sha.update(&buf[..n]);
        blake.update(&buf[..n]);
    }
    Ok(Digests { sha256: hex::encode(sha.finalize()), blake2b: hex::encode(blake.finalize()) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reading_stops_at_the_limit_whatever_the_source() {
        // An endless source (like /dev/zero) ends in an error, not an endless read.
        let endless = std::io::repeat(b'a');
        let e = read_bounded(endless, "standard input", 1024).unwrap_err();
        assert_eq!(
            e.to_string(),
            "standard input is larger than 1024 bytes, the most a flag file or plan may be"
        );
        assert_eq!(read_bounded(&b"flags: {}"[..], "f", 1024).unwrap(), "flags: {}");
        assert_eq!(read_bounded(&[b'x'; 1024][..], "f", 1024).unwrap().len(), 1024);
        assert!(
            read_bounded(&[0xff, 0xfe][..], "f", 1024)
                .unwrap_err()
                .to_string()
                .contains("not UTF-8")
        );
    }
}

/// A plan file as the server is to see it: its text, or — when it `extends` templates — the
/// resolved plan as YAML (templates are files, named relative to the file that names them).
#[derive(Debug)]
pub struct PlanText {
    /// The text to lint, drill or apply.
    pub text: String,
    /// Whether templates were laid under it (line numbers then refer to the resolved text).
    pub resolved: bool,
}

/// Reads the plan in `file` (`-`: standard input, whose templates are relative to the current
/// directory) and resolves its `extends`.
pub fn read_plan(file: &Path) -> anyhow::Result<PlanText> {
    use wavegate_rollout::template::{Loaded, extends, resolve};
    let text = read_text(file)?;
    let doc: serde_json::Value = match wavegate_core::flagfile::parse_yaml(&text) {
        Ok(doc) if text.contains("extends") && extends(&doc) => doc,
        // Not extended (or not YAML: lint says where).
        _ => return Ok(PlanText { text, resolved: false }),
    };
    let canonical = |p: &Path| {
        std::fs::canonicalize(p)
            .map(|c| c.display().to_string())
            .unwrap_or_else(|_| p.display().to_string())
    };
    let origin =
        if file.as_os_str() == "-" { "standard input".to_owned() } else { canonical(file) };
    let mut load = |name: &str, from: &str| -> Result<Loaded, String> {
        let dir = if from == "standard input" {
            std::path::PathBuf::from(".")
        } else {
            Path::new(from).parent().map(Path::to_path_buf).unwrap_or_default()
        };
        let path = dir.join(name);
        let text = read_text(&path).map_err(|e| format!("template {name} (from {from}): {e:#}"))?;
        let doc = wavegate_core::flagfile::parse_yaml(&text)
            .map_err(|e| format!("template {}: {e}", path.display()))?;
        Ok(Loaded { id: canonical(&path), doc })
    };
    let resolved = resolve(doc, &origin, &mut load).map_err(Failure::Input)?;
    let text = wavegate_core::flagfile::to_yaml(&resolved).map_err(Failure::Input)?;
    Ok(PlanText { text, resolved: true })
}
