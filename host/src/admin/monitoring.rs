//! `GET /admin/monitoring`: Adobe's Message Center indicators with their thresholds and states, as the
//! last refresh left them (SPEC "Monitoring"; the computation is `crate::monitoring`).

use axum::extract::State;
use hyper::StatusCode;

use super::Admin;
use crate::http::response::{HttpResponse, json_response};

pub async fn snapshot(State(ctx): State<Admin>) -> HttpResponse {
    json_response(StatusCode::OK, &*ctx.monitor.snapshot())
}
