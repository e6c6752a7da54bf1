//! Rows to model types, and the stored forms both databases share: timestamps as RFC 3339 text
//! (UTC, milliseconds), JSON as its exact text, booleans as 0/1.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::Row;
use sqlx::any::AnyRow;
use wavegate_core::audit::ChainedEntry;

use crate::{
    AdoptionCount, AggregateRow, AuditRow, Contribution, Delivery, DeliveryState, DrillRow,
    FeedbackRow, Grant, Head, IncidentArm, IncidentCount, IncidentRow, NewDelivery,
    NotifyTargetRow, Role, RolloutRow, SketchDelta, StoreError, StoreResult, TokenKind,
    TokenRecord, VerdictRow, VersionRecord, WaveCount,
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

/// A column's stored value as the type of a model field: text and numbers as they are,
/// timestamps from RFC 3339 text, JSON from its text, booleans from 0/1.
pub(crate) trait Column: Sized {
    /// The value of column `col` of `r`.
    fn get(r: &AnyRow, col: &str) -> StoreResult<Self>;
}

macro_rules! as_stored {
    ($($t:ty),*) => {$(
        impl Column for $t {
            fn get(r: &AnyRow, col: &str) -> StoreResult<Self> {
                Ok(r.try_get(col)?)
            }
        }
    )*};
}
as_stored!(String, Option<String>, i64, Option<i64>, f64);

impl Column for bool {
    fn get(r: &AnyRow, col: &str) -> StoreResult<bool> {
        Ok(i64::get(r, col)? != 0)
    }
}

impl Column for DateTime<Utc> {
    fn get(r: &AnyRow, col: &str) -> StoreResult<Self> {
        parse_ts(&String::get(r, col)?)
    }
}

impl Column for Option<DateTime<Utc>> {
    fn get(r: &AnyRow, col: &str) -> StoreResult<Self> {
        Option::<String>::get(r, col)?.as_deref().map(parse_ts).transpose()
    }
}

/// Types stored as their JSON text.
trait Json: DeserializeOwned {}
impl Json for serde_json::Value {}
impl Json for std::collections::BTreeMap<i32, u64> {}

impl<T: Json> Column for T {
    fn get(r: &AnyRow, col: &str) -> StoreResult<Self> {
        from_text(&String::get(r, col)?, col)
    }
}

/// Decodes row `r` into a `T { … }`: each field listed from the column of its name (or of the
/// name after `=`), then the fields after `;` as given.
macro_rules! decode {
    ($r:ident => $T:ident { $($field:ident $(= $col:literal)?),* $(; $($rest:tt)*)? }) => {
        StoreResult::Ok($T {
            $($field: Column::get($r, decode!(@col $field $($col)?))?,)* $($($rest)*)?
        })
    };
    (@col $field:ident) => { stringify!($field) };
    (@col $field:ident $col:literal) => { $col };
}

pub(crate) fn audit(r: &AnyRow) -> StoreResult<AuditRow> {
    let entry = decode!(r => ChainedEntry { seq, prev_hash, hash, canonical })?;
    // What is shown comes from the bytes the chain covers; the columns are an index.
    let doc: serde_json::Value = serde_json::from_str(&entry.canonical).unwrap_or_default();
    let mut forged = Vec::new();
    let mut chained = |name: &str| -> StoreResult<String> {
        let (column, chained) = (String::get(r, name)?, doc[name].as_str().unwrap_or_default());
        if column != chained {
            forged.push(format!("{name} column {column:?}, entry {chained:?}"));
        }
        Ok(chained.to_owned())
    };
    let (at, actor) = (chained("at")?, chained("actor")?);
    let (action, target) = (chained("action")?, chained("target")?);
    let forged_columns = (!forged.is_empty()).then(|| forged.join("; "));
    Ok(AuditRow { entry, at, actor, action, target, forged_columns })
}

/// A versioned row's spec and the hash of its stored text. Text that is not JSON (written
/// outside wavegate) reads as `null`, so one damaged row fails its hash check instead of
/// failing every read of its table.
fn spec(r: &AnyRow) -> StoreResult<(serde_json::Value, String)> {
    let raw = String::get(r, "spec")?;
    let sha = wavegate_core::audit::sha256_hex(&raw);
    Ok((serde_json::from_str(&raw).unwrap_or(serde_json::Value::Null), sha))
}

pub(crate) fn head(r: &AnyRow) -> StoreResult<Head> {
    let (spec, content_sha256) = spec(r)?;
    decode!(r => Head { key, version, archived, updated_at, updated_by; spec, content_sha256 })
}

pub(crate) fn version(r: &AnyRow) -> StoreResult<VersionRecord> {
    let (spec, content_sha256) = spec(r)?;
    decode!(r => VersionRecord { key, version, archived, actor, action, reason, created_at;
        spec, content_sha256 })
}

pub(crate) fn token(r: &AnyRow) -> StoreResult<TokenRecord> {
    let kind = String::get(r, "kind")?;
    let kind = TokenKind::parse(&kind)
        .ok_or_else(|| StoreError::Corrupt(format!("unknown token kind {kind:?}")))?;
    let environments: Vec<String> = from_text(&String::get(r, "environments")?, "token scope")?;
    let roles = match Option::<String>::get(r, "roles")? {
        Some(t) => from_text(&t, "token roles")?,
        // Minted before roles existed: an admin token was an admin in its environments.
        None if kind == TokenKind::Admin => {
            vec![Grant { role: Role::Admin, environments: environments.clone() }]
        }
        None => Vec::new(),
    };
    let groups = Option::<String>::get(r, "groups")?;
    let groups = groups.map_or(Ok(Vec::new()), |t| from_text(&t, "token groups"))?;
    decode!(r => TokenRecord { id, hash, principal, created_at, created_by, revoked_at, user_admin,
        evaluate_only, expires_at; kind, environments, roles, groups })
}

pub(crate) fn rollout(r: &AnyRow) -> StoreResult<RolloutRow> {
    decode!(r => RolloutRow { id, plan, flag, environment, state, rev, doc, created_at, updated_at })
}

pub(crate) fn verdict(r: &AnyRow) -> StoreResult<VerdictRow> {
    decode!(r => VerdictRow { id, rollout, wave, kind, name, verdict, report, at })
}

pub(crate) fn adoption(r: &AnyRow) -> StoreResult<AdoptionCount> {
    decode!(r => AdoptionCount { cohort, exposed, adopted })
}

/// An aggregate row with the token that contributed it.
pub(crate) fn sourced_aggregate(r: &AnyRow) -> StoreResult<(String, AggregateRow)> {
    let row = decode!(r => AggregateRow { arm, metric, n, sum, sumsq, last_at })?;
    Ok((String::get(r, "source")?, row))
}

pub(crate) fn contribution(r: &AnyRow) -> StoreResult<Contribution> {
    decode!(r => Contribution { source, wave, arm, metric, n, last_at })
}

pub(crate) fn sketch(r: &AnyRow) -> StoreResult<SketchDelta> {
    decode!(r => SketchDelta { rollout, wave, arm, metric, counts, source })
}

pub(crate) fn drill(r: &AnyRow) -> StoreResult<DrillRow> {
    decode!(r => DrillRow { id, plan, plan_version, scenario, passed, report, at, actor })
}

pub(crate) fn feedback(r: &AnyRow) -> StoreResult<FeedbackRow> {
    decode!(r => FeedbackRow { id, release, category, cohort, sentiment, body, at, principal,
        blocker, status, resolution, fixed_in, closed_at, closed_by })
}

pub(crate) fn wave_count(r: &AnyRow) -> StoreResult<WaveCount> {
    decode!(r => WaveCount { wave = "first_wave", exposed, adopted })
}

pub(crate) fn incident(r: &AnyRow) -> StoreResult<IncidentRow> {
    decode!(r => IncidentRow { id, source, external_id, kind, severity, service,
        user = "user_key", title, at, principal; arms: Vec::new() })
}

pub(crate) fn incident_arm(r: &AnyRow) -> StoreResult<IncidentArm> {
    decode!(r => IncidentArm { rollout, wave, arm })
}

pub(crate) fn incident_count(r: &AnyRow) -> StoreResult<IncidentCount> {
    decode!(r => IncidentCount { arm, severity, count = "n" })
}

pub(crate) fn notify_target(r: &AnyRow) -> StoreResult<NotifyTargetRow> {
    decode!(r => NotifyTargetRow { name, spec, since_seq, created_at, updated_at })
}

pub(crate) fn delivery(r: &AnyRow) -> StoreResult<Delivery> {
    let queued = decode!(r => NewDelivery { audit_seq, target, audience, event, rollout,
        environment, payload, at = "created_at" })?;
    let state = decode!(r => DeliveryState { status, attempts, last_error, http_status, next_at,
        at = "updated_at" })?;
    decode!(r => Delivery { id; queued, state })
}
