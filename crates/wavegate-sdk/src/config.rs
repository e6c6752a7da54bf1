//! The configuration the SDK evaluates: flag and segment specs as the stream sends them,
//! compiled for one environment by `wavegate-core`, and its on-disk snapshot form.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use wavegate_core::flag::{Segments, compile_segments};
use wavegate_core::spec::{FlagSpec, SegmentSpec};
use wavegate_core::{Flag, SpecPath};

/// The snapshot file's `format`.
pub const SNAPSHOT_FORMAT: &str = "wavegate-sdk-snapshot";

/// Specs of one environment, as stored on disk and kept in memory beside the compiled form.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Specs {
    /// Always [`SNAPSHOT_FORMAT`].
    pub format: String,
    /// The environment.
    pub environment: String,
    /// The last stream event applied (to resume with `Last-Event-ID`).
    pub last_event_id: Option<i64>,
    /// Flag key → spec (only this environment's part).
    pub flags: BTreeMap<String, Value>,
    /// Segment key → spec.
    pub segments: BTreeMap<String, Value>,
    /// Flag key → the stored version its spec is (evaluations carry it; snapshots written
    /// before versions were kept have none).
    #[serde(default)]
    pub versions: BTreeMap<String, i64>,
}

/// Compiled flags of one environment.
#[derive(Debug, Default)]
pub struct Compiled {
    /// Flag key → compiled flag (shared, so a change to one flag copies pointers, not flags).
    pub flags: HashMap<String, Arc<Flag>>,
    /// The compiled segments the flags were compiled against.
    pub segments: Arc<Segments>,
    /// The specs they came from.
    pub specs: Specs,
}

impl Compiled {
    /// `specs` differing from this configuration's only in the flags named in `changed`:
    /// recompiles just those (a segment change needs [`Specs::compile`] instead).
    pub fn with_flags(&self, specs: Specs, changed: &[String]) -> Compiled {
        let mut flags = self.flags.clone();
        for key in changed {
            flags.remove(key);
            if let Some(spec) = specs.flags.get(key)
                && let Some(f) = compile_one(key, spec, &specs, &self.segments)
            {
                flags.insert(key.clone(), Arc::new(f));
            }
        }
        Compiled { flags, segments: self.segments.clone(), specs }
    }
}

/// Compiles flag `key` of `specs` (labelled with its version, when known).
fn compile_one(key: &str, spec: &Value, specs: &Specs, segments: &Segments) -> Option<Flag> {
    let compiled =
        serde_json::from_value::<FlagSpec>(spec.clone()).map_err(|e| e.to_string()).and_then(|s| {
            Flag::compile(key, &s, &specs.environment, segments, &SpecPath::root(key))
                .map_err(|e| e.to_string())
        });
    match compiled {
        Ok(f) => Some(match specs.versions.get(key) {
            Some(v) => f.with_version(*v),
            None => f,
        }),
        Err(e) => {
            tracing::error!(flag = %key, error = %e, "flag does not compile; not served");
            None
        }
    }
}

impl Specs {
    /// An empty configuration for `environment`.
    pub fn new(environment: &str) -> Specs {
        Specs {
            format: SNAPSHOT_FORMAT.into(),
            environment: environment.into(),
            ..Specs::default()
        }
    }

    /// Replaces everything from a stream `snapshot` event.
    pub fn apply_snapshot(&mut self, data: &Value, id: Option<i64>) -> Result<(), String> {
        let flags = data["flags"].as_array().ok_or("snapshot without flags")?;
        let segments = data["segments"].as_array().ok_or("snapshot without segments")?;
        self.flags.clear();
        self.segments.clear();
        self.versions.clear();
        for f in flags {
            self.apply_head(true, f)?;
        }
        for s in segments {
            self.apply_head(false, s)?;
        }
        self.last_event_id = id;
        Ok(())
    }

    /// Applies one `flag` (`is_flag`) or `segment` head: `{key, version, archived, spec}`.
    pub fn apply_head(&mut self, is_flag: bool, head: &Value) -> Result<(), String> {
        let key = head["key"].as_str().ok_or("head without key")?.to_owned();
        let map = if is_flag { &mut self.flags } else { &mut self.segments };
        if head["archived"].as_bool().unwrap_or(false) {
            map.remove(&key);
            self.versions.remove(&key);
        } else {
            map.insert(key.clone(), head["spec"].clone());
            match head["version"].as_i64().filter(|_| is_flag) {
                Some(v) => self.versions.insert(key, v),
                None => self.versions.remove(&key),
            };
        }
        Ok(())
    }

    /// Compiles every flag for this environment. Flags that do not compile (which the server
    /// refuses to store) are left out and logged, never served half-built.
    pub fn compile(&self) -> Compiled {
        let segs: Vec<(String, SegmentSpec)> = self
            .segments
            .iter()
            .filter_map(|(k, v)| serde_json::from_value(v.clone()).ok().map(|s| (k.clone(), s)))
            .collect();
        let segments =
            compile_segments(segs.iter().map(|(k, v)| (k, v)), &SpecPath::root("segments"))
                .unwrap_or_else(|e| {
                    tracing::error!(error = %e, "segments do not compile; evaluating without them");
                    Default::default()
                });
        let flags = self
            .flags
            .iter()
            .filter_map(|(key, spec)| {
                compile_one(key, spec, self, &segments).map(|f| (key.clone(), Arc::new(f)))
            })
            .collect();
        Compiled { flags, segments: Arc::new(segments), specs: self.clone() }
    }

    /// Writes the snapshot to `path` atomically (temporary file, sync, rename).
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        use std::io::Write as _;
        let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
        let bytes = serde_json::to_vec(self).map_err(std::io::Error::other)?;
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    }

    /// Reads a snapshot written by [`Specs::save`] for `environment`.
    pub fn load(path: &Path, environment: &str) -> Result<Specs, String> {
        let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let specs: Specs = serde_json::from_slice(&bytes)
            .map_err(|e| format!("{}: not an SDK snapshot: {e}", path.display()))?;
        if specs.format != SNAPSHOT_FORMAT {
            return Err(format!("{}: not an SDK snapshot", path.display()));
        }
        if specs.environment != environment {
            return Err(format!(
                "{}: a snapshot of {:?}, not {environment:?}",
                path.display(),
                specs.environment
            ));
        }
        Ok(specs)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use wavegate_core::{Context, evaluate};

    use super::*;

    fn flag(split_on: &str) -> Value {
        json!({"variants": {"on": true, "off": false}, "default": "off",
               "environments": {"prod": {"enabled": true, "rules": [
                   {"name": "staff", "segment": "staff", "serve": "on"},
                   {"name": "gradual", "split": {"on": split_on, "off": "50%"}}]}}})
    }

    #[test]
    fn recompiling_one_flag_equals_recompiling_everything() {
        let mut specs = Specs::new("prod");
        specs.segments.insert(
            "staff".into(),
            json!({"constraints": [{"attribute": "email", "op": "ends_with", "values": ["@example.com"]}]}),
        );
        specs.flags.insert("a".into(), flag("50%"));
        specs.flags.insert("b".into(), flag("50%"));
        let before = specs.compile();
        specs.flags.insert(
            "a".into(),
            json!({"variants": {"on": true, "off": false}, "default": "on",
            "environments": {"prod": {"enabled": true}}}),
        );
        specs.flags.remove("b");
        let incremental = before.with_flags(specs.clone(), &["a".into(), "b".into()]);
        let full = specs.compile();
        assert_eq!(incremental.flags.len(), 1);
        assert!(Arc::ptr_eq(&incremental.segments, &before.segments), "segments are shared");
        for i in 0..200 {
            let ctx = Context::from_json(
                &json!({"targetingKey": format!("u{i}"), "email": format!("u{i}@example.com")}),
            )
            .unwrap();
            let (x, y) =
                (evaluate(&incremental.flags["a"], &ctx), evaluate(&full.flags["a"], &ctx));
            assert_eq!((x.value, x.variant, x.reason), (y.value, y.variant, y.reason));
        }
    }
}
