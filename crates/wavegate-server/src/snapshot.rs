//! [`Snapshot`]: every live flag compiled for every environment, swapped atomically after each
//! change so evaluation reads without locks or queries.

use std::collections::HashMap;

use wavegate_core::flag::compile_segments;
use wavegate_core::spec::{FlagSpec, SegmentSpec};
use wavegate_core::timing::TimeDependence;
use wavegate_core::{Flag, SpecPath};
use wavegate_protocols::unleash::{ExportCache, FeaturesDoc, features_document};
use wavegate_protocols::{Config, FlagSet};
use wavegate_store::{Kind, Store, StoreResult};

use crate::record::Record;

/// Compiled flags of one environment by key.
pub type FlagMap = foldhash::HashMap<String, Flag>;

/// Compiled configuration at one revision.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// The store's configuration revision this was built from.
    pub revision: i64,
    /// Environment names in promotion order.
    pub environments: Vec<String>,
    /// Environment → flag key → compiled flag. The inner map uses foldhash, seeded randomly per
    /// process (keys are only looked up by clients, never inserted), because SipHash would be
    /// most of the cost of evaluating a simple flag.
    pub flags: HashMap<String, FlagMap>,
    /// When each environment's answers can change with the clock alone (absent: never).
    pub time_dependence: HashMap<String, TimeDependence>,
    /// The live flag specs by key (every environment), for the Unleash export.
    pub flag_specs: std::collections::BTreeMap<String, FlagSpec>,
    /// The live segment specs by key.
    pub segment_specs: indexmap::IndexMap<String, SegmentSpec>,
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
        let mut flags: HashMap<String, FlagMap> =
            environments.iter().map(|e| (e.clone(), FlagMap::default())).collect();
        let mut flag_specs = std::collections::BTreeMap::new();
        for head in record.heads(store, Kind::Flag, false).await? {
            let spec: FlagSpec = match serde_json::from_value(head.spec) {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!(flag = %head.key, error = %e, "stored flag does not decode; not served");
                    continue;
                }
            };
            for env in &environments {
                match Flag::compile(&head.key, &spec, env, &segments, &SpecPath::root(&head.key)) {
                    Ok(f) => {
                        let f = f.with_version(head.version);
                        flags.get_mut(env).map(|m| m.insert(head.key.clone(), f));
                    }
                    Err(e) => {
                        tracing::error!(flag = %head.key, error = %e, "stored flag does not compile; not served")
                    }
                }
            }
            flag_specs.insert(head.key, spec);
        }
        let time_dependence = flags
            .iter()
            .map(|(e, m)| {
                let d = m.values().fold(TimeDependence::Never, |d, f| d.merge(f.time_dependence()));
                (e.clone(), d)
            })
            .filter(|(_, d)| d.reads_clock())
            .collect();
        Ok(Snapshot {
            revision,
            environments,
            flags,
            time_dependence,
            flag_specs,
            segment_specs: seg_specs.into_iter().collect(),
            unleash: Default::default(),
        })
    }

    /// The compiled flag `key` in `env`.
    pub fn flag(&self, env: &str, key: &str) -> Option<&Flag> {
        self.flags.get(env)?.get(key)
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
            features_document(&self.flag_specs, &self.segment_specs, env, self.revision)
        })
    }
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
