//! [`Snapshot`]: every live flag compiled for every environment, swapped atomically after each
//! change so evaluation reads without locks or queries.
//!
//! A change of flags alone is applied to the current snapshot ([`Snapshot::with_flags`]): only
//! the changed flags are read and compiled; every other compiled flag and spec is shared
//! (`Arc`) with the snapshot before, so a write costs what it changes, not the whole set.

use std::collections::HashMap;
use std::sync::Arc;

use wavegate_core::flag::{Segments, compile_segments};
use wavegate_core::spec::{FlagSpec, SegmentSpec};
use wavegate_core::timing::TimeDependence;
use wavegate_core::{Flag, SpecPath};
use wavegate_protocols::unleash::{ExportCache, FeaturesDoc, features_document};
use wavegate_protocols::{Config, FlagSet};
use wavegate_store::{Kind, Store, StoreResult};

use crate::record::Record;

/// Compiled flags of one environment by key (shared between snapshots: a change copies only
/// the shard of the flags it touched).
pub type FlagMap = Shared<Arc<Flag>>;

/// How many shards a [`Shared`] map has.
const SHARDS: usize = 64;

/// A map by flag key in shards that snapshots share: cloning it copies [`SHARDS`] pointers, and
/// a change copies only the shard its key falls in (copy on write), so a write of one flag
/// costs about n/64 of a map of n, not n. Each shard uses foldhash, seeded randomly per process
/// (keys are only looked up by clients, never inserted), because SipHash would be most of the
/// cost of evaluating a simple flag.
#[derive(Debug)]
pub struct Shared<V> {
    shards: Vec<Arc<foldhash::HashMap<String, V>>>,
}

impl<V> Clone for Shared<V> {
    fn clone(&self) -> Self {
        Shared { shards: self.shards.clone() }
    }
}

impl<V> Default for Shared<V> {
    fn default() -> Self {
        Shared { shards: (0..SHARDS).map(|_| Arc::default()).collect() }
    }
}

impl<V> Shared<V> {
    /// The shard `key` falls in (FNV-1a: the same shard in every process and snapshot).
    fn shard(key: &str) -> usize {
        let h =
            key.bytes().fold(0x811c_9dc5_u32, |h, b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193));
        h as usize % SHARDS
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&V> {
        self.shards[Self::shard(key)].get(key)
    }

    /// Whether `key` has a value.
    pub fn contains_key(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// Every key and value, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &V)> {
        self.shards.iter().flat_map(|s| s.iter())
    }

    /// How many keys.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.len()).sum()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.shards.iter().all(|s| s.is_empty())
    }
}

impl<V: Clone> Shared<V> {
    /// Sets `key` (copying its shard if another snapshot shares it).
    pub fn insert(&mut self, key: String, value: V) {
        Arc::make_mut(&mut self.shards[Self::shard(&key)]).insert(key, value);
    }

    /// Removes `key`, if it is there (copying its shard only then).
    pub fn remove(&mut self, key: &str) -> Option<V> {
        let shard = &mut self.shards[Self::shard(key)];
        if !shard.contains_key(key) {
            return None;
        }
        Arc::make_mut(shard).remove(key)
    }
}

impl<V> std::ops::Index<&str> for Shared<V> {
    type Output = V;

    fn index(&self, key: &str) -> &V {
        self.get(key).unwrap_or_else(|| panic!("no {key:?} in the map"))
    }
}

impl wavegate_core::eval::FlagLookup for Shared<Arc<Flag>> {
    fn flag(&self, key: &str) -> Option<&Flag> {
        self.get(key).map(|f| &**f)
    }
}

impl FlagSet for Shared<Arc<Flag>> {
    fn keys(&self) -> Vec<&str> {
        let mut keys: Vec<&str> = self.iter().map(|(k, _)| k.as_str()).collect();
        keys.sort_unstable();
        keys
    }
}

/// A live flag as the snapshot keeps it beside its compiled environments.
#[derive(Debug, Clone)]
pub struct LiveFlag {
    /// Its stored spec, as JSON text.
    pub spec: Arc<str>,
    /// Its compiled form in the first environment it compiled in (a flag's variants and
    /// prerequisites are the same in each); `None` if it compiled in none.
    pub compiled: Option<Arc<Flag>>,
}

/// Compiled configuration at one revision.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// The store's configuration revision this was built from.
    pub revision: i64,
    /// Environment names in promotion order.
    pub environments: Vec<String>,
    /// Environment → flag key → compiled flag.
    pub flags: HashMap<String, FlagMap>,
    /// When each environment's answers can change with the clock alone (absent: never).
    pub time_dependence: HashMap<String, TimeDependence>,
    /// The live flag specs by key (every environment) as their JSON text, read only to build
    /// the Unleash export (a decoded spec takes several times the memory of its text; what
    /// else needs a flag's variants or prerequisites reads its compiled form, [`Snapshot::live_flags`]).
    pub flag_specs: Shared<LiveFlag>,
    /// The live segment specs by key.
    pub segment_specs: indexmap::IndexMap<String, SegmentSpec>,
    /// The live segments, compiled (what flags compile against).
    pub segments: Segments,
    /// Unleash `/api/client/features` bodies by environment, built on first request (a new
    /// snapshot starts empty, so they never outlive the revision they describe).
    pub unleash: ExportCache,
}

impl Snapshot {
    /// Builds a snapshot from the store's current heads. A stored flag that no longer compiles
    /// (which validation on write prevents) is left out and logged, never served half-built.
    /// Only heads the audit record vouches for are served (see [`Record::vouch`]).
    pub async fn load(store: &dyn Store, record: &Record) -> StoreResult<Snapshot> {
        let revision = store.revision().await?;
        let environments: Vec<String> =
            store.environments().await?.into_iter().map(|e| e.name).collect();
        let seg_specs = decode_segments(record.heads(store, Kind::Segment, false).await?);
        let segments = compile_segments(
            seg_specs.iter().map(|(k, v)| (k, v)),
            &SpecPath::root("segments"),
        )
        .unwrap_or_else(|e| {
            tracing::error!(error = %e, "stored segments do not compile; serving without them");
            Default::default()
        });
        let mut snap = Snapshot {
            revision,
            flags: environments.iter().map(|e| (e.clone(), FlagMap::default())).collect(),
            environments,
            time_dependence: HashMap::new(),
            flag_specs: Default::default(),
            segment_specs: seg_specs.into_iter().collect(),
            segments,
            unleash: Default::default(),
        };
        for head in record.heads(store, Kind::Flag, false).await? {
            let key = head.key.clone();
            snap.put_flag(&key, Some(head));
        }
        snap.time_dependence = time_dependence(&snap.flags);
        Ok(snap)
    }

    /// This snapshot with flags `keys` read again from the store (each from the head the audit
    /// record vouches for; archived or gone: no longer served), at `revision`. Every other flag
    /// is shared with `self`. Only for a change to those flags alone: segments and environments
    /// are kept as they are here.
    pub async fn with_flags(
        &self,
        store: &dyn Store,
        record: &Record,
        keys: &[&str],
        revision: i64,
    ) -> StoreResult<Snapshot> {
        let mut snap = Snapshot {
            revision,
            environments: self.environments.clone(),
            flags: self.flags.clone(),
            time_dependence: HashMap::new(),
            flag_specs: self.flag_specs.clone(),
            segment_specs: self.segment_specs.clone(),
            segments: self.segments.clone(),
            unleash: Default::default(),
        };
        let mut clock = false;
        for key in keys {
            let head = record.head(store, Kind::Flag, key).await?.filter(|h| !h.archived);
            clock |= snap.put_flag(key, head);
        }
        // Folded again only when a flag that reads the clock came or went.
        snap.time_dependence =
            if clock { time_dependence(&snap.flags) } else { self.time_dependence.clone() };
        Ok(snap)
    }

    /// Serves `head` as flag `key` in every environment (compiled against this snapshot's
    /// segments), or stops serving `key` (`None`). A stored flag that no longer decodes or
    /// compiles (which validation on write prevents) is left out and logged, never served
    /// half-built.
    /// Returns whether the flag it removed or served reads the clock.
    fn put_flag(&mut self, key: &str, head: Option<wavegate_store::Head>) -> bool {
        let mut clock = false;
        for m in self.flags.values_mut() {
            clock |= m.remove(key).is_some_and(|f| f.time_dependence().reads_clock());
        }
        self.flag_specs.remove(key);
        let Some(head) = head else { return clock };
        let text: Arc<str> = Arc::from(head.spec.to_string());
        let spec: FlagSpec = match serde_json::from_value(head.spec) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(flag = %key, error = %e, "stored flag does not decode; not served");
                return clock;
            }
        };
        let path = SpecPath::root(key);
        let compiled = Flag::compile_each(
            key,
            &spec,
            &self.environments,
            &self.segments,
            &path,
            Some(head.version),
        );
        let mut first = None;
        for (env, flag) in self.environments.iter().zip(compiled) {
            match flag {
                Ok(f) => {
                    clock |= f.time_dependence().reads_clock();
                    first.get_or_insert_with(|| f.clone());
                    if let Some(m) = self.flags.get_mut(env) {
                        m.insert(key.to_owned(), f);
                    }
                }
                Err(e) => {
                    tracing::error!(flag = %key, error = %e, "stored flag does not compile; not served")
                }
            }
        }
        self.flag_specs.insert(key.to_owned(), LiveFlag { spec: text, compiled: first });
        clock
    }

    /// Every live flag that compiled, in the first environment it compiled in (a flag's
    /// variants and prerequisites are the same in each).
    pub fn live_flags(&self) -> impl Iterator<Item = (&str, &Flag)> {
        self.flag_specs
            .iter()
            .filter_map(|(key, live)| Some((key.as_str(), &**live.compiled.as_ref()?)))
    }

    /// Live flag `key`, as [`Snapshot::live_flags`] yields it.
    pub fn live_flag(&self, key: &str) -> Option<&Flag> {
        self.flag_specs.get(key)?.compiled.as_deref()
    }

    /// The compiled flag `key` in `env`.
    pub fn flag(&self, env: &str, key: &str) -> Option<&Flag> {
        self.flags.get(env)?.get(key).map(|f| &**f)
    }
}

/// What the protocol routers read: every environment is served.
impl Config for Snapshot {
    fn revision(&self) -> i64 {
        self.revision
    }

    fn environments(&self) -> &[String] {
        &self.environments
    }

    fn flags(&self, env: &str) -> Option<&dyn FlagSet> {
        self.flags.get(env).map(|f| f as &dyn FlagSet)
    }

    fn time_dependence(&self, env: &str) -> &TimeDependence {
        static NEVER: TimeDependence = TimeDependence::Never;
        self.time_dependence.get(env).unwrap_or(&NEVER)
    }

    fn unleash_features(&self, env: &str) -> std::sync::Arc<FeaturesDoc> {
        self.unleash.get_or_build(env, || {
            // Decoded here, once per revision and environment asked for, rather than kept.
            let specs: Vec<(&String, FlagSpec)> = self
                .flag_specs
                .iter()
                .filter_map(|(k, live)| Some((k, serde_json::from_str(&live.spec).ok()?)))
                .collect();
            let flags = specs.iter().map(|(k, s)| (*k, s));
            features_document(flags, &self.segment_specs, env, self.revision)
        })
    }
}

/// When each environment's answers can change with the clock alone (absent: never).
fn time_dependence(flags: &HashMap<String, FlagMap>) -> HashMap<String, TimeDependence> {
    flags
        .iter()
        .map(|(e, m)| {
            let d = m.iter().fold(TimeDependence::Never, |d, (_, f)| d.merge(f.time_dependence()));
            (e.clone(), d)
        })
        .filter(|(_, d)| d.reads_clock())
        .collect()
}

fn decode_segments(heads: Vec<wavegate_store::Head>) -> Vec<(String, SegmentSpec)> {
    heads
        .into_iter()
        .filter_map(|h| match serde_json::from_value::<SegmentSpec>(h.spec) {
            Ok(s) => Some((h.key, s)),
            Err(e) => {
                tracing::error!(key = %h.key, error = %e, "stored segment does not decode; skipped");
                None
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::{SHARDS, Shared};

    #[test]
    fn a_change_copies_one_shard_and_leaves_the_map_it_was_cloned_from_alone() {
        let mut before: Shared<Arc<String>> = Shared::default();
        for i in 0..1000 {
            before.insert(format!("flag-{i}"), Arc::new(format!("v{i}")));
        }
        let mut after = before.clone();
        after.insert("flag-7".into(), Arc::new("changed".into()));
        assert_eq!(after.remove("flag-8").as_deref().map(String::as_str), Some("v8"));
        assert_eq!(after.remove("nobody"), None);
        assert_eq!(
            (before["flag-7"].as_str(), before.len()),
            ("v7", 1000),
            "the old map is intact"
        );
        assert_eq!((after["flag-7"].as_str(), after.len()), ("changed", 999));
        assert!(!after.contains_key("flag-8") && before.contains_key("flag-8"));
        let shared =
            (0..SHARDS).filter(|&i| Arc::ptr_eq(&before.shards[i], &after.shards[i])).count();
        let touched = [Shared::<()>::shard("flag-7"), Shared::<()>::shard("flag-8")];
        let copied = if touched[0] == touched[1] { 1 } else { 2 };
        assert_eq!(shared, SHARDS - copied, "only the touched shards were copied");
        let mut keys: Vec<&String> = after.iter().map(|(k, _)| k).collect();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), 999);
    }
}
