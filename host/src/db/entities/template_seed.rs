//! One seed address of a template (table `template_seeds`): what a preview renders for and a proof is
//! sent to.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "template_seeds")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    #[sea_orm(column_type = "Text")]
    pub template_name: String,
    /// Order in the list as it was written.
    pub position: i32,
    /// Unique per template: how the API and the console name the seed.
    #[sea_orm(column_type = "Text")]
    pub label: String,
    /// An email address or a mobile phone number, as the template's channel.
    #[sea_orm(column_type = "Text")]
    pub address: String,
    /// The seed's `ctx`, a JSON object as text.
    #[sea_orm(column_type = "Text")]
    pub ctx: String,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
