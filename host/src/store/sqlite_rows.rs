//! Rows read on the synchronous SQLite writer (`sqlite_writer`), decoded as sqlx decodes them for the
//! pool: booleans from 0 and 1, timestamps from the RFC 3339 text sqlx writes (or SQLite's own
//! `YYYY-MM-DD HH:MM:SS` forms, or Unix seconds). Each reader takes the columns in the order of its
//! entity's `Column::iter()`, which is the order of the `RETURNING` lists built from it; the tests below
//! (and `event_read`'s, for events) check that order, and `sqlite_writer`'s compare what both paths
//! return.

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use rusqlite::Row;
use rusqlite::types::{FromSqlError, ValueRef};

use crate::db::entities::delivery_log;

/// A timestamp column.
pub(super) fn time(row: &Row<'_>, index: usize) -> rusqlite::Result<DateTime<Utc>> {
    time_or_null(row, index)?.ok_or(rusqlite::Error::InvalidColumnType(
        index,
        "NULL where a timestamp was expected".to_owned(),
        rusqlite::types::Type::Null,
    ))
}

/// A nullable timestamp column.
pub(super) fn time_or_null(row: &Row<'_>, index: usize) -> rusqlite::Result<Option<DateTime<Utc>>> {
    let unreadable =
        |kind| rusqlite::Error::FromSqlConversionFailure(index, kind, "not a timestamp".into());
    match row.get_ref(index)? {
        ValueRef::Null => Ok(None),
        ValueRef::Integer(seconds) => Utc
            .timestamp_opt(seconds, 0)
            .single()
            .map(Some)
            .ok_or(unreadable(rusqlite::types::Type::Integer)),
        ValueRef::Text(text) => std::str::from_utf8(text)
            .ok()
            .and_then(parse_time)
            .map(Some)
            .ok_or(unreadable(rusqlite::types::Type::Text)),
        other => Err(rusqlite::Error::FromSqlConversionFailure(
            index,
            other.data_type(),
            Box::new(FromSqlError::InvalidType),
        )),
    }
}

/// RFC 3339 (what sqlx and the writers store), else the forms SQLite's date functions produce, as UTC.
fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Some(at.with_timezone(&Utc));
    }
    ["%F %T%.f", "%FT%T%.f"]
        .into_iter()
        .find_map(|format| NaiveDateTime::parse_from_str(text, format).ok())
        .map(|naive| Utc.from_utc_datetime(&naive))
}

/// A `delivery_logs` row, every column in the entity's order.
pub(super) fn delivery_log(row: &Row<'_>) -> rusqlite::Result<delivery_log::Model> {
    Ok(delivery_log::Model {
        id: row.get(0)?,
        event_id: row.get(1)?,
        attempt: row.get(2)?,
        channel: row.get(3)?,
        address: row.get(4)?,
        status: row.get(5)?,
        message_id: row.get(6)?,
        error: row.get(7)?,
        template_name: row.get(8)?,
        template_version: row.get(9)?,
        is_final: row.get(10)?,
        copied_to_event: row.get(11)?,
        next_attempt_at: time_or_null(row, 12)?,
        created_at: time(row, 13)?,
        updated_at: time(row, 14)?,
        claimed_by: row.get(15)?,
        claim_expires_at: time_or_null(row, 16)?,
        priority: row.get(17)?,
        first_attempt_at: time_or_null(row, 18)?,
        accepted_at: time_or_null(row, 19)?,
    })
}

#[cfg(test)]
mod tests {
    use sea_orm::{IdenStatic, Iterable};

    use super::*;

    /// The readers index columns by position: the entity's column order must be the one they assume.
    #[test]
    fn delivery_log_columns_are_in_the_order_read() {
        let names: Vec<&str> = delivery_log::Column::iter().map(|c| c.as_str()).collect();
        assert_eq!(
            names,
            [
                "id",
                "event_id",
                "attempt",
                "channel",
                "address",
                "status",
                "message_id",
                "error",
                "template_name",
                "template_version",
                "is_final",
                "copied_to_event",
                "next_attempt_at",
                "created_at",
                "updated_at",
                "claimed_by",
                "claim_expires_at",
                "priority",
                "first_attempt_at",
                "accepted_at",
            ]
        );
    }

    #[test]
    fn timestamps_read_as_sqlx_reads_them() {
        let at = Utc.with_ymd_and_hms(2026, 12, 8, 1, 2, 3).unwrap();
        let micro = at + chrono::Duration::microseconds(456_789);
        assert_eq!(parse_time("2026-12-08T01:02:03.456789+00:00"), Some(micro));
        assert_eq!(parse_time("2026-12-08T02:02:03+01:00"), Some(at));
        assert_eq!(parse_time("2026-12-08 01:02:03"), Some(at));
        assert_eq!(parse_time("2026-12-08T01:02:03.456789"), Some(micro));
        assert_eq!(parse_time("yesterday"), None);
    }
}
