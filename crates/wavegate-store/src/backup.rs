//! Backups: every table of either store as plain rows, so a backup taken from SQLite restores
//! into PostgreSQL and back (the schemas have the same tables and columns).
//!
//! A [`Backup`] is read in one transaction (a consistent snapshot while the server runs) and
//! restored in one transaction into a database that holds nothing but its defaults.
//!
//! **Secrets:** an export holds every secret. The server, which owns the shape of a notification
//! target, takes the targets' signing secrets and webhook URLs out unless they are asked for
//! (`wavegate_server::runtime::notify::spec::omit_secrets`; [`Backup::secrets_omitted`] says
//! so). Token hashes stay (restored tokens keep working), and plans stay whole (their versions
//! are tied to the audit chain), so a plan should not carry credentials.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, AssertSqlSafe, Row};

use crate::{StoreError, StoreResult};

/// The backup file's `format` field.
pub const FORMAT: &str = "wavegate-backup";
/// The backup format's version.
pub const VERSION: u32 = 1;

/// A column's storage type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Col {
    /// Text (timestamps, JSON as its exact text, names).
    Text,
    /// Nullable text.
    NullText,
    /// 64-bit integer.
    Int,
    /// Nullable 64-bit integer.
    NullInt,
    /// 64-bit float.
    Real,
}

/// A table: its name, its columns in order (see [`TABLES`] for how they are written), and the
/// key its rows are ordered by.
pub type Table = (&'static str, &'static str, &'static str);

/// Every table a backup holds, in restore order, with its columns and ordering key. A column is
/// written `name` (text), `name?` (nullable text), `name#` (integer), `name#?` (nullable
/// integer) or `name.` (real), the columns in the table's order, separated by spaces; a `+`
/// after it marks a column added after the first backup format (they stand at the table's end:
/// an older backup's rows lack them, and restore with the value the migration that added the
/// column gives existing rows).
pub const TABLES: &[Table] = &[
    ("environments", "name position# created_at", "position"),
    ("meta", "key value#", "key"),
    ("leader", "id# epoch# holder since", "id"),
    ("flags", HEAD, "key"),
    ("flag_versions", VERSIONS, "key, version"),
    ("segments", HEAD, "key"),
    ("segment_versions", VERSIONS, "key, version"),
    ("plans", HEAD, "key"),
    ("plan_versions", VERSIONS, "key, version"),
    ("scorecards", HEAD, "key"),
    ("scorecard_versions", VERSIONS, "key, version"),
    ("settings", HEAD, "key"),
    ("setting_versions", VERSIONS, "key, version"),
    (
        "tokens",
        "id hash kind environments principal created_at created_by revoked_at? user_admin#+ \
         evaluate_only#+ expires_at?+ roles?+ groups?+",
        "id",
    ),
    ("audit_log", "seq# prev_hash hash canonical at actor action target", "seq"),
    ("rollouts", "id plan flag environment state rev# doc created_at updated_at", "id"),
    ("verdicts", "id# rollout wave# kind name verdict report at", "id"),
    (
        "aggregates",
        "rollout wave# arm metric n. sum. sumsq. last_at source+",
        "rollout, wave, arm, metric, source",
    ),
    ("sketches", "rollout wave# arm metric counts source+", "rollout, wave, arm, metric, source"),
    ("drills", "id# plan plan_version# scenario passed# report at actor", "id"),
    (
        "feedback",
        "id# release category cohort sentiment body at principal blocker#+ status+ resolution?+ \
         fixed_in?+ closed_at?+ closed_by?+",
        "id",
    ),
    (
        "adoption_users",
        "rollout user_key cohort exposed_day# task_day#? first_wave#+",
        "rollout, user_key",
    ),
    (
        "incidents",
        "id# source external_id kind severity service user_key? title at principal",
        "id",
    ),
    ("incident_arms", "incident# rollout wave# arm severity", "incident, rollout"),
    ("event_batches", "batch_key received_at#", "batch_key"),
    ("notify_targets", "name spec since_seq# created_at updated_at", "name"),
    (
        "notify_deliveries",
        "id# audit_seq# target audience event rollout environment status attempts# \
         last_error? http_status#? next_at payload created_at updated_at",
        "id",
    ),
];

const HEAD: &str = "key version# spec archived# updated_at updated_by";

const VERSIONS: &str = "key version# spec archived# actor action reason? created_at";

/// A table's columns (the second field of a [`Table`]) with their types.
pub fn columns(spec: &'static str) -> Vec<(&'static str, Col)> {
    spec.split_whitespace()
        .map(|c| c.strip_suffix('+').unwrap_or(c))
        .map(|c| match c.split_once(['?', '#', '.']) {
            None => (c, Col::Text),
            Some((name, _)) => (
                name,
                match &c[name.len()..] {
                    "?" => Col::NullText,
                    "#" => Col::Int,
                    "#?" => Col::NullInt,
                    "." => Col::Real,
                    other => unreachable!("column {c}: unknown type mark {other:?}"),
                },
            ),
        })
        .collect()
}

/// Tables whose rows a fresh database already holds (replaced wholesale on restore).
pub const SEEDED: &[&str] = &["environments", "meta", "leader"];

/// Tables added after the first backup format: a backup taken before them lacks them, and
/// restores as though they were empty.
pub const ADDED_LATER: &str = "event_batches scorecards scorecard_versions settings \
    setting_versions feedback adoption_users notify_targets notify_deliveries incidents incident_arms";

/// Whether `table` was added after the first backup format ([`ADDED_LATER`]).
pub fn added_later(table: &str) -> bool {
    ADDED_LATER.split_whitespace().any(|t| t == table)
}

/// The value of column `column` added later for an older backup's `row` of `table`.
fn added_later_value(table: &str, column: &str, row: &[Value]) -> Value {
    match (table, column) {
        // As migration 0016 (SQLite) / 0009 (PostgreSQL): the bootstrap admin token keeps the
        // power to issue tokens for other people that every admin token had.
        ("tokens", "user_admin") => {
            let is = |i: usize, v: &str| row.get(i).and_then(Value::as_str) == Some(v);
            json!(i64::from(is(2, "admin") && is(6, "system")))
        }
        ("tokens", "evaluate_only") => json!(0),
        // As migration 0020 (SQLite) / 0013 (PostgreSQL): an admin token from before roles holds
        // `admin` in its environments (NULL says so).
        ("tokens", "expires_at" | "roles" | "groups") => Value::Null,
        // As migration 0018 (SQLite) / 0011 (PostgreSQL): counts from before contributions
        // were kept per token belong to no token.
        ("aggregates" | "sketches", "source") => json!(""),
        // As migration 0021 (SQLite) / 0014 (PostgreSQL).
        ("feedback", "blocker") | ("adoption_users", "first_wave") => json!(0),
        ("feedback", "status") => json!("open"),
        _ => Value::Null,
    }
}

/// How many trailing columns of `table` an older backup may lack (those marked `+`).
pub fn columns_added_later(table: &str) -> usize {
    let spec = TABLES.iter().find(|(t, _, _)| *t == table).map_or("", |(_, cols, _)| cols);
    spec.split_whitespace().filter(|c| c.ends_with('+')).count()
}

/// Tables with a generated `id` (PostgreSQL's sequences are advanced past restored ids).
pub const SERIAL: &[&str] = &["verdicts", "drills", "feedback", "notify_deliveries", "incidents"];

/// A whole database, table by table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Backup {
    /// Always [`FORMAT`].
    pub format: String,
    /// [`VERSION`].
    pub version: u32,
    /// When it was taken (RFC 3339).
    pub created_at: String,
    /// `sqlite` or `postgres`.
    pub source: String,
    /// True when the notification targets' secrets were left out; false (and absent in
    /// backups from before this field) when the backup holds everything.
    #[serde(default)]
    pub secrets_omitted: bool,
    /// Rows per table, each row its values in the table's column order.
    pub tables: indexmap::IndexMap<String, Vec<Vec<Value>>>,
}

impl Backup {
    /// Checks the format, version, tables and row shapes; says what is wrong and where.
    pub fn validate(&self) -> Result<(), String> {
        if self.format != FORMAT {
            return Err(format!("format is {:?}, not {FORMAT:?}", self.format));
        }
        if self.version != VERSION {
            return Err(format!(
                "backup format version {} is not supported (this build reads {VERSION})",
                self.version
            ));
        }
        for name in self.tables.keys() {
            if !TABLES.iter().any(|(t, _, _)| t == name) {
                return Err(format!("tables.{name}: unknown table"));
            }
        }
        for (name, cols, _) in TABLES {
            let cols = columns(cols);
            let Some(rows) = self.tables.get(*name) else {
                if added_later(name) {
                    continue;
                }
                return Err(format!("tables.{name}: missing"));
            };
            for (i, row) in rows.iter().enumerate() {
                let short = cols.len().saturating_sub(row.len());
                if row.len() > cols.len() || short > columns_added_later(name) {
                    return Err(format!(
                        "tables.{name}[{i}]: {} values, expected {}",
                        row.len(),
                        cols.len()
                    ));
                }
                for (v, (col, ty)) in row.iter().zip(cols.iter()) {
                    let ok = match ty {
                        Col::Text => v.is_string(),
                        Col::NullText => v.is_string() || v.is_null(),
                        Col::Int => v.is_i64(),
                        Col::NullInt => v.is_i64() || v.is_null(),
                        Col::Real => v.is_number(),
                    };
                    if !ok {
                        return Err(format!("tables.{name}[{i}].{col}: {v} is not a {ty:?}"));
                    }
                }
            }
        }
        Ok(())
    }

    /// The rows of `table` (none when an older backup lacks a table added later).
    pub fn rows(&self, table: &str) -> &[Vec<Value>] {
        self.tables.get(table).map_or(&[], Vec::as_slice)
    }

    /// The place of `column` in the rows of `table`, if it has one.
    pub fn column(table: &str, column: &str) -> Option<usize> {
        let (_, cols, _) = TABLES.iter().find(|(t, _, _)| *t == table)?;
        columns(cols).iter().position(|(c, _)| *c == column)
    }

    /// Row counts per table, for progress and summaries.
    pub fn counts(&self) -> Vec<(String, usize)> {
        self.tables.iter().map(|(k, v)| (k.clone(), v.len())).collect()
    }
}

/// Reads every table in `tx` (the caller's snapshot), each row its values in column order.
pub(crate) async fn read(
    tx: &mut AnyConnection,
) -> StoreResult<indexmap::IndexMap<String, Vec<Vec<Value>>>> {
    let mut tables = indexmap::IndexMap::new();
    for (name, cols, order) in TABLES {
        let cols = columns(cols);
        let names: Vec<&str> = cols.iter().map(|(c, _)| *c).collect();
        let sql = format!("SELECT {} FROM {name} ORDER BY {order}", names.join(", "));
        let rows = sqlx::query(AssertSqlSafe(sql)).fetch_all(&mut *tx).await?;
        let value = |r: &AnyRow, (i, (_, ty)): (usize, &(&str, Col))| -> StoreResult<Value> {
            Ok(match ty {
                Col::Text | Col::NullText => json!(r.try_get::<Option<String>, _>(i)?),
                Col::Int | Col::NullInt => json!(r.try_get::<Option<i64>, _>(i)?),
                Col::Real => json!(r.try_get::<f64, _>(i)?),
            })
        };
        let row = |r: &AnyRow| cols.iter().enumerate().map(|c| value(r, c)).collect();
        let out = rows.iter().map(row).collect::<StoreResult<Vec<Vec<Value>>>>()?;
        tables.insert((*name).to_owned(), out);
    }
    Ok(tables)
}

/// Writes `backup`'s rows in `tx`, into a database that holds nothing but its defaults (which
/// the backup's replace); `Conflict` if it holds more.
pub(crate) async fn write(tx: &mut AnyConnection, backup: &Backup) -> StoreResult<()> {
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
        let cols = columns(cols);
        let names: Vec<&str> = cols.iter().map(|(c, _)| *c).collect();
        let places = crate::store::placeholders(1, cols.len());
        let sql = format!("INSERT INTO {name} ({}) VALUES {places}", names.join(", "));
        for row in backup.rows(name) {
            let mut q = sqlx::query(AssertSqlSafe(sql.clone()));
            let mut row = row.clone();
            for (column, _) in &cols[row.len().min(cols.len())..] {
                let value = added_later_value(name, column, &row);
                row.push(value);
            }
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
    Ok(())
}
