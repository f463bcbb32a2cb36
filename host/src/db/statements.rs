//! What a statement is, for `mc_db_statements_total{verb, table}`: the pipeline's cost is counted in
//! statements per message (BENCHMARKS.md, issue 20), and each statement through sea-orm is one round
//! trip to the database (on SQLite, two thread hand-offs to sqlx's worker and back), so the operator and
//! the benchmarks read the counts from the metrics instead of a profiler.
//!
//! The SQL text is the one sea-query builds: `SELECT … FROM "t"`, `INSERT INTO "t"`, `UPDATE "t"`,
//! `DELETE FROM "t"`. Classifying reads a few words of it and allocates nothing.

/// The statement's verb (`select`, `insert`, `update`, `delete` or `other`) and the first table it
/// names (`""` when none is found).
pub fn classify(sql: &str) -> (&'static str, &str) {
    let sql = sql.trim_start();
    let word_end = sql
        .find(|c: char| c.is_ascii_whitespace())
        .unwrap_or(sql.len());
    let (verb, after) = match &sql[..word_end] {
        w if w.eq_ignore_ascii_case("SELECT") => ("select", keyword_then(sql, " FROM ")),
        w if w.eq_ignore_ascii_case("INSERT") => ("insert", keyword_then(sql, " INTO ")),
        w if w.eq_ignore_ascii_case("UPDATE") => ("update", Some(&sql[word_end..])),
        w if w.eq_ignore_ascii_case("DELETE") => ("delete", keyword_then(sql, " FROM ")),
        _ => ("other", None),
    };
    (verb, after.map_or("", identifier))
}

/// What follows the first `keyword` (ASCII, matched case-sensitively as sea-query writes it) outside
/// parentheses: the `FROM` of `EXTRACT(EPOCH FROM e.finished_at)` or of a subquery is not the table.
fn keyword_then<'a>(sql: &'a str, keyword: &str) -> Option<&'a str> {
    let mut depth = 0usize;
    for (at, byte) in sql.bytes().enumerate() {
        match byte {
            b'(' => depth += 1,
            b')' => depth = depth.saturating_sub(1),
            _ if depth == 0 && sql[at..].starts_with(keyword) => {
                return Some(&sql[at + keyword.len()..]);
            }
            _ => {}
        }
    }
    None
}

/// The identifier at the start of `text`, unquoted.
fn identifier(text: &str) -> &str {
    let text = text.trim_start();
    if let Some(quoted) = text.strip_prefix('"') {
        return quoted.split('"').next().unwrap_or("");
    }
    let end = text
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(text.len());
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::classify;

    #[test]
    fn the_verbs_and_tables_sea_query_writes() {
        for (sql, expected) in [
            (
                r#"SELECT "events"."id" FROM "events" WHERE "id" = $1"#,
                ("select", "events"),
            ),
            (
                r#"INSERT INTO "delivery_log" ("event_id") VALUES (?)"#,
                ("insert", "delivery_log"),
            ),
            (
                r#"UPDATE "events" SET "status" = ? WHERE "id" IN (SELECT "id" FROM "x")"#,
                ("update", "events"),
            ),
            (r#"DELETE FROM "sessions" WHERE 1"#, ("delete", "sessions")),
            (
                "SELECT FLOOR(EXTRACT(EPOCH FROM e.finished_at) / 60) AS minute FROM events e",
                ("select", "events"),
            ),
            (
                r#"SELECT COUNT(*) FROM (SELECT 1 FROM "events") AS "sub""#,
                ("select", ""),
            ),
            (
                "  update archive_feed set last_seq = 1",
                ("update", "archive_feed"),
            ),
            ("SELECT 1", ("select", "")),
            ("PRAGMA foreign_keys", ("other", "")),
            ("", ("other", "")),
        ] {
            assert_eq!(classify(sql), expected, "{sql}");
        }
    }
}
