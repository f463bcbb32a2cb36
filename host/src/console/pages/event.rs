//! `/console/events/{id}`: one event — its fields, `ctx`, template version, every delivery attempt on a
//! timeline, and its message. The message sent is not stored, so it is rendered again here from the
//! linked template version and the event's variables exactly as delivery renders it (same cache type,
//! same limits), and the page says so. Its HTML is shown only in a sandboxed frame
//! (`/console/events/{id}/message`, served with a `sandbox` CSP of its own).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Serialize;

use super::super::response::{message, refuse};
use super::super::session::Signed;
use super::super::view::{Frame, render, time, time_or_dash};
use super::super::{Console, ConsoleState};
use crate::api::view::{id_string, parse_id};
use crate::db::entities::{delivery_log, event};
use crate::templates::{RenderEvent, Rendered, TemplateContent};
use mc_plugin_api::DeliveryStatus;

/// One step of the event's timeline.
#[derive(Serialize)]
struct Step {
    at: String,
    what: String,
    detail: String,
    /// CSS class of the step's marker.
    kind: &'static str,
}

/// One delivery attempt.
#[derive(Serialize)]
struct Attempt {
    attempt: i32,
    status: String,
    address: String,
    message_id: String,
    error: String,
    template: String,
    created_at: String,
    updated_at: String,
    accepted_at: String,
    next_attempt_at: String,
    is_final: &'static str,
}

#[derive(Serialize)]
struct MessageView {
    /// Why there is no message, when there is none.
    unavailable: Option<String>,
    from: String,
    subject: String,
    text: String,
    has_html: bool,
}

#[derive(Serialize)]
struct View {
    id: String,
    fields: Vec<(&'static str, String)>,
    ctx: String,
    ctx_unreadable: bool,
    template: String,
    timeline: Vec<Step>,
    attempts: Vec<Attempt>,
    message: MessageView,
}

fn or_dash(value: &Option<String>) -> String {
    value.clone().unwrap_or_else(|| "—".to_owned())
}

fn fields(e: &event::Model) -> Vec<(&'static str, String)> {
    vec![
        ("id", id_string(e.public_id())),
        ("status", e.status.clone()),
        ("type", e.event_type.clone()),
        ("channel", e.channel.clone()),
        ("queue", e.queue.clone()),
        ("externalId", or_dash(&e.external_id)),
        ("email", or_dash(&e.email)),
        ("mobilePhone", or_dash(&e.mobile_phone)),
        ("language", or_dash(&e.language)),
        ("created", time(e.created_at)),
        ("updated", time(e.updated_at)),
        ("scheduled", time_or_dash(e.scheduled_at)),
        ("expiration", time_or_dash(e.expires_at)),
        ("linked", time_or_dash(e.linked_at)),
        ("finished", time_or_dash(e.finished_at)),
        ("instance", e.instance_id.to_string()),
    ]
}

fn attempt(d: &delivery_log::Model) -> Attempt {
    Attempt {
        attempt: d.attempt,
        status: d.status.clone(),
        address: or_dash(&d.address),
        message_id: or_dash(&d.message_id),
        error: d.error.clone().unwrap_or_default(),
        template: match (&d.template_name, d.template_version) {
            (Some(name), Some(version)) => format!("{name} v{version}"),
            _ => "—".to_owned(),
        },
        created_at: time(d.created_at),
        updated_at: time(d.updated_at),
        accepted_at: time_or_dash(d.accepted_at),
        next_attempt_at: time_or_dash(d.next_attempt_at.filter(|_| awaits_retry(d))),
        is_final: if d.is_final { "final" } else { "" },
    }
}

/// Whether the attempt is still to be made again: its `next_attempt_at` is then a plan, otherwise a
/// leftover of the schedule it was sent on.
fn awaits_retry(d: &delivery_log::Model) -> bool {
    !d.is_final && d.status != DeliveryStatus::Sent.as_str()
}

/// The push, the link, each attempt, the end, in time order.
fn timeline(e: &event::Model, deliveries: &[delivery_log::Model]) -> Vec<Step> {
    let mut steps = vec![(
        e.created_at,
        Step {
            at: time(e.created_at),
            what: "pushed".to_owned(),
            detail: format!("into the {} queue", e.queue),
            kind: "push",
        },
    )];
    if let Some(linked) = e.linked_at {
        steps.push((
            linked,
            Step {
                at: time(linked),
                what: "linked".to_owned(),
                detail: match (&e.template_name, e.template_version) {
                    (Some(name), Some(version)) => format!("to template {name} version {version}"),
                    _ => "to a template".to_owned(),
                },
                kind: "link",
            },
        ));
    }
    for d in deliveries {
        let at = d.accepted_at.unwrap_or(d.updated_at);
        let mut detail = format!("to {}", or_dash(&d.address));
        if let Some(error) = &d.error {
            detail.push_str(": ");
            detail.push_str(error);
        }
        if let Some(next) = d.next_attempt_at.filter(|_| awaits_retry(d)) {
            detail.push_str(&format!(" (next attempt {})", time(next)));
        }
        steps.push((
            at,
            Step {
                at: time(at),
                what: format!("attempt {}: {}", d.attempt, d.status),
                detail,
                kind: match d.status.parse::<DeliveryStatus>().ok() {
                    Some(DeliveryStatus::Sent) => "sent",
                    Some(DeliveryStatus::Pending) => "pending",
                    _ => "failed",
                },
            },
        ));
    }
    if let Some(finished) = e.finished_at {
        steps.push((
            finished,
            Step {
                at: time(finished),
                what: format!("final: {}", e.status),
                detail: String::new(),
                kind: "final",
            },
        ));
    }
    steps.sort_by_key(|(at, _)| *at);
    steps.into_iter().map(|(_, step)| step).collect()
}

/// The event of `id`, or the answer to give instead.
async fn load(
    console: &Console,
    id: &str,
) -> Result<(event::Model, Vec<delivery_log::Model>), Response> {
    let public_id = parse_id(id).ok_or_else(|| {
        refuse(
            StatusCode::BAD_REQUEST,
            &format!("id: `{id}` is not an event id"),
        )
    })?;
    match console.ctx.store.get_event(public_id).await {
        Ok(Some(found)) => Ok(found),
        Ok(None) => Err(refuse(StatusCode::NOT_FOUND, &format!("no event {id}"))),
        Err(e) => Err(refuse(StatusCode::SERVICE_UNAVAILABLE, &e.to_string())),
    }
}

/// Renders the event's message from its linked template version, as delivery does.
async fn rendered(console: &Console, e: &event::Model) -> Result<Rendered, String> {
    let (Some(name), Some(version)) = (e.template_name.clone(), e.template_version) else {
        return Err("No template is linked to this event, so no message was made.".to_owned());
    };
    let stored = console
        .ctx
        .store
        .get_template_version(&name, version)
        .await
        .map_err(|err| format!("The template could not be read: {err}"))?
        .ok_or_else(|| format!("Template {name} version {version} no longer exists."))?;
    let content = TemplateContent::from(&stored);
    let input = RenderEvent {
        ctx: e.ctx.clone(),
        email: e.email.clone(),
        mobile_phone: e.mobile_phone.clone(),
        language: e.language.clone(),
        external_id: e.external_id.clone(),
    };
    console
        .ctx
        .templates
        .render_bounded(name, version, content, input)
        .await
        .map_err(|err| format!("The template does not render for this event: {err}"))
}

/// `GET /console/events/{id}`.
pub async fn page(
    State(console): State<ConsoleState>,
    user: Signed,
    Path(id): Path<String>,
) -> Response {
    let (e, deliveries) = match load(&console, &id).await {
        Ok(found) => found,
        Err(answer) => return answer,
    };
    let message = match rendered(&console, &e).await {
        Ok(r) => MessageView {
            unavailable: None,
            from: r.from.unwrap_or_default(),
            subject: r.subject.unwrap_or_default(),
            text: r.text.unwrap_or_default(),
            has_html: r.html.is_some(),
        },
        Err(why) => MessageView {
            unavailable: Some(why),
            from: String::new(),
            subject: String::new(),
            text: String::new(),
            has_html: false,
        },
    };
    let ctx_unreadable = e.ctx.is_null();
    let view = View {
        id: id_string(e.public_id()),
        fields: fields(&e),
        ctx: serde_json::to_string_pretty(&e.ctx).unwrap_or_default(),
        ctx_unreadable,
        template: match (&e.template_name, e.template_version) {
            (Some(name), Some(version)) => format!("{name} version {version}"),
            _ => "none linked".to_owned(),
        },
        timeline: timeline(&e, &deliveries),
        attempts: deliveries.iter().map(attempt).collect(),
        message,
    };
    render(
        &console.pages,
        StatusCode::OK,
        "event.html",
        Some(Frame::new(&user, console.ctx.archive.is_some(), "events")),
        &view,
    )
}

/// `GET /console/events/{id}/message`: the HTML part alone, for the sandboxed frame.
pub async fn message_frame(
    State(console): State<ConsoleState>,
    _user: Signed,
    Path(id): Path<String>,
) -> Response {
    let (e, _) = match load(&console, &id).await {
        Ok(found) => found,
        Err(answer) => return answer,
    };
    match rendered(&console, &e).await {
        Ok(Rendered {
            html: Some(html), ..
        }) => message(html),
        Ok(_) => refuse(StatusCode::NOT_FOUND, "this message has no HTML part"),
        Err(why) => refuse(StatusCode::NOT_FOUND, &why),
    }
}
