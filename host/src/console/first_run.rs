//! First run of an installation without console users: no password is shared by every installation.
//! At start, when `[[console.users]]` is empty and no user was created yet, the log gets a one-time link
//! (`/console/first-run?token=…`, random, stored only as its SHA-256, expiring after
//! `[console] first_run_link_lifetime`). Whoever can read the server's log opens it and creates the first
//! operator, who is then signed in; the link is used up in the transaction that creates the user.

use std::net::SocketAddr;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use bytes::Bytes;
use chrono::Utc;
use serde::{Deserialize, Serialize};

use super::ConsoleState;
use super::auth::{self, random_token, token_hash};
use super::response::{refuse, see_other};
use super::session::{parse_form, start_session};
use super::view::render;
use crate::config::{ConsoleConfig, ConsoleRole};
use crate::db::entities::console_user;
use crate::store::{Store, StoreError};

/// Shortest password the first-run form accepts.
const MIN_PASSWORD_CHARS: usize = 12;

/// Logs the first-run link when the console has no user; does nothing otherwise.
pub async fn announce_first_run(
    store: &Store,
    config: &ConsoleConfig,
    admin_addr: SocketAddr,
) -> Result<(), StoreError> {
    if !config.users.is_empty() || store.console_user_count().await? > 0 {
        return Ok(());
    }
    let Ok(token) = random_token() else {
        tracing::warn!("no randomness for the console's first-run link; none printed");
        return Ok(());
    };
    let lifetime = chrono::Duration::from_std(config.first_run_link_lifetime)
        .unwrap_or_else(|_| chrono::Duration::hours(1));
    store
        .insert_first_run_token(&token_hash(&token), Utc::now() + lifetime)
        .await?;
    tracing::warn!(
        link = %format!("http://{admin_addr}/console/first-run?token={token}"),
        valid_for = %crate::config::format_duration(config.first_run_link_lifetime),
        "the console has no users: open this one-time link to create the first operator \
         (or list [[console.users]] in the configuration)"
    );
    Ok(())
}

#[derive(Deserialize)]
pub struct TokenQuery {
    token: Option<String>,
}

#[derive(Serialize)]
struct FirstRunView<'a> {
    token: &'a str,
    login: &'a str,
    error: Option<&'a str>,
}

fn form_page(console: &ConsoleState, status: StatusCode, view: &FirstRunView<'_>) -> Response {
    render(&console.pages, status, "first_run.html", None, view)
}

fn link_refused() -> Response {
    refuse(
        StatusCode::FORBIDDEN,
        "403 Forbidden: this first-run link is unknown, expired or already used; restart the server \
         for a new one while no console user exists",
    )
}

/// `GET /console/first-run?token=…`.
pub async fn page(
    State(console): State<ConsoleState>,
    Query(query): Query<TokenQuery>,
) -> Response {
    let token = query.token.unwrap_or_default();
    match console
        .ctx
        .store
        .first_run_token_valid(&token_hash(&token))
        .await
    {
        Ok(true) => form_page(
            &console,
            StatusCode::OK,
            &FirstRunView {
                token: &token,
                login: "",
                error: None,
            },
        ),
        Ok(false) => link_refused(),
        Err(e) => refuse(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    }
}

/// `POST /console/first-run`: creates the first operator and signs them in.
pub async fn create_user(State(console): State<ConsoleState>, body: Bytes) -> Response {
    let form = parse_form(&body);
    let field = |name: &str| form.get(name).cloned().unwrap_or_default();
    let (token, login, password, again) = (
        field("token"),
        field("login").trim().to_owned(),
        field("password"),
        field("password_again"),
    );
    let problem = if login.is_empty() || login.len() > 128 {
        Some("The login must be 1 to 128 characters.")
    } else if password.chars().count() < MIN_PASSWORD_CHARS {
        Some("The password must be at least 12 characters.")
    } else if password != again {
        Some("The two passwords differ.")
    } else {
        None
    };
    if let Some(error) = problem {
        return form_page(
            &console,
            StatusCode::BAD_REQUEST,
            &FirstRunView {
                token: &token,
                login: &login,
                error: Some(error),
            },
        );
    }
    let hash = match tokio::task::spawn_blocking(move || auth::hash_password(&password)).await {
        Ok(Ok(hash)) => hash,
        Ok(Err(e)) => return refuse(StatusCode::INTERNAL_SERVER_ERROR, &e),
        Err(e) => return refuse(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    };
    let user = console_user::Model {
        login: login.clone(),
        password_hash: hash,
        role: ConsoleRole::Operator.as_str().to_owned(),
        created_at: Utc::now(),
    };
    match console
        .ctx
        .store
        .create_user_with_first_run_token(&token_hash(&token), user)
        .await
    {
        Ok(true) => {}
        Ok(false) => return link_refused(),
        Err(e) => return refuse(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    }
    tracing::info!(login = %login, "console: first operator created through the first-run link");
    match start_session(&console, &login, ConsoleRole::Operator).await {
        Ok(cookie) => see_other("/console/monitoring", Some(cookie)),
        Err(refusal) => refusal,
    }
}
