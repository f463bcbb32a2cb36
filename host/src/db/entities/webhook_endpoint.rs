//! A webhook endpoint an application registered (table `webhook_endpoints`, SPEC "Webhooks").

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "webhook_endpoints")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// `A-Za-z0-9_.-`, 1 to 100 characters; the API names endpoints by it.
    #[sea_orm(column_type = "Text", unique)]
    pub name: String,
    #[sea_orm(column_type = "Text")]
    pub url: String,
    /// The subscribed `WebhookEventType` names as `,a,b,` (see the migration: matched with `LIKE`).
    #[sea_orm(column_type = "Text")]
    pub events: String,
    pub enabled: bool,
    /// `whsec_` + base64 of the key bytes. Kept as given: the host must sign with it.
    #[sea_orm(column_type = "Text")]
    pub secret: String,
    /// Why the host disabled it (a `410 Gone`); cleared when an operator enables it again.
    #[sea_orm(column_type = "Text", nullable)]
    pub disabled_reason: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
