//! What an operator changes from an endpoint's page (`/console/webhooks/{name}`), each a CSRF-checked
//! POST refused with 403 for a viewer: retry one notification (due now, same id and body), replay a time
//! range (a new notification for each event that became final in it), and rotate the secret — the new
//! one is shown in that answer only, never again (the page shows the hint).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use super::super::response::see_other;
use super::super::session::Signed;
use super::super::view::parse_time;
use super::super::{Console, ConsoleState};
use super::webhooks::{Outcome, endpoint_page};
use crate::api::webhooks::check_name;
use crate::db::entities::webhook_endpoint;
use crate::services::webhooks::{parse_webhook_id, webhook_id};
use crate::webhooks::secret;

/// The endpoint `name`, or the page that says there is none (404) or it cannot be read (503).
async fn endpoint_or_page(
    console: &Console,
    user: &Signed,
    name: &str,
) -> Result<webhook_endpoint::Model, Response> {
    if console.ctx.executes
        && check_name(name).is_ok()
        && let Ok(Some(endpoint)) = console.ctx.store.webhook_endpoint(name).await
    {
        return Ok(endpoint);
    }
    // The page reads it again and answers what became of it.
    Err(endpoint_page(
        console,
        user,
        name,
        None,
        StatusCode::OK,
        Outcome::default(),
    )
    .await)
}

/// `/console/webhooks/{name}` with `key=value` in its query, after a change.
fn back_to(name: &str, key: &str, value: String) -> Response {
    see_other(
        &format!(
            "/console/webhooks/{name}?{}",
            crate::urls::encode_query(&[(key.to_owned(), value)])
        ),
        None,
    )
}

/// `POST /console/webhooks/{name}/deliveries/{id}/retry`.
pub async fn retry(
    State(console): State<ConsoleState>,
    user: Signed,
    Path((name, id)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    if let Err(refusal) = user.change_form(&body) {
        return refusal.into_response();
    }
    let endpoint = match endpoint_or_page(&console, &user, &name).await {
        Ok(endpoint) => endpoint,
        Err(page) => return page,
    };
    let retried = match parse_webhook_id(&id) {
        Some(row) => console
            .ctx
            .store
            .retry_webhook_notification(&endpoint, row)
            .await
            .map(|found| found.then_some(row)),
        None => Ok(None),
    };
    let error = match retried {
        Ok(Some(row)) => {
            tracing::info!(endpoint = %name, notification = row, login = %user.login, "console: webhook notification retried");
            return back_to(&name, "retried", webhook_id(row));
        }
        Ok(None) => (
            StatusCode::NOT_FOUND,
            format!("There is no notification `{id}` for this endpoint."),
        ),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("The retry failed: {e}"),
        ),
    };
    let outcome = Outcome {
        error: Some(error.1),
        ..Default::default()
    };
    endpoint_page(&console, &user, &name, None, error.0, outcome).await
}

/// `POST /console/webhooks/{name}/replay` (`from`, `to`: UTC times, `from` before `to`).
pub async fn replay(
    State(console): State<ConsoleState>,
    user: Signed,
    Path(name): Path<String>,
    body: Bytes,
) -> Response {
    let form = match user.change_form(&body) {
        Ok(form) => form,
        Err(refusal) => return refusal.into_response(),
    };
    let endpoint = match endpoint_or_page(&console, &user, &name).await {
        Ok(endpoint) => endpoint,
        Err(page) => return page,
    };
    let field = |key: &str| {
        form.get(key)
            .map(|v| v.trim().to_owned())
            .unwrap_or_default()
    };
    let (from_text, to_text) = (field("from"), field("to"));
    let range = (|| {
        if from_text.is_empty() {
            return Err("from: give the start of the range (UTC)".to_owned());
        }
        if to_text.is_empty() {
            return Err("to: give the end of the range (UTC)".to_owned());
        }
        let (from, to) = (parse_time("from", &from_text)?, parse_time("to", &to_text)?);
        if to <= from {
            return Err("to: must be after from".to_owned());
        }
        Ok((from, to))
    })();
    let error = match range {
        Err(why) => (StatusCode::BAD_REQUEST, why),
        Ok((from, to)) => match console.ctx.store.replay_webhook(&endpoint, from, to).await {
            Ok(queued) => {
                tracing::info!(endpoint = %name, queued, login = %user.login, "console: webhook replay");
                return back_to(&name, "replayed", queued.to_string());
            }
            Err(e) => (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("The replay failed: {e}"),
            ),
        },
    };
    let outcome = Outcome {
        error: Some(error.1),
        replay_from: from_text,
        replay_to: to_text,
        ..Default::default()
    };
    endpoint_page(&console, &user, &name, None, error.0, outcome).await
}

/// `POST /console/webhooks/{name}/rotate-secret`: a new generated secret, shown in this answer only
/// (no redirect: the secret must not travel in a URL).
pub async fn rotate_secret(
    State(console): State<ConsoleState>,
    user: Signed,
    Path(name): Path<String>,
    body: Bytes,
) -> Response {
    if let Err(refusal) = user.change_form(&body) {
        return refusal.into_response();
    }
    if let Err(page) = endpoint_or_page(&console, &user, &name).await {
        return page;
    }
    let rotated = match secret::generate() {
        Ok(new_secret) => console
            .ctx
            .store
            .rotate_webhook_secret(&name, &new_secret)
            .await
            .map_err(|e| e.to_string()),
        Err(why) => Err(why),
    };
    let (status, outcome) = match rotated {
        Ok(Some(endpoint)) => {
            tracing::info!(endpoint = %name, login = %user.login, "console: webhook secret rotated");
            (
                StatusCode::OK,
                Outcome {
                    new_secret: Some(endpoint.secret),
                    ..Default::default()
                },
            )
        }
        Ok(None) => (StatusCode::NOT_FOUND, Outcome::default()),
        Err(why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Outcome {
                error: Some(format!("The secret was not rotated: {why}")),
                ..Default::default()
            },
        ),
    };
    endpoint_page(&console, &user, &name, None, status, outcome).await
}
