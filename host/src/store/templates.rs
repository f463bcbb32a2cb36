//! Queries on templates and their versions.

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};

use super::{Store, StoreError};
use crate::db::entities::{template, template_version};

impl Store {
    /// The published version of the newest-published template for (event type, channel), if any: what
    /// an event of that type is linked to.
    pub async fn find_published_template(
        &self,
        event_type: &str,
        channel: &str,
    ) -> Result<Option<template_version::Model>, StoreError> {
        let Some(published) = template::Entity::find()
            .filter(template::Column::EventType.eq(event_type))
            .filter(template::Column::Channel.eq(channel))
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
}
