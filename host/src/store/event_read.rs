//! Reading event rows so that one unreadable `ctx` cannot fail a whole read.
//!
//! Reading `ctx` as the entity's `Json` makes the driver parse it while it decodes the row, and a `ctx`
//! that does not parse (nested past `serde_json`'s recursion limit, accepted before the intake bounded
//! the depth, or written to the database by other means) then fails the query: a claim of the real-time
//! queue failed on it, with every event it had claimed, run after run, and `GET /api/v1/events/{id}`
//! answered 500. Here `ctx` is read as text and parsed row by row: a row whose `ctx` cannot be read comes
//! back with `ctx` `null` (never a value a client can send: `ctx` must be an object) and the reason, and
//! the claim sets such events apart (`set_apart.rs`) instead of handing them to a workflow.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{EntityTrait, FromQueryResult, Iterable, QuerySelect, Select};

use crate::db::entities::event;
use crate::ingest::ctx_depth::{READABLE_CTX_DEPTH, nesting_depth};

/// `ctx` as text on both backends (`json` on PostgreSQL, text already on SQLite).
const CTX_AS_TEXT: &str = r#"CAST("ctx" AS TEXT)"#;

/// An event row with `ctx` as stored text; the fields of [`event::Model`].
#[derive(FromQueryResult)]
struct StoredRow {
    id: i64,
    queue: String,
    status: String,
    event_type: String,
    channel: String,
    email: Option<String>,
    mobile_phone: Option<String>,
    external_id: Option<String>,
    language: Option<String>,
    ctx: String,
    scheduled_at: Option<DateTime<Utc>>,
    expires_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    instance_id: i32,
    claimed_by: Option<String>,
    claim_expires_at: Option<DateTime<Utc>>,
    template_name: Option<String>,
    template_version: Option<i32>,
    linked_at: Option<DateTime<Utc>>,
    finished_at: Option<DateTime<Utc>>,
    archive_seq: Option<i64>,
}

/// An event as read: the row, and why its `ctx` could not be read when it could not (then `ctx` is
/// `null`).
#[derive(Clone, Debug)]
pub struct ReadEvent {
    pub event: event::Model,
    pub unreadable: Option<String>,
}

/// `SELECT` of events with `ctx` as text, to filter and order like `event::Entity::find()`.
pub(super) fn select() -> Select<event::Entity> {
    let mut select = event::Entity::find().select_only();
    for column in event::Column::iter() {
        select = if matches!(column, event::Column::Ctx) {
            select.column_as(Expr::cust(CTX_AS_TEXT), "ctx")
        } else {
            select.column(column)
        };
    }
    select
}

/// The `RETURNING` list of an `UPDATE` of events, with `ctx` as text.
pub(super) fn returning() -> Vec<Expr> {
    event::Column::iter()
        .map(|column| {
            if matches!(column, event::Column::Ctx) {
                Expr::cust(format!(r#"{CTX_AS_TEXT} AS "ctx""#))
            } else {
                Expr::col(column)
            }
        })
        .collect()
}

/// Runs `select` (made by [`select`]) and reads each row.
pub(super) async fn all(
    select: Select<event::Entity>,
    db: &impl sea_orm::ConnectionTrait,
) -> Result<Vec<ReadEvent>, sea_orm::DbErr> {
    Ok(select
        .into_model::<StoredRow>()
        .all(db)
        .await?
        .into_iter()
        .map(StoredRow::read)
        .collect())
}

/// Reads the rows of a statement whose columns are [`returning`]'s.
pub(super) fn from_rows(rows: &[sea_orm::QueryResult]) -> Result<Vec<ReadEvent>, sea_orm::DbErr> {
    rows.iter()
        .map(|row| StoredRow::from_query_result(row, "").map(StoredRow::read))
        .collect()
}

/// Reads a row of the synchronous SQLite writer (`sqlite_writer`) whose columns are [`returning`]'s,
/// in the entity's column order (checked by the tests).
pub(super) fn from_sqlite_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<ReadEvent> {
    use super::sqlite_rows::{time, time_or_null};
    let stored = StoredRow {
        id: row.get(0)?,
        queue: row.get(1)?,
        status: row.get(2)?,
        event_type: row.get(3)?,
        channel: row.get(4)?,
        email: row.get(5)?,
        mobile_phone: row.get(6)?,
        external_id: row.get(7)?,
        language: row.get(8)?,
        ctx: row.get(9)?,
        scheduled_at: time_or_null(row, 10)?,
        expires_at: time_or_null(row, 11)?,
        created_at: time(row, 12)?,
        updated_at: time(row, 13)?,
        instance_id: row.get(14)?,
        claimed_by: row.get(15)?,
        claim_expires_at: time_or_null(row, 16)?,
        template_name: row.get(17)?,
        template_version: row.get(18)?,
        linked_at: time_or_null(row, 19)?,
        finished_at: time_or_null(row, 20)?,
        archive_seq: row.get(21)?,
    };
    Ok(stored.read())
}

/// `ctx` parsed, or why it cannot be.
pub(crate) fn parse_ctx(text: &str) -> Result<serde_json::Value, String> {
    if nesting_depth(text, READABLE_CTX_DEPTH) > READABLE_CTX_DEPTH {
        return Err(format!(
            "`ctx` nests objects and arrays more than {READABLE_CTX_DEPTH} levels deep"
        ));
    }
    serde_json::from_str(text).map_err(|e| format!("`ctx` is not readable JSON: {e}"))
}

impl StoredRow {
    fn read(self) -> ReadEvent {
        let (ctx, unreadable) = match parse_ctx(&self.ctx) {
            Ok(ctx) => (ctx, None),
            Err(reason) => (serde_json::Value::Null, Some(reason)),
        };
        ReadEvent {
            event: event::Model {
                id: self.id,
                queue: self.queue,
                status: self.status,
                event_type: self.event_type,
                channel: self.channel,
                email: self.email,
                mobile_phone: self.mobile_phone,
                external_id: self.external_id,
                language: self.language,
                ctx,
                scheduled_at: self.scheduled_at,
                expires_at: self.expires_at,
                created_at: self.created_at,
                updated_at: self.updated_at,
                instance_id: self.instance_id,
                claimed_by: self.claimed_by,
                claim_expires_at: self.claim_expires_at,
                template_name: self.template_name,
                template_version: self.template_version,
                linked_at: self.linked_at,
                finished_at: self.finished_at,
                archive_seq: self.archive_seq,
            },
            unreadable,
        }
    }
}

#[cfg(test)]
mod tests {
    use sea_orm::{IdenStatic, Iterable};

    use super::*;

    /// [`from_sqlite_row`] reads columns by position, in this order.
    #[test]
    fn event_columns_are_in_the_order_read() {
        let names: Vec<&str> = event::Column::iter().map(|c| c.as_str()).collect();
        assert_eq!(
            names,
            [
                "id",
                "queue",
                "status",
                "event_type",
                "channel",
                "email",
                "mobile_phone",
                "external_id",
                "language",
                "ctx",
                "scheduled_at",
                "expires_at",
                "created_at",
                "updated_at",
                "instance_id",
                "claimed_by",
                "claim_expires_at",
                "template_name",
                "template_version",
                "linked_at",
                "finished_at",
                "archive_seq",
            ]
        );
    }

    #[test]
    fn ctx_too_deep_or_not_json_is_unreadable_with_its_reason() {
        assert_eq!(
            parse_ctx(r#"{"a":[1]}"#).unwrap(),
            serde_json::json!({"a":[1]})
        );
        let deep = format!("{}{}", "{\"a\":".repeat(8_000), "}".repeat(8_000));
        assert!(parse_ctx(&deep).unwrap_err().contains("100 levels"));
        assert!(
            parse_ctx("{\"a\":")
                .unwrap_err()
                .contains("not readable JSON")
        );
    }
}
