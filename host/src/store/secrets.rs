//! Secrets the host generates once and keeps in the database (`host_secrets`), so that every instance
//! sharing it agrees on them.

use chrono::Utc;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, EntityTrait};

use super::{Store, StoreError};
use crate::db::entities::host_secret;

impl Store {
    /// The secret `name`; when there is none yet, `generate()` is stored first. Two instances starting
    /// at once both insert, one wins, and both read the winner's.
    pub async fn host_secret(
        &self,
        name: &str,
        generate: impl FnOnce() -> String,
    ) -> Result<String, StoreError> {
        if let Some(row) = host_secret::Entity::find_by_id(name.to_owned())
            .one(&self.db)
            .await
            .map_err(|e| self.error(e))?
        {
            return Ok(row.value);
        }
        {
            let _turn = self.write_turn("host_secret").await;
            host_secret::Entity::insert(host_secret::ActiveModel {
                name: Set(name.to_owned()),
                value: Set(generate()),
                created_at: Set(Utc::now()),
            })
            .on_conflict(
                OnConflict::column(host_secret::Column::Name)
                    .do_nothing()
                    .to_owned(),
            )
            .exec_without_returning(&self.db)
            .await
            .map_err(|e| self.error(e))?;
        }
        host_secret::Entity::find_by_id(name.to_owned())
            .one(&self.db)
            .await
            .map_err(|e| self.error(e))?
            .map(|row| row.value)
            .ok_or_else(|| {
                StoreError::Database(sea_orm::DbErr::RecordNotFound(format!(
                    "host secret `{name}` vanished after it was written"
                )))
            })
    }
}
