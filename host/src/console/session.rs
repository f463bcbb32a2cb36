//! Sessions: sign-in, sign-out, the signed-in user of a request, and the checks of every POST (role
//! first, then the session's CSRF token).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::header::{COOKIE, HeaderValue, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use chrono::Utc;
use serde::Serialize;

use super::auth::{self, random_token, token_hash};
use super::response::{Refusal, refuse, see_other};
use super::view::render;
use super::{Console, ConsoleState};
use crate::config::ConsoleRole;
use crate::store::ConsoleSessionRow;

/// The session cookie. Scoped to `/console`, `HttpOnly` (no script reads it), `SameSite=Strict` (no
/// other site's page sends it).
pub const COOKIE_NAME: &str = "mc_console_session";

/// The signed-in user of a request.
#[derive(Clone, Debug)]
pub struct Signed {
    pub login: String,
    pub role: ConsoleRole,
    pub csrf: String,
    id_hash: String,
}

impl Signed {
    /// Whether the user may change things.
    pub fn is_operator(&self) -> bool {
        self.role == ConsoleRole::Operator
    }

    /// The form of a POST that changes something: refused (403) for a viewer before the body is even
    /// read, whatever it holds; then refused (403) unless it carries this session's CSRF token.
    pub fn change_form(&self, body: &Bytes) -> Result<HashMap<String, String>, Refusal> {
        if !self.is_operator() {
            return Err(Refusal::forbidden(
                "403 Forbidden: viewers cannot change anything; sign in as an operator",
            ));
        }
        self.form(body)
    }

    /// The form of a POST any signed-in user may send (sign-out), CSRF-checked.
    pub fn form(&self, body: &Bytes) -> Result<HashMap<String, String>, Refusal> {
        let form = parse_form(body);
        let sent = form.get("csrf").map(String::as_str).unwrap_or("");
        if !crate::admin::constant_time_eq(sent.as_bytes(), self.csrf.as_bytes()) {
            return Err(Refusal::forbidden(
                "403 Forbidden: the form's CSRF token is missing or wrong; reload the page and try again",
            ));
        }
        Ok(form)
    }
}

/// `application/x-www-form-urlencoded` pairs (the last of a repeated name wins).
pub fn parse_form(body: &Bytes) -> HashMap<String, String> {
    crate::urls::query_pairs(&String::from_utf8_lossy(body))
        .into_iter()
        .collect()
}

/// The session token of the request's cookie.
fn cookie_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE_NAME)
        .map(|(_, value)| value.to_owned())
}

impl FromRequestParts<ConsoleState> for Signed {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        console: &ConsoleState,
    ) -> Result<Self, Self::Rejection> {
        let not_signed = || {
            if parts.method == Method::GET {
                see_other("/console/sign-in", None)
            } else {
                refuse(StatusCode::FORBIDDEN, "403 Forbidden: sign in first")
            }
        };
        let Some(token) = cookie_token(&parts.headers) else {
            return Err(not_signed());
        };
        let id_hash = token_hash(&token);
        let row = console
            .ctx
            .store
            .console_session(&id_hash)
            .await
            .map_err(|e| {
                refuse(
                    StatusCode::SERVICE_UNAVAILABLE,
                    &format!("the session store is unavailable: {e}"),
                )
            })?;
        let Some(row) = row else {
            return Err(not_signed());
        };
        Ok(Signed {
            login: row.login,
            role: ConsoleRole::from_name(&row.role).unwrap_or_default(),
            csrf: row.csrf_token,
            id_hash,
        })
    }
}

#[derive(Serialize)]
struct SignInView<'a> {
    error: Option<String>,
    login: &'a str,
    first_run: bool,
}

/// `GET /console/sign-in`.
pub async fn sign_in_page(State(console): State<ConsoleState>) -> Response {
    sign_in_answer(&console, StatusCode::OK, None, "")
}

fn sign_in_answer(
    console: &Console,
    status: StatusCode,
    error: Option<String>,
    login: &str,
) -> Response {
    let first_run = console.ctx.config.users.is_empty();
    render(
        &console.pages,
        status,
        "sign_in.html",
        None,
        &SignInView {
            error,
            login,
            first_run,
        },
    )
}

/// The configured or console-created user of that login: its hash and role.
async fn find_user(
    console: &Console,
    login: &str,
) -> Result<Option<(String, ConsoleRole)>, Response> {
    if let Some(user) = console.ctx.config.users.iter().find(|u| u.login == login) {
        return Ok(Some((user.password_hash.clone(), user.role)));
    }
    let stored = console.ctx.store.console_user(login).await.map_err(|e| {
        refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("the user store is unavailable: {e}"),
        )
    })?;
    Ok(stored.map(|u| {
        (
            u.password_hash,
            ConsoleRole::from_name(&u.role).unwrap_or_default(),
        )
    }))
}

/// `POST /console/sign-in`.
pub async fn sign_in(
    State(console): State<ConsoleState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    body: Bytes,
) -> Response {
    let form = parse_form(&body);
    let login = form.get("login").map(|s| s.trim()).unwrap_or("").to_owned();
    let password = form.get("password").cloned().unwrap_or_default();
    let peer: IpAddr = peer.ip();
    if let Some(wait) = console.backoff.paused_for(&login, peer, Instant::now()) {
        return sign_in_answer(
            &console,
            StatusCode::TOO_MANY_REQUESTS,
            Some(format!(
                "Too many failed sign-ins: try again in {} s.",
                wait.as_secs().max(1)
            )),
            &login,
        );
    }
    let user = match find_user(&console, &login).await {
        Ok(user) => user,
        Err(refusal) => return refusal,
    };
    let hash = user
        .as_ref()
        .map_or_else(|| auth::decoy_hash().to_owned(), |(hash, _)| hash.clone());
    // argon2 takes tens of milliseconds of CPU on purpose: off the async workers.
    let matches = tokio::task::spawn_blocking(move || auth::verify_password(&password, &hash))
        .await
        .unwrap_or(false);
    let role = match (matches, user) {
        (true, Some((_, role))) => role,
        _ => {
            let pause = console.backoff.failed(&login, peer, Instant::now());
            tracing::warn!(login = %login, %peer, "console sign-in failed");
            let mut message = "Wrong login or password.".to_owned();
            if let Some(pause) = pause {
                message.push_str(&format!(
                    " Too many failed sign-ins: try again in {} s.",
                    pause.as_secs()
                ));
            }
            return sign_in_answer(&console, StatusCode::UNAUTHORIZED, Some(message), &login);
        }
    };
    console.backoff.succeeded(&login, peer);
    match start_session(&console, &login, role).await {
        Ok(cookie) => {
            tracing::info!(login = %login, role = role.as_str(), "console sign-in");
            see_other("/console/monitoring", Some(cookie))
        }
        Err(refusal) => refusal,
    }
}

/// Stores a new session and returns the `Set-Cookie` header that hands it to the browser.
pub async fn start_session(
    console: &Console,
    login: &str,
    role: ConsoleRole,
) -> Result<HeaderMap, Response> {
    let unavailable = |e: &dyn std::fmt::Display| {
        refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("cannot start a session: {e}"),
        )
    };
    let token = random_token().map_err(|e| unavailable(&e))?;
    let csrf = random_token().map_err(|e| unavailable(&e))?;
    let lifetime = console.ctx.config.session_lifetime;
    let expires_at = Utc::now()
        + chrono::Duration::from_std(lifetime).unwrap_or_else(|_| chrono::Duration::hours(8));
    console
        .ctx
        .store
        .insert_console_session(
            &token_hash(&token),
            &ConsoleSessionRow {
                login: login.to_owned(),
                role: role.as_str().to_owned(),
                csrf_token: csrf,
                expires_at,
            },
        )
        .await
        .map_err(|e| unavailable(&e))?;
    let secure = if console.ctx.config.secure_cookies {
        "; Secure"
    } else {
        ""
    };
    let cookie = format!(
        "{COOKIE_NAME}={token}; Path=/console; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
        lifetime.as_secs()
    );
    let mut headers = HeaderMap::new();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        headers.insert(SET_COOKIE, value);
    }
    Ok(headers)
}

/// `POST /console/sign-out`: the session row goes (for every instance), the cookie is cleared.
pub async fn sign_out(State(console): State<ConsoleState>, user: Signed, body: Bytes) -> Response {
    if let Err(refusal) = user.form(&body) {
        return refusal.into_response();
    }
    if let Err(e) = console
        .ctx
        .store
        .delete_console_session(&user.id_hash)
        .await
    {
        return refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("cannot end the session: {e}"),
        );
    }
    let mut headers = HeaderMap::new();
    headers.insert(
        SET_COOKIE,
        HeaderValue::from_static(
            "mc_console_session=; Path=/console; HttpOnly; SameSite=Strict; Max-Age=0",
        ),
    );
    see_other("/console/sign-in", Some(headers))
}
