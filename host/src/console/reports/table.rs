//! A report's table: what the page shows and the CSV export writes, cell for cell, so the two cannot
//! disagree. Figures are formatted once, here ([`number`]: at most two decimals, `—` when there is
//! nothing to average).

use serde::Serialize;

use super::super::view::number;

/// One column.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Column {
    /// The `data-col` of its cells, and the CSV header.
    pub key: &'static str,
    /// The page's header.
    pub label: &'static str,
    /// Right-aligned on the page; never a formula in the CSV.
    pub numeric: bool,
}

/// A text column.
pub const fn text(key: &'static str, label: &'static str) -> Column {
    Column {
        key,
        label,
        numeric: false,
    }
}

/// A figure column.
pub const fn figure(key: &'static str, label: &'static str) -> Column {
    Column {
        key,
        label,
        numeric: true,
    }
}

/// The table.
#[derive(Debug, Serialize)]
pub struct Table {
    pub columns: Vec<Column>,
    pub rows: Vec<Vec<String>>,
    /// The totals over the period and the filters (text columns blank but the first).
    pub total: Vec<String>,
    /// The store cut the groups at [`crate::store::MAX_GROUPS`].
    pub truncated: bool,
}

/// A count.
pub fn count(n: u64) -> String {
    n.to_string()
}

/// `sum / n`, or `—` when `n` is 0.
pub fn average(sum: f64, n: u64) -> String {
    if n == 0 {
        "—".to_owned()
    } else {
        number(sum / n as f64)
    }
}

/// `part / whole` in percent, or `—` when `whole` is 0.
pub fn percent(part: u64, whole: u64) -> String {
    if whole == 0 {
        "—".to_owned()
    } else {
        number(part as f64 * 100.0 / whole as f64)
    }
}

/// A rate per hour, or `—` over no time.
pub fn per_hour(n: u64, hours: f64) -> String {
    if hours <= 0.0 {
        "—".to_owned()
    } else {
        number(n as f64 / hours)
    }
}

impl Table {
    /// The table as CSV (RFC 4180: CRLF, fields quoted when they hold a comma, quote or line break),
    /// header first, totals last. A text cell that a spreadsheet would read as a formula (`=`, `+`,
    /// `-`, `@`, tab, CR first) gets a leading `'`: event types and instance names come from outside.
    pub fn csv(&self) -> String {
        let mut out = String::new();
        let line = |out: &mut String, cells: &mut dyn Iterator<Item = (&Column, &str)>| {
            let fields: Vec<String> = cells.map(|(column, cell)| field(column, cell)).collect();
            out.push_str(&fields.join(","));
            out.push_str("\r\n");
        };
        line(&mut out, &mut self.columns.iter().map(|c| (&TEXT, c.key)));
        for row in self.rows.iter().chain(std::iter::once(&self.total)) {
            line(
                &mut out,
                &mut self.columns.iter().zip(row.iter().map(String::as_str)),
            );
        }
        out
    }
}

/// The column the CSV header's cells are written as.
const TEXT: Column = text("", "");

fn field(column: &Column, cell: &str) -> String {
    let cell = if !column.numeric && cell.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{cell}")
    } else {
        cell.to_owned()
    };
    if cell.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", cell.replace('"', "\"\""))
    } else {
        cell
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_and_defuses_formulas() {
        let table = Table {
            columns: vec![text("type", "Type"), figure("events", "Events")],
            rows: vec![
                vec!["ORDER, big".to_owned(), "3".to_owned()],
                vec!["=HYPERLINK(\"x\")".to_owned(), "1".to_owned()],
            ],
            total: vec!["Total".to_owned(), "4".to_owned()],
            truncated: false,
        };
        assert_eq!(
            table.csv(),
            "type,events\r\n\"ORDER, big\",3\r\n\"'=HYPERLINK(\"\"x\"\")\",1\r\nTotal,4\r\n"
        );
        assert_eq!(average(3.0, 0), "—");
        assert_eq!(average(7.0, 2), "3.5");
        assert_eq!(percent(1, 3), "33.33");
        assert_eq!(per_hour(12, 24.0), "0.5");
    }
}
