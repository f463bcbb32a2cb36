//! Queries on the seed addresses of templates and the proofs sent to them (`templates::proofs`).

use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ActiveValue::NotSet, ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, TransactionTrait,
};

use super::{Store, StoreError};
use crate::db::entities::{template_proof, template_seed};
use crate::templates::proofs::{NewProof, Seed};

impl Store {
    /// The seeds of template `name`, in the order they were written. A stored `ctx` that no longer
    /// parses reads as `{}` (it was checked when written).
    pub async fn template_seeds(&self, name: &str) -> Result<Vec<Seed>, StoreError> {
        let rows = template_seed::Entity::find()
            .filter(template_seed::Column::TemplateName.eq(name))
            .order_by_asc(template_seed::Column::Position)
            .all(&self.db)
            .await
            .map_err(|e| self.error(e))?;
        Ok(rows
            .into_iter()
            .map(|row| Seed {
                ctx: serde_json::from_str(&row.ctx)
                    .unwrap_or_else(|_| serde_json::Value::Object(serde_json::Map::new())),
                label: row.label,
                address: row.address,
            })
            .collect())
    }

    /// Replaces the seeds of template `name` with `seeds` (already validated), in one transaction.
    pub async fn replace_template_seeds(
        &self,
        name: &str,
        seeds: &[Seed],
    ) -> Result<(), StoreError> {
        let _turn = self.write_turn("replace_template_seeds").await;
        let txn = self.db.begin().await.map_err(|e| self.error(e))?;
        template_seed::Entity::delete_many()
            .filter(template_seed::Column::TemplateName.eq(name))
            .exec(&txn)
            .await
            .map_err(|e| self.error(e))?;
        let now = Utc::now();
        for (position, seed) in seeds.iter().enumerate() {
            template_seed::ActiveModel {
                id: NotSet,
                template_name: Set(name.to_owned()),
                position: Set(i32::try_from(position).unwrap_or(i32::MAX)),
                label: Set(seed.label.clone()),
                address: Set(seed.address.clone()),
                ctx: Set(seed.ctx.to_string()),
                created_at: Set(now),
            }
            .insert(&txn)
            .await
            .map_err(|e| self.error(e))?;
        }
        txn.commit().await.map_err(|e| self.error(e))
    }

    /// Records a proof; returns it as stored.
    pub async fn insert_template_proof(
        &self,
        proof: NewProof,
    ) -> Result<template_proof::Model, StoreError> {
        let _turn = self.write_turn("insert_template_proof").await;
        template_proof::ActiveModel {
            id: NotSet,
            template_name: Set(proof.template_name),
            version: Set(proof.version),
            channel: Set(proof.channel.as_str().to_owned()),
            seed_label: Set(proof.seed_label),
            address: Set(proof.address),
            status: Set(proof.status.as_str().to_owned()),
            message_id: Set(proof.message_id),
            error: Set(proof.error),
            sent_by: Set(proof.sent_by),
            created_at: Set(Utc::now()),
        }
        .insert(&self.db)
        .await
        .map_err(|e| self.error(e))
    }

    /// The latest `limit` proofs of template `name`, newest first.
    pub async fn template_proofs(
        &self,
        name: &str,
        limit: u64,
    ) -> Result<Vec<template_proof::Model>, StoreError> {
        template_proof::Entity::find()
            .filter(template_proof::Column::TemplateName.eq(name))
            .order_by_desc(template_proof::Column::Id)
            .limit(limit)
            .all(&self.db)
            .await
            .map_err(|e| self.error(e))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::store::testing::{PgTestDb, sqlite_store};
    use crate::templates::proofs::ProofStatus;

    fn seed(label: &str, address: &str) -> Seed {
        Seed {
            label: label.to_owned(),
            address: address.to_owned(),
            ctx: json!({ "firstName": label }),
        }
    }

    async fn exercise(store: &Store) {
        assert!(store.template_seeds("welcome").await.unwrap().is_empty());
        let first = vec![seed("zoe", "zoe@example.com"), seed("al", "al@example.com")];
        store
            .replace_template_seeds("welcome", &first)
            .await
            .unwrap();
        store
            .replace_template_seeds("other", &[seed("x", "x@example.com")])
            .await
            .unwrap();
        assert_eq!(store.template_seeds("welcome").await.unwrap(), first);
        let second = vec![seed("al", "al@example.org")];
        store
            .replace_template_seeds("welcome", &second)
            .await
            .unwrap();
        assert_eq!(store.template_seeds("welcome").await.unwrap(), second);
        assert_eq!(store.template_seeds("other").await.unwrap().len(), 1);

        for n in 0..3 {
            store
                .insert_template_proof(NewProof {
                    template_name: "welcome".to_owned(),
                    version: n + 1,
                    channel: mc_plugin_api::Channel::Email,
                    seed_label: "al".to_owned(),
                    address: "al@example.org".to_owned(),
                    status: ProofStatus::Sent,
                    message_id: Some(format!("<m{n}@x>")),
                    error: None,
                    sent_by: None,
                })
                .await
                .unwrap();
        }
        let proofs = store.template_proofs("welcome", 2).await.unwrap();
        assert_eq!(proofs.iter().map(|p| p.version).collect::<Vec<_>>(), [3, 2]);
        assert!(store.template_proofs("other", 10).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn sqlite_seeds_and_proofs() {
        let (_dir, store) = sqlite_store().await;
        exercise(&store).await;
    }

    #[tokio::test]
    async fn postgres_seeds_and_proofs() {
        let pg = PgTestDb::create().await;
        let conn = crate::db::connect(pg.url(), 4, std::time::Duration::from_secs(5))
            .await
            .expect("connect");
        crate::db::migrate(&conn).await.expect("migrate");
        let store = Store::new(conn);
        exercise(&store).await;
        store.connection().clone().close().await.expect("close");
    }
}
