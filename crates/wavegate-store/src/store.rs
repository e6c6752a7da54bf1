//! [`SqlStore`]: the one implementation of [`Store`], over SQLite or PostgreSQL. Each query is
//! written once; where the databases truly differ, it asks its [`Backend`].
//!
//! Every write runs in a transaction from [`Db::begin`] (serialised with all other writes, so the
//! audit chain's head is read and extended by one writer at a time) and ends with [`Db::commit`],
//! which bumps [`Store::changes`] (and on PostgreSQL notifies the other replicas).

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use sqlx::any::{AnyArguments, AnyRow};
use sqlx::{Any, AnyConnection, AnyPool, AssertSqlSafe};
use tokio::sync::{Mutex, watch};
use wavegate_core::audit::{AuditEvent, ChainedEntry, GENESIS_HASH};

use crate::backend::{Backend, Tx};
use crate::backup::Backup;
use crate::group::{AggregateWriter, GroupCommit};
use crate::rows::{self, to_text, ts};
use crate::{
    AdoptionCount, AggregateBatch, AggregateRow, AuditRow, Change, Contribution, Delivery,
    DeliveryQuery, DeliveryState, DrillRow, Environment, FeedbackRow, FeedbackStatus, Head,
    IncidentCount, IncidentRow, Kind, NewDelivery, NewToken, NotifyTargetRow, Put, PutOutcome,
    RolloutRow, RolloutWrite, SketchDelta, Store, StoreError, StoreResult, TokenKind, TokenRecord,
    VerdictRow, VersionRecord, WaveCount,
};

/// Runs `query` by `how` on `on` (a transaction or the pool) with each of the values after `;`
/// bound in order (`$1`, `$2`, …), and awaits it (`?`): `run!(execute(&mut *tx); sqlx::query("…");
/// a, b)`, `run!(fetch_one(&mut *tx); sqlx::query_scalar("…"); a)`.
macro_rules! run {
    ($how:ident($on:expr); $query:expr $(; $($value:expr),+ $(,)?)?) => {
        $query$($(.bind($value))+)?.$how($on).await?
    };
}

/// The store, on either database ([`SqlStore::open`] picks by the name it is given).
#[derive(Debug, Clone)]
pub struct SqlStore {
    db: Db,
    /// Controller leadership held through this instance: the epoch of the lease each holder (a
    /// replica; one per instance outside tests) won.
    leader: Arc<Mutex<std::collections::HashMap<String, i64>>>,
    /// Event aggregates are written by one task, concurrent batches in one transaction.
    aggregates: Arc<GroupCommit>,
}

/// What a write needs: the pool, its backend and the change counter. The group-commit task holds
/// a clone (not the store, which holds the task's queue).
#[derive(Debug, Clone)]
pub(crate) struct Db {
    pool: AnyPool,
    backend: Backend,
    changes: Arc<watch::Sender<u64>>,
    /// The SQLite database's file (None on PostgreSQL).
    file: Option<std::path::PathBuf>,
}

/// A query on either database.
type Query = sqlx::query::Query<'static, Any, AnyArguments>;

impl Db {
    /// Runs a read on the pool and decodes every row.
    async fn all<T>(
        &self,
        query: Query,
        decode: fn(&AnyRow) -> StoreResult<T>,
    ) -> StoreResult<Vec<T>> {
        match query.fetch_all(&self.pool).await {
            Ok(rows) => rows.iter().map(decode).collect(),
            Err(e) => Err(crate::backend::why_no_connection(&self.pool, e).await),
        }
    }

    /// Runs a read of at most one row on the pool and decodes it.
    async fn one<T>(
        &self,
        query: Query,
        decode: fn(&AnyRow) -> StoreResult<T>,
    ) -> StoreResult<Option<T>> {
        Ok(self.all(query, decode).await?.into_iter().next())
    }

    async fn begin(&self) -> StoreResult<Tx> {
        self.backend.begin(&self.pool).await
    }

    /// Commits `tx` and tells [`Store::changes`] subscribers.
    async fn commit(&self, mut tx: Tx) -> StoreResult<()> {
        self.backend.before_commit(&mut tx).await?;
        tx.commit().await?;
        self.changes.send_modify(|n| *n = n.wrapping_add(1));
        Ok(())
    }
}

impl SqlStore {
    /// Opens the store `db` names, as [`crate::open`] does, and migrates it: a SQLite file
    /// (WAL; created if missing) or a PostgreSQL database, whose other replicas' commits it
    /// then hears of.
    pub async fn open(db: &str) -> StoreResult<SqlStore> {
        crate::check_location(db)?;
        let backend = Backend::of(db);
        let pool = backend.connect(db).await?;
        let changes = Arc::new(watch::channel(0).0);
        backend.listen(&pool, Arc::downgrade(&changes)).await?;
        let file = (backend == Backend::Sqlite).then(|| crate::backend::sqlite_path(db).into());
        Ok(SqlStore {
            db: Db { pool, backend, changes, file },
            leader: Arc::default(),
            aggregates: Arc::default(),
        })
    }

    /// The pool, for tests that need to reach under the trait (e.g. to simulate tampering).
    pub fn pool(&self) -> &AnyPool {
        &self.db.pool
    }
}

/// Below this much free space where a SQLite database lives, the store reports itself unable
/// to write (the next write of any size may fail with "database or disk is full").
pub const MIN_FREE_BYTES: u64 = 1024 * 1024;

/// The current leadership epoch.
const EPOCH: &str = "SELECT epoch FROM leader WHERE id = 1";

/// Appends one audit entry inside `tx`.
async fn append_audit(
    tx: &mut AnyConnection,
    change: &Change,
    action: &str,
    target: String,
    details: Value,
) -> StoreResult<ChainedEntry> {
    let event = AuditEvent {
        at: ts(change.at),
        actor: change.actor.clone(),
        via: change.via.clone(),
        action: action.to_owned(),
        target,
        reason: change.reason.clone(),
        details,
    };
    let last: Option<(i64, String)> = run!(fetch_optional(&mut *tx); sqlx::query_as("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1"));
    let (seq, prev) = last.unwrap_or_else(|| (0, GENESIS_HASH.to_owned()));
    let entry = event.chain(seq, &prev);
    run!(execute(&mut *tx); sqlx::query("INSERT INTO audit_log (seq, prev_hash, hash, canonical, at, actor, action, target) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)");
        entry.seq, &entry.prev_hash, &entry.hash, &entry.canonical, &event.at, &event.actor,
        &event.action, &event.target);
    Ok(entry)
}

/// The live (running or paused) rollout of `flag`, if any: its id and environment.
async fn live_rollout(tx: &mut AnyConnection, flag: &str) -> StoreResult<Option<(String, String)>> {
    let sql = "SELECT id, environment FROM rollouts WHERE flag = $1 AND state IN ('running', 'paused') LIMIT 1";
    Ok(run!(fetch_optional(&mut *tx); sqlx::query_as(sql); flag))
}

/// Applies puts inside `tx`: versions, heads, audit entries and the revision bump.
async fn apply_puts(
    tx: &mut AnyConnection,
    puts: &[Put],
    change: &Change,
    owner: Option<&str>,
) -> StoreResult<Vec<PutOutcome>> {
    // While a rollout is live it owns its flag: only its own writes may change it, or a
    // rollback would silently drop the edit.
    for put in puts.iter().filter(|p| p.kind == Kind::Flag) {
        let live = live_rollout(tx, &put.key).await?;
        if let Some((id, _)) = live.filter(|(id, _)| Some(id.as_str()) != owner) {
            return Err(StoreError::Conflict(format!(
                "flag {:?} is being rolled out by {id}; edits are refused until it completes or rolls back",
                put.key
            )));
        }
    }
    let mut outcomes = Vec::with_capacity(puts.len());
    for put in puts {
        let sql =
            format!("SELECT version, spec, archived FROM {} WHERE key = $1", put.kind.table());
        let current: Option<(i64, String, i64)> =
            run!(fetch_optional(&mut *tx); sqlx::query_as(AssertSqlSafe(sql)); &put.key);
        let (cur_version, cur_spec, cur_archived) = match &current {
            Some((version, spec, archived)) => (*version, Some(spec.as_str()), *archived != 0),
            None => (0, None, false),
        };
        if let Some(expected) = put.expected_version.filter(|e| *e != cur_version) {
            return Err(StoreError::Conflict(format!(
                "{} {:?} is at version {cur_version}, not {expected}; reload and retry",
                put.kind.as_str(),
                put.key
            )));
        }
        let spec_text = to_text(&put.spec)?;
        if cur_spec == Some(spec_text.as_str()) && cur_archived == put.archived {
            outcomes.push(PutOutcome {
                kind: put.kind,
                key: put.key.clone(),
                version: cur_version,
                changed: false,
            });
            continue;
        }
        let version = cur_version + 1;
        let verb = put.action.clone().unwrap_or_else(|| {
            match (current.is_some(), cur_archived, put.archived) {
                (false, _, _) => "create",
                (true, false, true) => "archive",
                (true, true, false) => "unarchive",
                _ => "update",
            }
            .into()
        });
        let action = format!("{}.{verb}", put.kind.as_str());
        let insert = format!(
            "INSERT INTO {} (key, version, spec, archived, actor, action, reason, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            put.kind.versions_table()
        );
        run!(execute(&mut *tx); sqlx::query(AssertSqlSafe(insert));
            &put.key, version, &spec_text, i64::from(put.archived), &change.actor, &action,
            &change.reason, ts(change.at));
        let upsert = format!(
            "INSERT INTO {} (key, version, spec, archived, updated_at, updated_by) VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT(key) DO UPDATE SET version = excluded.version, spec = excluded.spec,
             archived = excluded.archived, updated_at = excluded.updated_at, updated_by = excluded.updated_by",
            put.kind.table()
        );
        run!(execute(&mut *tx); sqlx::query(AssertSqlSafe(upsert));
            &put.key, version, &spec_text, i64::from(put.archived), ts(change.at), &change.actor);
        let mut details = json!({
            "key": put.key,
            "version": version,
            "previous_version": cur_version,
            "archived": put.archived,
            "content_sha256": wavegate_core::audit::sha256_hex(&spec_text),
        });
        if let (Some(obj), Some(extra)) = (details.as_object_mut(), put.details.as_object()) {
            obj.extend(extra.clone());
        }
        let target = format!("{}:{}", put.kind.as_str(), put.key);
        append_audit(tx, change, &action, target, details).await?;
        outcomes.push(PutOutcome { kind: put.kind, key: put.key.clone(), version, changed: true });
    }
    if outcomes.iter().any(|o| o.changed) {
        run!(execute(&mut *tx); sqlx::query("UPDATE meta SET value = value + 1 WHERE key = 'revision'"));
    }
    Ok(outcomes)
}

/// `($first, $first+1, …)`: the placeholders of one row of `n` values.
pub(crate) fn placeholders(first: usize, n: usize) -> String {
    let places: Vec<String> = (first..first + n).map(|i| format!("${i}")).collect();
    format!("({})", places.join(", "))
}

impl AggregateWriter for Db {
    async fn write(&self, group: &[&AggregateBatch]) -> StoreResult<Vec<bool>> {
        let mut tx = self.begin().await?;
        let mut applied = Vec::with_capacity(group.len());
        for b in group {
            let mut new = true;
            if let Some(key) = &b.key {
                let sql = "INSERT INTO event_batches (batch_key, received_at) VALUES ($1, $2) ON CONFLICT (batch_key) DO NOTHING";
                new = run!(execute(&mut *tx); sqlx::query(sql); key, b.at.timestamp())
                    .rows_affected()
                    == 1;
            }
            applied.push(new);
        }
        let fresh: Vec<&AggregateBatch> =
            group.iter().zip(&applied).filter(|(_, new)| **new).map(|(b, _)| *b).collect();
        let merged;
        let batch = match &fresh[..] {
            [] => return self.commit(tx).await.map(|()| applied),
            [one] => *one,
            many => {
                merged = crate::group::merge(many);
                &merged
            }
        };
        for d in &batch.sketches {
            let current: Option<String> = run!(fetch_optional(&mut *tx); sqlx::query_scalar("SELECT counts FROM sketches WHERE rollout = $1 AND wave = $2 AND arm = $3 AND metric = $4 AND source = $5");
                &d.rollout, d.wave, &d.arm, &d.metric, &d.source);
            let mut counts: std::collections::BTreeMap<i32, u64> =
                current.map_or(Ok(Default::default()), |t| rows::from_text(&t, "sketch"))?;
            crate::group::add_counts(&mut counts, &d.counts);
            run!(execute(&mut *tx); sqlx::query("INSERT INTO sketches (rollout, wave, arm, metric, counts, source) VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (rollout, wave, arm, metric, source) DO UPDATE SET counts = excluded.counts");
                &d.rollout, d.wave, &d.arm, &d.metric, to_text(&counts)?, &d.source);
        }
        for d in &batch.deltas {
            run!(execute(&mut *tx); sqlx::query("INSERT INTO aggregates (rollout, wave, arm, metric, n, sum, sumsq, last_at, source) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                 ON CONFLICT (rollout, wave, arm, metric, source) DO UPDATE SET n = aggregates.n + excluded.n, sum = aggregates.sum + excluded.sum,
                 sumsq = aggregates.sumsq + excluded.sumsq, last_at = excluded.last_at");
                &d.rollout, d.wave, &d.arm, &d.metric, d.n, d.sum, d.sumsq, ts(batch.at), &d.source);
        }
        // Chunks of 1000 rows keep each statement under the bound-parameter limit; a statement
        // may touch a row once, and the rows are one per (rollout, user).
        for chunk in batch.adoption.chunks(1000) {
            let values: Vec<String> =
                (0..chunk.len()).map(|i| placeholders(6 * i + 1, 6)).collect();
            let sql = format!(
                "INSERT INTO adoption_users (rollout, user_key, cohort, exposed_day, task_day, first_wave) VALUES {}
                 ON CONFLICT (rollout, user_key) DO UPDATE SET cohort = excluded.cohort,
                 exposed_day = {max}(adoption_users.exposed_day, excluded.exposed_day),
                 task_day = COALESCE({max}(adoption_users.task_day, excluded.task_day), adoption_users.task_day, excluded.task_day)",
                values.join(", "),
                max = self.backend.greatest(),
            );
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for a in chunk {
                q = q.bind(&a.rollout).bind(&a.user).bind(&a.cohort);
                q = q.bind(a.exposed_day).bind(a.task_day).bind(a.wave);
            }
            q.execute(&mut *tx).await?;
        }
        self.commit(tx).await?;
        Ok(applied)
    }
}

#[async_trait]
impl Store for SqlStore {
    fn changes(&self) -> watch::Receiver<u64> {
        self.db.changes.subscribe()
    }

    async fn environments(&self) -> StoreResult<Vec<Environment>> {
        let rows: Vec<(String, i64)> = run!(fetch_all(&self.db.pool); sqlx::query_as("SELECT name, position FROM environments ORDER BY position"));
        Ok(rows.into_iter().map(|(name, position)| Environment { name, position }).collect())
    }

    async fn create_environment(&self, name: &str, change: &Change) -> StoreResult<Environment> {
        let mut tx = self.db.begin().await?;
        let exists = run!(fetch_optional(&mut *tx); sqlx::query("SELECT 1 FROM environments WHERE name = $1");
            name);
        if exists.is_some() {
            return Err(StoreError::Conflict(format!("environment {name:?} already exists")));
        }
        let position: i64 = run!(fetch_one(&mut *tx); sqlx::query_scalar("SELECT COALESCE(MAX(position), 0) + 1 FROM environments"));
        run!(execute(&mut *tx); sqlx::query("INSERT INTO environments (name, position, created_at) VALUES ($1, $2, $3)");
            name, position, ts(change.at));
        let (target, details) = (format!("environment:{name}"), json!({"position": position}));
        append_audit(&mut tx, change, "environment.create", target, details).await?;
        self.db.commit(tx).await?;
        Ok(Environment { name: name.to_owned(), position })
    }

    async fn list(&self, kind: Kind, include_archived: bool) -> StoreResult<Vec<Head>> {
        let filter = if include_archived { "" } else { "WHERE archived = 0" };
        let sql = format!("SELECT * FROM {} {filter} ORDER BY key", kind.table());
        self.db.all(sqlx::query(AssertSqlSafe(sql)), rows::head).await
    }

    async fn get(&self, kind: Kind, key: &str) -> StoreResult<Option<Head>> {
        let sql = format!("SELECT * FROM {} WHERE key = $1", kind.table());
        self.db.one(sqlx::query(AssertSqlSafe(sql)).bind(key), rows::head).await
    }

    async fn apply(&self, puts: &[Put], change: &Change) -> StoreResult<Vec<PutOutcome>> {
        let mut tx = self.db.begin().await?;
        let outcomes = apply_puts(&mut tx, puts, change, None).await?;
        self.db.commit(tx).await?;
        Ok(outcomes)
    }

    async fn versions(&self, kind: Kind, key: &str) -> StoreResult<Vec<VersionRecord>> {
        let sql =
            format!("SELECT * FROM {} WHERE key = $1 ORDER BY version", kind.versions_table());
        self.db.all(sqlx::query(AssertSqlSafe(sql)).bind(key), rows::version).await
    }

    async fn version(
        &self,
        kind: Kind,
        key: &str,
        version: i64,
    ) -> StoreResult<Option<VersionRecord>> {
        let sql =
            format!("SELECT * FROM {} WHERE key = $1 AND version = $2", kind.versions_table());
        self.db.one(sqlx::query(AssertSqlSafe(sql)).bind(key).bind(version), rows::version).await
    }

    async fn revision(&self) -> StoreResult<i64> {
        let sql = "SELECT value FROM meta WHERE key = 'revision'";
        Ok(run!(fetch_one(&self.db.pool); sqlx::query_scalar(sql)))
    }

    async fn create_token(&self, token: &NewToken, change: &Change) -> StoreResult<TokenRecord> {
        let mut tx = self.db.begin().await?;
        run!(execute(&mut *tx); sqlx::query("INSERT INTO tokens (id, hash, kind, environments, principal, created_at, created_by, user_admin, evaluate_only, expires_at, roles, groups) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)");
            &token.id, &token.hash, token.kind.as_str(), to_text(&token.environments)?,
            &token.principal, ts(change.at), &change.actor, i64::from(token.user_admin),
            i64::from(token.evaluate_only), token.expires_at.map(ts),
            if token.kind == TokenKind::Admin { Some(to_text(&token.roles)?) } else { None },
            if token.groups.is_empty() { None } else { Some(to_text(&token.groups)?) });
        // Options only when they say something: a plain token's entry is as short as ever.
        let mut details = json!({"kind": token.kind.as_str(), "environments": token.environments,
            "principal": token.principal, "user_admin": token.user_admin,
            "evaluate_only": token.evaluate_only, "expires_at": token.expires_at.map(ts),
            "roles": (token.kind == TokenKind::Admin).then_some(&token.roles),
            "groups": (!token.groups.is_empty()).then_some(&token.groups)});
        if let Some(d) = details.as_object_mut() {
            d.retain(|_, v| !v.is_null() && *v != false);
        }
        let target = format!("token:{}", token.id);
        append_audit(&mut tx, change, "token.create", target, details).await?;
        // What was stored, read back in the same transaction.
        let sql = "SELECT * FROM tokens WHERE id = $1";
        let stored = rows::token(&run!(fetch_one(&mut *tx); sqlx::query(sql); &token.id))?;
        self.db.commit(tx).await?;
        Ok(stored)
    }

    async fn token_by_hash(&self, hash: &str) -> StoreResult<Option<TokenRecord>> {
        let sql = "SELECT * FROM tokens WHERE hash = $1 AND revoked_at IS NULL";
        self.db.one(sqlx::query(sql).bind(hash), rows::token).await
    }

    async fn tokens(&self) -> StoreResult<Vec<TokenRecord>> {
        self.db.all(sqlx::query("SELECT * FROM tokens ORDER BY created_at, id"), rows::token).await
    }

    async fn revoke_token(&self, id: &str, change: &Change) -> StoreResult<()> {
        let mut tx = self.db.begin().await?;
        // Checked inside the write transaction (writes are serialised), so two revocations at
        // once cannot each leave the other's token as "the last one" and both succeed.
        let admins = run!(fetch_all(&mut *tx); sqlx::query("SELECT * FROM tokens WHERE kind = 'admin' AND revoked_at IS NULL"))
        .iter()
        .map(rows::token)
        .collect::<StoreResult<Vec<_>>>()?;
        if let Some(why) = wavegate_core::access::revocation_refused(&admins, id) {
            return Err(StoreError::Conflict(why));
        }
        let done = run!(execute(&mut *tx); sqlx::query("UPDATE tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL");
                ts(change.at), id);
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("live token {id:?}")));
        }
        append_audit(&mut tx, change, "token.revoke", format!("token:{id}"), json!({})).await?;
        self.db.commit(tx).await
    }

    async fn has_admin_token(&self) -> StoreResult<bool> {
        let n: i64 = run!(fetch_one(&self.db.pool); sqlx::query_scalar("SELECT COUNT(*) FROM tokens WHERE kind = 'admin' AND revoked_at IS NULL"));
        Ok(n > 0)
    }

    async fn audit(&self, after: i64, limit: i64) -> StoreResult<Vec<AuditRow>> {
        let sql = "SELECT seq, prev_hash, hash, canonical, at, actor, action, target FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2";
        self.db.all(sqlx::query(sql).bind(after).bind(limit), rows::audit).await
    }

    async fn audit_head(&self) -> StoreResult<i64> {
        let sql = "SELECT COALESCE(MAX(seq), 0) FROM audit_log";
        Ok(run!(fetch_one(&self.db.pool); sqlx::query_scalar(sql)))
    }

    async fn audit_of(&self, target: &str, limit: i64) -> StoreResult<Vec<AuditRow>> {
        let sql = "SELECT * FROM (SELECT seq, prev_hash, hash, canonical, at, actor, action, target FROM audit_log
                   WHERE target = $1 ORDER BY seq DESC LIMIT $2) AS recent ORDER BY seq";
        let rows = self.db.all(sqlx::query(sql).bind(target).bind(limit), rows::audit).await?;
        // The column is only an index: keep what the chained entries say is about `target`.
        Ok(rows.into_iter().filter(|r| r.target == target).collect())
    }

    async fn export(&self) -> StoreResult<Backup> {
        // One read transaction: every table from the same snapshot.
        let mut tx = self.db.backend.begin_snapshot(&self.db.pool).await?;
        let tables = crate::backup::read(&mut tx).await?;
        tx.rollback().await?;
        Ok(Backup {
            format: crate::backup::FORMAT.into(),
            version: crate::backup::VERSION,
            created_at: ts(Utc::now()),
            source: self.db.backend.name().into(),
            secrets_omitted: false,
            tables,
        })
    }

    async fn audit_event(
        &self,
        action: &str,
        target: &str,
        details: &Value,
        change: &Change,
    ) -> StoreResult<()> {
        let mut tx = self.db.begin().await?;
        append_audit(&mut tx, change, action, target.to_owned(), details.clone()).await?;
        self.db.commit(tx).await
    }

    async fn import(&self, backup: &Backup) -> StoreResult<()> {
        backup.validate().map_err(|e| StoreError::Invalid(format!("backup: {e}")))?;
        let mut tx = self.db.begin().await?;
        crate::backup::write(&mut tx, backup).await?;
        self.db.backend.after_import(&mut tx).await?;
        self.db.commit(tx).await
    }

    async fn lead(
        &self,
        holder: &str,
        at: DateTime<Utc>,
        lease: std::time::Duration,
    ) -> StoreResult<Option<i64>> {
        let mut epochs = self.leader.lock().await;
        let lease_ms = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX / 4);
        let mut tx = self.db.begin().await?;
        let sql = format!(
            "SELECT epoch, holder, lease_until, {} AS now FROM leader WHERE id = 1",
            self.db.backend.now_ms()
        );
        let (epoch, current, until, now): (i64, String, i64, i64) =
            run!(fetch_one(&mut *tx); sqlx::query_as(AssertSqlSafe(sql)));
        if current == holder && until > now && epochs.get(holder) == Some(&epoch) {
            // Renewal: written quietly (no change notice: nothing anyone follows changed).
            run!(execute(&mut *tx); sqlx::query("UPDATE leader SET lease_until = $1 WHERE id = 1");
                now.saturating_add(lease_ms));
            tx.commit().await?;
            return Ok(Some(epoch));
        }
        if until > now {
            // Another replica holds an unexpired lease (or this one lost it and another took
            // over since).
            epochs.remove(holder);
            return Ok(None);
        }
        // The lease lapsed (its holder died, hung or was never there): take over, audited.
        let epoch: i64 = run!(fetch_one(&mut *tx); sqlx::query_scalar("UPDATE leader SET epoch = epoch + 1, holder = $1, since = $2, lease_until = $3 WHERE id = 1 RETURNING epoch");
            holder, ts(at), now.saturating_add(lease_ms));
        let change = Change { actor: "controller".into(), via: None, reason: None, at };
        let details = json!({"holder": holder, "epoch": epoch, "previous": current});
        append_audit(&mut tx, &change, "controller.lead", "controller".into(), details).await?;
        self.db.commit(tx).await?;
        epochs.insert(holder.to_owned(), epoch);
        Ok(Some(epoch))
    }

    async fn resign(&self, holder: Option<&str>) -> StoreResult<()> {
        let mut epochs = self.leader.lock().await;
        epochs.retain(|h, _| holder.is_some_and(|holder| holder != h));
        run!(execute(&self.db.pool); sqlx::query("UPDATE leader SET lease_until = 0 WHERE id = 1 AND ($1 IS NULL OR holder = $1)");
            holder);
        Ok(())
    }

    async fn rollouts(&self, live_only: bool) -> StoreResult<Vec<RolloutRow>> {
        let filter = if live_only { "WHERE state IN ('running', 'paused')" } else { "" };
        let sql = format!("SELECT * FROM rollouts {filter} ORDER BY created_at DESC, id");
        self.db.all(sqlx::query(AssertSqlSafe(sql)), rows::rollout).await
    }

    async fn rollout(&self, id: &str) -> StoreResult<Option<RolloutRow>> {
        let sql = "SELECT * FROM rollouts WHERE id = $1";
        self.db.one(sqlx::query(sql).bind(id), rows::rollout).await
    }

    async fn write_rollout(&self, write: &RolloutWrite, change: &Change) -> StoreResult<i64> {
        let mut tx = self.db.begin().await?;
        if let Some(mine) = write.leader_epoch {
            let current: i64 = run!(fetch_one(&mut *tx); sqlx::query_scalar(EPOCH));
            if current != mine {
                return Err(StoreError::Conflict(format!(
                    "this replica no longer leads the controller (its epoch {mine}, now {current})"
                )));
            }
        }
        let r = &write.row;
        let doc = to_text(&r.doc)?;
        let new_rev = r.rev + 1;
        if r.rev == 0 {
            if let Some((other, env)) = live_rollout(&mut tx, &r.flag).await? {
                return Err(StoreError::Conflict(format!(
                    "rollout {other} of flag {:?} (in {env}) is still live; finish or roll it back first",
                    r.flag
                )));
            }
            run!(execute(&mut *tx); sqlx::query("INSERT INTO rollouts (id, plan, flag, environment, state, rev, doc, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)");
                &r.id, &r.plan, &r.flag, &r.environment, &r.state, new_rev, &doc, ts(change.at),
                ts(change.at));
        } else {
            let done = run!(execute(&mut *tx); sqlx::query("UPDATE rollouts SET state = $1, rev = $2, doc = $3, updated_at = $4 WHERE id = $5 AND rev = $6");
                &r.state, new_rev, &doc, ts(change.at), &r.id, r.rev);
            if done.rows_affected() == 0 {
                let why = format!("rollout {} changed meanwhile; reload and retry", r.id);
                return Err(StoreError::Conflict(why));
            }
        }
        if let Some(put) = &write.flag_put {
            apply_puts(&mut tx, std::slice::from_ref(put), change, Some(&r.id)).await?;
        }
        for v in &write.verdicts {
            run!(execute(&mut *tx); sqlx::query("INSERT INTO verdicts (rollout, wave, kind, name, verdict, report, at) VALUES ($1, $2, $3, $4, $5, $6, $7)");
                &v.rollout, v.wave, &v.kind, &v.name, &v.verdict, to_text(&v.report)?, ts(v.at));
        }
        for (action, target, details) in &write.audit {
            append_audit(&mut tx, change, action, target.clone(), details.clone()).await?;
        }
        self.db.commit(tx).await?;
        Ok(new_rev)
    }

    async fn verdicts(&self, rollout: &str, limit: i64) -> StoreResult<Vec<VerdictRow>> {
        let sql = "SELECT * FROM verdicts WHERE rollout = $1 ORDER BY id DESC LIMIT $2";
        self.db.all(sqlx::query(sql).bind(rollout).bind(limit), rows::verdict).await
    }

    async fn add_aggregates(&self, batch: AggregateBatch) -> StoreResult<bool> {
        self.aggregates.add(|| self.db.clone(), batch).await
    }

    async fn probe(&self) -> StoreResult<()> {
        // A nearly full disk fails the next real write while a tiny probe still fits.
        if let Some(file) = &self.db.file {
            let dir = file.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(".".as_ref());
            if let Ok(st) = rustix::fs::statvfs(dir) {
                let free = st.f_bavail.saturating_mul(st.f_frsize);
                if free < MIN_FREE_BYTES {
                    let (kib, dir) = (free / 1024, dir.display());
                    return Err(StoreError::Unavailable(format!(
                        "the disk is full: {kib} KiB free where the database is ({dir}); writes resume when space is freed"
                    )));
                }
            }
        }
        // Straight on the pool, not through `Db::commit`: a probe changes nothing anyone
        // follows, so it bumps no change counter and sends no notice.
        let mut tx = self.db.backend.begin(&self.db.pool).await?;
        run!(execute(&mut *tx); sqlx::query("UPDATE meta SET value = value WHERE key = 'revision'"));
        tx.commit().await?;
        Ok(())
    }

    async fn prune_batch_keys(&self, before: DateTime<Utc>) -> StoreResult<u64> {
        let done = run!(execute(&self.db.pool); sqlx::query("DELETE FROM event_batches WHERE received_at < $1");
            before.timestamp());
        Ok(done.rows_affected())
    }

    async fn prune_adoption(&self, before_day: i64) -> StoreResult<u64> {
        let done = run!(execute(&self.db.pool); sqlx::query("DELETE FROM adoption_users WHERE exposed_day < $1");
            before_day);
        Ok(done.rows_affected())
    }

    async fn adoption(&self, rollout: &str, since_day: i64) -> StoreResult<Vec<AdoptionCount>> {
        let sql = "SELECT cohort, COUNT(*) AS exposed, CAST(SUM(CASE WHEN task_day >= $1 THEN 1 ELSE 0 END) AS BIGINT) AS adopted
                   FROM adoption_users WHERE rollout = $2 AND exposed_day >= $1 GROUP BY cohort ORDER BY cohort";
        self.db.all(sqlx::query(sql).bind(since_day).bind(rollout), rows::adoption).await
    }

    async fn aggregates(
        &self,
        rollout: &str,
        wave: i64,
        excluded: &[String],
    ) -> StoreResult<Vec<AggregateRow>> {
        let sql = "SELECT * FROM aggregates WHERE rollout = $1 AND wave = $2 ORDER BY arm, metric, source";
        let rows =
            self.db.all(sqlx::query(sql).bind(rollout).bind(wave), rows::sourced_aggregate).await?;
        let mut out: Vec<AggregateRow> = Vec::new();
        for (_, a) in rows.into_iter().filter(|(source, _)| !excluded.contains(source)) {
            match out.last_mut() {
                Some(l) if (&l.arm, &l.metric) == (&a.arm, &a.metric) => {
                    (l.n, l.sum, l.sumsq) = (l.n + a.n, l.sum + a.sum, l.sumsq + a.sumsq);
                    l.last_at = l.last_at.max(a.last_at);
                }
                _ => out.push(a),
            }
        }
        Ok(out)
    }

    async fn sketches(
        &self,
        rollout: &str,
        wave: i64,
        excluded: &[String],
    ) -> StoreResult<Vec<SketchDelta>> {
        let sql =
            "SELECT * FROM sketches WHERE rollout = $1 AND wave = $2 ORDER BY arm, metric, source";
        let mut rows = self.db.all(sqlx::query(sql).bind(rollout).bind(wave), rows::sketch).await?;
        rows.retain(|s| !excluded.contains(&s.source));
        rows.iter_mut().for_each(|s| s.source.clear());
        Ok(crate::group::fold_cells(rows, |into, s| {
            crate::group::add_counts(&mut into.counts, &s.counts)
        }))
    }

    async fn contributions(&self, rollout: &str) -> StoreResult<Vec<Contribution>> {
        let sql = "SELECT * FROM aggregates WHERE rollout = $1 ORDER BY source, wave, arm, metric";
        self.db.all(sqlx::query(sql).bind(rollout), rows::contribution).await
    }

    async fn add_drill(&self, d: &DrillRow, change: &Change) -> StoreResult<i64> {
        let mut tx = self.db.begin().await?;
        let id: i64 = run!(fetch_one(&mut *tx); sqlx::query_scalar("INSERT INTO drills (plan, plan_version, scenario, passed, report, at, actor) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id");
            &d.plan, d.plan_version, &d.scenario, i64::from(d.passed), to_text(&d.report)?,
            ts(change.at), &change.actor);
        let details = json!({"drill": id, "plan_version": d.plan_version, "scenario": d.scenario, "passed": d.passed});
        append_audit(&mut tx, change, "plan.drill", format!("plan:{}", d.plan), details).await?;
        self.db.commit(tx).await?;
        Ok(id)
    }

    async fn add_feedback(&self, rows: &[FeedbackRow]) -> StoreResult<Vec<i64>> {
        let mut tx = self.db.begin().await?;
        let mut ids = Vec::with_capacity(rows.len());
        for f in rows {
            let status = if f.status.is_empty() { "open" } else { f.status.as_str() };
            let id: i64 = run!(fetch_one(&mut *tx); sqlx::query_scalar("INSERT INTO feedback (release, category, cohort, sentiment, body, at, principal, blocker, status) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id");
                &f.release, &f.category, &f.cohort, &f.sentiment, &f.body, ts(f.at), &f.principal,
                i64::from(f.blocker), status);
            ids.push(id);
        }
        self.db.commit(tx).await?;
        Ok(ids)
    }

    async fn feedback(&self, release: &str) -> StoreResult<Vec<FeedbackRow>> {
        let sql = "SELECT * FROM feedback WHERE release = $1 ORDER BY id";
        self.db.all(sqlx::query(sql).bind(release), rows::feedback).await
    }

    async fn feedback_item(&self, id: i64) -> StoreResult<Option<FeedbackRow>> {
        self.db
            .one(sqlx::query("SELECT * FROM feedback WHERE id = $1").bind(id), rows::feedback)
            .await
    }

    async fn set_feedback_status(
        &self,
        id: i64,
        status: &FeedbackStatus,
        change: &Change,
    ) -> StoreResult<Option<FeedbackRow>> {
        let mut tx = self.db.begin().await?;
        let open = status.status == "open";
        let done = run!(execute(&mut *tx); sqlx::query("UPDATE feedback SET status = $1, resolution = $2, fixed_in = $3, closed_at = $4, closed_by = $5 WHERE id = $6");
            &status.status, &status.resolution, &status.fixed_in, (!open).then(|| ts(change.at)),
            (!open).then(|| change.actor.clone()), id);
        if done.rows_affected() == 0 {
            return Ok(None);
        }
        let row = rows::feedback(
            &run!(fetch_one(&mut *tx); sqlx::query("SELECT * FROM feedback WHERE id = $1"); id),
        )?;
        let details = json!({"feedback": id, "release": row.release, "status": status.status,
            "resolution": status.resolution, "fixed_in": status.fixed_in});
        let target = format!("release:{}", row.release);
        append_audit(&mut tx, change, "feedback.status", target, details).await?;
        self.db.commit(tx).await?;
        Ok(Some(row))
    }

    async fn adoption_in_wave(&self, rollout: &str, wave: i64) -> StoreResult<Vec<AdoptionCount>> {
        let sql = "SELECT cohort, COUNT(*) AS exposed, CAST(SUM(CASE WHEN task_day IS NULL THEN 0 ELSE 1 END) AS BIGINT) AS adopted
                   FROM adoption_users WHERE rollout = $1 AND first_wave = $2 GROUP BY cohort ORDER BY cohort";
        self.db.all(sqlx::query(sql).bind(rollout).bind(wave), rows::adoption).await
    }

    async fn adoption_by_wave(&self, rollout: &str) -> StoreResult<Vec<WaveCount>> {
        let sql = "SELECT first_wave, COUNT(*) AS exposed, CAST(SUM(CASE WHEN task_day IS NULL THEN 0 ELSE 1 END) AS BIGINT) AS adopted
                   FROM adoption_users WHERE rollout = $1 GROUP BY first_wave ORDER BY first_wave";
        self.db.all(sqlx::query(sql).bind(rollout), rows::wave_count).await
    }

    async fn add_incident(&self, i: &IncidentRow) -> StoreResult<(i64, bool)> {
        let mut tx = self.db.begin().await?;
        let known: Option<i64> = run!(fetch_optional(&mut *tx); sqlx::query_scalar("SELECT id FROM incidents WHERE source = $1 AND external_id = $2");
                &i.source, &i.external_id);
        if let Some(id) = known {
            return Ok((id, false));
        }
        let id: i64 = run!(fetch_one(&mut *tx); sqlx::query_scalar("INSERT INTO incidents (source, external_id, kind, severity, service, user_key, title, at, principal)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id");
            &i.source, &i.external_id, &i.kind, &i.severity, &i.service, &i.user, &i.title,
            ts(i.at), &i.principal);
        for a in &i.arms {
            run!(execute(&mut *tx); sqlx::query("INSERT INTO incident_arms (incident, rollout, wave, arm, severity) VALUES ($1, $2, $3, $4, $5)");
                id, &a.rollout, a.wave, &a.arm, &i.severity);
        }
        self.db.commit(tx).await?;
        Ok((id, true))
    }

    async fn incident_counts(&self, rollout: &str, wave: i64) -> StoreResult<Vec<IncidentCount>> {
        let sql = "SELECT arm, severity, COUNT(*) AS n FROM incident_arms WHERE rollout = $1 AND wave = $2
                   GROUP BY arm, severity ORDER BY arm, severity";
        self.db.all(sqlx::query(sql).bind(rollout).bind(wave), rows::incident_count).await
    }

    async fn incidents(&self, service: Option<&str>, limit: i64) -> StoreResult<Vec<IncidentRow>> {
        let sql =
            "SELECT * FROM incidents WHERE ($1 IS NULL OR service = $1) ORDER BY id DESC LIMIT $2";
        let mut list = self
            .db
            .all(sqlx::query(sql).bind(service).bind(limit.clamp(1, 1000)), rows::incident)
            .await?;
        for i in &mut list {
            let sql =
                "SELECT rollout, wave, arm FROM incident_arms WHERE incident = $1 ORDER BY rollout";
            i.arms = self.db.all(sqlx::query(sql).bind(i.id), rows::incident_arm).await?;
        }
        Ok(list)
    }

    async fn drills(&self, plan: &str) -> StoreResult<Vec<DrillRow>> {
        let sql = "SELECT * FROM drills WHERE plan = $1 ORDER BY id DESC";
        self.db.all(sqlx::query(sql).bind(plan), rows::drill).await
    }

    async fn notify_targets(&self) -> StoreResult<Vec<NotifyTargetRow>> {
        let sql = "SELECT * FROM notify_targets ORDER BY name";
        self.db.all(sqlx::query(sql), rows::notify_target).await
    }

    async fn put_notify_target(
        &self,
        name: &str,
        spec: &Value,
        audit_details: &Value,
        change: &Change,
    ) -> StoreResult<bool> {
        let mut tx = self.db.begin().await?;
        let text = to_text(spec)?;
        let existed: Option<String> = run!(fetch_optional(&mut *tx); sqlx::query_scalar("SELECT spec FROM notify_targets WHERE name = $1");
                name);
        if existed.as_deref() == Some(text.as_str()) {
            return Ok(false);
        }
        let (target, details) = (
            format!("notify:{name}"),
            json!({"target": audit_details, "created": existed.is_none()}),
        );
        let entry = append_audit(&mut tx, change, "notify.target", target, details).await?;
        run!(execute(&mut *tx); sqlx::query("INSERT INTO notify_targets (name, spec, since_seq, created_at, updated_at) VALUES ($1, $2, $3, $4, $4) ON CONFLICT (name) DO UPDATE SET spec = excluded.spec, updated_at = excluded.updated_at");
            name, &text, entry.seq, ts(change.at));
        self.db.commit(tx).await?;
        Ok(existed.is_none())
    }

    async fn delete_notify_target(&self, name: &str, change: &Change) -> StoreResult<()> {
        let mut tx = self.db.begin().await?;
        let done = run!(execute(&mut *tx); sqlx::query("DELETE FROM notify_targets WHERE name = $1"); name);
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("notification target {name:?}")));
        }
        let target = format!("notify:{name}");
        append_audit(&mut tx, change, "notify.target.remove", target, json!({})).await?;
        self.db.commit(tx).await
    }

    async fn notify_cursor(&self) -> StoreResult<i64> {
        let v: Option<i64> = run!(fetch_optional(&self.db.pool); sqlx::query_scalar("SELECT value FROM meta WHERE key = 'notify_cursor'"));
        Ok(v.unwrap_or(0))
    }

    async fn enqueue_deliveries(&self, cursor: i64, rows: &[NewDelivery]) -> StoreResult<()> {
        let mut tx = self.db.begin().await?;
        for d in rows {
            run!(execute(&mut *tx); sqlx::query("INSERT INTO notify_deliveries (audit_seq, target, audience, event, rollout, environment, status, attempts, next_at, payload, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, 'pending', 0, $7, $8, $7, $7) ON CONFLICT (audit_seq, target, event) DO NOTHING");
                d.audit_seq, &d.target, &d.audience, &d.event, &d.rollout, &d.environment, ts(d.at),
                to_text(&d.payload)?);
        }
        let sql = format!(
            "INSERT INTO meta (key, value) VALUES ('notify_cursor', $1) ON CONFLICT (key) DO UPDATE SET value = {}(meta.value, excluded.value)",
            self.db.backend.greatest()
        );
        run!(execute(&mut *tx); sqlx::query(AssertSqlSafe(sql)); cursor);
        self.db.commit(tx).await
    }

    async fn due_deliveries(&self, now: DateTime<Utc>, limit: i64) -> StoreResult<Vec<Delivery>> {
        let sql = "SELECT * FROM notify_deliveries WHERE status = 'pending' AND next_at <= $1 ORDER BY next_at, id LIMIT $2";
        self.db.all(sqlx::query(sql).bind(ts(now)).bind(limit), rows::delivery).await
    }

    async fn record_attempt(&self, id: i64, a: &DeliveryState) -> StoreResult<()> {
        let mut tx = self.db.begin().await?;
        run!(execute(&mut *tx); sqlx::query("UPDATE notify_deliveries SET status = $1, attempts = $2, last_error = $3, http_status = $4, next_at = $5, updated_at = $6 WHERE id = $7");
            &a.status, a.attempts, &a.last_error, a.http_status, ts(a.next_at), ts(a.at), id);
        self.db.commit(tx).await
    }

    async fn deliveries(&self, q: &DeliveryQuery) -> StoreResult<Vec<Delivery>> {
        let sql = "SELECT * FROM notify_deliveries WHERE ($1 IS NULL OR status = $1) AND ($2 IS NULL OR target = $2)
                   AND ($3 IS NULL OR rollout = $3) ORDER BY id DESC LIMIT $4";
        let query = sqlx::query(sql).bind(&q.status).bind(&q.target).bind(&q.rollout).bind(q.limit);
        self.db.all(query, rows::delivery).await
    }
}
