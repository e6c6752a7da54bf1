//! Rows to model types, and the stored forms both databases share: timestamps as RFC 3339 text
//! (UTC, milliseconds), JSON as its exact text, booleans as 0/1.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::Row;
use sqlx::any::AnyRow;
use wavegate_core::audit::ChainedEntry;

use crate::{
    AdoptionCount, AggregateRow, AuditRow, Contribution, Delivery, DrillRow, FeedbackRow, Grant,
    Head, IncidentCount, IncidentRow, NotifyTargetRow, Role, RolloutRow, SketchDelta, StoreError,
    StoreResult, TokenKind, TokenRecord, VerdictRow, VersionRecord, WaveCount,
};

/// A timestamp's stored form.
pub(crate) fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A value's stored JSON text.
pub(crate) fn to_text(value: &impl Serialize) -> StoreResult<String> {
    serde_json::to_string(value).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// Decodes stored JSON text; `what` names it in the error.
pub(crate) fn from_text<T: DeserializeOwned>(text: &str, what: &str) -> StoreResult<T> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

pub(crate) fn parse_ts(s: &str) -> StoreResult<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .map(|d| d.with_timezone(&Utc))
        .map_err(|e| StoreError::Corrupt(format!("bad timestamp {s:?}: {e}")))
}

fn text(r: &AnyRow, col: &str) -> StoreResult<String> {
    Ok(r.try_get(col)?)
}

fn at(r: &AnyRow, col: &str) -> StoreResult<DateTime<Utc>> {
    parse_ts(&text(r, col)?)
}

fn json(r: &AnyRow, col: &str) -> StoreResult<serde_json::Value> {
    from_text(&text(r, col)?, "bad JSON")
}

fn flag(r: &AnyRow, col: &str) -> StoreResult<bool> {
    Ok(r.try_get::<i64, _>(col)? != 0)
}

pub(crate) fn audit(r: &AnyRow) -> StoreResult<AuditRow> {
    let entry = ChainedEntry {
        seq: r.try_get("seq")?,
        prev_hash: r.try_get("prev_hash")?,
        hash: r.try_get("hash")?,
        canonical: r.try_get("canonical")?,
    };
    // What is shown comes from the bytes the chain covers; the columns are an index.
    let doc: serde_json::Value = serde_json::from_str(&entry.canonical).unwrap_or_default();
    let mut fields = [
        ("at", String::new()),
        ("actor", String::new()),
        ("action", String::new()),
        ("target", String::new()),
    ];
    let mut forged = Vec::new();
    for (name, value) in &mut fields {
        let column: String = r.try_get(*name)?;
        let chained = doc.get(*name).and_then(|v| v.as_str()).unwrap_or_default();
        if column != chained {
            forged.push(format!("{name} column {column:?}, entry {chained:?}"));
        }
        *value = chained.to_owned();
    }
    let [(_, at), (_, actor), (_, action), (_, target)] = fields;
    Ok(AuditRow {
        entry,
        at,
        actor,
        action,
        target,
        forged_columns: (!forged.is_empty()).then(|| forged.join("; ")),
    })
}

/// A versioned row's spec and the hash of its stored text. Text that is not JSON (written
/// outside wavegate) reads as `null`, so one damaged row fails its hash check instead of
/// failing every read of its table.
fn spec(r: &AnyRow) -> StoreResult<(serde_json::Value, String)> {
    let raw = text(r, "spec")?;
    let sha = wavegate_core::audit::sha256_hex(&raw);
    Ok((serde_json::from_str(&raw).unwrap_or(serde_json::Value::Null), sha))
}

pub(crate) fn head(r: &AnyRow) -> StoreResult<Head> {
    let (spec, content_sha256) = spec(r)?;
    Ok(Head {
        key: r.try_get("key")?,
        version: r.try_get("version")?,
        spec,
        archived: flag(r, "archived")?,
        updated_at: at(r, "updated_at")?,
        updated_by: r.try_get("updated_by")?,
        content_sha256,
    })
}

pub(crate) fn version(r: &AnyRow) -> StoreResult<VersionRecord> {
    let (spec, content_sha256) = spec(r)?;
    Ok(VersionRecord {
        key: r.try_get("key")?,
        version: r.try_get("version")?,
        spec,
        archived: flag(r, "archived")?,
        actor: r.try_get("actor")?,
        action: r.try_get("action")?,
        reason: r.try_get("reason")?,
        created_at: at(r, "created_at")?,
        content_sha256,
    })
}

pub(crate) fn token(r: &AnyRow) -> StoreResult<TokenRecord> {
    let kind: String = r.try_get("kind")?;
    let kind = TokenKind::parse(&kind)
        .ok_or_else(|| StoreError::Corrupt(format!("unknown token kind {kind:?}")))?;
    let environments: Vec<String> = from_text(&text(r, "environments")?, "token scope")?;
    let roles = match r.try_get::<Option<String>, _>("roles")? {
        Some(t) => from_text(&t, "token roles")?,
        // Minted before roles existed: an admin token was an admin in its environments.
        None if kind == TokenKind::Admin => {
            vec![Grant { role: Role::Admin, environments: environments.clone() }]
        }
        None => Vec::new(),
    };
    Ok(TokenRecord {
        id: r.try_get("id")?,
        hash: r.try_get("hash")?,
        kind,
        environments,
        principal: r.try_get("principal")?,
        created_at: at(r, "created_at")?,
        created_by: r.try_get("created_by")?,
        revoked_at: r
            .try_get::<Option<String>, _>("revoked_at")?
            .as_deref()
            .map(parse_ts)
            .transpose()?,
        user_admin: r.try_get::<i64, _>("user_admin")? != 0,
        evaluate_only: r.try_get::<i64, _>("evaluate_only")? != 0,
        expires_at: r
            .try_get::<Option<String>, _>("expires_at")?
            .as_deref()
            .map(parse_ts)
            .transpose()?,
        roles,
        groups: match r.try_get::<Option<String>, _>("groups")? {
            Some(t) => from_text(&t, "token groups")?,
            None => Vec::new(),
        },
    })
}

pub(crate) fn rollout(r: &AnyRow) -> StoreResult<RolloutRow> {
    Ok(RolloutRow {
        id: r.try_get("id")?,
        plan: r.try_get("plan")?,
        flag: r.try_get("flag")?,
        environment: r.try_get("environment")?,
        state: r.try_get("state")?,
        rev: r.try_get("rev")?,
        doc: json(r, "doc")?,
        created_at: at(r, "created_at")?,
        updated_at: at(r, "updated_at")?,
    })
}

pub(crate) fn verdict(r: &AnyRow) -> StoreResult<VerdictRow> {
    Ok(VerdictRow {
        id: r.try_get("id")?,
        rollout: r.try_get("rollout")?,
        wave: r.try_get("wave")?,
        kind: r.try_get("kind")?,
        name: r.try_get("name")?,
        verdict: r.try_get("verdict")?,
        report: json(r, "report")?,
        at: at(r, "at")?,
    })
}

pub(crate) fn adoption(r: &AnyRow) -> StoreResult<AdoptionCount> {
    Ok(AdoptionCount {
        cohort: r.try_get("cohort")?,
        exposed: r.try_get("exposed")?,
        adopted: r.try_get("adopted")?,
    })
}

/// An aggregate row with the token that contributed it.
pub(crate) fn sourced_aggregate(r: &AnyRow) -> StoreResult<(String, AggregateRow)> {
    let row = AggregateRow {
        arm: r.try_get("arm")?,
        metric: r.try_get("metric")?,
        n: r.try_get("n")?,
        sum: r.try_get("sum")?,
        sumsq: r.try_get("sumsq")?,
        last_at: at(r, "last_at")?,
    };
    Ok((r.try_get("source")?, row))
}

pub(crate) fn contribution(r: &AnyRow) -> StoreResult<Contribution> {
    Ok(Contribution {
        source: r.try_get("source")?,
        wave: r.try_get("wave")?,
        arm: r.try_get("arm")?,
        metric: r.try_get("metric")?,
        n: r.try_get("n")?,
        last_at: at(r, "last_at")?,
    })
}

pub(crate) fn sketch(r: &AnyRow) -> StoreResult<SketchDelta> {
    Ok(SketchDelta {
        rollout: r.try_get("rollout")?,
        wave: r.try_get("wave")?,
        arm: r.try_get("arm")?,
        metric: r.try_get("metric")?,
        counts: from_text(&text(r, "counts")?, "sketch")?,
        source: r.try_get("source")?,
    })
}

pub(crate) fn drill(r: &AnyRow) -> StoreResult<DrillRow> {
    Ok(DrillRow {
        id: r.try_get("id")?,
        plan: r.try_get("plan")?,
        plan_version: r.try_get("plan_version")?,
        scenario: r.try_get("scenario")?,
        passed: flag(r, "passed")?,
        report: json(r, "report")?,
        at: at(r, "at")?,
        actor: r.try_get("actor")?,
    })
}

pub(crate) fn feedback(r: &AnyRow) -> StoreResult<FeedbackRow> {
    Ok(FeedbackRow {
        id: r.try_get("id")?,
        release: r.try_get("release")?,
        category: r.try_get("category")?,
        cohort: r.try_get("cohort")?,
        sentiment: r.try_get("sentiment")?,
        body: r.try_get("body")?,
        at: at(r, "at")?,
        principal: r.try_get("principal")?,
        blocker: flag(r, "blocker")?,
        status: r.try_get("status")?,
        resolution: r.try_get("resolution")?,
        fixed_in: r.try_get("fixed_in")?,
        closed_at: r
            .try_get::<Option<String>, _>("closed_at")?
            .as_deref()
            .map(parse_ts)
            .transpose()?,
        closed_by: r.try_get("closed_by")?,
    })
}

pub(crate) fn wave_count(r: &AnyRow) -> StoreResult<WaveCount> {
    Ok(WaveCount {
        wave: r.try_get("first_wave")?,
        exposed: r.try_get("exposed")?,
        adopted: r.try_get("adopted")?,
    })
}

pub(crate) fn incident(r: &AnyRow) -> StoreResult<IncidentRow> {
    Ok(IncidentRow {
        id: r.try_get("id")?,
        source: r.try_get("source")?,
        external_id: r.try_get("external_id")?,
        kind: r.try_get("kind")?,
        severity: r.try_get("severity")?,
        service: r.try_get("service")?,
        user: r.try_get("user_key")?,
        title: r.try_get("title")?,
        at: at(r, "at")?,
        principal: r.try_get("principal")?,
        arms: Vec::new(),
    })
}

pub(crate) fn incident_count(r: &AnyRow) -> StoreResult<IncidentCount> {
    Ok(IncidentCount {
        arm: r.try_get("arm")?,
        severity: r.try_get("severity")?,
        count: r.try_get("n")?,
    })
}

pub(crate) fn notify_target(r: &AnyRow) -> StoreResult<NotifyTargetRow> {
    Ok(NotifyTargetRow {
        name: r.try_get("name")?,
        spec: json(r, "spec")?,
        since_seq: r.try_get("since_seq")?,
        created_at: at(r, "created_at")?,
        updated_at: at(r, "updated_at")?,
    })
}

pub(crate) fn delivery(r: &AnyRow) -> StoreResult<Delivery> {
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
        next_at: at(r, "next_at")?,
        payload: json(r, "payload")?,
        created_at: at(r, "created_at")?,
        updated_at: at(r, "updated_at")?,
    })
}
