//! One proof of a template version sent to a seed (table `template_proofs`). Not an event and not a
//! delivery-log entry, so that no statistic, indicator, webhook or archive ever counts it.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "template_proofs")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    #[sea_orm(column_type = "Text")]
    pub template_name: String,
    pub version: i32,
    /// `email` or `sms`.
    #[sea_orm(column_type = "Text")]
    pub channel: String,
    #[sea_orm(column_type = "Text")]
    pub seed_label: String,
    #[sea_orm(column_type = "Text")]
    pub address: String,
    /// `sent` or `failed` (`crate::templates::proofs::ProofStatus`).
    #[sea_orm(column_type = "Text")]
    pub status: String,
    #[sea_orm(column_type = "Text", nullable)]
    pub message_id: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub error: Option<String>,
    /// The console login that sent it; `None` through the API.
    #[sea_orm(column_type = "Text", nullable)]
    pub sent_by: Option<String>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
