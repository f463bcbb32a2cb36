//! Runaway templates (issue #15): a template is code any API client can store, so every render is bounded
//! (fuel, output size, a deadline off the async workers). `PUT` refuses a template that runs away on an
//! empty event, naming the part and the limit, while the API keeps answering; a template that only runs
//! away for some events fails those deliveries, finally, and the others of the same round are sent.

use std::time::Duration;

use message_center_tests::*;
use serde_json::{Value, json};

/// How long an answer may take: a bounded render ends in well under a second.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long an event may take from push to final status (machines running the suite are busy).
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(60);

/// 10^10 iterations: hours of CPU and gigabytes of output without limits.
const NESTED_LOOP: &str =
    "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}";

/// Loops once per level for an event without `n` (what `PUT` checks), `n`² times for the others.
const LOOP_BY_CTX: &str = "{% for i in range(ctx.n | default(1)) %}{% for j in range(ctx.n | default(1)) %}x{% endfor %}{% endfor %}";

/// 101 bytes of output: one past `max_output_bytes = 100`.
const OUTPUT_101: &str = "{% for i in range(101) %}x{% endfor %}";

/// 10 000 loop steps: past `max_render_fuel = 5000`.
const STEPS_10000: &str = "{% for i in range(10000) %}{% endfor %}";

/// 100 bytes of output in 100 steps: within both limits.
const OUTPUT_100: &str = "{% for i in range(100) %}x{% endfor %}";

/// `PUT /api/v1/templates/{name}` with `body`, answered within [`ANSWER_TIMEOUT`]: status and body.
async fn put_template(server: &TestServer, name: &str, body: &Value) -> (u16, Value) {
    let path = format!("/api/v1/templates/{name}");
    let bytes = serde_json::to_vec(body).expect("JSON");
    tokio::time::timeout(
        ANSWER_TIMEOUT,
        server
            .api()
            .request(reqwest::Method::PUT, &path, Some(bytes), &[]),
    )
    .await
    .unwrap_or_else(|_| panic!("PUT {path} not answered within {ANSWER_TIMEOUT:?}"))
}

/// PUTs template `event_type` (lowercased as its name), subject "s", with `body` as its `part`.
async fn put_one_part(
    server: &TestServer,
    event_type: &str,
    part: &str,
    body: &str,
) -> (u16, Value) {
    let template = json!({ "eventType": event_type, "subject": "s", part: body });
    put_template(server, &event_type.to_lowercase(), &template).await
}

/// Asserts a 400 `template_error` naming `field` whose message contains `limit`.
fn assert_refused(status: u16, answer: &Value, field: &str, limit: &str) {
    assert_eq!(status, 400, "{}", pretty(answer));
    let error = &answer["error"];
    assert_eq!(error["code"], "template_error", "{}", pretty(answer));
    assert_eq!(error["field"], field, "{}", pretty(answer));
    let message = error["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(limit),
        "names `{limit}`: {}",
        pretty(answer)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runaway_template_is_refused_at_put_while_the_api_keeps_answering() {
    let server = TestServer::start(ServerOptions::new(PluginDir::new()));
    let body = json!({ "eventType": "LOOP", "subject": "x", "text": NESTED_LOOP });
    let stats = async {
        // Asked while the PUT is being checked: answered all the same.
        let (status, answer) =
            tokio::time::timeout(ANSWER_TIMEOUT, server.get_json("/api/v1/stats"))
                .await
                .expect("/api/v1/stats answered during the PUT");
        assert_eq!(status, 200, "{}", pretty(&answer));
    };
    let ((status, answer), ()) = tokio::join!(put_template(&server, "loop", &body), stats);
    assert_refused(status, &answer, "text", "max_render_fuel");

    let subject = json!({ "eventType": "LOOP", "subject": NESTED_LOOP, "text": "t" });
    let (status, answer) = put_template(&server, "loop", &subject).await;
    assert_refused(status, &answer, "subject", "max_render_fuel");

    // Nothing was stored.
    let (status, answer) = server.get_json("/api/v1/templates/loop").await;
    assert_eq!(status, 404, "{}", pretty(&answer));
    let (status, answer) = server.get_json("/api/v1/stats").await;
    assert_eq!(status, 200, "{}", pretty(&answer));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_limits_are_configurable() {
    let server = TestServer::start(
        ServerOptions::new(PluginDir::new())
            .extra_toml("[templates]\nmax_output_bytes = 100\nmax_render_fuel = 5000\n"),
    );
    let (status, answer) = put_one_part(&server, "BIG", "html", OUTPUT_101).await;
    assert_refused(status, &answer, "html", "max_output_bytes");
    assert_refused(status, &answer, "html", "100 bytes");

    let (status, answer) = put_one_part(&server, "LONG", "text", STEPS_10000).await;
    assert_refused(status, &answer, "text", "5000 steps");

    let (status, answer) = put_one_part(&server, "FITS", "text", OUTPUT_100).await;
    assert_eq!(status, 201, "{}", pretty(&answer));
}

/// A runaway render at delivery fails that delivery with the reason; the event pushed with it is sent.
async fn runaway_render_fails_only_its_delivery(database_url: Option<&str>) {
    let smtp = SmtpServer::start();
    let mut options = ServerOptions::new(PluginDir::new())
        .processing_workflows()
        .email_channel(smtp.port());
    if let Some(url) = database_url {
        options = options.database_url(url);
    }
    let server = TestServer::start(options);
    let body = json!({ "eventType": "LOOP", "subject": "Loop", "text": LOOP_BY_CTX });
    let (status, answer) = put_template(&server, "loop", &body).await;
    assert_eq!(
        status,
        201,
        "passes PUT (small sample): {}",
        pretty(&answer)
    );

    let events = json!({ "events": [
        { "type": "LOOP", "email": "runaway@example.com", "ctx": { "n": 100000 } },
        { "type": "LOOP", "email": "normal@example.com", "ctx": { "n": 3 } },
    ]});
    let (status, answer) = server.post_json("/api/v1/events/batch", &events, &[]).await;
    assert_eq!(status, 201, "{}", pretty(&answer));
    let ids: Vec<String> = answer["ids"]
        .as_array()
        .unwrap_or_else(|| panic!("no ids in {answer}"))
        .iter()
        .map(|id| id.as_str().expect("string id").to_owned())
        .collect();

    let runaway = server.wait_final(&ids[0], DELIVERY_TIMEOUT).await;
    assert_eq!(runaway["status"], "delivery_failed", "{}", pretty(&runaway));
    let deliveries = runaway["deliveries"]
        .as_array()
        .unwrap_or_else(|| panic!("no deliveries in {}", pretty(&runaway)));
    assert_eq!(deliveries.len(), 1, "final, no retry: {}", pretty(&runaway));
    assert_eq!(deliveries[0]["status"], "failed", "{}", pretty(&runaway));
    let error = deliveries[0]["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("text") && error.contains("max_render_fuel"),
        "the reason names the part and the limit: {}",
        pretty(&runaway)
    );

    let normal = server.wait_final(&ids[1], DELIVERY_TIMEOUT).await;
    assert_eq!(normal["status"], "sent", "{}", pretty(&normal));
    let received = smtp.messages_to("normal@example.com");
    assert_eq!(received.len(), 1, "{received:?}");
    assert!(smtp.messages_to("runaway@example.com").is_empty());

    let (status, answer) = tokio::time::timeout(ANSWER_TIMEOUT, server.get_json("/api/v1/stats"))
        .await
        .expect("/api/v1/stats answered");
    assert_eq!(status, 200, "{}", pretty(&answer));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runaway_render_fails_only_its_delivery_sqlite() {
    runaway_render_fails_only_its_delivery(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runaway_render_fails_only_its_delivery_postgres() {
    let database = PostgresDatabase::create();
    runaway_render_fails_only_its_delivery(Some(database.url())).await;
}
