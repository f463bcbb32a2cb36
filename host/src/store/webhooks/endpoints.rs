//! Endpoint CRUD (`PUT|GET|DELETE /api/v1/webhooks/{name}`).

use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder,
    TransactionTrait,
};

use super::{EndpointChange, EndpointPut, encode_events};
use crate::db::entities::webhook_endpoint;
use crate::store::{Store, StoreError};
use mc_plugin_api::WebhookEventType;

impl Store {
    /// Creates the endpoint `name` or changes it. A creation without `change.secret` stores
    /// `new_secret`. Enabling an endpoint clears the reason it was disabled for.
    pub async fn put_webhook_endpoint(
        &self,
        name: &str,
        change: EndpointChange,
        new_secret: &str,
    ) -> Result<EndpointPut, StoreError> {
        let _turn = self.write_turn("put_webhook_endpoint").await;
        let now = Utc::now();
        let txn = self.db.begin().await.map_err(|e| self.error(e))?;
        let existing = webhook_endpoint::Entity::find()
            .filter(webhook_endpoint::Column::Name.eq(name))
            .one(&txn)
            .await
            .map_err(|e| self.error(e))?;
        let put = match existing {
            Some(found) => {
                let mut row: webhook_endpoint::ActiveModel = found.into();
                row.url = Set(change.url);
                if let Some(events) = &change.events {
                    row.events = Set(encode_events(events));
                }
                if let Some(enabled) = change.enabled {
                    row.enabled = Set(enabled);
                    if enabled {
                        row.disabled_reason = Set(None);
                    }
                }
                if let Some(secret) = change.secret {
                    row.secret = Set(secret);
                }
                row.updated_at = Set(now);
                EndpointPut::Updated(row.update(&txn).await.map_err(|e| self.error(e))?)
            }
            None => {
                let row = webhook_endpoint::ActiveModel {
                    name: Set(name.to_owned()),
                    url: Set(change.url),
                    events: Set(encode_events(
                        change.events.as_deref().unwrap_or(&WebhookEventType::ALL),
                    )),
                    enabled: Set(change.enabled.unwrap_or(true)),
                    secret: Set(change.secret.unwrap_or_else(|| new_secret.to_owned())),
                    disabled_reason: Set(None),
                    created_at: Set(now),
                    updated_at: Set(now),
                    ..Default::default()
                };
                EndpointPut::Created(row.insert(&txn).await.map_err(|e| self.error(e))?)
            }
        };
        txn.commit().await.map_err(|e| self.error(e))?;
        Ok(put)
    }

    /// Every endpoint, by name.
    pub async fn list_webhook_endpoints(&self) -> Result<Vec<webhook_endpoint::Model>, StoreError> {
        webhook_endpoint::Entity::find()
            .order_by_asc(webhook_endpoint::Column::Name)
            .all(&self.db)
            .await
            .map_err(|e| self.error(e))
    }

    /// The endpoint `name`.
    pub async fn webhook_endpoint(
        &self,
        name: &str,
    ) -> Result<Option<webhook_endpoint::Model>, StoreError> {
        webhook_endpoint::Entity::find()
            .filter(webhook_endpoint::Column::Name.eq(name))
            .one(&self.db)
            .await
            .map_err(|e| self.error(e))
    }

    /// Replaces the secret of endpoint `name` with `new_secret` (`POST /api/v1/webhooks/{name}/rotate-secret`):
    /// every attempt from now on, retries of older notifications included, is signed with it. The
    /// endpoint as changed, `None` when there is none.
    pub async fn rotate_webhook_secret(
        &self,
        name: &str,
        new_secret: &str,
    ) -> Result<Option<webhook_endpoint::Model>, StoreError> {
        let _turn = self.write_turn("rotate_webhook_secret").await;
        let Some(found) = webhook_endpoint::Entity::find()
            .filter(webhook_endpoint::Column::Name.eq(name))
            .one(&self.db)
            .await
            .map_err(|e| self.error(e))?
        else {
            return Ok(None);
        };
        let mut row: webhook_endpoint::ActiveModel = found.into();
        row.secret = Set(new_secret.to_owned());
        row.updated_at = Set(Utc::now());
        Ok(Some(row.update(&self.db).await.map_err(|e| self.error(e))?))
    }

    /// Deletes the endpoint `name` with its notifications and their attempts (cascade). Whether it existed.
    pub async fn delete_webhook_endpoint(&self, name: &str) -> Result<bool, StoreError> {
        let _turn = self.write_turn("delete_webhook_endpoint").await;
        Ok(webhook_endpoint::Entity::delete_many()
            .filter(webhook_endpoint::Column::Name.eq(name))
            .exec(&self.db)
            .await
            .map_err(|e| self.error(e))?
            .rows_affected
            > 0)
    }
}
