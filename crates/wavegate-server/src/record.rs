//! The record behind what is shown and served: the audit chain verified as it grows, and every
//! head and version row tied to the `content_sha256` its chained entry records.
//!
//! [`verify`] checks everything from scratch (`GET /api/v1/audit/verify`, `wavegate audit
//! verify --db`, `wavegate restore`). [`Record`] is the server's running copy: it verifies
//! each new entry once, keeps the claims of verified entries in a [`Ledger`], and vouches for
//! every head it hands out. A head row changed outside wavegate is never served: its newest
//! version that still matches its entry is, and the damage is named in the log, `/readyz` and
//! `/metrics` — one bad row never takes every flag down.

use std::collections::BTreeMap;
use std::sync::Mutex;

use wavegate_api::audit::{BadEntry, BadRow, Verification};
use wavegate_core::audit::{ChainBreak, ChainVerifier};
use wavegate_core::ledger::{Ledger, Mismatch};
use wavegate_store::{Head, Kind, Store, StoreResult, VersionRecord};

/// The kinds whose rows are versioned and chained.
pub const VERSIONED: [Kind; 5] =
    [Kind::Flag, Kind::Segment, Kind::Plan, Kind::Scorecard, Kind::Setting];

/// How many bad rows a verification lists.
const MAX_BAD_ROWS: usize = 100;

/// Audit entries read per query.
const PAGE: i64 = 1000;

/// Walks the chain from the first entry: hashes, order, listing columns; collects the claims of
/// the entries that verify.
async fn walk(store: &dyn Store) -> StoreResult<(ChainVerifier, Option<ChainBreak>, Ledger)> {
    let mut v = ChainVerifier::default();
    let mut ledger = Ledger::default();
    let mut first_bad: Option<ChainBreak> = None;
    let mut after = 0;
    loop {
        let page = store.audit(after, PAGE).await?;
        let Some(last) = page.last() else { break };
        after = last.entry.seq;
        for row in &page {
            if let Err(b) = v.push(&row.entry) {
                return Ok((v, first_bad.or(Some(b)), ledger));
            }
            if let (None, Some(forged)) = (&first_bad, &row.forged_columns) {
                first_bad = Some(ChainBreak {
                    seq: row.entry.seq,
                    problem: format!(
                        "its listing columns disagree with the chained entry ({forged})"
                    ),
                });
            }
            ledger.record(
                row.entry.seq,
                &serde_json::from_str(&row.entry.canonical).unwrap_or_default(),
            );
        }
    }
    Ok((v, first_bad, ledger))
}

/// Verifies the whole record: the chain from its stored bytes, the listing columns against
/// the entries, and every version and head row against its entry's `content_sha256`.
pub async fn verify(store: &dyn Store) -> StoreResult<Verification> {
    let (v, first_bad, ledger) = walk(store).await?;
    // Past a broken link nothing is recorded, so unrecorded rows are expected there.
    let chain_intact = first_bad.as_ref().is_none_or(|b| b.problem.starts_with("its listing"));
    let mut bad_rows = Vec::new();
    let mut rows_checked = 0;
    let mut bad = |kind: Kind, key: &str, version: i64, row: &str, problem: String| {
        bad_rows.push(BadRow {
            kind: kind.as_str().into(),
            key: key.into(),
            version,
            row: row.into(),
            problem,
        });
    };
    for kind in VERSIONED {
        let k = kind.as_str();
        let heads: BTreeMap<String, Head> =
            store.list(kind, true).await?.into_iter().map(|h| (h.key.clone(), h)).collect();
        let mut keys: Vec<String> = ledger
            .keys()
            .filter(|(of, _)| *of == k)
            .map(|(_, key)| key.to_owned())
            .chain(heads.keys().cloned())
            .collect();
        keys.sort();
        keys.dedup();
        for key in keys {
            let versions = store.versions(kind, &key).await?;
            for row in &versions {
                rows_checked += 1;
                match ledger.check(k, &key, row.version, &row.content_sha256, row.archived) {
                    Err(Mismatch::Unrecorded(_)) if !chain_intact => {}
                    Err(m) => bad(kind, &key, row.version, "version", m.to_string()),
                    Ok(()) => {}
                }
            }
            if chain_intact && let Some(recorded) = ledger.versions(k, &key) {
                for version in
                    recorded.keys().filter(|n| !versions.iter().any(|r| r.version == **n))
                {
                    bad(kind, &key, *version, "version", "the row is missing".into());
                }
            }
            match heads.get(&key) {
                Some(h) => {
                    rows_checked += 1;
                    let checked = ledger
                        .check(k, &key, h.version, &h.content_sha256, h.archived)
                        .and_then(|()| ledger.check_newest(k, &key, h.version));
                    match checked {
                        Err(Mismatch::Unrecorded(_)) if !chain_intact => {}
                        Err(m) => bad(kind, &key, h.version, "head", m.to_string()),
                        Ok(()) => {}
                    }
                }
                None => {
                    if let Some(n) = ledger.newest(k, &key).filter(|_| chain_intact) {
                        bad(kind, &key, n, "head", "the row is missing".into());
                    }
                }
            }
        }
    }
    bad_rows.truncate(MAX_BAD_ROWS);
    let ok = first_bad.is_none() && bad_rows.is_empty();
    Ok(Verification {
        ok,
        verified: v.verified(),
        head: first_bad.is_none().then(|| v.head().to_owned()),
        first_bad: first_bad.map(|b| BadEntry { seq: b.seq, problem: b.problem }),
        rows_checked,
        bad_rows,
    })
}

/// The server's running record (see the module documentation).
#[derive(Debug, Default)]
pub struct Record {
    inner: Mutex<Inner>,
    /// Wakes the checkpointer ([`crate::runtime::checkpoint`]) after a rollout decision.
    decided: tokio::sync::Notify,
    /// The signing key's public half and the newest checkpoint signed, when checkpointing.
    checkpoints: Mutex<Option<Checkpointing>>,
}

/// What this server signs checkpoints with, and the newest one it signed.
#[derive(Debug, Clone)]
pub struct Checkpointing {
    /// `ed25519:<base64>`.
    pub public_key: String,
    /// The newest checkpoint signed by this process.
    pub latest: Option<crate::checkpoint::Checkpoint>,
}

#[derive(Debug, Default)]
struct Inner {
    /// The newest entry applied (verified or not).
    seen: i64,
    verifier: ChainVerifier,
    ledger: Ledger,
    /// The first entry that did not verify, once found.
    chain_break: Option<ChainBreak>,
    /// Rows refused, by `kind:key`: why, and what is served instead.
    refused: BTreeMap<String, String>,
}

/// A version row that does not match the entry recording it.
#[derive(Debug, thiserror::Error)]
#[error("version {version} of {kind} {key:?} {problem} (it was changed outside wavegate)")]
pub struct Tampered {
    /// `flag`, `segment`, …
    pub kind: &'static str,
    /// Its key.
    pub key: String,
    /// The version.
    pub version: i64,
    /// What is wrong.
    pub problem: Mismatch,
}

impl Record {
    /// Reads and verifies the entries appended since the last call. An entry that does not
    /// verify is reported (log, `/readyz`, `/metrics`) and its claim ignored; the entries
    /// after it are verified against it, so one damaged entry does not hide later ones.
    pub async fn catch_up(&self, store: &dyn Store) -> StoreResult<()> {
        loop {
            let after = self.lock().seen;
            let page = store.audit(after, PAGE).await?;
            let full = page.len() as i64 == PAGE;
            let mut inner = self.lock();
            for row in &page {
                let e = &row.entry;
                if e.seq <= inner.seen {
                    continue; // read by a concurrent catch-up
                }
                inner.seen = e.seq;
                match inner.verifier.push(e) {
                    Ok(()) => {
                        let doc = serde_json::from_str(&e.canonical).unwrap_or_default();
                        inner.ledger.record(e.seq, &doc);
                    }
                    Err(b) => {
                        tracing::error!(seq = b.seq, problem = %b.problem, "the audit chain does not verify; what that entry records is not trusted");
                        inner.chain_break.get_or_insert(b);
                        inner.verifier = ChainVerifier::after(e.seq, &e.hash);
                    }
                }
            }
            if !full {
                return Ok(());
            }
        }
    }

    /// Every head of `kind` the chain vouches for (see [`Record::vouch`]); archived ones only
    /// with `include_archived`.
    pub async fn heads(
        &self,
        store: &dyn Store,
        kind: Kind,
        include_archived: bool,
    ) -> StoreResult<Vec<Head>> {
        // Heads first: an entry is committed with its head, so every head read here has its
        // entry visible to the catch-up that follows. Archived rows too, since a forged
        // `archived` column must not hide a live flag.
        let heads = store.list(kind, true).await?;
        self.catch_up(store).await?;
        let mut out = Vec::with_capacity(heads.len());
        for h in heads {
            if let Some(h) = self.vouch(store, kind, h).await?
                && (include_archived || !h.archived)
            {
                out.push(h);
            }
        }
        Ok(out)
    }

    /// The head of `kind:key` the chain vouches for.
    pub async fn head(
        &self,
        store: &dyn Store,
        kind: Kind,
        key: &str,
    ) -> StoreResult<Option<Head>> {
        let Some(h) = store.get(kind, key).await? else { return Ok(None) };
        self.catch_up(store).await?;
        self.vouch(store, kind, h).await
    }

    /// `version` of `kind:key`, or why it cannot be trusted (restoring it would restore
    /// content the record does not hold).
    pub async fn version(
        &self,
        store: &dyn Store,
        kind: Kind,
        key: &str,
        version: i64,
    ) -> StoreResult<Option<Result<VersionRecord, Tampered>>> {
        let Some(row) = store.version(kind, key, version).await? else { return Ok(None) };
        self.catch_up(store).await?;
        let checked = self.lock().ledger.check(
            kind.as_str(),
            key,
            version,
            &row.content_sha256,
            row.archived,
        );
        Ok(Some(match checked {
            Ok(()) => Ok(row),
            Err(problem) => {
                Err(Tampered { kind: kind.as_str(), key: key.to_owned(), version, problem })
            }
        }))
    }

    /// `head` when the chain vouches for it; otherwise its newest version that still matches
    /// its entry, presented as the head (or `None` when no version does). A head at an older
    /// version than the chain records is read once more (it may have been read just before a
    /// write) and refused if it still is.
    pub async fn vouch(
        &self,
        store: &dyn Store,
        kind: Kind,
        head: Head,
    ) -> StoreResult<Option<Head>> {
        let name = format!("{}:{}", kind.as_str(), head.key);
        let mut head = head;
        // Each re-read happens at most once: a stale head (older than the chain records) and a
        // head that would lift a refusal are both read again before they are trusted.
        let (mut reread_stale, mut reread_refused) = (false, false);
        loop {
            let (checked, newest) = {
                let inner = self.lock();
                let l = &inner.ledger;
                let k = kind.as_str();
                (
                    l.check(k, &head.key, head.version, &head.content_sha256, head.archived),
                    l.newest(k, &head.key),
                )
            };
            let problem = match (checked, newest) {
                (Ok(()), Some(n)) if n > head.version && !reread_stale => {
                    reread_stale = true;
                    match store.get(kind, &head.key).await? {
                        Some(again) => head = again,
                        None => return Ok(None),
                    }
                    self.catch_up(store).await?;
                    continue;
                }
                (Ok(()), Some(n)) if n > head.version => {
                    Mismatch::Stale { found: head.version, recorded: n }
                }
                (Ok(()), _) if !reread_refused && self.lock().refused.contains_key(&name) => {
                    // This head may have been read before the row was forged and the refusal
                    // recorded (by a concurrent read): only a read made after the refusal was
                    // seen may lift it.
                    reread_refused = true;
                    match store.get(kind, &head.key).await? {
                        Some(again) => head = again,
                        None => return Ok(None),
                    }
                    continue;
                }
                (Ok(()), _) => {
                    if self.lock().refused.remove(&name).is_some() {
                        tracing::info!(row = %name, "the head row matches the audit log again");
                    }
                    return Ok(Some(head));
                }
                (Err(Mismatch::Unrecorded(_)), _) if self.lock().chain_break.is_some() => {
                    // Past a broken link nothing is vouched for; the break itself is reported.
                    return Ok(Some(head));
                }
                (Err(m), _) => m,
            };
            return self.fall_back(store, kind, head, &name, problem).await;
        }
    }

    /// The newest version of a refused head that matches its entry, as the head.
    async fn fall_back(
        &self,
        store: &dyn Store,
        kind: Kind,
        head: Head,
        name: &str,
        problem: Mismatch,
    ) -> StoreResult<Option<Head>> {
        let recorded: Vec<i64> = self
            .lock()
            .ledger
            .versions(kind.as_str(), &head.key)
            .map(|v| v.keys().rev().copied().collect())
            .unwrap_or_default();
        let mut served = None;
        for version in recorded {
            if let Some(Ok(v)) = self.version(store, kind, &head.key, version).await? {
                served = Some(Head {
                    key: head.key.clone(),
                    version: v.version,
                    spec: v.spec,
                    archived: v.archived,
                    updated_at: v.created_at,
                    updated_by: v.actor,
                    content_sha256: v.content_sha256,
                });
                break;
            }
        }
        let instead = match &served {
            Some(h) => format!("serving version {} instead", h.version),
            None => "no version matches, so it is not served".into(),
        };
        let why =
            format!("{name} head row (version {}) refused: {problem}; {instead}", head.version);
        let mut inner = self.lock();
        if inner.refused.get(name) != Some(&why) {
            tracing::error!(row = %name, "{why}");
            inner.refused.insert(name.to_owned(), why);
        }
        Ok(served)
    }

    /// What is wrong with the record, one line each (empty when nothing is): the first entry
    /// that did not verify and every refused head.
    pub fn problems(&self) -> Vec<String> {
        let inner = self.lock();
        inner
            .chain_break
            .iter()
            .map(|b| format!("audit chain: {b}"))
            .chain(inner.refused.values().cloned())
            .collect()
    }

    /// The newest entry read, with its hash, while every entry read so far verifies (what a
    /// checkpoint signs); `None` once the chain has broken, or before the first entry.
    pub fn verified_head(&self) -> Option<(i64, String)> {
        let inner = self.lock();
        if inner.chain_break.is_some() {
            return None;
        }
        let seq = inner.verifier.verified();
        (seq > 0).then(|| (seq, inner.verifier.head().to_owned()))
    }

    /// Marks the chain broken because a signed checkpoint of entry `seq` does not match it (the
    /// log was cut short or rewritten): reported like any break, and no checkpoint is signed
    /// over it.
    pub fn anchor_failed(&self, seq: i64, problem: String) {
        tracing::error!(seq, %problem, "the audit chain does not match a signed checkpoint");
        self.lock().chain_break.get_or_insert(ChainBreak { seq, problem });
    }

    /// Asks for a checkpoint now (a rollout decision was recorded); a no-op when the server does
    /// not sign checkpoints.
    pub fn decided(&self) {
        self.decided.notify_one();
    }

    /// Resolves when [`Record::decided`] was called since the last time it resolved.
    pub async fn decision(&self) {
        self.decided.notified().await;
    }

    /// What this server signs checkpoints with and the newest it signed (`None`: it does not).
    pub fn checkpointing(&self) -> Option<Checkpointing> {
        self.checkpoints.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// Records the key checkpoints are signed with, or the newest checkpoint signed.
    pub fn set_checkpointing(&self, c: Checkpointing) {
        *self.checkpoints.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(c);
    }

    /// Whether every entry read so far verifies.
    pub fn chain_ok(&self) -> bool {
        self.lock().chain_break.is_none()
    }

    /// The `kind:key` of every refused head row.
    pub fn refused(&self) -> Vec<String> {
        self.lock().refused.keys().cloned().collect()
    }

    /// How many entries have been read and verified (or found broken).
    pub fn seen(&self) -> i64 {
        self.lock().seen
    }

    /// Verifies the whole record again ([`verify`]) and checks that the log still holds what
    /// this server verified before: an entry at the newest position it read, with the hash it
    /// verified then. A log cut short, or rewritten and chained again (which verifies on its
    /// own), fails here. The first problem found is also kept for `/readyz` and `/metrics`.
    pub async fn reverify(&self, store: &dyn Store) -> StoreResult<Verification> {
        let (seen, hash) = {
            let inner = self.lock();
            (inner.verifier.verified(), inner.verifier.head().to_owned())
        };
        let mut report = verify(store).await?;
        let held =
            if seen == 0 { None } else { store.audit(seen - 1, 1).await?.into_iter().next() };
        let lost = match held {
            None if seen > 0 => Some(format!(
                "the audit log was cut short: entry {seen}, verified by this server before, is gone"
            )),
            Some(row) if row.entry.hash != hash => Some(format!(
                "the audit log was rewritten: entry {seen} no longer has the hash this server verified"
            )),
            _ => None,
        };
        if let Some(problem) = lost {
            report.ok = false;
            report.head = None;
            report.first_bad = Some(BadEntry { seq: seen, problem });
        }
        let first = report
            .first_bad
            .as_ref()
            .map(|b| ChainBreak { seq: b.seq, problem: b.problem.clone() });
        let mut inner = self.lock();
        if let (None, Some(b)) = (&inner.chain_break, first) {
            tracing::error!(seq = b.seq, problem = %b.problem, "the audit record does not verify");
            inner.chain_break = Some(b);
        }
        Ok(report)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
