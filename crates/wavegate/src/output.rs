//! The one output layer: every command prints its tables through [`Table`] and its `--json`
//! through [`print_json`] (the server's answer as it came, or the command's own object), so
//! all commands line up and serialise the same way.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use crate::client::Answer;

/// Prints `v` as pretty JSON on its own lines (what `--json` prints).
pub fn print_json(v: &impl Serialize) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

/// Prints an answer: with `--json` as the server sent it, else as `human` words it.
pub fn answer<T>(json: bool, a: &Answer<T>, human: impl FnOnce(&T)) {
    if json { print_json(&a.raw) } else { human(&a.body) }
}

/// A cell for something that may be missing: `-` when it is.
pub fn or_dash(v: Option<impl std::fmt::Display>) -> String {
    v.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

/// A time as the API writes it (RFC 3339, UTC, `Z`), not as `Display` would.
pub fn time(t: &DateTime<Utc>) -> String {
    match serde_json::to_value(t) {
        Ok(Value::String(s)) => s,
        _ => t.to_rfc3339(),
    }
}

/// A float as JSON writes it (`5.0`, not `5`).
pub fn float(x: f64) -> String {
    serde_json::Number::from_f64(x).map_or_else(|| "null".to_owned(), |n| n.to_string())
}

/// How a column's cells line up within its width.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    /// Padded on the right (text).
    Left,
    /// Padded on the left (numbers).
    Right,
}

/// One column of a [`Table`].
#[derive(Debug, Clone)]
pub struct Column {
    title: String,
    width: usize,
    align: Align,
    gap: usize,
}

impl Column {
    /// A column padded on the right to `width` characters, one space before the next.
    pub fn left(title: impl Into<String>, width: usize) -> Column {
        Column { title: title.into(), width, align: Align::Left, gap: 1 }
    }

    /// A column padded on the left to `width` characters, one space before the next.
    pub fn right(title: impl Into<String>, width: usize) -> Column {
        Column { title: title.into(), width, align: Align::Right, gap: 1 }
    }

    /// The last column: never padded.
    pub fn last(title: impl Into<String>) -> Column {
        Column::left(title, 0)
    }

    /// `n` spaces between this column and the next instead of one.
    pub fn gap(self, n: usize) -> Column {
        Column { gap: n, ..self }
    }
}

/// A table of text: a header of column titles (left out when every title is empty), then one
/// line per row. Cells wider than their column push the rest of the line right, as `{:<w}`
/// formatting does; the last column is never padded, so lines carry no trailing spaces.
#[derive(Debug, Clone)]
pub struct Table {
    columns: Vec<Column>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these columns.
    pub fn new(columns: Vec<Column>) -> Table {
        Table { columns, rows: Vec::new() }
    }

    /// Adds a row (one cell per column).
    pub fn row<S: Into<String>>(&mut self, cells: impl IntoIterator<Item = S>) {
        self.rows.push(cells.into_iter().map(Into::into).collect());
    }

    /// The table's lines.
    pub fn lines(&self) -> Vec<String> {
        let mut out = Vec::with_capacity(self.rows.len() + 1);
        if self.columns.iter().any(|c| !c.title.is_empty()) {
            let titles: Vec<&str> = self.columns.iter().map(|c| c.title.as_str()).collect();
            out.push(self.line(&titles));
        }
        for row in &self.rows {
            let cells: Vec<&str> = row.iter().map(String::as_str).collect();
            out.push(self.line(&cells));
        }
        out
    }

    /// Prints the table on standard output.
    pub fn print(&self) {
        for line in self.lines() {
            println!("{line}");
        }
    }

    fn line(&self, cells: &[&str]) -> String {
        let mut out = String::new();
        let last = self.columns.len().saturating_sub(1);
        for (i, (column, cell)) in self.columns.iter().zip(cells).enumerate() {
            if i == last {
                out.push_str(cell);
                break;
            }
            // Characters, not bytes: what `{:<w}` counts.
            let pad = " ".repeat(column.width.saturating_sub(cell.chars().count()));
            match column.align {
                Align::Left => {
                    out.push_str(cell);
                    out.push_str(&pad);
                }
                Align::Right => {
                    out.push_str(&pad);
                    out.push_str(cell);
                }
            }
            out.push_str(&" ".repeat(column.gap));
        }
        out
    }
}

/// `db` (or any URL) with its credentials hidden: the one redaction, [`wavegate_core::text::redact_url`].
pub use wavegate_core::text::redact_url;

#[cfg(test)]
mod tests {
    use crate::output::{Column, Table, redact_url};

    #[test]
    fn database_passwords_are_never_printed() {
        assert_eq!(
            redact_url("postgres://wg:s3cret@db.internal:5432/wavegate"),
            "postgres://wg:***@db.internal:5432/wavegate"
        );
        assert_eq!(redact_url("postgres://wg@db/wavegate"), "postgres://wg@db/wavegate");
        assert_eq!(redact_url("./wavegate.db"), "./wavegate.db");
        // Issue 16, item 9: the query's password and a password holding an `@`.
        assert_eq!(
            redact_url("postgres://wg@db/w?password=s3cret"),
            "postgres://wg@db/w?password=***"
        );
        assert_eq!(redact_url("postgres://wg:p@ss@db/w"), "postgres://wg:***@db/w");
    }

    /// A table prints as the `format!` widths it replaces: `{:<w}`, `{:>w}`, wider gaps, wide
    /// cells pushing right, characters counted (not bytes), no header without titles.
    #[test]
    fn tables_line_up_like_format_widths() {
        let mut t = Table::new(vec![
            Column::right("VERSION", 7).gap(2),
            Column::left("AT", 6),
            Column::last("REASON"),
        ]);
        t.row(["3", "now", "why"]);
        t.row(["12", "a long cell", "-"]);
        t.row(["1", "→ é", "ok"]);
        assert_eq!(
            t.lines(),
            [
                format!("{:>7}  {:<6} REASON", "VERSION", "AT"),
                format!("{:>7}  {:<6} {}", "3", "now", "why"),
                format!("{:>7}  {:<6} {}", "12", "a long cell", "-"),
                format!("{:>7}  {:<6} {}", "1", "→ é", "ok"),
            ]
        );
        let mut plain = Table::new(vec![Column::left("", 0), Column::last("")]);
        plain.row(["1", "dev"]);
        assert_eq!(plain.lines(), ["1 dev"]);
    }
}
