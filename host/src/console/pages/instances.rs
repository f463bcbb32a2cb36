//! `/console/instances` (control instance): each execution instance's archiving state, cursor, lag and
//! last error.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Serialize;

use super::super::ConsoleState;
use super::super::session::Signed;
use super::super::view::{Frame, number, render, time_or_dash};
use crate::control::ArchiveInstanceView;

#[derive(Serialize)]
struct Row {
    instance: String,
    state: &'static str,
    cursor: String,
    archived_events: i64,
    lag: String,
    caught_up_at: String,
    last_success_at: String,
    last_error: String,
    last_error_at: String,
}

impl From<ArchiveInstanceView> for Row {
    fn from(i: ArchiveInstanceView) -> Self {
        Row {
            instance: i.instance,
            state: i.state.as_str(),
            cursor: i.cursor.unwrap_or_else(|| "—".to_owned()),
            archived_events: i.archived_events,
            lag: format!("{} s", number(i.lag_seconds.round())),
            caught_up_at: time_or_dash(i.caught_up_at),
            last_success_at: time_or_dash(i.last_success_at),
            last_error: i.last_error.unwrap_or_default(),
            last_error_at: time_or_dash(i.last_error_at),
        }
    }
}

#[derive(Serialize)]
struct View {
    control: bool,
    instances: Vec<Row>,
}

/// `GET /console/instances`.
pub async fn page(State(console): State<ConsoleState>, user: Signed) -> Response {
    let archive = console.ctx.archive.as_ref();
    render(
        &console.pages,
        StatusCode::OK,
        "instances.html",
        Some(Frame::new(&user, archive.is_some(), "instances")),
        &View {
            control: archive.is_some(),
            instances: archive
                .map(|a| a.instances().into_iter().map(Row::from).collect())
                .unwrap_or_default(),
        },
    )
}
