//! The API listener in process: its router called with `oneshot`, on a migrated SQLite store in a
//! temporary directory. What a client sees (statuses, error bodies, keys, roles, limits) without a socket.

use axum::Router;
use axum::body::Body;
use hyper::header::{AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, WWW_AUTHENTICATE};
use hyper::{Method, Request, StatusCode};
use serde_json::{Value, json};

use super::{ApiContext, ApiLimits, router};
use crate::config::{AdobeConfig, Role};
use crate::http::testing::{Answer, send};
use crate::ingest::GroupCommit;
use crate::metrics::Metrics;
use crate::shutdown::ShutdownController;
use crate::store::Store;
use crate::store::testing::sqlite_store;

/// How a test instance is configured.
pub(crate) struct Options {
    pub role: Role,
    pub api_keys: Vec<String>,
    pub max_body_bytes: usize,
    pub adobe: AdobeConfig,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            role: Role::Execution,
            api_keys: Vec::new(),
            max_body_bytes: 64 * 1024,
            adobe: AdobeConfig::default(),
        }
    }
}

/// The API router of a test instance, with what it works on; drop it to stop the ingestion writer.
pub(crate) struct TestApi {
    pub router: Router,
    pub store: Store,
    pub metrics: Metrics,
    _shutdown: ShutdownController,
    _dir: tempfile::TempDir,
}

pub(crate) async fn test_api(options: Options) -> TestApi {
    let (dir, store) = sqlite_store().await;
    let shutdown = ShutdownController::new();
    let metrics = Metrics::new();
    let ingest = GroupCommit::start(
        store.clone(),
        None,
        1,
        metrics.clone(),
        |_| {},
        shutdown.subscribe(),
    )
    .expect("start the ingestion writer");
    let router = router(ApiContext {
        store: store.clone(),
        ingest,
        metrics: metrics.clone(),
        api_keys: options.api_keys,
        limits: ApiLimits {
            max_body_bytes: options.max_body_bytes,
            max_batch_events: 100,
            max_ctx_bytes: 16 * 1024,
            body_read_timeout: std::time::Duration::from_secs(5),
            render: crate::templates::RenderLimits::default(),
        },
        role: options.role,
        instances: None,
        adobe: crate::soap::AdobeGateway::new(&options.adobe, options.role),
        bounces: crate::bounces::Bounces::new(
            &crate::config::BouncesConfig::default(),
            store.clone(),
            metrics.clone(),
        ),
        quarantine_expiry: None,
        trials: crate::templates::trial::Trials {
            store: store.clone(),
            sender: None,
            limits: crate::templates::RenderLimits::default(),
        },
    });
    TestApi {
        router,
        store,
        metrics,
        _shutdown: shutdown,
        _dir: dir,
    }
}

fn request(method: Method, uri: &str, headers: &[(&str, &str)], body: Body) -> Request<Body> {
    let mut builder = Request::builder().method(method).uri(uri);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(body).expect("a request")
}

async fn get(api: &TestApi, uri: &str, headers: &[(&str, &str)]) -> Answer {
    send(
        &api.router,
        request(Method::GET, uri, headers, Body::empty()),
    )
    .await
}

async fn post_json(api: &TestApi, uri: &str, headers: &[(&str, &str)], body: &Value) -> Answer {
    let mut all = vec![("content-type", "application/json")];
    all.extend_from_slice(headers);
    send(
        &api.router,
        request(Method::POST, uri, &all, Body::from(body.to_string())),
    )
    .await
}

fn event(email: &str) -> Value {
    json!({ "type": "ORDER_CONFIRMED", "email": email, "ctx": { "orderId": "A-1" } })
}

#[tokio::test]
async fn healthz_answers_without_a_key() {
    let api = test_api(Options {
        api_keys: vec!["k1".to_owned()],
        ..Options::default()
    })
    .await;
    let answer = get(&api, "/healthz", &[]).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.json(), json!({ "status": "ok" }));
    assert_eq!(answer.headers[CONTENT_TYPE], "application/json");
}

#[tokio::test]
async fn a_pushed_event_reads_back() {
    let api = test_api(Options::default()).await;
    let answer = post_json(&api, "/api/v1/events", &[], &event("ann@example.com")).await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text());
    let created = answer.json();
    assert_eq!(created["status"], "pending");
    let id = created["id"].as_str().expect("an id").to_owned();
    assert_eq!(created["href"], format!("/api/v1/events/{id}"));

    let answer = get(&api, &format!("/api/v1/events/{id}"), &[]).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let read = answer.json();
    assert_eq!(read["id"], id.as_str());
    assert_eq!(read["email"], "ann@example.com");
    assert_eq!(read["ctx"], json!({ "orderId": "A-1" }));

    let answer = get(&api, "/api/v1/events?limit=10", &[]).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert_eq!(answer.json()["events"][0]["id"], id.as_str());

    let answer = post_json(
        &api,
        "/api/v1/events/batch",
        &[],
        &json!({ "events": [event("b1@example.com"), event("b2@example.com")] }),
    )
    .await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text());
    assert_eq!(answer.json()["ids"].as_array().map(Vec::len), Some(2));

    let answer = get(&api, "/api/v1/stats", &[]).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert!(answer.json()["queues"].is_object());
}

#[tokio::test]
async fn unknown_ids_and_bad_ids_are_refused() {
    let api = test_api(Options::default()).await;
    let answer = get(&api, "/api/v1/events/12345", &[]).await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    answer.assert_error("not_found", "no event 12345");
    let answer = get(&api, "/api/v1/events/abc", &[]).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(answer.json()["error"]["field"], "id");
    // A path parameter that is not UTF-8 once decoded is an invalid field, not a plain-text rejection.
    let answer = get(&api, "/api/v1/templates/%FF", &[]).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(answer.json()["error"]["code"], "invalid_field");
}

#[tokio::test]
async fn unknown_paths_and_methods_are_404_and_405() {
    let api = test_api(Options::default()).await;
    let answer = get(&api, "/api/v2/nothing", &[]).await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    answer.assert_error("not_found", "no route for /api/v2/nothing");

    let answer = send(
        &api.router,
        request(Method::PUT, "/api/v1/templates", &[], Body::empty()),
    )
    .await;
    assert_eq!(answer.status, StatusCode::METHOD_NOT_ALLOWED);
    answer.assert_error(
        "method_not_allowed",
        "method PUT is not allowed on /api/v1/templates",
    );
    // `batch` is its own route, not an event id.
    let answer = get(&api, "/api/v1/events/batch", &[]).await;
    assert_eq!(answer.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(
        answer.error().1,
        "method GET is not allowed on /api/v1/events/batch"
    );
    let answer = post_json(&api, "/api/v1/templates/t", &[], &json!({})).await;
    assert_eq!(answer.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(
        answer.error().1,
        "method POST is not allowed on /api/v1/templates/{name}"
    );
}

#[tokio::test]
async fn api_keys_are_checked_before_anything_else() {
    let api = test_api(Options {
        api_keys: vec!["k1".to_owned(), "k2".to_owned()],
        ..Options::default()
    })
    .await;
    for headers in [
        &[][..],
        &[("x-api-key", "k3")],
        &[("authorization", "Bearer k")],
        &[("authorization", "k1")],
    ] {
        let answer = get(&api, "/api/v1/stats", headers).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{headers:?}");
        assert_eq!(answer.headers[WWW_AUTHENTICATE], "Bearer");
        answer.assert_error("unauthorized", "missing or invalid bearer token");
    }
    for headers in [
        &[("x-api-key", "k2")][..],
        &[(AUTHORIZATION.as_str(), "Bearer k1")],
    ] {
        let answer = get(&api, "/api/v1/stats", headers).await;
        assert_eq!(answer.status, StatusCode::OK, "{headers:?}");
    }
    // Without a key, a wrong method and an invalid body are still 401: the key comes first.
    let answer = send(
        &api.router,
        request(Method::DELETE, "/api/v1/stats", &[], Body::empty()),
    )
    .await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    let answer = post_json(&api, "/api/v1/events", &[], &json!({ "nope": 1 })).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    // Unknown paths need no key to be unknown.
    assert_eq!(
        get(&api, "/nothing", &[]).await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn a_control_instance_refuses_the_execution_routes() {
    let api = test_api(Options {
        role: Role::Control,
        ..Options::default()
    })
    .await;
    for (method, uri, route) in [
        (Method::POST, "/api/v1/events", "/api/v1/events"),
        (Method::GET, "/api/v1/events", "/api/v1/events"),
        (Method::POST, "/api/v1/events/batch", "/api/v1/events/batch"),
        (Method::GET, "/api/v1/events/1", "/api/v1/events/{id}"),
        // The role is checked before the method.
        (Method::DELETE, "/api/v1/stats", "/api/v1/stats"),
    ] {
        let answer = send(
            &api.router,
            request(method.clone(), uri, &[], Body::empty()),
        )
        .await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{method} {uri}");
        assert_eq!(
            answer.error(),
            (
                "not_found".to_owned(),
                format!(
                    "{route} is served by execution instances; this is a control instance (push events to an execution instance)"
                )
            ),
            "{method} {uri}"
        );
    }
    // The archive is this instance's to query.
    let answer = get(&api, "/api/v1/archive/report", &[]).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let answer = get(&api, "/api/v1/archive/events", &[]).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert!(
        answer.json().get("nextAfter").is_some(),
        "the archive search"
    );
}

#[tokio::test]
async fn an_execution_instance_refuses_the_archive_report_and_serves_its_feed() {
    let api = test_api(Options::default()).await;
    let answer = get(&api, "/api/v1/archive/report", &[]).await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    assert_eq!(
        answer.error().1,
        "/api/v1/archive/report is served by control instances; this execution instance is archived by one"
    );
    let answer = get(&api, "/api/v1/archive/events", &[]).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert!(answer.json().get("nextCursor").is_some(), "the feed");
}

#[tokio::test]
async fn oversize_bodies_are_413_declared_or_not() {
    let api = test_api(Options {
        max_body_bytes: 256,
        ..Options::default()
    })
    .await;
    let mut large = event("big@example.com");
    large["ctx"]["pad"] = json!("x".repeat(512));
    let body = large.to_string();
    let length = body.len().to_string();
    for headers in [&[][..], &[(CONTENT_LENGTH.as_str(), length.as_str())]] {
        let answer = send(
            &api.router,
            request(
                Method::POST,
                "/api/v1/events",
                headers,
                Body::from(body.clone()),
            ),
        )
        .await;
        assert_eq!(answer.status, StatusCode::PAYLOAD_TOO_LARGE, "{headers:?}");
        answer.assert_error(
            "payload_too_large",
            "the request body is larger than 256 bytes (server.max_body_bytes)",
        );
    }
    let answer = send(
        &api.router,
        request(
            Method::PUT,
            "/api/v1/templates/t",
            &[],
            Body::from(body.clone()),
        ),
    )
    .await;
    assert_eq!(answer.status, StatusCode::PAYLOAD_TOO_LARGE);
    // Nothing was stored.
    let answer = get(&api, "/api/v1/events", &[]).await;
    assert_eq!(answer.json()["events"], json!([]));
}

#[tokio::test]
async fn templates_round_trip() {
    let api = test_api(Options::default()).await;
    let template = json!({
        "eventType": "ORDER_CONFIRMED",
        "subject": "Order {{ ctx.orderId }}",
        "text": "Hello",
        "publish": false,
    });
    let answer = send(
        &api.router,
        request(
            Method::PUT,
            "/api/v1/templates/order",
            &[],
            Body::from(template.to_string()),
        ),
    )
    .await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text());
    let answer = post_json(&api, "/api/v1/templates/order/publish", &[], &json!({})).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert_eq!(answer.json()["template"]["publishedVersion"], 1);
    let answer = get(&api, "/api/v1/templates/order?version=1", &[]).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert_eq!(
        answer.json()["content"]["subject"],
        "Order {{ ctx.orderId }}"
    );
    let answer = get(&api, "/api/v1/templates", &[]).await;
    assert_eq!(answer.json()["templates"][0]["name"], "order");
    let answer = send(
        &api.router,
        request(
            Method::POST,
            "/api/v1/templates/order/unpublish",
            &[],
            Body::empty(),
        ),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let answer = send(
        &api.router,
        request(
            Method::DELETE,
            "/api/v1/templates/order",
            &[],
            Body::empty(),
        ),
    )
    .await;
    assert_eq!(answer.status, StatusCode::NO_CONTENT);
    assert!(answer.body.is_empty());
    let answer = get(&api, "/api/v1/templates/order", &[]).await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    assert_eq!(answer.error().1, "no template `order`");
    let answer = get(&api, "/api/v1/templates/a%2Fb", &[]).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(answer.json()["error"]["field"], "name");
}

#[tokio::test]
async fn requests_are_counted_by_route_pattern() {
    let api = test_api(Options::default()).await;
    get(&api, "/api/v1/events/1", &[]).await;
    get(&api, "/api/v1/events/2", &[]).await;
    get(&api, "/somewhere/else", &[]).await;
    get(&api, "/healthz", &[]).await;
    let metrics = api.metrics.encode();
    let count = |route: &str, status: u16| {
        let labels =
            format!("{{listener=\"api\",route=\"{route}\",method=\"GET\",status=\"{status}\"}}");
        metrics
            .lines()
            .find(|line| line.starts_with("mc_http_requests_total") && line.contains(&labels))
            .unwrap_or_else(|| panic!("no {labels} in\n{metrics}"))
            .rsplit(' ')
            .next()
            .map(str::to_owned)
    };
    assert_eq!(count("/api/v1/events/{id}", 404).as_deref(), Some("2"));
    assert_eq!(count("unmatched", 404).as_deref(), Some("1"));
    assert_eq!(count("/healthz", 200).as_deref(), Some("1"));
    assert!(
        !metrics.contains("/api/v1/events/1\""),
        "raw paths are not labels"
    );
}
