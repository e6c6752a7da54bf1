//! The operator's offline vulnerability data (`serve --osv-dir`): a directory of OSV records,
//! one JSON file each (an osv.dev export unzipped, per ecosystem or all together; subdirectories
//! are read three levels deep). It is indexed on first use and again whenever a file is added,
//! removed or changed, so the operator refreshes it by replacing the files, without a restart.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use wavegate_rollout::vulns::{OsvIndex, OsvRecord};

/// The most bytes of one OSV file read (the largest osv.dev records are a few hundred KiB).
pub const MAX_RECORD_BYTES: u64 = 4 * 1024 * 1024;

/// What decides whether the index is stale: the files, their sizes and change times.
type Stamp = (usize, u64, Option<SystemTime>);

/// An OSV directory and its index.
#[derive(Debug)]
pub struct OsvData {
    dir: PathBuf,
    cache: tokio::sync::Mutex<Option<(Stamp, Arc<Indexed>)>>,
}

/// An index, with what could not be read.
#[derive(Debug)]
pub struct Indexed {
    /// The records.
    pub index: OsvIndex,
    /// Files that were not OSV records (too large, not JSON, no id).
    pub skipped: usize,
}

impl OsvData {
    /// The data in `dir` (read on first use).
    pub fn new(dir: PathBuf) -> OsvData {
        OsvData { dir, cache: tokio::sync::Mutex::new(None) }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The index, rebuilt when the directory changed since it was built.
    pub async fn index(&self) -> Result<Arc<Indexed>, String> {
        let mut cache = self.cache.lock().await;
        let dir = self.dir.clone();
        let (stamp, files) = tokio::task::spawn_blocking(move || scan(&dir))
            .await
            .map_err(|e| format!("reading {}: {e}", self.dir.display()))??;
        if let Some((s, idx)) = cache.as_ref()
            && *s == stamp
        {
            return Ok(idx.clone());
        }
        let indexed = tokio::task::spawn_blocking(move || load(files))
            .await
            .map_err(|e| format!("reading {}: {e}", self.dir.display()))?;
        let indexed = Arc::new(indexed);
        *cache = Some((stamp, indexed.clone()));
        Ok(indexed)
    }
}

fn scan(dir: &Path) -> Result<(Stamp, Vec<PathBuf>), String> {
    let mut files = Vec::new();
    let (mut bytes, mut newest) = (0u64, None::<SystemTime>);
    let mut dirs = vec![(dir.to_path_buf(), 0)];
    while let Some((d, depth)) = dirs.pop() {
        let entries = std::fs::read_dir(&d)
            .map_err(|e| format!("the OSV directory {} cannot be read: {e}", d.display()))?;
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() && depth < 3 {
                dirs.push((path, depth + 1));
            } else if meta.is_file() && path.extension().is_some_and(|e| e == "json") {
                bytes += meta.len();
                let modified = meta.modified().ok();
                newest = newest.max(modified);
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(((files.len(), bytes, newest), files))
}

fn load(files: Vec<PathBuf>) -> Indexed {
    let mut skipped = 0;
    let mut records = Vec::with_capacity(files.len());
    for path in files {
        let record = std::fs::metadata(&path)
            .ok()
            .filter(|m| m.len() <= MAX_RECORD_BYTES)
            .and_then(|_| std::fs::read(&path).ok())
            .and_then(|bytes| serde_json::from_slice::<OsvRecord>(&bytes).ok());
        match record {
            Some(r) => records.push(r),
            None => {
                tracing::warn!(file = %path.display(), "not an OSV record; skipped");
                skipped += 1;
            }
        }
    }
    Indexed { index: OsvIndex::new(records), skipped }
}
