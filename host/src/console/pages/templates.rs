//! `/console/templates`: every template with its latest and published version per (type, channel); an
//! operator names a new one to open its editor (`template_editor`).

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Serialize;

use super::super::response::{refuse, see_other};
use super::super::session::Signed;
use super::super::view::{Frame, render, time, time_or_dash};
use super::super::{Console, ConsoleState};

/// The navigation entry of the template pages.
pub const NAV: &str = "templates";

#[derive(Serialize)]
struct ListRow {
    name: String,
    event_type: String,
    channel: String,
    latest_version: i32,
    published_version: String,
    published_at: String,
    updated_at: String,
}

#[derive(Serialize)]
struct ListView {
    templates: Vec<ListRow>,
    error: Option<String>,
}

/// `GET /console/templates[?new=<name>]`: the list; `new` opens the editor of a new template.
pub async fn list(
    State(console): State<ConsoleState>,
    user: Signed,
    RawQuery(query): RawQuery,
) -> Response {
    let pairs = crate::urls::query_pairs(query.as_deref().unwrap_or(""));
    let mut error = None;
    if let Some((_, name)) = pairs.iter().find(|(k, _)| k == "new") {
        let name = name.trim();
        match crate::api::templates::check_name(name) {
            Ok(()) => return see_other(&format!("/console/templates/{name}"), None),
            Err(e) => error = Some(e.to_string()),
        }
    }
    let templates = match console.ctx.store.list_templates().await {
        Ok(templates) => templates,
        Err(e) => return refuse(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    };
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    render(
        &console.pages,
        status,
        "templates.html",
        Some(frame(&console, &user)),
        &ListView {
            templates: templates
                .into_iter()
                .map(|t| ListRow {
                    published_version: t
                        .published_version
                        .map_or_else(|| "—".to_owned(), |v| v.to_string()),
                    published_at: time_or_dash(t.published_at),
                    updated_at: time(t.updated_at),
                    latest_version: t.latest_version,
                    event_type: t.event_type,
                    channel: t.channel,
                    name: t.name,
                })
                .collect(),
            error,
        },
    )
}

pub(super) fn frame(console: &Console, user: &Signed) -> Frame {
    Frame::new(user, console.ctx.archive.is_some(), NAV)
}
