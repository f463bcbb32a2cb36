//! The quarantine: addresses (and whole domains, stored as `@<domain>`) that receive nothing, why, and
//! since when. The delivery engine asks [`Store::quarantined`]; the quarantine API lists, adds and
//! releases entries; bounces and SMTP refusals add them. Entries older than `[quarantine] expire_after`
//! (when set) are treated as gone everywhere, and a new quarantine of the same address starts afresh.

use std::collections::HashSet;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use mc_plugin_api::Channel;
use sea_orm::sea_query::{Expr, ExprTrait, LikeExpr, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect,
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

/// Filters of `GET /api/v1/quarantine` and of the console's quarantine page.
#[derive(Clone, Debug, Default)]
pub struct QuarantineFilter {
    /// Exact entry (address or `@domain`), case-insensitive.
    pub address: Option<String>,
    /// Entries whose key contains this text, case-insensitive (the console's search).
    pub contains: Option<String>,
    pub reason: Option<QuarantineReason>,
    pub channel: Option<Channel>,
    /// Quarantined at or after.
    pub after: Option<DateTime<Utc>>,
    /// The page after this entry, in the list's order (newest first, then by address).
    pub page_after: Option<QuarantineCursor>,
    pub limit: u64,
}

/// Where a page of the quarantine list ended: its last entry's time and address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuarantineCursor {
    pub created_at: DateTime<Utc>,
    pub address: String,
}

impl QuarantineCursor {
    /// The cursor after `entry`.
    pub fn after(entry: &quarantine::Model) -> Self {
        QuarantineCursor {
            created_at: entry.created_at,
            address: entry.address.clone(),
        }
    }

    /// `<RFC 3339 time to the nanosecond>,<address>`, for a query string.
    pub fn encode(&self) -> String {
        format!(
            "{},{}",
            self.created_at
                .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
            self.address
        )
    }

    /// What [`Self::encode`] wrote, or `None`.
    pub fn decode(text: &str) -> Option<Self> {
        let (time, address) = text.split_once(',')?;
        let created_at = DateTime::parse_from_rfc3339(time).ok()?.to_utc();
        (!address.is_empty()).then(|| QuarantineCursor {
            created_at,
            address: address.to_owned(),
        })
    }
}

/// A `LIKE` pattern matching keys that contain `text` (lower-cased, its wildcards escaped with `\`).
fn contains_pattern(text: &str) -> LikeExpr {
    let mut pattern = String::from("%");
    for c in quarantine_key(text).chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    LikeExpr::new(pattern).escape('\\')
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
        let _turn = self.write_turn("put_quarantine").await;
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
        let _turn = self.write_turn("release_quarantine").await;
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
        if let Some(text) = &filter.contains {
            query =
                query.filter(Expr::col(quarantine::Column::Address).like(contains_pattern(text)));
        }
        if let Some(reason) = filter.reason {
            query = query.filter(quarantine::Column::Reason.eq(reason.as_str()));
        }
        if let Some(channel) = filter.channel {
            query = query.filter(quarantine::Column::Channel.eq(channel.as_str()));
        }
        if let Some(cursor) = &filter.page_after {
            query = query.filter(
                Condition::any()
                    .add(quarantine::Column::CreatedAt.lt(cursor.created_at))
                    .add(
                        Condition::all()
                            .add(quarantine::Column::CreatedAt.eq(cursor.created_at))
                            .add(quarantine::Column::Address.gt(cursor.address.as_str())),
                    ),
            );
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::{pg_pair, sqlite_store};

    async fn add(store: &Store, address: &str, channel: Channel, reason: QuarantineReason) {
        store
            .put_quarantine(&NewQuarantine {
                address: address.to_owned(),
                channel: channel.as_str().to_owned(),
                reason,
                diagnostic: None,
            })
            .await
            .unwrap();
    }

    fn addresses(entries: &[quarantine::Model]) -> Vec<&str> {
        entries.iter().map(|e| e.address.as_str()).collect()
    }

    /// The console's search (a substring, wildcards taken literally, the channel) and its pages.
    async fn search_and_pages(store: Store) {
        add(
            &store,
            "Ann@Shop.test",
            Channel::Email,
            QuarantineReason::HardBounce,
        )
        .await;
        add(
            &store,
            "a_b@shop.test",
            Channel::Email,
            QuarantineReason::Manual,
        )
        .await;
        add(
            &store,
            "axb@shop.test",
            Channel::Email,
            QuarantineReason::Manual,
        )
        .await;
        add(
            &store,
            "+33612345678",
            Channel::Sms,
            QuarantineReason::DeliveryFailure,
        )
        .await;
        let list =
            async |filter: QuarantineFilter| store.list_quarantine(&filter, None).await.unwrap();
        let all = list(QuarantineFilter {
            limit: 10,
            ..Default::default()
        })
        .await;
        assert_eq!(all.len(), 4);
        let found = list(QuarantineFilter {
            contains: Some("ANN@".to_owned()),
            limit: 10,
            ..Default::default()
        })
        .await;
        assert_eq!(addresses(&found), ["ann@shop.test"]);
        // `_` is a character, not a wildcard.
        let found = list(QuarantineFilter {
            contains: Some("a_b".to_owned()),
            limit: 10,
            ..Default::default()
        })
        .await;
        assert_eq!(addresses(&found), ["a_b@shop.test"]);
        let found = list(QuarantineFilter {
            channel: Some(Channel::Sms),
            limit: 10,
            ..Default::default()
        })
        .await;
        assert_eq!(addresses(&found), ["+33612345678"]);
        // Pages of one follow the list's order to its end, each entry once.
        let mut paged = Vec::new();
        let mut cursor = None;
        loop {
            let page = list(QuarantineFilter {
                page_after: cursor.clone(),
                limit: 1,
                ..Default::default()
            })
            .await;
            let Some(last) = page.last() else { break };
            cursor = QuarantineCursor::decode(&QuarantineCursor::after(last).encode());
            assert!(cursor.is_some());
            paged.push(last.address.clone());
            assert!(paged.len() <= 4, "{paged:?}");
        }
        assert_eq!(paged, addresses(&all));
    }

    #[tokio::test]
    async fn sqlite_search_and_pages() {
        let (_dir, store) = sqlite_store().await;
        search_and_pages(store).await;
    }

    #[tokio::test]
    async fn postgres_search_and_pages() {
        let (_pg, store, _other) = pg_pair().await;
        search_and_pages(store).await;
    }

    #[test]
    fn cursors_round_trip() {
        let cursor = QuarantineCursor {
            created_at: Utc::now(),
            address: "a,b@example.com".to_owned(),
        };
        assert_eq!(QuarantineCursor::decode(&cursor.encode()), Some(cursor));
        assert_eq!(QuarantineCursor::decode("yesterday,a@b.c"), None);
        assert_eq!(QuarantineCursor::decode("2026-12-03T08:00:00Z,"), None);
    }
}
