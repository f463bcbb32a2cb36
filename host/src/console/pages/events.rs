//! `/console/events`: search by id, `externalId`, email, phone, type, status, queue and creation time,
//! through the store's query (the same filters as `GET /api/v1/events`, on the same indexes).

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Serialize;

use super::super::ConsoleState;
use super::super::session::Signed;
use super::super::view::{Frame, parse_time, render, time};
use crate::api::view::{id_string, parse_id};
use crate::db::entities::event;
use crate::store::EventFilter;
use mc_plugin_api::{EventStatus, Queue};

/// Results per page.
const PAGE: u64 = 50;

/// The search form as typed, to show it again.
#[derive(Default, Serialize)]
struct Form {
    id: String,
    external_id: String,
    email: String,
    mobile_phone: String,
    event_type: String,
    status: String,
    queue: String,
    from: String,
    to: String,
}

/// One result row.
#[derive(Serialize)]
pub struct EventRow {
    pub id: String,
    pub created_at: String,
    pub event_type: String,
    pub channel: String,
    pub queue: String,
    pub status: String,
    pub external_id: String,
    pub address: String,
    pub template: String,
}

impl From<&event::Model> for EventRow {
    fn from(e: &event::Model) -> Self {
        EventRow {
            id: id_string(e.public_id()),
            created_at: time(e.created_at),
            event_type: e.event_type.clone(),
            channel: e.channel.clone(),
            queue: e.queue.clone(),
            status: e.status.clone(),
            external_id: e.external_id.clone().unwrap_or_default(),
            address: e
                .email
                .clone()
                .or_else(|| e.mobile_phone.clone())
                .unwrap_or_default(),
            template: match (&e.template_name, e.template_version) {
                (Some(name), Some(version)) => format!("{name} v{version}"),
                _ => String::new(),
            },
        }
    }
}

#[derive(Serialize)]
struct View {
    form: Form,
    statuses: Vec<&'static str>,
    searched: bool,
    error: Option<String>,
    events: Vec<EventRow>,
    /// The query string of the next page, when there is one.
    next: Option<String>,
}

/// The filter of the form, or what is wrong with it (naming the field).
fn filter(form: &Form, after: Option<i64>) -> Result<EventFilter, String> {
    let text = |s: &str| {
        let s = s.trim();
        (!s.is_empty()).then(|| s.to_owned())
    };
    let mut filter = EventFilter {
        limit: PAGE,
        after_row_key: after,
        external_id: text(&form.external_id),
        email: text(&form.email),
        mobile_phone: text(&form.mobile_phone),
        event_type: text(&form.event_type),
        ..Default::default()
    };
    if let Some(id) = text(&form.id) {
        filter.id = Some(parse_id(&id).ok_or_else(|| format!("id: `{id}` is not an event id"))?);
    }
    if let Some(status) = text(&form.status) {
        filter.status = Some(
            EventStatus::from_name(&status)
                .ok_or_else(|| format!("status: unknown status `{status}`"))?,
        );
    }
    if let Some(queue) = text(&form.queue) {
        filter.queue = Some(
            queue
                .parse::<Queue>()
                .map_err(|_| format!("queue: must be realtime or batch, not `{queue}`"))?,
        );
    }
    if let Some(from) = text(&form.from) {
        filter.from = Some(parse_time("from", &from)?);
    }
    if let Some(to) = text(&form.to) {
        filter.to = Some(parse_time("to", &to)?);
    }
    Ok(filter)
}

/// `GET /console/events?id=&externalId=&email=&mobilePhone=&type=&status=&queue=&from=&to=&after=`.
pub async fn search(
    State(console): State<ConsoleState>,
    user: Signed,
    RawQuery(query): RawQuery,
) -> Response {
    let mut form = Form::default();
    let mut after = None;
    let pairs = crate::urls::query_pairs(query.as_deref().unwrap_or(""));
    for (name, value) in &pairs {
        let slot = match name.as_str() {
            "id" => &mut form.id,
            "externalId" => &mut form.external_id,
            "email" => &mut form.email,
            "mobilePhone" => &mut form.mobile_phone,
            "type" => &mut form.event_type,
            "status" => &mut form.status,
            "queue" => &mut form.queue,
            "from" => &mut form.from,
            "to" => &mut form.to,
            "after" => {
                after = parse_id(value).map(|id| event::split_public_id(id).1);
                continue;
            }
            _ => continue,
        };
        *slot = value.clone();
    }
    let searched = !pairs.is_empty();
    let (status, error, events, next) = match filter(&form, after) {
        Err(message) => (StatusCode::BAD_REQUEST, Some(message), Vec::new(), None),
        Ok(filter) => match console.ctx.store.list_events(&filter).await {
            Ok(found) => {
                let next = (found.len() as u64 == filter.limit)
                    .then(|| found.last())
                    .flatten()
                    .map(|last| {
                        let mut pairs: Vec<(String, String)> = pairs
                            .iter()
                            .filter(|(n, v)| n != "after" && !v.is_empty())
                            .cloned()
                            .collect();
                        pairs.push(("after".to_owned(), id_string(last.public_id())));
                        crate::urls::encode_query(&pairs)
                    });
                (
                    StatusCode::OK,
                    None,
                    found.iter().map(EventRow::from).collect(),
                    next,
                )
            }
            Err(e) => (
                StatusCode::SERVICE_UNAVAILABLE,
                Some(format!("the search failed: {e}")),
                Vec::new(),
                None,
            ),
        },
    };
    render(
        &console.pages,
        status,
        "events.html",
        Some(Frame::new(&user, console.ctx.archive.is_some(), "events")),
        &View {
            form,
            statuses: EventStatus::ALL.iter().map(|s| s.as_str()).collect(),
            searched,
            error,
            events,
            next,
        },
    )
}
