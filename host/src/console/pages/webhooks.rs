//! `/console/webhooks`: every endpoint (URL, subscribed types, state: enabled, or disabled and why — a
//! `410 Gone` disables one), and `/console/webhooks/{name}`: one endpoint with the history of its
//! notifications, newest first, every attempt of each (time, HTTP status, duration, error), a page at a
//! time. The
//! changes an operator makes from these pages (retry, replay, rotate the secret) are in
//! `webhook_actions`. The secret itself is never shown here, only its hint; the one exception is the
//! answer to a rotation, rendered by `webhook_actions` once.
//!
//! Webhooks are an execution instance's (SPEC "Webhooks"): a control-only instance has none of its own,
//! and its page says so.

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Serialize;

use super::super::session::Signed;
use super::super::view::{Frame, render, time, time_or_dash};
use super::super::{Console, ConsoleState};
use crate::api::view::id_string;
use crate::api::webhooks::check_name;
use crate::db::entities::{webhook_attempt, webhook_endpoint};
use crate::services::webhooks::{parse_webhook_id, webhook_id};
use crate::store::{HistoryEntry, HistoryFilter, decode_events};
use crate::webhooks::secret;
use mc_plugin_api::{NotificationStatus, WebhookEventType};

/// Notifications per page unless `limit` says otherwise, and the most it may say.
const PAGE: u64 = 25;
const MAX_PAGE: u64 = 200;
/// The part of a receiver's answer shown with an attempt.
const RESPONSE_SHOWN: usize = 200;

/// Whether an endpoint is sent to.
#[derive(Clone, Copy)]
enum EndpointState {
    Enabled,
    /// By `PUT` with `"enabled": false`, or by a `410 Gone` (the reason says which).
    Disabled,
}

impl EndpointState {
    const fn of(endpoint: &webhook_endpoint::Model) -> Self {
        if endpoint.enabled {
            EndpointState::Enabled
        } else {
            EndpointState::Disabled
        }
    }

    const fn as_str(self) -> &'static str {
        match self {
            EndpointState::Enabled => "enabled",
            EndpointState::Disabled => "disabled",
        }
    }
}

/// One endpoint as the pages show it.
#[derive(Serialize)]
pub struct EndpointRow {
    pub name: String,
    url: String,
    events: String,
    state: &'static str,
    disabled_reason: String,
    secret_hint: String,
    created_at: String,
    updated_at: String,
    pending: Option<u64>,
}

impl EndpointRow {
    pub fn new(endpoint: &webhook_endpoint::Model, pending: Option<u64>) -> Self {
        let events = decode_events(&endpoint.events);
        EndpointRow {
            name: endpoint.name.clone(),
            url: endpoint.url.clone(),
            events: if events.len() == WebhookEventType::ALL.len() {
                "all types".to_owned()
            } else {
                events
                    .iter()
                    .map(|t| t.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            },
            state: EndpointState::of(endpoint).as_str(),
            disabled_reason: endpoint.disabled_reason.clone().unwrap_or_default(),
            secret_hint: secret::hint(&endpoint.secret),
            created_at: time(endpoint.created_at),
            updated_at: time(endpoint.updated_at),
            pending,
        }
    }
}

#[derive(Serialize)]
struct AttemptRow {
    at: String,
    http_status: String,
    duration: String,
    error: String,
    response: String,
}

impl From<&webhook_attempt::Model> for AttemptRow {
    fn from(a: &webhook_attempt::Model) -> Self {
        let response = a.response.as_deref().unwrap_or("");
        let mut shown: String = response.chars().take(RESPONSE_SHOWN).collect();
        if shown.len() < response.len() {
            shown.push('…');
        }
        AttemptRow {
            at: time(a.attempted_at),
            http_status: a
                .http_status
                .map_or_else(|| "—".to_owned(), |s| s.to_string()),
            duration: a
                .duration_ms
                .map_or_else(|| "—".to_owned(), |ms| format!("{ms} ms")),
            error: a.error.clone().unwrap_or_default(),
            response: shown,
        }
    }
}

#[derive(Serialize)]
struct NotificationRow {
    id: String,
    event_type: String,
    event_id: String,
    status: String,
    created_at: String,
    next_attempt_at: String,
    finished_at: String,
    attempts: Vec<AttemptRow>,
}

impl From<&HistoryEntry> for NotificationRow {
    fn from(entry: &HistoryEntry) -> Self {
        let n = &entry.notification;
        NotificationRow {
            id: webhook_id(n.id),
            event_type: n.event_type.clone(),
            event_id: id_string(entry.event_public_id),
            status: n.status.clone(),
            created_at: time(n.created_at),
            next_attempt_at: time_or_dash(n.next_attempt_at),
            finished_at: time_or_dash(n.finished_at),
            attempts: entry.attempts.iter().map(AttemptRow::from).collect(),
        }
    }
}

/// The history filter as given, to show it again and to build the next page's link.
#[derive(Default, Serialize)]
struct HistoryForm {
    status: String,
    limit: String,
}

/// What a page of one endpoint shows besides its history: a notice after a change, an error, and the
/// new secret right after a rotation (`webhook_actions`).
#[derive(Default)]
pub struct Outcome {
    pub notice: Option<String>,
    pub error: Option<String>,
    pub new_secret: Option<String>,
    /// The form values of a replay to show again after an error.
    pub replay_from: String,
    pub replay_to: String,
}

#[derive(Serialize)]
struct ListView {
    executes: bool,
    /// Whether the list was read (not on the page saying an endpoint is missing).
    listed: bool,
    endpoints: Vec<EndpointRow>,
    error: Option<String>,
}

#[derive(Serialize)]
struct EndpointView {
    endpoint: EndpointRow,
    statuses: &'static [&'static str],
    form: HistoryForm,
    notifications: Vec<NotificationRow>,
    next: Option<String>,
    notice: Option<String>,
    error: Option<String>,
    new_secret: Option<String>,
    replay_from: String,
    replay_to: String,
}

/// `GET /console/webhooks`.
pub async fn list(State(console): State<ConsoleState>, user: Signed) -> Response {
    let frame = Frame::new(&user, console.ctx.archive.is_some(), "webhooks");
    let mut view = ListView {
        executes: console.ctx.executes,
        listed: true,
        endpoints: Vec::new(),
        error: None,
    };
    let mut status = StatusCode::OK;
    if console.ctx.executes {
        let store = &console.ctx.store;
        match (
            store.list_webhook_endpoints().await,
            store.pending_webhook_notifications().await,
        ) {
            (Ok(endpoints), Ok(pending)) => {
                view.endpoints = endpoints
                    .iter()
                    .map(|e| {
                        let waiting = pending.iter().find(|p| p.endpoint == e.name);
                        EndpointRow::new(e, Some(waiting.map_or(0, |p| p.pending)))
                    })
                    .collect();
            }
            (Err(e), _) | (_, Err(e)) => {
                status = StatusCode::SERVICE_UNAVAILABLE;
                view.error = Some(format!("the endpoints cannot be read: {e}"));
            }
        }
    }
    render(&console.pages, status, "webhooks.html", Some(frame), &view)
}

/// `GET /console/webhooks/{name}?status=&after=&limit=`.
pub async fn endpoint(
    State(console): State<ConsoleState>,
    user: Signed,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let pairs = crate::urls::query_pairs(query.as_deref().unwrap_or(""));
    let get = |key: &str| pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
    let notice = if let Some(id) = get("retried") {
        Some(format!(
            "Notification {id} is due again now: the next attempt goes out within a moment."
        ))
    } else {
        get("replayed").map(|n| format!("Replay: {n} notification(s) queued."))
    };
    let outcome = Outcome {
        notice,
        ..Default::default()
    };
    endpoint_page(
        &console,
        &user,
        &name,
        query.as_deref(),
        StatusCode::OK,
        outcome,
    )
    .await
}

/// The page of endpoint `name` with the history page `query` asks for, and `outcome`; answered with
/// `status` (a 404 when there is no such endpoint, a 400 when the query is wrong).
pub async fn endpoint_page(
    console: &Console,
    user: &Signed,
    name: &str,
    query: Option<&str>,
    mut status: StatusCode,
    mut outcome: Outcome,
) -> Response {
    let frame = Frame::new(user, console.ctx.archive.is_some(), "webhooks");
    let missing = |console: &Console, why: String| {
        render(
            &console.pages,
            StatusCode::NOT_FOUND,
            "webhooks.html",
            Some(Frame::new(user, console.ctx.archive.is_some(), "webhooks")),
            &ListView {
                executes: console.ctx.executes,
                listed: false,
                endpoints: Vec::new(),
                error: Some(why),
            },
        )
    };
    if !console.ctx.executes || check_name(name).is_err() {
        return missing(
            console,
            format!("There is no webhook endpoint `{name}` here."),
        );
    }
    let endpoint = match console.ctx.store.webhook_endpoint(name).await {
        Ok(Some(endpoint)) => endpoint,
        Ok(None) => {
            return missing(
                console,
                format!("There is no webhook endpoint `{name}` here."),
            );
        }
        Err(e) => return missing(console, format!("The endpoint cannot be read: {e}")),
    };
    let pairs = crate::urls::query_pairs(query.unwrap_or(""));
    let (form, filter) = match history_filter(&pairs) {
        Ok(found) => found,
        Err(why) => {
            status = StatusCode::BAD_REQUEST;
            outcome.error = Some(why);
            (
                HistoryForm::default(),
                HistoryFilter {
                    limit: PAGE,
                    newest_first: true,
                    ..Default::default()
                },
            )
        }
    };
    let (notifications, next) = match console.ctx.store.webhook_history(&endpoint, &filter).await {
        Ok(page) => {
            let next = (page.len() as u64 == filter.limit)
                .then(|| page.last())
                .flatten()
                .map(|last| {
                    let mut kept: Vec<(String, String)> = pairs
                        .iter()
                        .filter(|(k, v)| matches!(k.as_str(), "status" | "limit") && !v.is_empty())
                        .cloned()
                        .collect();
                    kept.push(("after".to_owned(), webhook_id(last.notification.id)));
                    crate::urls::encode_query(&kept)
                });
            (page.iter().map(NotificationRow::from).collect(), next)
        }
        Err(e) => {
            status = StatusCode::SERVICE_UNAVAILABLE;
            outcome.error = Some(format!("the history cannot be read: {e}"));
            (Vec::new(), None)
        }
    };
    render(
        &console.pages,
        status,
        "webhook.html",
        Some(frame),
        &EndpointView {
            endpoint: EndpointRow::new(&endpoint, None),
            statuses: NotificationStatus::NAMES,
            form,
            notifications,
            next,
            notice: outcome.notice,
            error: outcome.error,
            new_secret: outcome.new_secret,
            replay_from: outcome.replay_from,
            replay_to: outcome.replay_to,
        },
    )
}

/// The history filter of the page's query (`status`, `after`, `limit`), or what is wrong with it.
fn history_filter(pairs: &[(String, String)]) -> Result<(HistoryForm, HistoryFilter), String> {
    let mut form = HistoryForm::default();
    let mut filter = HistoryFilter {
        limit: PAGE,
        newest_first: true,
        ..Default::default()
    };
    for (key, value) in pairs {
        let value = value.trim();
        if value.is_empty() {
            continue;
        }
        match key.as_str() {
            "status" => {
                filter.status = Some(
                    value
                        .parse::<NotificationStatus>()
                        .map_err(|e| format!("status: {e}"))?,
                );
                form.status = value.to_owned();
            }
            "after" => {
                filter.after = Some(
                    parse_webhook_id(value)
                        .ok_or_else(|| format!("after: `{value}` is not a notification id"))?,
                );
            }
            "limit" => {
                filter.limit = value
                    .parse::<u64>()
                    .ok()
                    .filter(|n| (1..=MAX_PAGE).contains(n))
                    .ok_or_else(|| format!("limit: must be a number from 1 to {MAX_PAGE}"))?;
                form.limit = value.to_owned();
            }
            _ => {}
        }
    }
    Ok((form, filter))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(query: &str) -> Vec<(String, String)> {
        crate::urls::query_pairs(query)
    }

    #[test]
    fn the_history_query_is_checked_and_bounded() {
        let (form, filter) = history_filter(&pairs("status=failed&after=msg_7&limit=5")).unwrap();
        assert_eq!(filter.status, Some(NotificationStatus::Failed));
        assert_eq!(filter.after, Some(7));
        assert_eq!(filter.limit, 5);
        assert_eq!(form.status, "failed");
        let (_, filter) = history_filter(&pairs("status=&after=")).unwrap();
        assert_eq!(
            (filter.status, filter.after, filter.limit),
            (None, None, PAGE)
        );
        for (query, field) in [
            ("status=lost", "status:"),
            ("after=abc", "after:"),
            ("limit=0", "limit:"),
            ("limit=201", "limit:"),
            ("limit=x", "limit:"),
        ] {
            let why = history_filter(&pairs(query)).err().unwrap();
            assert!(why.starts_with(field), "{query}: {why}");
        }
    }
}
