//! Sign-ins kept by `wavegate login`: one session per server URL in
//! `<config dir>/wavegate/credentials.json`, readable by its owner only (mode 0600). The config
//! directory is `$WAVEGATE_CONFIG_DIR`, else `$XDG_CONFIG_HOME/wavegate`, else
//! `~/.config/wavegate`. A token given with `--token` or `WAVEGATE_TOKEN` always wins.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// One server's session.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Saved {
    /// The session's secret.
    pub token: String,
    /// Its id (`ses_…`).
    pub id: String,
    /// Who signed in.
    pub principal: String,
    /// When it ends (RFC 3339).
    pub expires_at: String,
}

impl Saved {
    /// Whether it has ended.
    pub fn expired(&self) -> bool {
        chrono::DateTime::parse_from_rfc3339(&self.expires_at)
            .map_or(true, |e| e.to_utc() <= chrono::Utc::now())
    }
}

/// The file.
pub fn path() -> Option<PathBuf> {
    let dir = std::env::var_os("WAVEGATE_CONFIG_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("XDG_CONFIG_HOME").map(|d| PathBuf::from(d).join("wavegate")))
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config/wavegate")))?;
    Some(dir.join("credentials.json"))
}

fn key(url: &str) -> String {
    url.trim_end_matches('/').to_owned()
}

fn read_all() -> BTreeMap<String, Saved> {
    path()
        .and_then(|p| std::fs::read(p).ok())
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

/// The live session kept for `url`, if any.
pub fn load(url: &str) -> Option<Saved> {
    read_all().remove(&key(url)).filter(|s| !s.expired())
}

fn write_all(all: &BTreeMap<String, Saved>) -> anyhow::Result<PathBuf> {
    let path = path().ok_or_else(|| {
        anyhow::anyhow!("no config directory: set HOME, XDG_CONFIG_HOME or WAVEGATE_CONFIG_DIR")
    })?;
    let dir = path.parent().unwrap_or(std::path::Path::new("."));
    std::fs::create_dir_all(dir)?;
    // Written whole to a file only its owner can read, then moved over the old one.
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        tmp.as_file().set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    tmp.write_all(&serde_json::to_vec_pretty(all)?)?;
    tmp.as_file().sync_all()?;
    tmp.persist(&path)?;
    Ok(path)
}

/// Keeps `saved` for `url`; the file's path.
pub fn store(url: &str, saved: Saved) -> anyhow::Result<PathBuf> {
    let mut all = read_all();
    all.retain(|_, s| !s.expired());
    all.insert(key(url), saved);
    write_all(&all)
}

/// Forgets the session for `url`; it, if one was kept.
pub fn forget(url: &str) -> anyhow::Result<Option<Saved>> {
    let mut all = read_all();
    let gone = all.remove(&key(url));
    if gone.is_some() {
        write_all(&all)?;
    }
    Ok(gone)
}
