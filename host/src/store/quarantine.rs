//! The quarantine: addresses (and whole domains, stored as `@<domain>`) that receive nothing, why, and
//! since when. The delivery engine asks [`Store::quarantined`]; the quarantine API lists, adds and
//! releases entries; bounces and SMTP refusals add them. Entries older than `[quarantine] expire_after`
//! (when set) are treated as gone everywhere, and a new quarantine of the same address starts afresh.

use std::collections::HashSet;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};

use super::{Store, StoreError};
use crate::db::entities::quarantine;

/// Why an address is quarantined (`quarantine.reason`, the `reason` filter and metric label).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum QuarantineReason {
    /// The relay refused the recipient for good while sending (SMTP 5xx, gateway 4xx).
    DeliveryFailure,
    /// A permanent bounce (DSN 5.x.x, or `"type":"hard"` over HTTP).
    HardBounce,
    /// A temporary bounce reported over HTTP as `"type":"soft"` is recorded, never quarantined; kept
    /// for entries an operator adds with this reason.
    SoftBounce,
    /// The recipient complained (ARF feedback report, or `"type":"complaint"` over HTTP).
    Complaint,
    /// Added through `PUT /api/v1/quarantine/{address}`.
    Manual,
}

impl QuarantineReason {
    pub const ALL: [QuarantineReason; 5] = [
        QuarantineReason::DeliveryFailure,
        QuarantineReason::HardBounce,
        QuarantineReason::SoftBounce,
        QuarantineReason::Complaint,
        QuarantineReason::Manual,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            QuarantineReason::DeliveryFailure => "delivery_failure",
            QuarantineReason::HardBounce => "hard_bounce",
            QuarantineReason::SoftBounce => "soft_bounce",
            QuarantineReason::Complaint => "complaint",
            QuarantineReason::Manual => "manual",
        }
    }
}

impl fmt::Display for QuarantineReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for QuarantineReason {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|r| r.as_str() == name)
            .ok_or_else(|| {
                let names: Vec<&str> = Self::ALL.iter().map(|r| r.as_str()).collect();
                format!(
                    "unknown reason `{name}`; expected one of: {}",
                    names.join(", ")
                )
            })
    }
}

/// The key a quarantine entry is stored under: the address in lower case, or `@<domain>` for a domain.
pub fn quarantine_key(address: &str) -> String {
    address.trim().to_ascii_lowercase()
}

/// The domain key (`@example.com`) covering `address`, if it is an email address.
fn domain_key(address: &str) -> Option<String> {
    address
        .rsplit_once('@')
        .filter(|(local, domain)| !local.is_empty() && !domain.is_empty())
        .map(|(_, domain)| format!("@{}", domain.to_ascii_lowercase()))
}

/// Filters of `GET /api/v1/quarantine`.
#[derive(Clone, Debug, Default)]
pub struct QuarantineFilter {
    /// Exact entry (address or `@domain`), case-insensitive.
    pub address: Option<String>,
    pub reason: Option<QuarantineReason>,
    /// Quarantined at or after.
    pub after: Option<DateTime<Utc>>,
    pub limit: u64,
}

/// One entry to write.
#[derive(Clone, Debug)]
pub struct NewQuarantine {
    pub address: String,
    pub channel: String,
    pub reason: QuarantineReason,
    pub diagnostic: Option<String>,
}

/// The oldest `created_at` still in force under `expire_after`.
fn in_force_since(expire_after: Option<Duration>) -> Option<DateTime<Utc>> {
    expire_after
        .map(|d| Utc::now() - chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX))
}

impl Store {
    /// Which of `addresses` are quarantined, themselves or through their domain, by an entry younger than
    /// `expire_after` (every entry when `None`). Returns the addresses as given.
    pub async fn quarantined(
        &self,
        addresses: &[&str],
        expire_after: Option<Duration>,
    ) -> Result<HashSet<String>, StoreError> {
        if addresses.is_empty() {
            return Ok(HashSet::new());
        }
        let mut keys: HashSet<String> = HashSet::new();
        for address in addresses {
            // As given too: entries written before keys were lower-cased.
            keys.insert((*address).to_owned());
            keys.insert(quarantine_key(address));
            keys.extend(domain_key(address));
        }
        let mut query = quarantine::Entity::find()
            .select_only()
            .column(quarantine::Column::Address)
            .filter(quarantine::Column::Address.is_in(keys));
        if let Some(since) = in_force_since(expire_after) {
            query = query.filter(quarantine::Column::CreatedAt.gte(since));
        }
        let found: HashSet<String> = query
            .into_tuple::<String>()
            .all(&self.db)
            .await
            .map_err(|e| self.error(e))?
            .into_iter()
            .collect();
        Ok(addresses
            .iter()
            .filter(|a| {
                found.contains(**a)
                    || found.contains(&quarantine_key(a))
                    || domain_key(a).is_some_and(|d| found.contains(&d))
            })
            .map(|a| (*a).to_owned())
            .collect())
    }

    /// Adds or renews `entry` inside `db` (a transaction of the caller's, or the pool): an address
    /// quarantined again gets the new reason, diagnostic and time, so an expired entry counts again.
    pub(super) async fn put_quarantine_in(
        &self,
        db: &impl ConnectionTrait,
        entry: &NewQuarantine,
    ) -> Result<(), StoreError> {
        let row = quarantine::ActiveModel {
            address: Set(quarantine_key(&entry.address)),
            channel: Set(entry.channel.clone()),
            reason: Set(entry.reason.as_str().to_owned()),
            diagnostic: Set(entry.diagnostic.clone()),
            created_at: Set(Utc::now()),
        };
        quarantine::Entity::insert(row)
            .on_conflict(
                OnConflict::column(quarantine::Column::Address)
                    .update_columns([
                        quarantine::Column::Channel,
                        quarantine::Column::Reason,
                        quarantine::Column::Diagnostic,
                        quarantine::Column::CreatedAt,
                    ])
                    .to_owned(),
            )
            .exec_without_returning(db)
            .await
            .map_err(|e| self.error(e))?;
        Ok(())
    }

    /// `PUT /api/v1/quarantine/{address}`: adds or renews one entry; returns it as stored.
    pub async fn put_quarantine(
        &self,
        entry: &NewQuarantine,
    ) -> Result<quarantine::Model, StoreError> {
        let _turn = self.write_turn().await;
        self.put_quarantine_in(&self.db, entry).await?;
        quarantine::Entity::find_by_id(quarantine_key(&entry.address))
            .one(&self.db)
            .await
            .map_err(|e| self.error(e))?
            .ok_or_else(|| {
                StoreError::Database(sea_orm::DbErr::RecordNotFound(
                    "the quarantine entry just written is missing".to_owned(),
                ))
            })
    }

    /// `DELETE /api/v1/quarantine/{address}`: releases the entry; whether there was one.
    pub async fn release_quarantine(&self, address: &str) -> Result<bool, StoreError> {
        let _turn = self.write_turn().await;
        let mut keys = vec![quarantine_key(address)];
        if address != keys[0] {
            keys.push(address.to_owned());
        }
        let deleted = quarantine::Entity::delete_many()
            .filter(quarantine::Column::Address.is_in(keys))
            .exec(&self.db)
            .await
            .map_err(|e| self.error(e))?
            .rows_affected;
        Ok(deleted > 0)
    }

    /// A page of entries in force, newest first (then by address), under `filter`.
    pub async fn list_quarantine(
        &self,
        filter: &QuarantineFilter,
        expire_after: Option<Duration>,
    ) -> Result<Vec<quarantine::Model>, StoreError> {
        let mut query = quarantine::Entity::find()
            .order_by_desc(quarantine::Column::CreatedAt)
            .order_by_asc(quarantine::Column::Address)
            .limit(filter.limit);
        if let Some(address) = &filter.address {
            query = query.filter(quarantine::Column::Address.eq(quarantine_key(address)));
        }
        if let Some(reason) = filter.reason {
            query = query.filter(quarantine::Column::Reason.eq(reason.as_str()));
        }
        if let Some(after) = filter.after {
            query = query.filter(quarantine::Column::CreatedAt.gte(after));
        }
        if let Some(since) = in_force_since(expire_after) {
            query = query.filter(quarantine::Column::CreatedAt.gte(since));
        }
        query.all(&self.db).await.map_err(|e| self.error(e))
    }

    /// Entries in force by reason (`mc_quarantine_entries{reason}`).
    pub async fn quarantine_counts(
        &self,
        expire_after: Option<Duration>,
    ) -> Result<Vec<(String, i64)>, StoreError> {
        let mut query = quarantine::Entity::find()
            .select_only()
            .column(quarantine::Column::Reason)
            .column_as(quarantine::Column::Address.count(), "n")
            .group_by(quarantine::Column::Reason);
        if let Some(since) = in_force_since(expire_after) {
            query = query.filter(quarantine::Column::CreatedAt.gte(since));
        }
        query
            .into_tuple()
            .all(&self.db)
            .await
            .map_err(|e| self.error(e))
    }
}
