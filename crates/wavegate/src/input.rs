//! Reading what people give the CLI: files (or standard input), intervals, digests.

use std::io::Read;
use std::path::Path;

use anyhow::Context as _;

use crate::failure::Failure;

/// The text of `file`, or of standard input when it is `-`.
pub fn read_text(file: &Path) -> anyhow::Result<String> {
    if file.as_os_str() == "-" {
        let mut t = String::new();
        std::io::stdin().read_to_string(&mut t).context("Failed to read standard input")?;
        return Ok(t);
    }
    std::fs::read_to_string(file)
        .map_err(|e| Failure::Input(format!("could not read {}: {e}", file.display())).into())
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

/// SHA-256 of a file, streamed, as hex.
pub fn file_sha256(path: &Path) -> anyhow::Result<String> {
    use sha2::Digest;
    let mut f = std::fs::File::open(path)
        .map_err(|e| Failure::Input(format!("could not open {}: {e}", path.display())))?;
    let mut h = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf).with_context(|| format!("Failed to read {}", path.display()))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}
