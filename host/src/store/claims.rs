//! The one way a claim is released: both claim columns cleared, in whatever statement settles the row
//! (a workflow's update, a hand-over to delivery, a recorded attempt, a run or process known dead).

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{EntityTrait, UpdateMany};

use crate::db::entities::{delivery_log, event};

/// `UPDATE events SET claimed_by = NULL, claim_expires_at = NULL …`, for the caller to add to.
pub(super) fn unclaimed_events() -> UpdateMany<event::Entity> {
    event::Entity::update_many()
        .col_expr(
            event::Column::ClaimedBy,
            Expr::value(Option::<String>::None),
        )
        .col_expr(
            event::Column::ClaimExpiresAt,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
}

/// The same for delivery attempts.
pub(super) fn unclaimed_deliveries() -> UpdateMany<delivery_log::Entity> {
    delivery_log::Entity::update_many()
        .col_expr(
            delivery_log::Column::ClaimedBy,
            Expr::value(Option::<String>::None),
        )
        .col_expr(
            delivery_log::Column::ClaimExpiresAt,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
}
