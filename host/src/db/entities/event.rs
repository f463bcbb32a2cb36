//! An event in the real-time or batch queue (table `events`, SPEC "Event statuses" and "Event ids").
//!
//! `queue`, `status` and `channel` are kept as text rather than Rust enums mapped by sea-orm: a row
//! written by a newer version (a status added later) must still load in an older one, and plugins
//! exchange these values as strings anyway. [`EventStatus`], [`Channel`] and [`Queue`] (from
//! `mc_plugin_api::vocabulary`) give the valid values a name; the store converts at its boundary.

use sea_orm::entity::prelude::*;

/// A row of `events`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "events")]
pub struct Model {
    /// The row key, allocated by the database; the public id adds the instance id in the top 8 bits.
    #[sea_orm(primary_key)]
    pub id: i64,
    /// A [`Queue`] name.
    #[sea_orm(column_type = "Text")]
    pub queue: String,
    /// One of the [`EventStatus`] names.
    #[sea_orm(column_type = "Text")]
    pub status: String,
    /// The client's event type, which selects the template.
    #[sea_orm(column_type = "Text")]
    pub event_type: String,
    /// A [`Channel`] name.
    #[sea_orm(column_type = "Text")]
    pub channel: String,
    #[sea_orm(column_type = "Text", nullable)]
    pub email: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub mobile_phone: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub external_id: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub language: Option<String>,
    /// The personalisation data (`{}` when the client sent none), kept as the client sent it: `json` on
    /// PostgreSQL (migration 000005), text on SQLite.
    #[sea_orm(column_type = "Json")]
    pub ctx: Json,
    /// Not to be processed before this time.
    pub scheduled_at: Option<DateTimeUtc>,
    /// Becomes `expired` if not delivered by this time.
    pub expires_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    /// Last change of the row.
    pub updated_at: DateTimeUtc,
    /// The instance that accepted the event: the top byte of its public id.
    pub instance_id: i32,
    /// The execution instance holding the claim, while it holds it.
    #[sea_orm(column_type = "Text", nullable)]
    pub claimed_by: Option<String>,
    /// When the claim lapses and another instance may take the event over.
    pub claim_expires_at: Option<DateTimeUtc>,
    /// The template version the event was linked to.
    #[sea_orm(column_type = "Text", nullable)]
    pub template_name: Option<String>,
    pub template_version: Option<i32>,
    /// When it was linked to that template version (monitoring's queue time ends here).
    pub linked_at: Option<DateTimeUtc>,
    /// When the event reached a final status.
    pub finished_at: Option<DateTimeUtc>,
    /// Its place in the archive feed, given in commit order when it became final (see the
    /// `archive_feed` migration); `None` while it is not final.
    pub archive_seq: Option<i64>,
}

impl Model {
    /// The public id: the instance id in the top 8 bits, the row key in the low 56 (SPEC "Event ids").
    pub fn public_id(&self) -> i64 {
        public_id(self.instance_id, self.id)
    }
}

/// Bits of the public id that hold the row key.
pub const ROW_KEY_BITS: u32 = 56;

/// Builds a public id from an instance id and a row key.
pub fn public_id(instance_id: i32, row_key: i64) -> i64 {
    ((i64::from(instance_id as u8)) << ROW_KEY_BITS) | (row_key & ((1i64 << ROW_KEY_BITS) - 1))
}

/// Splits a public id into (instance id, row key).
pub fn split_public_id(id: i64) -> (u8, i64) {
    let instance = ((id as u64) >> ROW_KEY_BITS) as u8;
    (instance, id & ((1i64 << ROW_KEY_BITS) - 1))
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

// The vocabulary of these columns lives in `mc_plugin_api::vocabulary`, shared with the plugins;
// re-exported here so the entity's docs and older imports find it.
pub use mc_plugin_api::{Channel, EventStatus, Queue};

/// The `channel` of an email event, as a `&str` pattern ([`Channel::Email`]'s name).
pub const CHANNEL_EMAIL: &str = Channel::Email.as_str();
/// The `channel` of an SMS event ([`Channel::Sms`]'s name).
pub const CHANNEL_SMS: &str = Channel::Sms.as_str();

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_ids_carry_the_instance_in_the_top_byte() {
        for (instance, row) in [(0u8, 1i64), (1, 42), (7, (1 << 56) - 1), (255, 123_456_789)] {
            let id = public_id(i32::from(instance), row);
            assert_eq!(split_public_id(id), (instance, row));
        }
        assert_eq!(public_id(1, 5), (1i64 << 56) | 5);
        // Instance 255 makes the id negative as an i64; it still round-trips, and JSON carries it as a
        // string of the u64 value.
        assert!(public_id(255, 1) < 0);
    }
}
