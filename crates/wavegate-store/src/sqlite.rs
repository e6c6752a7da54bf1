//! [`SqliteStore`]: the embedded default. WAL mode, migrations embedded, one writer at a time
//! (`BEGIN IMMEDIATE`), so audit appends are serialised.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{AssertSqlSafe, Row, Sqlite, SqlitePool, Transaction};
use wavegate_core::audit::{AuditEvent, ChainedEntry, GENESIS_HASH};

use crate::backup::{Backup, Col, SEEDED, TABLES};
use crate::group::{AggregateWriter, GroupCommit};
use crate::{
    AdoptionCount, AdoptionDelta, AggregateDelta, AggregateRow, AuditRow, Change, Delivery,
    DeliveryAttempt, DeliveryQuery, DrillRow, Environment, FeedbackRow, Head, Kind, NewDelivery,
    NewToken, NotifyTargetRow, Put, PutOutcome, RolloutRow, RolloutWrite, SketchDelta, Store,
    StoreError, StoreResult, TokenKind, TokenRecord, VerdictRow, VersionRecord,
};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// The SQLite store.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    changes: std::sync::Arc<tokio::sync::watch::Sender<u64>>,
    /// The leadership epoch this instance holds, if it leads.
    led: std::sync::Arc<tokio::sync::Mutex<Option<i64>>>,
    /// Event aggregates are written by one task, concurrent batches in one transaction.
    aggregates: std::sync::Arc<GroupCommit>,
}

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn parse_ts(s: &str) -> StoreResult<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .map(|d| d.with_timezone(&Utc))
        .map_err(|e| StoreError::Corrupt(format!("bad timestamp {s:?}: {e}")))
}

fn parse_json(s: &str) -> StoreResult<serde_json::Value> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt(format!("bad JSON: {e}")))
}

impl SqliteStore {
    /// Opens (creating if missing) the database at `path` and migrates it.
    pub async fn open(path: &str) -> StoreResult<SqliteStore> {
        let path =
            path.strip_prefix("sqlite://").or_else(|| path.strip_prefix("sqlite:")).unwrap_or(path);
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{path}"))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new().max_connections(8).connect_with(options).await?;
        MIGRATOR.run(&pool).await?;
        let (changes, _) = tokio::sync::watch::channel(0);
        Ok(SqliteStore {
            pool,
            changes: std::sync::Arc::new(changes),
            led: std::sync::Arc::default(),
            aggregates: std::sync::Arc::default(),
        })
    }

    /// The pool, for tests that need to reach under the trait (e.g. to simulate tampering).
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    async fn begin(&self) -> StoreResult<Transaction<'static, Sqlite>> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }

    /// Commits `tx` and tells [`Store::changes`] subscribers.
    async fn commit(&self, tx: Transaction<'static, Sqlite>) -> StoreResult<()> {
        tx.commit().await?;
        self.changes.send_modify(|n| *n = n.wrapping_add(1));
        Ok(())
    }
}

/// Writes event aggregates for [`GroupCommit`]: the pool and change notices, not the store
/// (which holds the writer's queue).
struct AggregatesWriter {
    pool: SqlitePool,
    changes: std::sync::Arc<tokio::sync::watch::Sender<u64>>,
}

impl AggregateWriter for AggregatesWriter {
    async fn write(
        &self,
        deltas: &[AggregateDelta],
        sketches: &[SketchDelta],
        adoption: &[AdoptionDelta],
        at: DateTime<Utc>,
    ) -> StoreResult<()> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        for d in sketches {
            let current: Option<String> = sqlx::query_scalar(
                    "SELECT counts FROM sketches WHERE rollout = ? AND wave = ? AND arm = ? AND metric = ?",
                )
                .bind(&d.rollout)
                .bind(d.wave)
                .bind(&d.arm)
                .bind(&d.metric)
                .fetch_optional(&mut *tx)
                .await?;
            let mut counts: std::collections::BTreeMap<i32, u64> = match current {
                Some(text) => serde_json::from_str(&text)
                    .map_err(|e| StoreError::Corrupt(format!("sketch: {e}")))?,
                None => Default::default(),
            };
            for (k, v) in &d.counts {
                *counts.entry(*k).or_default() += v;
            }
            let text =
                serde_json::to_string(&counts).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            sqlx::query(
                    "INSERT INTO sketches (rollout, wave, arm, metric, counts) VALUES (?, ?, ?, ?, ?)
                     ON CONFLICT (rollout, wave, arm, metric) DO UPDATE SET counts = excluded.counts",
                )
                .bind(&d.rollout)
                .bind(d.wave)
                .bind(&d.arm)
                .bind(&d.metric)
                .bind(&text)
                .execute(&mut *tx)
                .await?;
        }
        for d in deltas {
            sqlx::query(
                    "INSERT INTO aggregates (rollout, wave, arm, metric, n, sum, sumsq, last_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                     ON CONFLICT (rollout, wave, arm, metric) DO UPDATE SET n = n + excluded.n, sum = sum + excluded.sum,
                     sumsq = sumsq + excluded.sumsq, last_at = excluded.last_at",
                )
                .bind(&d.rollout)
                .bind(d.wave)
                .bind(&d.arm)
                .bind(&d.metric)
                .bind(d.n)
                .bind(d.sum)
                .bind(d.sumsq)
                .bind(ts(at))
                .execute(&mut *tx)
                .await?;
        }
        // Chunks of 1000 rows keep each statement under SQLite's bound-parameter limit.
        for chunk in adoption.chunks(1000) {
            let mut q = sqlx::QueryBuilder::<Sqlite>::new(
                "INSERT INTO adoption_users (rollout, user_key, cohort, exposed_day, task_day) ",
            );
            q.push_values(chunk, |mut b, a| {
                b.push_bind(&a.rollout)
                    .push_bind(&a.user)
                    .push_bind(&a.cohort)
                    .push_bind(a.exposed_day)
                    .push_bind(a.task_day);
            });
            q.push(
                " ON CONFLICT (rollout, user_key) DO UPDATE SET cohort = excluded.cohort,
                 exposed_day = max(adoption_users.exposed_day, excluded.exposed_day),
                 task_day = coalesce(max(adoption_users.task_day, excluded.task_day), adoption_users.task_day, excluded.task_day)",
            );
            q.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
        self.changes.send_modify(|n| *n = n.wrapping_add(1));
        Ok(())
    }
}

/// Appends one audit entry inside `tx`.
async fn append_audit(
    tx: &mut Transaction<'_, Sqlite>,
    event: &AuditEvent,
) -> StoreResult<ChainedEntry> {
    let last = sqlx::query("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
        .fetch_optional(&mut **tx)
        .await?;
    let (seq, prev) = match last {
        Some(row) => (row.try_get::<i64, _>(0)?, row.try_get::<String, _>(1)?),
        None => (0, GENESIS_HASH.to_owned()),
    };
    let entry = event.chain(seq, &prev);
    sqlx::query(
        "INSERT INTO audit_log (seq, prev_hash, hash, canonical, at, actor, action, target) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(entry.seq)
    .bind(&entry.prev_hash)
    .bind(&entry.hash)
    .bind(&entry.canonical)
    .bind(&event.at)
    .bind(&event.actor)
    .bind(&event.action)
    .bind(&event.target)
    .execute(&mut **tx)
    .await?;
    Ok(entry)
}

fn audit_event(
    change: &Change,
    action: String,
    target: String,
    details: serde_json::Value,
) -> AuditEvent {
    AuditEvent {
        at: ts(change.at),
        actor: change.actor.clone(),
        action,
        target,
        reason: change.reason.clone(),
        details,
    }
}

fn audit_from_row(r: &sqlx::sqlite::SqliteRow) -> StoreResult<AuditRow> {
    Ok(AuditRow {
        entry: ChainedEntry {
            seq: r.try_get(0)?,
            prev_hash: r.try_get(1)?,
            hash: r.try_get(2)?,
            canonical: r.try_get(3)?,
        },
        at: r.try_get(4)?,
        actor: r.try_get(5)?,
        action: r.try_get(6)?,
        target: r.try_get(7)?,
    })
}

fn head_from_row(row: &sqlx::sqlite::SqliteRow) -> StoreResult<Head> {
    Ok(Head {
        key: row.try_get("key")?,
        version: row.try_get("version")?,
        spec: parse_json(&row.try_get::<String, _>("spec")?)?,
        archived: row.try_get::<i64, _>("archived")? != 0,
        updated_at: parse_ts(&row.try_get::<String, _>("updated_at")?)?,
        updated_by: row.try_get("updated_by")?,
    })
}

fn version_from_row(row: &sqlx::sqlite::SqliteRow) -> StoreResult<VersionRecord> {
    Ok(VersionRecord {
        key: row.try_get("key")?,
        version: row.try_get("version")?,
        spec: parse_json(&row.try_get::<String, _>("spec")?)?,
        archived: row.try_get::<i64, _>("archived")? != 0,
        actor: row.try_get("actor")?,
        action: row.try_get("action")?,
        reason: row.try_get("reason")?,
        created_at: parse_ts(&row.try_get::<String, _>("created_at")?)?,
    })
}

fn rollout_from_row(row: &sqlx::sqlite::SqliteRow) -> StoreResult<RolloutRow> {
    Ok(RolloutRow {
        id: row.try_get("id")?,
        plan: row.try_get("plan")?,
        flag: row.try_get("flag")?,
        environment: row.try_get("environment")?,
        state: row.try_get("state")?,
        rev: row.try_get("rev")?,
        doc: parse_json(&row.try_get::<String, _>("doc")?)?,
        created_at: parse_ts(&row.try_get::<String, _>("created_at")?)?,
        updated_at: parse_ts(&row.try_get::<String, _>("updated_at")?)?,
    })
}

fn token_from_row(row: &sqlx::sqlite::SqliteRow) -> StoreResult<TokenRecord> {
    let kind: String = row.try_get("kind")?;
    let envs: String = row.try_get("environments")?;
    Ok(TokenRecord {
        id: row.try_get("id")?,
        hash: row.try_get("hash")?,
        kind: TokenKind::parse(&kind)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown token kind {kind:?}")))?,
        environments: serde_json::from_str(&envs)
            .map_err(|e| StoreError::Corrupt(format!("token scope: {e}")))?,
        principal: row.try_get("principal")?,
        created_at: parse_ts(&row.try_get::<String, _>("created_at")?)?,
        created_by: row.try_get("created_by")?,
        revoked_at: row
            .try_get::<Option<String>, _>("revoked_at")?
            .map(|s| parse_ts(&s))
            .transpose()?,
    })
}

/// Applies puts inside `tx`: versions, heads, audit entries and the revision bump.
async fn apply_puts(
    tx: &mut Transaction<'_, Sqlite>,
    puts: &[Put],
    change: &Change,
    owner: Option<&str>,
) -> StoreResult<Vec<PutOutcome>> {
    // While a rollout is live it owns its flag: only its own writes may change it, or a
    // rollback would silently drop the edit.
    for put in puts.iter().filter(|p| p.kind == Kind::Flag) {
        let live: Option<String> = sqlx::query_scalar(
            "SELECT id FROM rollouts WHERE flag = ? AND state IN ('running', 'paused') LIMIT 1",
        )
        .bind(&put.key)
        .fetch_optional(&mut **tx)
        .await?;
        if let Some(id) = live.filter(|id| Some(id.as_str()) != owner) {
            return Err(StoreError::Conflict(format!(
                "flag {:?} is being rolled out by {id}; edits are refused until it completes or rolls back",
                put.key
            )));
        }
    }
    let mut outcomes = Vec::with_capacity(puts.len());
    let mut any_changed = false;
    for put in puts {
        let sql = format!("SELECT version, spec, archived FROM {} WHERE key = ?", put.kind.table());
        let current =
            sqlx::query(AssertSqlSafe(sql)).bind(&put.key).fetch_optional(&mut **tx).await?;
        let (cur_version, cur_spec, cur_archived) = match &current {
            Some(r) => (
                r.try_get::<i64, _>(0)?,
                Some(r.try_get::<String, _>(1)?),
                r.try_get::<i64, _>(2)? != 0,
            ),
            None => (0, None, false),
        };
        if let Some(expected) = put.expected_version.filter(|e| *e != cur_version) {
            return Err(StoreError::Conflict(format!(
                "{} {:?} is at version {cur_version}, not {expected}; reload and retry",
                put.kind.as_str(),
                put.key
            )));
        }
        let spec_text =
            serde_json::to_string(&put.spec).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        if cur_spec.as_deref() == Some(spec_text.as_str()) && cur_archived == put.archived {
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
            if current.is_none() {
                "create".into()
            } else if put.archived && !cur_archived {
                "archive".into()
            } else if !put.archived && cur_archived {
                "unarchive".into()
            } else {
                "update".into()
            }
        });
        let action = format!("{}.{verb}", put.kind.as_str());
        let insert = format!(
            "INSERT INTO {} (key, version, spec, archived, actor, action, reason, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            put.kind.versions_table()
        );
        sqlx::query(AssertSqlSafe(insert))
            .bind(&put.key)
            .bind(version)
            .bind(&spec_text)
            .bind(i64::from(put.archived))
            .bind(&change.actor)
            .bind(&action)
            .bind(&change.reason)
            .bind(ts(change.at))
            .execute(&mut **tx)
            .await?;
        let upsert = format!(
            "INSERT INTO {} (key, version, spec, archived, updated_at, updated_by) VALUES (?, ?, ?, ?, ?, ?)
             ON CONFLICT(key) DO UPDATE SET version = excluded.version, spec = excluded.spec,
             archived = excluded.archived, updated_at = excluded.updated_at, updated_by = excluded.updated_by",
            put.kind.table()
        );
        sqlx::query(AssertSqlSafe(upsert))
            .bind(&put.key)
            .bind(version)
            .bind(&spec_text)
            .bind(i64::from(put.archived))
            .bind(ts(change.at))
            .bind(&change.actor)
            .execute(&mut **tx)
            .await?;
        let mut details = serde_json::json!({
            "key": put.key,
            "version": version,
            "previous_version": cur_version,
            "archived": put.archived,
            "content_sha256": wavegate_core::audit::sha256_hex(&spec_text),
        });
        if let (Some(obj), Some(extra)) = (details.as_object_mut(), put.details.as_object()) {
            obj.extend(extra.clone());
        }
        append_audit(
            tx,
            &audit_event(change, action, format!("{}:{}", put.kind.as_str(), put.key), details),
        )
        .await?;
        any_changed = true;
        outcomes.push(PutOutcome { kind: put.kind, key: put.key.clone(), version, changed: true });
    }
    if any_changed {
        sqlx::query("UPDATE meta SET value = value + 1 WHERE key = 'revision'")
            .execute(&mut **tx)
            .await?;
    }
    Ok(outcomes)
}

fn delivery_from_row(r: &sqlx::sqlite::SqliteRow) -> StoreResult<Delivery> {
    Ok(Delivery {
        id: r.try_get("id")?,
        audit_seq: r.try_get("audit_seq")?,
        target: r.try_get("target")?,
        audience: r.try_get("audience")?,
        event: r.try_get("event")?,
        rollout: r.try_get("rollout")?,
        environment: r.try_get("environment")?,
        status: r.try_get("status")?,
        attempts: r.try_get("attempts")?,
        last_error: r.try_get("last_error")?,
        http_status: r.try_get("http_status")?,
        next_at: parse_ts(&r.try_get::<String, _>("next_at")?)?,
        payload: parse_json(&r.try_get::<String, _>("payload")?)?,
        created_at: parse_ts(&r.try_get::<String, _>("created_at")?)?,
        updated_at: parse_ts(&r.try_get::<String, _>("updated_at")?)?,
    })
}

#[async_trait]
impl Store for SqliteStore {
    fn changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changes.subscribe()
    }

    async fn environments(&self) -> StoreResult<Vec<Environment>> {
        let rows = sqlx::query("SELECT name, position FROM environments ORDER BY position")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok(Environment { name: r.try_get(0)?, position: r.try_get(1)? }))
            .collect()
    }

    async fn create_environment(&self, name: &str, change: &Change) -> StoreResult<Environment> {
        let mut tx = self.begin().await?;
        let exists = sqlx::query("SELECT 1 FROM environments WHERE name = ?")
            .bind(name)
            .fetch_optional(&mut *tx)
            .await?;
        if exists.is_some() {
            return Err(StoreError::Conflict(format!("environment {name:?} already exists")));
        }
        let position: i64 =
            sqlx::query_scalar("SELECT COALESCE(MAX(position), 0) + 1 FROM environments")
                .fetch_one(&mut *tx)
                .await?;
        sqlx::query("INSERT INTO environments (name, position, created_at) VALUES (?, ?, ?)")
            .bind(name)
            .bind(position)
            .bind(ts(change.at))
            .execute(&mut *tx)
            .await?;
        append_audit(
            &mut tx,
            &audit_event(
                change,
                "environment.create".into(),
                format!("environment:{name}"),
                serde_json::json!({"position": position}),
            ),
        )
        .await?;
        self.commit(tx).await?;
        Ok(Environment { name: name.to_owned(), position })
    }

    async fn list(&self, kind: Kind, include_archived: bool) -> StoreResult<Vec<Head>> {
        let sql = format!(
            "SELECT key, version, spec, archived, updated_at, updated_by FROM {} {} ORDER BY key",
            kind.table(),
            if include_archived { "" } else { "WHERE archived = 0" }
        );
        let rows = sqlx::query(AssertSqlSafe(sql)).fetch_all(&self.pool).await?;
        rows.iter().map(head_from_row).collect()
    }

    async fn get(&self, kind: Kind, key: &str) -> StoreResult<Option<Head>> {
        let sql = format!(
            "SELECT key, version, spec, archived, updated_at, updated_by FROM {} WHERE key = ?",
            kind.table()
        );
        let row = sqlx::query(AssertSqlSafe(sql)).bind(key).fetch_optional(&self.pool).await?;
        row.as_ref().map(head_from_row).transpose()
    }

    async fn apply(&self, puts: &[Put], change: &Change) -> StoreResult<Vec<PutOutcome>> {
        let mut tx = self.begin().await?;
        let outcomes = apply_puts(&mut tx, puts, change, None).await?;
        self.commit(tx).await?;
        Ok(outcomes)
    }

    async fn versions(&self, kind: Kind, key: &str) -> StoreResult<Vec<VersionRecord>> {
        let sql = format!(
            "SELECT key, version, spec, archived, actor, action, reason, created_at FROM {} WHERE key = ? ORDER BY version",
            kind.versions_table()
        );
        let rows = sqlx::query(AssertSqlSafe(sql)).bind(key).fetch_all(&self.pool).await?;
        rows.iter().map(version_from_row).collect()
    }

    async fn version(
        &self,
        kind: Kind,
        key: &str,
        version: i64,
    ) -> StoreResult<Option<VersionRecord>> {
        let sql = format!(
            "SELECT key, version, spec, archived, actor, action, reason, created_at FROM {} WHERE key = ? AND version = ?",
            kind.versions_table()
        );
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(key)
            .bind(version)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(version_from_row).transpose()
    }

    async fn revision(&self) -> StoreResult<i64> {
        Ok(sqlx::query_scalar("SELECT value FROM meta WHERE key = 'revision'")
            .fetch_one(&self.pool)
            .await?)
    }

    async fn create_token(&self, token: &NewToken, change: &Change) -> StoreResult<TokenRecord> {
        let mut tx = self.begin().await?;
        let envs = serde_json::to_string(&token.environments)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        sqlx::query(
            "INSERT INTO tokens (id, hash, kind, environments, principal, created_at, created_by) VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&token.id)
        .bind(&token.hash)
        .bind(token.kind.as_str())
        .bind(&envs)
        .bind(&token.principal)
        .bind(ts(change.at))
        .bind(&change.actor)
        .execute(&mut *tx)
        .await?;
        append_audit(
            &mut tx,
            &audit_event(
                change,
                "token.create".into(),
                format!("token:{}", token.id),
                serde_json::json!({"kind": token.kind.as_str(), "environments": token.environments, "principal": token.principal}),
            ),
        )
        .await?;
        self.commit(tx).await?;
        Ok(TokenRecord {
            id: token.id.clone(),
            hash: token.hash.clone(),
            kind: token.kind,
            environments: token.environments.clone(),
            principal: token.principal.clone(),
            created_at: parse_ts(&ts(change.at))?,
            created_by: change.actor.clone(),
            revoked_at: None,
        })
    }

    async fn token_by_hash(&self, hash: &str) -> StoreResult<Option<TokenRecord>> {
        let row = sqlx::query("SELECT * FROM tokens WHERE hash = ? AND revoked_at IS NULL")
            .bind(hash)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(token_from_row).transpose()
    }

    async fn tokens(&self) -> StoreResult<Vec<TokenRecord>> {
        let rows = sqlx::query("SELECT * FROM tokens ORDER BY created_at, id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(token_from_row).collect()
    }

    async fn revoke_token(&self, id: &str, change: &Change) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        let done =
            sqlx::query("UPDATE tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL")
                .bind(ts(change.at))
                .bind(id)
                .execute(&mut *tx)
                .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("live token {id:?}")));
        }
        append_audit(
            &mut tx,
            &audit_event(
                change,
                "token.revoke".into(),
                format!("token:{id}"),
                serde_json::json!({}),
            ),
        )
        .await?;
        self.commit(tx).await?;
        Ok(())
    }

    async fn has_admin_token(&self) -> StoreResult<bool> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM tokens WHERE kind = 'admin' AND revoked_at IS NULL",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(n > 0)
    }

    async fn audit(&self, after: i64, limit: i64) -> StoreResult<Vec<AuditRow>> {
        let rows = sqlx::query(
            "SELECT seq, prev_hash, hash, canonical, at, actor, action, target FROM audit_log WHERE seq > ? ORDER BY seq LIMIT ?",
        )
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(audit_from_row).collect()
    }

    async fn audit_head(&self) -> StoreResult<i64> {
        Ok(sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) FROM audit_log")
            .fetch_one(&self.pool)
            .await?)
    }

    async fn audit_of(&self, target: &str, limit: i64) -> StoreResult<Vec<AuditRow>> {
        let rows = sqlx::query(
            "SELECT * FROM (SELECT seq, prev_hash, hash, canonical, at, actor, action, target FROM audit_log
             WHERE target = ? ORDER BY seq DESC LIMIT ?) ORDER BY seq",
        )
        .bind(target)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(audit_from_row).collect()
    }

    async fn export(&self) -> StoreResult<Backup> {
        // One read transaction: every table from the same snapshot.
        let mut tx = self.pool.begin().await?;
        // (SQLite: a read transaction in WAL mode sees one snapshot.)
        let mut tables = indexmap::IndexMap::new();
        for (name, cols, order) in TABLES {
            let names: Vec<&str> = cols.iter().map(|(c, _)| *c).collect();
            let sql = format!("SELECT {} FROM {name} ORDER BY {order}", names.join(", "));
            let rows = sqlx::query(AssertSqlSafe(sql)).fetch_all(&mut *tx).await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in &rows {
                let mut values = Vec::with_capacity(cols.len());
                for (i, (_, ty)) in cols.iter().enumerate() {
                    values.push(match ty {
                        Col::Text => serde_json::Value::String(r.try_get(i)?),
                        Col::NullText => r
                            .try_get::<Option<String>, _>(i)?
                            .map_or(serde_json::Value::Null, serde_json::Value::String),
                        Col::Int => serde_json::json!(r.try_get::<i64, _>(i)?),
                        Col::NullInt => r
                            .try_get::<Option<i64>, _>(i)?
                            .map_or(serde_json::Value::Null, |n| serde_json::json!(n)),
                        Col::Real => serde_json::json!(r.try_get::<f64, _>(i)?),
                    });
                }
                out.push(values);
            }
            tables.insert((*name).to_owned(), out);
        }
        tx.rollback().await?;
        Ok(Backup {
            format: crate::backup::FORMAT.into(),
            version: crate::backup::VERSION,
            created_at: ts(Utc::now()),
            source: "sqlite".into(),
            tables,
        })
    }

    async fn import(&self, backup: &Backup) -> StoreResult<()> {
        backup.validate().map_err(|e| StoreError::Invalid(format!("backup: {e}")))?;
        let mut tx = self.begin().await?;
        for (name, _, _) in TABLES.iter().filter(|(t, _, _)| !SEEDED.contains(t)) {
            let sql = format!("SELECT COUNT(*) FROM {name}");
            let n: i64 = sqlx::query_scalar(AssertSqlSafe(sql)).fetch_one(&mut *tx).await?;
            if n > 0 {
                return Err(StoreError::Conflict(format!(
                    "the target database is not empty ({name} has {n} rows); restore needs a new database"
                )));
            }
        }
        for name in SEEDED {
            sqlx::query(AssertSqlSafe(format!("DELETE FROM {name}"))).execute(&mut *tx).await?;
        }
        for (name, cols, _) in TABLES {
            let names: Vec<&str> = cols.iter().map(|(c, _)| *c).collect();
            let places = vec!["?"; cols.len()].join(", ");
            let sql = format!("INSERT INTO {name} ({}) VALUES ({places})", names.join(", "));
            for row in backup.rows(name) {
                let mut q = sqlx::query(AssertSqlSafe(sql.clone()));
                for (v, (_, ty)) in row.iter().zip(cols.iter()) {
                    q = match ty {
                        Col::Text | Col::NullText => q.bind(v.as_str().map(str::to_owned)),
                        Col::Int | Col::NullInt => q.bind(v.as_i64()),
                        Col::Real => q.bind(v.as_f64()),
                    };
                }
                q.execute(&mut *tx).await?;
            }
        }
        self.commit(tx).await?;
        Ok(())
    }

    async fn lead(&self, holder: &str, at: DateTime<Utc>) -> StoreResult<Option<i64>> {
        let mut led = self.led.lock().await;
        if let Some(mine) = *led {
            let current: i64 = sqlx::query_scalar("SELECT epoch FROM leader WHERE id = 1")
                .fetch_one(&self.pool)
                .await?;
            if current == mine {
                return Ok(Some(mine));
            }
            // Another process took the file over; take it back on the next call.
            *led = None;
            return Ok(None);
        }
        let mut tx = self.begin().await?;
        let epoch: i64 = sqlx::query_scalar(
            "UPDATE leader SET epoch = epoch + 1, holder = ?, since = ? WHERE id = 1 RETURNING epoch",
        )
        .bind(holder)
        .bind(ts(at))
        .fetch_one(&mut *tx)
        .await?;
        let change = Change { actor: "controller".into(), reason: None, at };
        append_audit(
            &mut tx,
            &audit_event(
                &change,
                "controller.lead".into(),
                "controller".into(),
                serde_json::json!({"holder": holder, "epoch": epoch}),
            ),
        )
        .await?;
        self.commit(tx).await?;
        *led = Some(epoch);
        Ok(Some(epoch))
    }

    async fn rollouts(&self, live_only: bool) -> StoreResult<Vec<RolloutRow>> {
        let sql = if live_only {
            "SELECT * FROM rollouts WHERE state IN ('running', 'paused') ORDER BY created_at DESC, id"
        } else {
            "SELECT * FROM rollouts ORDER BY created_at DESC, id"
        };
        let rows = sqlx::query(sql).fetch_all(&self.pool).await?;
        rows.iter().map(rollout_from_row).collect()
    }

    async fn rollout(&self, id: &str) -> StoreResult<Option<RolloutRow>> {
        let row = sqlx::query("SELECT * FROM rollouts WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(rollout_from_row).transpose()
    }

    async fn write_rollout(&self, write: &RolloutWrite, change: &Change) -> StoreResult<i64> {
        let mut tx = self.begin().await?;
        if let Some(mine) = write.leader_epoch {
            let current: i64 = sqlx::query_scalar("SELECT epoch FROM leader WHERE id = 1")
                .fetch_one(&mut *tx)
                .await?;
            if current != mine {
                return Err(StoreError::Conflict(format!(
                    "this replica no longer leads the controller (its epoch {mine}, now {current})"
                )));
            }
        }
        let r = &write.row;
        let doc = serde_json::to_string(&r.doc).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let new_rev = r.rev + 1;
        if r.rev == 0 {
            let live: Option<(String, String)> = sqlx::query_as(
                "SELECT id, environment FROM rollouts WHERE flag = ? AND state IN ('running', 'paused')",
            )
            .bind(&r.flag)
            .fetch_optional(&mut *tx)
            .await?;
            if let Some((other, env)) = live {
                return Err(StoreError::Conflict(format!(
                    "rollout {other} of flag {:?} (in {env}) is still live; finish or roll it back first",
                    r.flag
                )));
            }
            sqlx::query(
                "INSERT INTO rollouts (id, plan, flag, environment, state, rev, doc, created_at, updated_at)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(&r.id)
            .bind(&r.plan)
            .bind(&r.flag)
            .bind(&r.environment)
            .bind(&r.state)
            .bind(new_rev)
            .bind(&doc)
            .bind(ts(change.at))
            .bind(ts(change.at))
            .execute(&mut *tx)
            .await?;
        } else {
            let done = sqlx::query("UPDATE rollouts SET state = ?, rev = ?, doc = ?, updated_at = ? WHERE id = ? AND rev = ?")
                .bind(&r.state)
                .bind(new_rev)
                .bind(&doc)
                .bind(ts(change.at))
                .bind(&r.id)
                .bind(r.rev)
                .execute(&mut *tx)
                .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::Conflict(format!(
                    "rollout {} changed meanwhile; reload and retry",
                    r.id
                )));
            }
        }
        if let Some(put) = &write.flag_put {
            apply_puts(&mut tx, std::slice::from_ref(put), change, Some(&r.id)).await?;
        }
        for v in &write.verdicts {
            let report =
                serde_json::to_string(&v.report).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            sqlx::query("INSERT INTO verdicts (rollout, wave, kind, name, verdict, report, at) VALUES (?, ?, ?, ?, ?, ?, ?)")
                .bind(&v.rollout)
                .bind(v.wave)
                .bind(&v.kind)
                .bind(&v.name)
                .bind(&v.verdict)
                .bind(&report)
                .bind(ts(v.at))
                .execute(&mut *tx)
                .await?;
        }
        for (action, target, details) in &write.audit {
            append_audit(
                &mut tx,
                &audit_event(change, action.clone(), target.clone(), details.clone()),
            )
            .await?;
        }
        self.commit(tx).await?;
        Ok(new_rev)
    }

    async fn verdicts(&self, rollout: &str, limit: i64) -> StoreResult<Vec<VerdictRow>> {
        let rows = sqlx::query("SELECT * FROM verdicts WHERE rollout = ? ORDER BY id DESC LIMIT ?")
            .bind(rollout)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(VerdictRow {
                    id: r.try_get("id")?,
                    rollout: r.try_get("rollout")?,
                    wave: r.try_get("wave")?,
                    kind: r.try_get("kind")?,
                    name: r.try_get("name")?,
                    verdict: r.try_get("verdict")?,
                    report: parse_json(&r.try_get::<String, _>("report")?)?,
                    at: parse_ts(&r.try_get::<String, _>("at")?)?,
                })
            })
            .collect()
    }

    async fn add_aggregates(
        &self,
        deltas: &[AggregateDelta],
        sketches: &[SketchDelta],
        adoption: &[AdoptionDelta],
        at: DateTime<Utc>,
    ) -> StoreResult<()> {
        let writer = || AggregatesWriter { pool: self.pool.clone(), changes: self.changes.clone() };
        self.aggregates.add(writer, deltas, sketches, adoption, at).await
    }

    async fn prune_adoption(&self, before_day: i64) -> StoreResult<u64> {
        let done = sqlx::query("DELETE FROM adoption_users WHERE exposed_day < ?")
            .bind(before_day)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    async fn adoption(&self, rollout: &str, since_day: i64) -> StoreResult<Vec<AdoptionCount>> {
        let rows = sqlx::query(
            "SELECT cohort, COUNT(*) AS exposed, SUM(CASE WHEN task_day >= ? THEN 1 ELSE 0 END) AS adopted
             FROM adoption_users WHERE rollout = ? AND exposed_day >= ? GROUP BY cohort ORDER BY cohort",
        )
        .bind(since_day)
        .bind(rollout)
        .bind(since_day)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(AdoptionCount {
                    cohort: r.try_get("cohort")?,
                    exposed: r.try_get("exposed")?,
                    adopted: r.try_get("adopted")?,
                })
            })
            .collect()
    }

    async fn aggregates(&self, rollout: &str, wave: i64) -> StoreResult<Vec<AggregateRow>> {
        let rows = sqlx::query(
            "SELECT * FROM aggregates WHERE rollout = ? AND wave = ? ORDER BY arm, metric",
        )
        .bind(rollout)
        .bind(wave)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(AggregateRow {
                    arm: r.try_get("arm")?,
                    metric: r.try_get("metric")?,
                    n: r.try_get("n")?,
                    sum: r.try_get("sum")?,
                    sumsq: r.try_get("sumsq")?,
                    last_at: parse_ts(&r.try_get::<String, _>("last_at")?)?,
                })
            })
            .collect()
    }

    async fn sketches(&self, rollout: &str, wave: i64) -> StoreResult<Vec<SketchDelta>> {
        let rows = sqlx::query(
            "SELECT * FROM sketches WHERE rollout = ? AND wave = ? ORDER BY arm, metric",
        )
        .bind(rollout)
        .bind(wave)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(SketchDelta {
                    rollout: r.try_get("rollout")?,
                    wave: r.try_get("wave")?,
                    arm: r.try_get("arm")?,
                    metric: r.try_get("metric")?,
                    counts: serde_json::from_str(&r.try_get::<String, _>("counts")?)
                        .map_err(|e| StoreError::Corrupt(format!("sketch: {e}")))?,
                })
            })
            .collect()
    }

    async fn add_drill(&self, d: &DrillRow, change: &Change) -> StoreResult<i64> {
        let mut tx = self.begin().await?;
        let report =
            serde_json::to_string(&d.report).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO drills (plan, plan_version, scenario, passed, report, at, actor) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(&d.plan)
        .bind(d.plan_version)
        .bind(&d.scenario)
        .bind(i64::from(d.passed))
        .bind(&report)
        .bind(ts(change.at))
        .bind(&change.actor)
        .fetch_one(&mut *tx)
        .await?;
        append_audit(
            &mut tx,
            &audit_event(
                change,
                "plan.drill".into(),
                format!("plan:{}", d.plan),
                serde_json::json!({"drill": id, "plan_version": d.plan_version, "scenario": d.scenario, "passed": d.passed}),
            ),
        )
        .await?;
        self.commit(tx).await?;
        Ok(id)
    }

    async fn add_feedback(&self, rows: &[FeedbackRow]) -> StoreResult<Vec<i64>> {
        let mut tx = self.begin().await?;
        let mut ids = Vec::with_capacity(rows.len());
        for f in rows {
            let id: i64 = sqlx::query_scalar("INSERT INTO feedback (release, category, cohort, sentiment, body, at, principal) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id")
                .bind(&f.release)
                .bind(&f.category)
                .bind(&f.cohort)
                .bind(&f.sentiment)
                .bind(&f.body)
                .bind(ts(f.at))
                .bind(&f.principal)
                .fetch_one(&mut *tx)
                .await?;
            ids.push(id);
        }
        self.commit(tx).await?;
        Ok(ids)
    }

    async fn feedback(&self, release: &str) -> StoreResult<Vec<FeedbackRow>> {
        let rows = sqlx::query("SELECT * FROM feedback WHERE release = ? ORDER BY id")
            .bind(release)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(FeedbackRow {
                    id: r.try_get("id")?,
                    release: r.try_get("release")?,
                    category: r.try_get("category")?,
                    cohort: r.try_get("cohort")?,
                    sentiment: r.try_get("sentiment")?,
                    body: r.try_get("body")?,
                    at: parse_ts(&r.try_get::<String, _>("at")?)?,
                    principal: r.try_get("principal")?,
                })
            })
            .collect()
    }

    async fn drills(&self, plan: &str) -> StoreResult<Vec<DrillRow>> {
        let rows = sqlx::query("SELECT * FROM drills WHERE plan = ? ORDER BY id DESC")
            .bind(plan)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(DrillRow {
                    id: r.try_get("id")?,
                    plan: r.try_get("plan")?,
                    plan_version: r.try_get("plan_version")?,
                    scenario: r.try_get("scenario")?,
                    passed: r.try_get::<i64, _>("passed")? != 0,
                    report: parse_json(&r.try_get::<String, _>("report")?)?,
                    at: parse_ts(&r.try_get::<String, _>("at")?)?,
                    actor: r.try_get("actor")?,
                })
            })
            .collect()
    }
    async fn notify_targets(&self) -> StoreResult<Vec<NotifyTargetRow>> {
        let rows =
            sqlx::query("SELECT * FROM notify_targets ORDER BY name").fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| {
                Ok(NotifyTargetRow {
                    name: r.try_get("name")?,
                    spec: parse_json(&r.try_get::<String, _>("spec")?)?,
                    since_seq: r.try_get("since_seq")?,
                    created_at: parse_ts(&r.try_get::<String, _>("created_at")?)?,
                    updated_at: parse_ts(&r.try_get::<String, _>("updated_at")?)?,
                })
            })
            .collect()
    }

    async fn put_notify_target(
        &self,
        name: &str,
        spec: &serde_json::Value,
        audit_details: &serde_json::Value,
        change: &Change,
    ) -> StoreResult<bool> {
        let mut tx = self.begin().await?;
        let text = serde_json::to_string(spec).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let existed: Option<String> =
            sqlx::query_scalar("SELECT spec FROM notify_targets WHERE name = ?")
                .bind(name)
                .fetch_optional(&mut *tx)
                .await?;
        if existed.as_deref() == Some(text.as_str()) {
            return Ok(false);
        }
        let entry = append_audit(
            &mut tx,
            &audit_event(
                change,
                "notify.target".into(),
                format!("notify:{name}"),
                serde_json::json!({"target": audit_details, "created": existed.is_none()}),
            ),
        )
        .await?;
        sqlx::query(
            "INSERT INTO notify_targets (name, spec, since_seq, created_at, updated_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET spec = excluded.spec, updated_at = excluded.updated_at",
        )
        .bind(name)
        .bind(&text)
        .bind(entry.seq)
        .bind(ts(change.at))
        .bind(ts(change.at))
        .execute(&mut *tx)
        .await?;
        self.commit(tx).await?;
        Ok(existed.is_none())
    }

    async fn delete_notify_target(&self, name: &str, change: &Change) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        let n = sqlx::query("DELETE FROM notify_targets WHERE name = ?")
            .bind(name)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if n == 0 {
            return Err(StoreError::NotFound(format!("notification target {name:?}")));
        }
        append_audit(
            &mut tx,
            &audit_event(
                change,
                "notify.target.remove".into(),
                format!("notify:{name}"),
                serde_json::json!({}),
            ),
        )
        .await?;
        self.commit(tx).await?;
        Ok(())
    }

    async fn notify_cursor(&self) -> StoreResult<i64> {
        let v: Option<i64> =
            sqlx::query_scalar("SELECT value FROM meta WHERE key = 'notify_cursor'")
                .fetch_optional(&self.pool)
                .await?;
        Ok(v.unwrap_or(0))
    }

    async fn enqueue_deliveries(&self, cursor: i64, rows: &[NewDelivery]) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        for d in rows {
            let payload = serde_json::to_string(&d.payload)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            sqlx::query(
                "INSERT INTO notify_deliveries (audit_seq, target, audience, event, rollout, environment, status, attempts, next_at, payload, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, 'pending', 0, ?, ?, ?, ?) ON CONFLICT (audit_seq, target) DO NOTHING",
            )
            .bind(d.audit_seq)
            .bind(&d.target)
            .bind(&d.audience)
            .bind(&d.event)
            .bind(&d.rollout)
            .bind(&d.environment)
            .bind(ts(d.at))
            .bind(&payload)
            .bind(ts(d.at))
            .bind(ts(d.at))
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query(
            "INSERT INTO meta (key, value) VALUES ('notify_cursor', ?) ON CONFLICT (key) DO UPDATE SET value = MAX(meta.value, excluded.value)",
        )
        .bind(cursor)
        .execute(&mut *tx)
        .await?;
        self.commit(tx).await?;
        Ok(())
    }

    async fn due_deliveries(&self, now: DateTime<Utc>, limit: i64) -> StoreResult<Vec<Delivery>> {
        let rows = sqlx::query(
            "SELECT * FROM notify_deliveries WHERE status = 'pending' AND next_at <= ? ORDER BY next_at, id LIMIT ?",
        )
        .bind(ts(now))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(delivery_from_row).collect()
    }

    async fn record_attempt(&self, a: &DeliveryAttempt) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "UPDATE notify_deliveries SET status = ?, attempts = ?, last_error = ?, http_status = ?, next_at = ?, updated_at = ? WHERE id = ?",
        )
        .bind(&a.status)
        .bind(a.attempts)
        .bind(&a.last_error)
        .bind(a.http_status)
        .bind(ts(a.next_at))
        .bind(ts(a.at))
        .bind(a.id)
        .execute(&mut *tx)
        .await?;
        self.commit(tx).await?;
        Ok(())
    }

    async fn deliveries(&self, q: &DeliveryQuery) -> StoreResult<Vec<Delivery>> {
        let rows = sqlx::query(
            "SELECT * FROM notify_deliveries WHERE (? IS NULL OR status = ?) AND (? IS NULL OR target = ?) AND (? IS NULL OR rollout = ?) ORDER BY id DESC LIMIT ?",
        )
        .bind(&q.status)
        .bind(&q.status)
        .bind(&q.target)
        .bind(&q.target)
        .bind(&q.rollout)
        .bind(&q.rollout)
        .bind(q.limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(delivery_from_row).collect()
    }
}
