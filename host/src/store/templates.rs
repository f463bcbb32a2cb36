//! Queries on templates and their versions.

use chrono::Utc;
use mc_plugin_api::Channel;
use sea_orm::{
    ActiveModelTrait, ActiveValue::NotSet, ActiveValue::Set, ColumnTrait, DatabaseTransaction,
    DbBackend, EntityTrait, QueryFilter, QueryOrder, QuerySelect, TransactionTrait,
    TryInsertResult,
};

use super::{Store, StoreError};
use crate::db::entities::{template, template_version};
use crate::templates::NewTemplateVersion;

impl Store {
    /// The published version of the newest-published template for (event type, channel), if any: what
    /// an event of that type is linked to.
    pub async fn find_published_template(
        &self,
        event_type: &str,
        channel: Channel,
    ) -> Result<Option<template_version::Model>, StoreError> {
        let Some(published) = template::Entity::find()
            .filter(template::Column::EventType.eq(event_type))
            .filter(template::Column::Channel.eq(channel.as_str()))
            .filter(template::Column::PublishedVersion.is_not_null())
            .order_by_desc(template::Column::PublishedAt)
            .one(&self.db)
            .await
            .map_err(|e| self.error(e))?
        else {
            return Ok(None);
        };
        template_version::Entity::find()
            .filter(template_version::Column::TemplateName.eq(published.name.as_str()))
            .filter(template_version::Column::Version.eq(published.published_version))
            .one(&self.db)
            .await
            .map_err(|e| self.error(e))
    }

    /// Stores `version` as the next version of template `name` (creating the template with version 1),
    /// and publishes it when `publish`: it becomes the template's published version and the template
    /// answers its (event type, channel) from now on. One transaction. Returns the template after the
    /// change, the new version, and whether the template was created.
    ///
    /// The template's own event type and channel are those of its published version, or of its newest
    /// version while none is published.
    ///
    /// Concurrent calls for one name get distinct, consecutive version numbers: the template row is
    /// created if missing (`INSERT … ON CONFLICT DO NOTHING`) and then locked (`SELECT … FOR UPDATE` on
    /// PostgreSQL; on SQLite the insert already holds the database's write lock).
    pub async fn put_template_version(
        &self,
        name: &str,
        version: NewTemplateVersion,
        publish: bool,
    ) -> Result<(template::Model, template_version::Model, bool), StoreError> {
        let _turn = self.write_turn("put_template_version").await;
        let txn = self.db.begin().await.map_err(|e| self.error(e))?;
        let result = self
            .put_template_version_in(&txn, name, version, publish)
            .await?;
        txn.commit().await.map_err(|e| self.error(e))?;
        Ok(result)
    }

    async fn put_template_version_in(
        &self,
        txn: &DatabaseTransaction,
        name: &str,
        version: NewTemplateVersion,
        publish: bool,
    ) -> Result<(template::Model, template_version::Model, bool), StoreError> {
        let now = Utc::now();
        let mut created = false;
        // Twice at most: a concurrent DELETE may remove the row between the insert and the lock.
        let mut current = None;
        for _ in 0..2 {
            let placeholder = template::ActiveModel {
                name: Set(name.to_owned()),
                event_type: Set(version.event_type.clone()),
                channel: Set(version.channel.as_str().to_owned()),
                latest_version: Set(0),
                published_version: Set(None),
                published_at: Set(None),
                created_at: Set(now),
                updated_at: Set(now),
            };
            let inserted = template::Entity::insert(placeholder)
                .on_conflict_do_nothing()
                .exec_without_returning(txn)
                .await
                .map_err(|e| self.error(e))?;
            created = matches!(inserted, TryInsertResult::Inserted(n) if n > 0);
            let mut query = template::Entity::find_by_id(name.to_owned());
            if self.db.get_database_backend() == DbBackend::Postgres {
                query = query.lock_exclusive();
            }
            current = query.one(txn).await.map_err(|e| self.error(e))?;
            if current.is_some() {
                break;
            }
        }
        let Some(current) = current else {
            return Err(StoreError::Database(sea_orm::DbErr::RecordNotFound(
                format!("template `{name}` was deleted while a version was being added; retry"),
            )));
        };

        let number = current.latest_version + 1;
        let stored = template_version::ActiveModel {
            id: NotSet,
            template_name: Set(name.to_owned()),
            version: Set(number),
            event_type: Set(version.event_type.clone()),
            channel: Set(version.channel.as_str().to_owned()),
            from_address: Set(version.from),
            subject: Set(version.subject),
            text_body: Set(version.text),
            html_body: Set(version.html),
            created_at: Set(now),
        }
        .insert(txn)
        .await
        .map_err(|e| self.error(e))?;

        let describes_this_version = publish || current.published_version.is_none();
        let mut changed: template::ActiveModel = current.into();
        changed.latest_version = Set(number);
        changed.updated_at = Set(now);
        if describes_this_version {
            changed.event_type = Set(stored.event_type.clone());
            changed.channel = Set(stored.channel.clone());
        }
        if publish {
            changed.published_version = Set(Some(number));
            changed.published_at = Set(Some(now));
        }
        let template = changed.update(txn).await.map_err(|e| self.error(e))?;
        Ok((template, stored, created))
    }

    /// Publishes version `version` of template `name` (`None`: withdraws the template, so no event links
    /// to it until a version is published again). Returns the template after the change; `None` when
    /// there is no such template or version.
    pub async fn set_published_version(
        &self,
        name: &str,
        version: Option<i32>,
    ) -> Result<Option<template::Model>, StoreError> {
        let _turn = self.write_turn("set_published_version").await;
        let txn = self.db.begin().await.map_err(|e| self.error(e))?;
        let mut query = template::Entity::find_by_id(name.to_owned());
        if self.db.get_database_backend() == DbBackend::Postgres {
            query = query.lock_exclusive();
        }
        let Some(current) = query.one(&txn).await.map_err(|e| self.error(e))? else {
            return Ok(None);
        };
        let now = Utc::now();
        let mut changed: template::ActiveModel = current.into();
        changed.updated_at = Set(now);
        changed.published_version = Set(version);
        changed.published_at = Set(version.map(|_| now));
        if let Some(number) = version {
            let Some(stored) = template_version::Entity::find()
                .filter(template_version::Column::TemplateName.eq(name))
                .filter(template_version::Column::Version.eq(number))
                .one(&txn)
                .await
                .map_err(|e| self.error(e))?
            else {
                return Ok(None);
            };
            changed.event_type = Set(stored.event_type);
            changed.channel = Set(stored.channel);
        }
        let template = changed.update(&txn).await.map_err(|e| self.error(e))?;
        txn.commit().await.map_err(|e| self.error(e))?;
        Ok(Some(template))
    }

    /// The template `name`, if it exists.
    pub async fn get_template(&self, name: &str) -> Result<Option<template::Model>, StoreError> {
        template::Entity::find_by_id(name.to_owned())
            .one(&self.db)
            .await
            .map_err(|e| self.error(e))
    }

    /// Version `version` of template `name`, if both exist.
    pub async fn get_template_version(
        &self,
        name: &str,
        version: i32,
    ) -> Result<Option<template_version::Model>, StoreError> {
        template_version::Entity::find()
            .filter(template_version::Column::TemplateName.eq(name))
            .filter(template_version::Column::Version.eq(version))
            .one(&self.db)
            .await
            .map_err(|e| self.error(e))
    }

    /// The newest `limit` versions of template `name`, newest first.
    pub async fn template_versions_of(
        &self,
        name: &str,
        limit: u64,
    ) -> Result<Vec<template_version::Model>, StoreError> {
        template_version::Entity::find()
            .filter(template_version::Column::TemplateName.eq(name))
            .order_by_desc(template_version::Column::Version)
            .limit(limit)
            .all(&self.db)
            .await
            .map_err(|e| self.error(e))
    }

    /// Every template, by name.
    pub async fn list_templates(&self) -> Result<Vec<template::Model>, StoreError> {
        template::Entity::find()
            .order_by_asc(template::Column::Name)
            .all(&self.db)
            .await
            .map_err(|e| self.error(e))
    }

    /// Deletes template `name` and all its versions, in one transaction; false when there was no such
    /// template. Events already linked to one of its versions keep their link (name and version).
    pub async fn delete_template(&self, name: &str) -> Result<bool, StoreError> {
        let _turn = self.write_turn("delete_template").await;
        let txn = self.db.begin().await.map_err(|e| self.error(e))?;
        let deleted = template::Entity::delete_by_id(name.to_owned())
            .exec(&txn)
            .await
            .map_err(|e| self.error(e))?
            .rows_affected;
        template_version::Entity::delete_many()
            .filter(template_version::Column::TemplateName.eq(name))
            .exec(&txn)
            .await
            .map_err(|e| self.error(e))?;
        txn.commit().await.map_err(|e| self.error(e))?;
        Ok(deleted > 0)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::time::Duration;

    use super::*;
    use crate::db;
    use crate::store::testing::{PgTestDb, sqlite_store};

    fn version(event_type: &str, subject: &str) -> NewTemplateVersion {
        NewTemplateVersion {
            event_type: event_type.to_owned(),
            channel: Channel::Email,
            from: Some("shop@example.com".to_owned()),
            subject: Some(subject.to_owned()),
            text: Some("Hello {{ ctx.name }}".to_owned()),
            html: None,
        }
    }

    async fn exercise(store: &Store) {
        assert!(store.list_templates().await.unwrap().is_empty());
        assert_eq!(store.get_template("welcome").await.unwrap(), None);

        let (template, v1, created) = store
            .put_template_version("welcome", version("SIGNUP", "one"), true)
            .await
            .unwrap();
        assert!(created);
        assert_eq!(v1.version, 1);
        assert_eq!(v1.template_name, "welcome");
        assert_eq!(v1.subject.as_deref(), Some("one"));
        assert_eq!(v1.from_address.as_deref(), Some("shop@example.com"));
        assert_eq!(v1.html_body, None);
        assert_eq!(template.latest_version, 1);
        assert_eq!(template.published_version, Some(1));
        assert!(template.published_at.is_some());
        assert_eq!(
            (template.event_type.as_str(), template.channel.as_str()),
            ("SIGNUP", "email")
        );
        let first_published_at = template.published_at;

        // An unpublished version: the published one stays.
        let (template, v2, created) = store
            .put_template_version("welcome", version("SIGNUP", "two"), false)
            .await
            .unwrap();
        assert!(!created);
        assert_eq!(v2.version, 2);
        assert_eq!(template.latest_version, 2);
        assert_eq!(template.published_version, Some(1));
        assert_eq!(template.published_at, first_published_at);
        let linked = store
            .find_published_template("SIGNUP", Channel::Email)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (linked.template_name.as_str(), linked.version),
            ("welcome", 1)
        );

        // Publishing a version for another event type moves the template.
        let (template, v3, _) = store
            .put_template_version("welcome", version("REGISTERED", "three"), true)
            .await
            .unwrap();
        assert_eq!(v3.version, 3);
        assert_eq!(template.published_version, Some(3));
        assert_eq!(template.event_type, "REGISTERED");
        assert_eq!(
            store
                .find_published_template("SIGNUP", Channel::Email)
                .await
                .unwrap(),
            None
        );
        let linked = store
            .find_published_template("REGISTERED", Channel::Email)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(linked.version, 3);
        assert_eq!(linked.subject.as_deref(), Some("three"));

        let listed: Vec<i32> = store
            .template_versions_of("welcome", 2)
            .await
            .unwrap()
            .iter()
            .map(|v| v.version)
            .collect();
        assert_eq!(listed, [3, 2]);
        // Versions are kept as written.
        assert_eq!(
            store.get_template_version("welcome", 2).await.unwrap(),
            Some(v2.clone())
        );
        assert_eq!(
            store.get_template_version("welcome", 4).await.unwrap(),
            None
        );
        assert_eq!(store.get_template_version("nope", 1).await.unwrap(), None);
        assert_eq!(
            store.get_template("welcome").await.unwrap(),
            Some(template.clone())
        );

        // A template never published describes its newest version.
        let (draft, _, created) = store
            .put_template_version("a-draft", version("DRAFT", "d"), false)
            .await
            .unwrap();
        assert!(created);
        assert_eq!(draft.published_version, None);
        assert_eq!(draft.published_at, None);
        assert_eq!(draft.event_type, "DRAFT");
        let mut sms = version("DRAFT2", "x");
        sms.channel = Channel::Sms;
        let (draft, _, _) = store
            .put_template_version("a-draft", sms, false)
            .await
            .unwrap();
        assert_eq!(
            (draft.event_type.as_str(), draft.channel.as_str()),
            ("DRAFT2", "sms")
        );
        assert_eq!(
            store
                .find_published_template("DRAFT", Channel::Email)
                .await
                .unwrap(),
            None
        );

        let names: Vec<String> = store
            .list_templates()
            .await
            .unwrap()
            .into_iter()
            .map(|t| t.name)
            .collect();
        assert_eq!(names, ["a-draft", "welcome"]);

        // Delete removes the template and its versions; its name starts again at version 1.
        assert!(store.delete_template("welcome").await.unwrap());
        assert!(!store.delete_template("welcome").await.unwrap());
        assert_eq!(store.get_template("welcome").await.unwrap(), None);
        assert_eq!(
            store.get_template_version("welcome", 1).await.unwrap(),
            None
        );
        assert_eq!(
            store
                .find_published_template("REGISTERED", Channel::Email)
                .await
                .unwrap(),
            None
        );
        let left = template_version::Entity::find()
            .all(store.connection())
            .await
            .unwrap();
        assert!(
            left.iter().all(|v| v.template_name == "a-draft"),
            "{left:?}"
        );
        let (_, again, created) = store
            .put_template_version("welcome", version("SIGNUP", "again"), true)
            .await
            .unwrap();
        assert!(created);
        assert_eq!(again.version, 1);
    }

    /// Concurrent PUTs of one (new) name: every version number once, no error.
    async fn concurrent_puts(first: Store, second: Store) {
        const PUTS: usize = 16;
        let mut tasks = tokio::task::JoinSet::new();
        for n in 0..PUTS {
            let store = if n % 2 == 0 {
                first.clone()
            } else {
                second.clone()
            };
            tasks.spawn(async move {
                store
                    .put_template_version("busy", version("BUSY", &format!("s{n}")), n % 3 != 0)
                    .await
            });
        }
        let mut numbers = BTreeSet::new();
        let mut created = 0;
        while let Some(result) = tasks.join_next().await {
            let (_, stored, was_created) = result.unwrap().unwrap();
            numbers.insert(stored.version);
            created += usize::from(was_created);
        }
        assert_eq!(numbers, (1..=PUTS as i32).collect::<BTreeSet<_>>());
        assert_eq!(created, 1);
        let template = first.get_template("busy").await.unwrap().unwrap();
        assert_eq!(template.latest_version, PUTS as i32);
        let versions = template_version::Entity::find()
            .filter(template_version::Column::TemplateName.eq("busy"))
            .all(first.connection())
            .await
            .unwrap();
        assert_eq!(versions.len(), PUTS);
    }

    async fn pg_store(pg: &PgTestDb) -> Store {
        let conn = db::connect(pg.url(), 4, Duration::from_secs(5))
            .await
            .expect("connect");
        db::migrate(&conn).await.expect("migrate");
        Store::new(conn)
    }

    #[tokio::test]
    async fn sqlite_template_versions() {
        let (_dir, store) = sqlite_store().await;
        exercise(&store).await;
    }

    #[tokio::test]
    async fn postgres_template_versions() {
        let pg = PgTestDb::create().await;
        let store = pg_store(&pg).await;
        exercise(&store).await;
        store.connection().clone().close().await.expect("close");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn postgres_concurrent_puts_get_distinct_versions() {
        let pg = PgTestDb::create().await;
        let first = pg_store(&pg).await;
        let second = pg_store(&pg).await;
        concurrent_puts(first.clone(), second.clone()).await;
        first.connection().clone().close().await.expect("close");
        second.connection().clone().close().await.expect("close");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn sqlite_concurrent_puts_get_distinct_versions() {
        let (dir, first) = sqlite_store().await;
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("mc.db").display());
        let second = Store::new(db::connect(&url, 4, Duration::from_secs(5)).await.unwrap());
        concurrent_puts(first, second).await;
    }
}
