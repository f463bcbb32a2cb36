//! Webhooks (issue 16, SPEC "Webhooks") against a real server, on SQLite and on PostgreSQL: every
//! notification goes to `tests/support/webhook_receiver.py`, a real HTTP receiver that verifies each request
//! with the Standard Webhooks reference library (`standardwebhooks` on PyPI) and records it, so a test counts
//! what arrived by `webhook-id` and sees any request the library refused. Mail goes through the real SMTP
//! test server, whose recipient names choose acceptance (`ok…`), a permanent refusal (`reject…`) or one
//! temporary refusal before acceptance (`tempfirst…`).
//!
//! The scenarios, by concern: [`statuses`] (each final status and `delivery.deferred` notified once per
//! matching endpoint, `data` as the events API shows it), [`retries`] (retried with the same id and body,
//! exhausted → `failed`, and the `/metrics` series), [`answers`] (410, 503 + `Retry-After`, timeouts, huge
//! and garbage answers, redirects), [`crash`] (SIGKILL before notifying loses nothing), [`destinations`]
//! (`allowed_destinations`), [`api`] (bad input, secrets, history, retry, replay) and [`control`] (the
//! control instance's fan-out).

#[path = "webhooks/answers.rs"]
mod answers;
#[path = "webhooks/api.rs"]
mod api;
#[path = "webhooks/control.rs"]
mod control;
#[path = "webhooks/crash.rs"]
mod crash;
#[path = "webhooks/destinations.rs"]
mod destinations;
#[path = "webhooks/retries.rs"]
mod retries;
#[path = "webhooks/statuses.rs"]
mod statuses;

use std::collections::BTreeMap;
use std::time::Duration;

use message_center_tests::*;
use serde_json::{Value, json};

/// How long events and notifications may take on a busy machine.
const TIMEOUT: Duration = Duration::from_secs(90);

/// The event type every scenario's template handles.
const EVENT_TYPE: &str = "HOOKED";

/// Every event type of the contract.
const ALL_TYPES: [&str; 7] = [
    "event.sent",
    "event.ignored",
    "event.delivery_failed",
    "event.not_taken_into_account",
    "event.expired",
    "delivery.deferred",
    "message.bounced",
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Backend {
    Sqlite,
    Postgres,
}

/// What an [`Env`]'s server is started with, besides its database.
#[derive(Clone)]
struct Setup {
    /// `[webhooks] allowed_destinations`' only entry.
    allowed: &'static str,
    /// `[workflows.webhookDelivery] enabled`.
    delivery_enabled: bool,
}

impl Default for Setup {
    fn default() -> Self {
        Setup {
            allowed: "127.0.0.1/32",
            delivery_enabled: true,
        }
    }
}

/// An execution server with the processing workflows and `webhookDelivery`, its email channel on
/// [`SmtpServer`], a [`WebhookReceiver`], on SQLite or on a PostgreSQL database of its own.
struct Env {
    server: TestServer,
    /// Servers replaced by [`Env::restart`]: kept for their work directory (the SQLite file).
    crashed: Vec<TestServer>,
    smtp: SmtpServer,
    receiver: WebhookReceiver,
    // Dropped last: the servers are gone by then.
    _database: Option<PostgresDatabase>,
}

/// The secret the receiver verifies with unless an endpoint has its own.
fn default_secret() -> String {
    test_webhook_secret(7)
}

fn server_options(smtp: &SmtpServer, database_url: Option<&str>, setup: &Setup) -> ServerOptions {
    let plugins = PluginDir::new();
    plugins.add("webhook-delivery");
    let mut options = ServerOptions::new(plugins)
        .processing_workflows()
        .email_channel(smtp.port())
        .email_retries(3, "300ms")
        .extra_toml(&webhooks_toml(setup.allowed, setup.delivery_enabled));
    if let Some(url) = database_url {
        options = options.database_url(url);
    }
    options
}

impl Env {
    async fn start(backend: Backend, setup: Setup) -> Env {
        let smtp = SmtpServer::start();
        let receiver = WebhookReceiver::start_with_secret(&default_secret());
        let database = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(PostgresDatabase::create()),
        };
        let options = server_options(&smtp, database.as_ref().map(PostgresDatabase::url), &setup);
        let env = Env {
            server: TestServer::start(options),
            crashed: Vec::new(),
            smtp,
            receiver,
            _database: database,
        };
        env.server
            .put_template(
                "hooked",
                &json!({
                    "eventType": EVENT_TYPE,
                    "channel": "email",
                    "from": "Shop <shop@example.com>",
                    "subject": "Hello {{ ctx.n }}",
                    "text": "Hello {{ ctx.n }}",
                }),
            )
            .await;
        env
    }

    /// SIGKILLs the server and starts another on its database with `setup`.
    fn restart(&mut self, setup: &Setup) {
        self.server.sigkill();
        let database_url = self.server.database_url().to_owned();
        let options = server_options(&self.smtp, Some(&database_url), setup);
        let replacement = TestServer::start(options);
        self.crashed
            .push(std::mem::replace(&mut self.server, replacement));
    }

    /// Creates endpoint `name` at the receiver's `/<name>/<behaviour>` with its own secret (told to the
    /// receiver), subscribed to `events` (`None`: every type); asserts 201 and returns the answer.
    async fn endpoint(&self, name: &str, behaviour: &str, events: Option<&[&str]>) -> Value {
        let secret = test_webhook_secret(name.len() as u8 + 40);
        self.receiver.set_secret(name, &secret).await;
        let mut body = json!({ "url": self.receiver.url(name, behaviour), "secret": secret });
        if let Some(events) = events {
            body["events"] = json!(events);
        }
        let (status, answer) = put_webhook(&self.server, name, &body).await;
        assert_eq!(status, 201, "PUT webhook {name}: {}", pretty(&answer));
        answer
    }

    /// Pushes an event of [`EVENT_TYPE`] to `email` (plus `extra` fields); its id.
    async fn push(&self, email: &str, extra: Value) -> String {
        let mut body = json!({ "type": EVENT_TYPE, "email": email, "ctx": { "n": 1 } });
        if let Value::Object(extra) = extra {
            for (key, value) in extra {
                body[key] = value;
            }
        }
        push_event(&self.server, &body).await
    }
}

/// Runs `async fn NAME(backend: Backend)` as tests `NAME::sqlite` and `NAME::postgres`.
macro_rules! on_both_databases {
    ($scenario:ident) => {
        mod $scenario {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$scenario(super::Backend::Sqlite).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$scenario(super::Backend::Postgres).await;
            }
        }
    };
}
use on_both_databases;

// ---- API helpers ----

/// `PUT /api/v1/webhooks/{name}`.
async fn put_webhook(server: &TestServer, name: &str, body: &Value) -> (u16, Value) {
    server
        .api()
        .put_json(&format!("/api/v1/webhooks/{name}"), body, &[])
        .await
}

/// `GET /api/v1/webhooks/{name}`, asserting 200.
async fn get_webhook(server: &TestServer, name: &str) -> Value {
    let (status, body) = server.get_json(&format!("/api/v1/webhooks/{name}")).await;
    assert_eq!(status, 200, "GET webhook {name}: {}", pretty(&body));
    body
}

/// `POST /api/v1/events` of `body`, asserting 201; the event id.
async fn push_event(server: &TestServer, body: &Value) -> String {
    let (status, answer) = server.post_json("/api/v1/events", body, &[]).await;
    assert_eq!(
        status,
        201,
        "POST /api/v1/events {body}: {}",
        pretty(&answer)
    );
    answer["id"].as_str().expect("an event id").to_owned()
}

/// Every notification of endpoint `name` in its history, following the `next` cursor (pages of 2, so the
/// cursor is exercised).
async fn history(server: &TestServer, name: &str) -> Vec<Value> {
    let mut all = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let mut path = format!("/api/v1/webhooks/{name}/deliveries?limit=2");
        if let Some(cursor) = &after {
            path.push_str(&format!("&after={}", query_value(cursor)));
        }
        let (status, page) = server.get_json(&path).await;
        assert_eq!(status, 200, "GET {path}: {}", pretty(&page));
        let deliveries = page["deliveries"]
            .as_array()
            .unwrap_or_else(|| panic!("no `deliveries` in {}", pretty(&page)));
        assert!(deliveries.len() <= 2, "limit=2: {}", pretty(&page));
        all.extend(deliveries.iter().cloned());
        match page["next"].as_str() {
            Some(next) if !deliveries.is_empty() => after = Some(next.to_owned()),
            _ => return all,
        }
    }
}

/// `value` percent-encoded for a query string (a cursor may hold `/`, `+`, `=` or `:`).
fn query_value(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Polls endpoint `name`'s history until `done` holds for it; returns it.
async fn wait_history(
    server: &TestServer,
    name: &str,
    what: &str,
    done: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    poll_until(TIMEOUT, &format!("webhook {name}: {what}"), async || {
        let all = history(server, name).await;
        if done(&all) {
            Ok(all)
        } else {
            Err(pretty(&json!(all)))
        }
    })
    .await
}

/// The `attempts` array of a history entry.
fn attempts(delivery: &Value) -> &[Value] {
    delivery["attempts"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_else(|| panic!("no `attempts` in {}", pretty(delivery)))
}

/// True once every notification of a history has left `pending`.
fn settled(all: &[Value]) -> bool {
    all.iter().all(|d| d["status"] != "pending")
}

// ---- what the receiver saw ----

/// The requests of `requests` grouped by `webhook-id`.
fn by_webhook_id(requests: &[Value]) -> BTreeMap<String, Vec<Value>> {
    let mut map: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for request in requests {
        let id = request["webhookId"]
            .as_str()
            .unwrap_or_else(|| panic!("a request without webhook-id: {}", pretty(request)));
        map.entry(id.to_owned()).or_default().push(request.clone());
    }
    map
}

/// Asserts the reference library verified every request the receiver got.
#[track_caller]
fn assert_all_verified(receiver: &WebhookReceiver) {
    let refused = receiver.unverified();
    assert!(
        refused.is_empty(),
        "requests the Standard Webhooks library refused: {}",
        pretty(&json!(refused))
    );
}

/// Polls until endpoint `name` has had requests of `n` distinct webhook-ids; returns them by id.
async fn wait_unique(
    receiver: &WebhookReceiver,
    name: &str,
    n: usize,
) -> BTreeMap<String, Vec<Value>> {
    poll_until(
        TIMEOUT,
        &format!("{n} notifications at {name}"),
        async || {
            let ids = by_webhook_id(&receiver.requests_to(name));
            if ids.len() >= n {
                Ok(ids)
            } else {
                Err(pretty(&json!(ids)))
            }
        },
    )
    .await
}

/// The notification body of a request (`{"type","timestamp","data"}`).
fn body_of(request: &Value) -> &Value {
    let body = &request["body"];
    assert!(body.is_object(), "not a JSON object: {}", pretty(request));
    body
}

/// The event id a notification is about (`data.id`).
fn event_id_of(request: &Value) -> String {
    body_of(request)["data"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no data.id: {}", pretty(request)))
        .to_owned()
}

/// Waits `duration` (to show that nothing more arrives).
async fn quiet_for(duration: Duration) {
    tokio::time::sleep(duration).await;
}
