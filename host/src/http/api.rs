//! The public API listener (`[server] listen`). The event, template and archive routes of the contract are
//! added here by the ingestion and processing work; for now it answers liveness and names what is missing.

use hyper::body::Incoming;
use hyper::{Method, Request, StatusCode};
use serde_json::json;

use super::response::json_response;
use super::server::{Handler, Routed};
use crate::error::ApiError;

/// Routes of the public API.
pub struct ApiHandler;

impl Handler for ApiHandler {
    const LISTENER: &'static str = "api";

    async fn handle(&self, request: Request<Incoming>) -> Routed {
        match (request.method(), request.uri().path()) {
            (&Method::GET, "/healthz") => Routed {
                route: "/healthz",
                response: json_response(StatusCode::OK, &json!({ "status": "ok" })),
            },
            (_, path) => Routed {
                route: "unmatched",
                response: ApiError::NotFound(format!("no route for {path}")).into_response(),
            },
        }
    }
}
