//! The admin listener in process: its router called with `oneshot`, on a migrated SQLite store in a
//! temporary directory, with no plugins and no workflows.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::body::Body;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use hyper::{Method, Request, StatusCode};
use serde_json::json;

use super::{AdminContext, router};
use crate::http::testing::{Answer, send};
use crate::metrics::Metrics;
use crate::plugins::{LoadOptions, PluginRegistry};
use crate::store::testing::sqlite_store;
use crate::workflows::WorkflowSet;

const TOKEN: &str = "s3cret-token";

struct TestAdmin {
    router: Router,
    db_ready: Arc<AtomicBool>,
    _dir: tempfile::TempDir,
}

async fn test_admin(admin_token: Option<&str>) -> TestAdmin {
    let (dir, store) = sqlite_store().await;
    let metrics = Metrics::new();
    let registry = PluginRegistry::new(
        dir.path().join("plugins"),
        LoadOptions {
            work_dir: dir.path().join("work"),
            require_same_rustc: false,
        },
        BTreeMap::new(),
        metrics.clone(),
    );
    let db_ready = Arc::new(AtomicBool::new(true));
    let router = router(AdminContext {
        registry: Arc::new(registry),
        workflows: Arc::new(WorkflowSet::new([])),
        monitor: crate::monitoring::Monitor::new(
            Default::default(),
            store.clone(),
            metrics.clone(),
        ),
        store,
        metrics,
        db_ready: Arc::clone(&db_ready),
        admin_token: admin_token.map(str::to_owned),
        archive: None,
        console: None,
    });
    TestAdmin {
        router,
        db_ready,
        _dir: dir,
    }
}

async fn call(admin: &TestAdmin, method: Method, uri: &str, token: Option<&str>) -> Answer {
    let mut builder = Request::builder().method(method).uri(uri);
    if let Some(token) = token {
        builder = builder.header(AUTHORIZATION, format!("Bearer {token}"));
    }
    send(
        &admin.router,
        builder.body(Body::empty()).expect("a request"),
    )
    .await
}

#[tokio::test]
async fn probes_need_no_token() {
    let admin = test_admin(None).await;
    let answer = call(&admin, Method::GET, "/healthz", None).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.json(), json!({ "status": "ok" }));
    let answer = call(&admin, Method::GET, "/readyz", None).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert_eq!(answer.json(), json!({ "status": "ready" }));
    admin.db_ready.store(false, Ordering::SeqCst);
    let answer = call(&admin, Method::GET, "/readyz", None).await;
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(answer.json()["status"], "not_ready");
}

#[tokio::test]
async fn without_a_configured_token_everything_else_is_403() {
    let admin = test_admin(None).await;
    for (method, uri) in [
        (Method::GET, "/admin/plugins"),
        (Method::GET, "/admin/workflows"),
        (Method::GET, "/admin/monitoring"),
        (Method::POST, "/admin/plugins/reload"),
        (Method::GET, "/metrics"),
        (Method::GET, "/admin/nothing"),
    ] {
        for token in [None, Some(TOKEN), Some("")] {
            let answer = call(&admin, method.clone(), uri, token).await;
            assert_eq!(answer.status, StatusCode::FORBIDDEN, "{method} {uri}");
            assert_eq!(answer.error().0, "admin_disabled", "{method} {uri}");
        }
    }
}

#[tokio::test]
async fn a_wrong_or_missing_token_is_401_before_the_route_is_looked_at() {
    let admin = test_admin(Some(TOKEN)).await;
    for (method, uri) in [
        (Method::GET, "/admin/plugins"),
        (Method::POST, "/admin/plugins/reload"),
        (Method::GET, "/metrics"),
        // Wrong methods and unknown paths too: a caller without the token learns nothing.
        (Method::GET, "/admin/plugins/reload"),
        (Method::GET, "/admin/nothing"),
    ] {
        for token in [None, Some("wrong"), Some("s3cret-token-but-longer")] {
            let answer = call(&admin, method.clone(), uri, token).await;
            assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{method} {uri}");
            assert_eq!(answer.headers[WWW_AUTHENTICATE], "Bearer");
            assert_eq!(answer.error().0, "unauthorized");
        }
    }
}

#[tokio::test]
async fn the_right_token_reaches_the_routes() {
    let admin = test_admin(Some(TOKEN)).await;
    let answer = call(&admin, Method::GET, "/admin/plugins", Some(TOKEN)).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert_eq!(answer.json()["plugins"], json!([]));
    let answer = call(&admin, Method::GET, "/admin/workflows", Some(TOKEN)).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert_eq!(answer.json(), json!({ "workflows": [] }));
    let answer = call(&admin, Method::GET, "/metrics", Some(TOKEN)).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(
        answer.headers[CONTENT_TYPE],
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    answer.assert_text_contains("mc_http_requests_total");
    let answer = call(&admin, Method::POST, "/admin/plugins/reload", Some(TOKEN)).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
}

#[tokio::test]
async fn unknown_names_paths_and_methods() {
    let admin = test_admin(Some(TOKEN)).await;
    let answer = call(&admin, Method::GET, "/admin/nothing", Some(TOKEN)).await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    answer.assert_error("not_found", "no admin route for /admin/nothing");
    let answer = call(&admin, Method::GET, "/admin/plugins/reload", Some(TOKEN)).await;
    assert_eq!(answer.status, StatusCode::METHOD_NOT_ALLOWED);
    answer.assert_error(
        "method_not_allowed",
        "method GET is not allowed on /admin/plugins/reload",
    );
    let answer = call(
        &admin,
        Method::POST,
        "/admin/workflows/nope/run",
        Some(TOKEN),
    )
    .await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    assert_eq!(answer.error().1, "no workflow named `nope` is configured");
    for action in ["start", "stop"] {
        let uri = format!("/admin/workflows/nope/{action}");
        let answer = call(&admin, Method::POST, &uri, Some(TOKEN)).await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{uri}");
    }
    let answer = call(
        &admin,
        Method::POST,
        "/admin/plugins/nope/reload",
        Some(TOKEN),
    )
    .await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND, "{}", answer.text());
    assert_eq!(answer.error().1, "no plugin named `nope` has been loaded");
}
