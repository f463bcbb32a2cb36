//! The console's rows: users created through the first-run link, sessions, and the first-run token.
//! Tokens are stored as their SHA-256 only (the caller hashes), so a copy of the database signs no one in.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, TransactionTrait,
};

use super::{Store, StoreError};
use crate::db::entities::{console_first_run, console_session, console_user};

/// A session as the console checks it.
#[derive(Clone, Debug)]
pub struct ConsoleSessionRow {
    pub login: String,
    pub role: String,
    pub csrf_token: String,
    pub expires_at: DateTime<Utc>,
}

impl Store {
    /// The user created through the console of that login.
    pub async fn console_user(
        &self,
        login: &str,
    ) -> Result<Option<console_user::Model>, StoreError> {
        console_user::Entity::find_by_id(login.to_owned())
            .one(&self.db)
            .await
            .map_err(|e| self.error(e))
    }

    /// How many users were created through the console.
    pub async fn console_user_count(&self) -> Result<u64, StoreError> {
        console_user::Entity::find()
            .count(&self.db)
            .await
            .map_err(|e| self.error(e))
    }

    /// Records a sign-in, and drops the sessions that have expired (so the table holds live ones only).
    pub async fn insert_console_session(
        &self,
        id_hash: &str,
        session: &ConsoleSessionRow,
    ) -> Result<(), StoreError> {
        let _turn = self.write_turn("insert_console_session").await;
        let now = Utc::now();
        console_session::Entity::delete_many()
            .filter(console_session::Column::ExpiresAt.lt(now))
            .exec(&self.db)
            .await
            .map_err(|e| self.error(e))?;
        console_session::Entity::insert(console_session::ActiveModel {
            id_hash: Set(id_hash.to_owned()),
            login: Set(session.login.clone()),
            role: Set(session.role.clone()),
            csrf_token: Set(session.csrf_token.clone()),
            created_at: Set(now),
            expires_at: Set(session.expires_at),
        })
        .exec_without_returning(&self.db)
        .await
        .map_err(|e| self.error(e))?;
        Ok(())
    }

    /// The live session of that token hash.
    pub async fn console_session(
        &self,
        id_hash: &str,
    ) -> Result<Option<ConsoleSessionRow>, StoreError> {
        Ok(console_session::Entity::find_by_id(id_hash.to_owned())
            .filter(console_session::Column::ExpiresAt.gt(Utc::now()))
            .one(&self.db)
            .await
            .map_err(|e| self.error(e))?
            .map(|row| ConsoleSessionRow {
                login: row.login,
                role: row.role,
                csrf_token: row.csrf_token,
                expires_at: row.expires_at,
            }))
    }

    /// Sign-out: the session is gone for every instance at once.
    pub async fn delete_console_session(&self, id_hash: &str) -> Result<(), StoreError> {
        let _turn = self.write_turn("delete_console_session").await;
        console_session::Entity::delete_by_id(id_hash.to_owned())
            .exec(&self.db)
            .await
            .map_err(|e| self.error(e))?;
        Ok(())
    }

    /// Stores a first-run token hash valid until `expires_at`.
    pub async fn insert_first_run_token(
        &self,
        token_hash: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let _turn = self.write_turn("insert_first_run_token").await;
        console_first_run::Entity::insert(console_first_run::ActiveModel {
            token_hash: Set(token_hash.to_owned()),
            expires_at: Set(expires_at),
            used_at: Set(None),
        })
        .on_conflict(
            OnConflict::column(console_first_run::Column::TokenHash)
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(&self.db)
        .await
        .map_err(|e| self.error(e))?;
        Ok(())
    }

    /// Whether that first-run token is unused and unexpired.
    pub async fn first_run_token_valid(&self, token_hash: &str) -> Result<bool, StoreError> {
        Ok(console_first_run::Entity::find_by_id(token_hash.to_owned())
            .filter(console_first_run::Column::UsedAt.is_null())
            .filter(console_first_run::Column::ExpiresAt.gt(Utc::now()))
            .one(&self.db)
            .await
            .map_err(|e| self.error(e))?
            .is_some())
    }

    /// Uses the first-run token and creates the user in one transaction: `false` (nothing written) when
    /// the token is used, expired or unknown, or the login is taken. Two browsers racing on one link
    /// create one user.
    pub async fn create_user_with_first_run_token(
        &self,
        token_hash: &str,
        user: console_user::Model,
    ) -> Result<bool, StoreError> {
        let _turn = self.write_turn("create_user_with_first_run_token").await;
        let txn = self.db.begin().await.map_err(|e| self.error(e))?;
        let now = Utc::now();
        let used = console_first_run::Entity::update_many()
            .col_expr(console_first_run::Column::UsedAt, Expr::value(now))
            .filter(console_first_run::Column::TokenHash.eq(token_hash))
            .filter(console_first_run::Column::UsedAt.is_null())
            .filter(console_first_run::Column::ExpiresAt.gt(now))
            .exec(&txn)
            .await
            .map_err(|e| self.error(e))?;
        if used.rows_affected != 1 {
            return Ok(false);
        }
        let inserted = console_user::Entity::insert(console_user::ActiveModel {
            login: Set(user.login),
            password_hash: Set(user.password_hash),
            role: Set(user.role),
            created_at: Set(now),
        })
        .on_conflict(
            OnConflict::column(console_user::Column::Login)
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(&txn)
        .await
        .map_err(|e| self.error(e))?;
        if inserted != 1 {
            return Ok(false);
        }
        txn.commit().await.map_err(|e| self.error(e))?;
        Ok(true)
    }
}
