//! End to end: templates, events, the three execution workflows, the delivery engine, a real SMTP server
//! (`tests/support/smtp_server.py`, aiosmtpd) and a real HTTP SMS gateway (`tests/support/sms_gateway.py`),
//! all separate processes talking over loopback sockets. Each scenario is written once and runs on SQLite
//! and on PostgreSQL. Nothing sleeps to assert: every wait polls with a timeout and reports what it saw.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::{Duration, SystemTime};

use message_center_tests::*;
use serde_json::{Value, json};

/// How long an event may take from push to final status (machines running the suite are busy).
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(60);

/// `retries` of both channels unless a scenario says otherwise (see [`RetryOptions::default`]).
const DEFAULT_RETRIES: usize = 3;

// ---------------------------------------------------------------------------------------------------------
// The environment of a scenario
// ---------------------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy)]
enum Backend {
    Sqlite,
    Postgres,
}

/// Scenario-specific changes to the server options (retries, ...).
type Configure = fn(ServerOptions) -> ServerOptions;

/// A message-center server with the execution workflows, its email channel on [`SmtpServer`] and its SMS
/// channel on [`SmsGateway`], on SQLite or on a PostgreSQL database of its own.
struct Env {
    server: TestServer,
    /// Servers replaced by [`Env::restart_after_crash`]: kept for their work directory (the SQLite file).
    crashed: Vec<TestServer>,
    smtp: SmtpServer,
    sms: SmsGateway,
    configure: Configure,
    // Dropped last: the servers are gone by then.
    _database: Option<PostgresDatabase>,
}

impl Env {
    fn start(backend: Backend, configure: Configure) -> Env {
        Env::start_with(backend, SmtpServer::start(), configure)
    }

    fn start_with(backend: Backend, smtp: SmtpServer, configure: Configure) -> Env {
        let sms = SmsGateway::start();
        let database = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(PostgresDatabase::create()),
        };
        let options = server_options(
            &smtp,
            &sms,
            database.as_ref().map(PostgresDatabase::url),
            configure,
        );
        Env {
            server: TestServer::start(options),
            crashed: Vec::new(),
            smtp,
            sms,
            configure,
            _database: database,
        }
    }

    /// SIGKILLs the server.
    fn crash(&mut self) {
        self.server.sigkill();
    }

    /// Starts a new server on the crashed one's database, with the same plugins and configuration.
    fn restart_after_crash(&mut self) {
        let database_url = self.server.database_url().to_owned();
        let options = server_options(&self.smtp, &self.sms, Some(&database_url), self.configure);
        let replacement = TestServer::start(options);
        let crashed = std::mem::replace(&mut self.server, replacement);
        self.crashed.push(crashed);
    }
}

fn server_options(
    smtp: &SmtpServer,
    sms: &SmsGateway,
    database_url: Option<&str>,
    configure: Configure,
) -> ServerOptions {
    let mut options = ServerOptions::new(PluginDir::new())
        .processing_workflows()
        .email_channel(smtp.port())
        .sms_channel(sms.port());
    if let Some(url) = database_url {
        options = options.database_url(url);
    }
    configure(options)
}

/// Runs a scenario (`async fn NAME(env: Env)`) on SQLite and on PostgreSQL, as tests `NAME::sqlite` and
/// `NAME::postgres`; `$setup` turns a [`Backend`] into the [`Env`] (by default, the default one).
macro_rules! on_both_databases {
    ($scenario:ident) => {
        on_both_databases!($scenario, |backend| Env::start(backend, |o| o));
    };
    ($scenario:ident, $setup:expr) => {
        mod $scenario {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let setup: fn(Backend) -> Env = $setup;
                super::$scenario(setup(Backend::Sqlite)).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let setup: fn(Backend) -> Env = $setup;
                super::$scenario(setup(Backend::Postgres)).await;
            }
        }
    };
}

// ---------------------------------------------------------------------------------------------------------
// API helpers
// ---------------------------------------------------------------------------------------------------------

/// `PUT /api/v1/templates/{name}`, asserting 201 (first version) or 200 (later one); the answer.
async fn put_template(server: &TestServer, name: &str, body: Value) -> Value {
    server.put_template(name, &body).await
}

/// `POST /api/v1/events`, asserting 201 `pending`; the event id.
async fn push_event(server: &TestServer, body: Value) -> String {
    let (status, answer) = server.post_json("/api/v1/events", &body, &[]).await;
    assert_eq!(
        status,
        201,
        "POST /api/v1/events {body}: {}",
        pretty(&answer)
    );
    assert_eq!(answer["status"], "pending", "POST /api/v1/events {body}");
    answer["id"]
        .as_str()
        .unwrap_or_else(|| panic!("POST /api/v1/events: no string id in {answer}"))
        .to_owned()
}

/// `POST /api/v1/events/batch`, asserting 201; the ids in input order.
async fn push_batch(server: &TestServer, events: Vec<Value>) -> Vec<String> {
    let n = events.len();
    let body = json!({ "events": events });
    let (status, answer) = server.post_json("/api/v1/events/batch", &body, &[]).await;
    assert_eq!(
        status,
        201,
        "POST /api/v1/events/batch ({n} events): {}",
        pretty(&answer)
    );
    let ids: Vec<String> = answer["ids"]
        .as_array()
        .unwrap_or_else(|| panic!("POST /api/v1/events/batch: no ids in {answer}"))
        .iter()
        .map(|id| id.as_str().expect("string id").to_owned())
        .collect();
    assert_eq!(ids.len(), n, "POST /api/v1/events/batch: {answer}");
    ids
}

/// Pushes a `GREETING` event to `address` and waits for its final status: its id and the event.
async fn greet(server: &TestServer, address: &str, first_name: &str) -> (String, Value) {
    push_final(
        server,
        json!({ "type": "GREETING", "email": address, "ctx": { "firstName": first_name } }),
    )
    .await
}

/// The `deliveries` of an event, sorted by `attempt`.
fn deliveries(event: &Value) -> Vec<Value> {
    let mut entries = event["deliveries"]
        .as_array()
        .unwrap_or_else(|| panic!("no `deliveries` array in {}", pretty(event)))
        .clone();
    entries.sort_by_key(|d| d["attempt"].as_u64().unwrap_or(u64::MAX));
    entries
}

/// A string field of a delivery entry or message, or "" (for `contains` checks).
fn str_of<'a>(value: &'a Value, key: &str) -> &'a str {
    value[key].as_str().unwrap_or("")
}

/// Polls `GET /api/v1/events?after=&limit=1000` until every id of `ids` has a final status; returns the
/// status of each. On timeout, panics with the count of each status among `ids`.
async fn wait_all_final(
    server: &TestServer,
    ids: &[String],
    timeout: Duration,
) -> BTreeMap<String, String> {
    let wanted: BTreeSet<&str> = ids.iter().map(String::as_str).collect();
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let statuses = list_statuses(server, &wanted).await;
        let all_final = wanted.iter().all(|id| {
            statuses
                .get(*id)
                .is_some_and(|s| FINAL_STATUSES.contains(&s.as_str()))
        });
        if all_final {
            return statuses;
        }
        if std::time::Instant::now() >= deadline {
            let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
            for id in &wanted {
                *counts
                    .entry(statuses.get(*id).map_or("(not listed)", String::as_str))
                    .or_default() += 1;
            }
            panic!(
                "timed out after {timeout:?} waiting for {} events to reach a final status; statuses: {counts:?}",
                wanted.len()
            );
        }
        tokio::time::sleep(POLL_INTERVAL * 4).await;
    }
}

/// The status of each event of `wanted`, read page by page from `GET /api/v1/events`.
async fn list_statuses(server: &TestServer, wanted: &BTreeSet<&str>) -> BTreeMap<String, String> {
    let mut statuses = BTreeMap::new();
    let mut after: Option<String> = None;
    loop {
        let path = match &after {
            Some(after) => format!("/api/v1/events?limit=1000&after={after}"),
            None => "/api/v1/events?limit=1000".to_owned(),
        };
        let (status, page) = server.get_json(&path).await;
        assert_eq!(status, 200, "GET {path}: {}", pretty(&page));
        let events = page["events"]
            .as_array()
            .unwrap_or_else(|| panic!("GET {path}: no events array in {page}"));
        for event in events {
            let id = event["id"].as_str().unwrap_or_default();
            if wanted.contains(id) {
                statuses.insert(id.to_owned(), str_of(event, "status").to_owned());
            }
        }
        match page["nextAfter"].as_str() {
            Some(next) if !events.is_empty() => after = Some(next.to_owned()),
            _ => return statuses,
        }
    }
}

/// An email template for `event_type` rendering `ctx.firstName`.
/// Pushes the event `body` and waits until it is final; its id and the event.
async fn push_final(server: &TestServer, body: Value) -> (String, Value) {
    let id = push_event(server, body).await;
    let event = server.wait_final(&id, DELIVERY_TIMEOUT).await;
    (id, event)
}

/// Asserts the `status` of event `id`, showing the event if it differs.
#[track_caller]
fn assert_status(event: &Value, id: &str, status: &str) {
    assert_eq!(event["status"], status, "event {id}: {}", pretty(event));
}

/// Asserts that a delivery entry is a final failure whose error names the `code` (the SMTP code or HTTP
/// status, `what`); `shown` is what the first two failure messages show.
#[track_caller]
fn assert_final_failure(entry: &Value, shown: &Value, code: &str, what: &str) {
    assert_eq!(entry["status"], "failed", "{}", pretty(shown));
    assert_eq!(entry["final"], true, "{}", pretty(shown));
    assert!(
        str_of(entry, "error").contains(code),
        "the error names the {what}: {}",
        pretty(entry)
    );
}

/// Puts the greeting template, greets `address` and asserts that the event's delivery failed after
/// `attempts` attempts (`why`); the event and its delivery entries.
async fn greet_failing(
    server: &TestServer,
    address: &str,
    first_name: &str,
    attempts: usize,
    why: &str,
) -> (Value, Vec<Value>) {
    put_greeting(server).await;
    let (id, event) = greet(server, address, first_name).await;
    assert_status(&event, &id, "delivery_failed");
    let entries = deliveries(&event);
    assert_eq!(entries.len(), attempts, "{why}: {}", pretty(&event));
    (event, entries)
}

/// `PUT`s the `greeting` template for event type `GREETING`.
async fn put_greeting(server: &TestServer) {
    put_template(server, "greeting", greeting_template("GREETING")).await;
}

fn greeting_template(event_type: &str) -> Value {
    json!({
        "eventType": event_type,
        "channel": "email",
        "subject": "Hello {{ ctx.firstName }}",
        "text": "Hello {{ ctx.firstName }}",
    })
}

/// An SMS template for `event_type`.
fn sms_template(event_type: &str) -> Value {
    json!({
        "eventType": event_type,
        "channel": "sms",
        "text": "Code {{ ctx.code }} for {{ ctx.firstName }}",
    })
}

// ---------------------------------------------------------------------------------------------------------
// Scenarios
// ---------------------------------------------------------------------------------------------------------

on_both_databases!(personalised_email_arrives);

/// A personalised email: subject, text and HTML rendered from `ctx` with the newest published template
/// version, HTML escaped, the Message-ID the SMTP server received recorded in the delivery log.
async fn personalised_email_arrives(env: Env) {
    let server = &env.server;
    let order_confirmed = |extra: Value| {
        let mut body = json!({
            "eventType": "ORDER_CONFIRMED",
            "channel": "email",
            "from": "Shop <shop@example.com>",
        });
        for (key, value) in extra.as_object().expect("object") {
            body[key] = value.clone();
        }
        body
    };
    let old = json!({ "subject": "Old subject {{ ctx.firstName }}", "text": "old" });
    let first = put_template(server, "order-confirmed", order_confirmed(old)).await;
    assert_eq!(first["latestVersion"], 1, "first PUT: {}", pretty(&first));
    let new = json!({
        "subject": "Hello {{ ctx.firstName }}",
        "text": "Hello {{ ctx.firstName }}, order {{ ctx.orderId }} is confirmed.",
        "html": "<p>Hello {{ ctx.firstName }}, order <i>{{ ctx.orderId }}</i> is confirmed.</p>",
    });
    let second = put_template(server, "order-confirmed", order_confirmed(new)).await;
    assert_eq!(
        second["publishedVersion"],
        2,
        "second PUT: {}",
        pretty(&second)
    );

    let address = "ann@example.com";
    let (id, event) = push_final(
        server,
        json!({
            "type": "ORDER_CONFIRMED",
            "email": address,
            "ctx": { "firstName": "<b>Ann</b>", "orderId": "A-17" },
        }),
    )
    .await;
    assert_status(&event, &id, "sent");
    assert_eq!(
        event["template"],
        json!({ "name": "order-confirmed", "version": 2 }),
        "event {id}: {}",
        pretty(&event)
    );

    let message = env.smtp.wait_for_message_to(address, secs(10)).await;
    assert_eq!(
        message["subject"],
        "Hello <b>Ann</b>",
        "subject (not HTML-escaped): {}",
        pretty(&message)
    );
    let text = str_of(&message, "text");
    assert!(
        text.contains("Hello <b>Ann</b>, order A-17 is confirmed."),
        "text part (raw ctx): {}",
        pretty(&message)
    );
    let html = str_of(&message, "html");
    assert!(
        html.contains("<p>Hello &lt;b&gt;Ann") && html.contains("<i>A-17</i>"),
        "html part (ctx escaped, markup kept): {}",
        pretty(&message)
    );
    assert!(
        !html.contains("<b>Ann"),
        "html part must escape ctx.firstName: {}",
        pretty(&message)
    );
    assert!(
        str_of(&message, "from").contains("shop@example.com"),
        "From header from the template: {}",
        pretty(&message)
    );
    assert!(
        str_of(&message, "to").contains(address),
        "To header: {}",
        pretty(&message)
    );
    assert_eq!(
        env.smtp.messages_to(address).len(),
        1,
        "exactly one message to {address}"
    );

    let entries = deliveries(&event);
    assert_eq!(entries.len(), 1, "one delivery attempt: {}", pretty(&event));
    let entry = &entries[0];
    assert_eq!(entry["attempt"], 1, "{}", pretty(entry));
    assert_eq!(entry["channel"], "email", "{}", pretty(entry));
    assert_eq!(entry["address"], address, "{}", pretty(entry));
    assert_eq!(entry["status"], "sent", "{}", pretty(entry));
    assert_eq!(entry["final"], true, "{}", pretty(entry));
    let received_id = str_of(&message, "messageId");
    assert!(
        !received_id.is_empty(),
        "the message has a Message-ID: {}",
        pretty(&message)
    );
    assert_eq!(
        entry["messageId"],
        message["messageId"],
        "delivery log messageId vs the received Message-ID header\nentry: {}\nmessage: {}",
        pretty(entry),
        pretty(&message)
    );
}

on_both_databases!(sms_through_the_gateway);

/// An SMS: rendered text, sender and bearer key reach the gateway; its id is the delivery's messageId.
async fn sms_through_the_gateway(env: Env) {
    let server = &env.server;
    put_template(server, "otp", sms_template("OTP")).await;
    let phone = "+33612345678";
    let (id, event) = push_final(
        server,
        json!({
            "type": "OTP",
            "channel": "sms",
            "mobilePhone": phone,
            "ctx": { "code": "4711", "firstName": "Ann" },
        }),
    )
    .await;
    assert_status(&event, &id, "sent");
    assert_eq!(event["template"]["name"], "otp", "{}", pretty(&event));
    assert_eq!(event["template"]["version"], 1, "{}", pretty(&event));

    let requests = env.sms.wait_for_requests(1, secs(10)).await;
    assert_eq!(requests.len(), 1, "one request: {requests:?}");
    let request = &requests[0];
    assert_eq!(request["to"], phone, "{}", pretty(request));
    assert_eq!(request["text"], "Code 4711 for Ann", "{}", pretty(request));
    assert_eq!(request["from"], DEFAULT_SMS_FROM, "{}", pretty(request));
    assert_eq!(
        request["authorization"],
        format!("Bearer {DEFAULT_SMS_API_KEY}"),
        "{}",
        pretty(request)
    );
    let event_id = match &request["eventId"] {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    assert_eq!(
        event_id,
        id,
        "eventId sent to the gateway: {}",
        pretty(request)
    );

    let entries = deliveries(&event);
    assert_eq!(entries.len(), 1, "one delivery attempt: {}", pretty(&event));
    let entry = &entries[0];
    assert_eq!(entry["channel"], "sms", "{}", pretty(entry));
    assert_eq!(entry["address"], phone, "{}", pretty(entry));
    assert_eq!(entry["status"], "sent", "{}", pretty(entry));
    assert_eq!(entry["final"], true, "{}", pretty(entry));
    assert_eq!(
        entry["messageId"],
        request["id"],
        "delivery messageId vs the gateway's id\nentry: {}\nrequest: {}",
        pretty(entry),
        pretty(request)
    );
}

on_both_databases!(scheduled_event_waits);

/// An event scheduled a few seconds ahead stays `pending` (and nothing is sent) until then, then is sent;
/// an unscheduled event pushed at the same time is sent meanwhile.
async fn scheduled_event_waits(env: Env) {
    let server = &env.server;
    put_greeting(server).await;
    let scheduled_at = SystemTime::now() + secs(5);
    let scheduled = rfc3339(scheduled_at);
    let later = "later@example.com";
    let now = "now@example.com";
    let later_id = push_event(
        server,
        json!({ "type": "GREETING", "email": later, "scheduled": scheduled, "ctx": { "firstName": "L" } }),
    )
    .await;
    let now_id = push_event(
        server,
        json!({ "type": "GREETING", "email": now, "ctx": { "firstName": "N" } }),
    )
    .await;

    let sent_now = server.wait_final(&now_id, DELIVERY_TIMEOUT).await;
    assert_eq!(sent_now["status"], "sent", "{}", pretty(&sent_now));

    // Until shortly before its time, the scheduled event stays pending and nothing goes out.
    let mut checks = 0;
    while SystemTime::now() + millis(800) < scheduled_at {
        let event = server.event(&later_id).await;
        assert_eq!(
            event["status"],
            "pending",
            "event scheduled at {scheduled}, now {}: {}",
            rfc3339(SystemTime::now()),
            pretty(&event)
        );
        assert!(
            env.smtp.messages_to(later).is_empty(),
            "a message to {later} arrived before {scheduled}: {:?}",
            env.smtp.messages_to(later)
        );
        checks += 1;
        tokio::time::sleep(POLL_INTERVAL * 2).await;
    }
    assert!(
        checks > 0,
        "the unscheduled event took too long to check the scheduled one before {scheduled}"
    );

    let event = server.wait_final(&later_id, DELIVERY_TIMEOUT).await;
    assert_eq!(event["status"], "sent", "{}", pretty(&event));
    let message = env.smtp.wait_for_message_to(later, secs(10)).await;
    let received = str_of(&message, "receivedAt");
    assert!(
        received >= scheduled.as_str(),
        "received at {received}, scheduled at {scheduled}: {}",
        pretty(&message)
    );
}

on_both_databases!(unlinked_and_expired_events);

/// No template for the (type, channel) → `not_taken_into_account`, never reprocessed even once a template
/// appears; `expiration` in the past → `expired`; neither sends anything.
async fn unlinked_and_expired_events(env: Env) {
    let server = &env.server;
    put_template(server, "known", greeting_template("KNOWN")).await;
    let unknown_id = push_event(
        server,
        json!({ "type": "UNKNOWN_TYPE", "email": "unknown@example.com" }),
    )
    .await;
    let wrong_channel_id = push_event(
        server,
        json!({ "type": "KNOWN", "channel": "sms", "mobilePhone": "+33611111111" }),
    )
    .await;
    let expired_id = push_event(
        server,
        json!({
            "type": "KNOWN",
            "email": "expired@example.com",
            "expiration": rfc3339_ago(secs(3600)),
        }),
    )
    .await;

    for (id, status) in [
        (&unknown_id, "not_taken_into_account"),
        (&wrong_channel_id, "not_taken_into_account"),
        (&expired_id, "expired"),
    ] {
        let event = server.wait_final(id, DELIVERY_TIMEOUT).await;
        assert_status(&event, id, status);
        assert!(
            deliveries(&event).is_empty(),
            "no delivery for a {status} event: {}",
            pretty(&event)
        );
    }

    // A template for the unknown type now: new events use it, the old one stays as it was.
    put_template(server, "late", greeting_template("UNKNOWN_TYPE")).await;
    let control_id = push_event(
        server,
        json!({ "type": "UNKNOWN_TYPE", "email": "control@example.com", "ctx": { "firstName": "C" } }),
    )
    .await;
    let control = server.wait_final(&control_id, DELIVERY_TIMEOUT).await;
    assert_eq!(control["status"], "sent", "{}", pretty(&control));
    let unknown = server.event(&unknown_id).await;
    assert_eq!(
        unknown["status"],
        "not_taken_into_account",
        "never reprocessed: {}",
        pretty(&unknown)
    );
    assert_eq!(unknown["template"], Value::Null, "{}", pretty(&unknown));
    for address in ["unknown@example.com", "expired@example.com", "+33611111111"] {
        assert!(
            env.smtp.messages_to(address).is_empty(),
            "nothing sent to {address}"
        );
        assert!(
            env.sms.attempts_to(address).is_empty(),
            "nothing sent to {address}"
        );
    }
}

on_both_databases!(rejected_address_is_quarantined);

/// A 550 at RCPT fails the delivery at once (no retry) and quarantines the address: the next event to it is
/// `ignored` without any SMTP attempt.
async fn rejected_address_is_quarantined(env: Env) {
    let server = &env.server;
    let address = "reject-me@example.com";
    let why = "a permanent failure is not retried";
    let (_, entries) = greet_failing(server, address, "R", 1, why).await;
    assert_final_failure(&entries[0], &entries[0], "550", "SMTP code");
    assert_eq!(
        env.smtp.attempts_to(address).len(),
        1,
        "one RCPT: {:?}",
        env.smtp.attempts_to(address)
    );

    let (second_id, second) = greet(server, address, "R").await;
    assert_eq!(
        second["status"],
        "ignored",
        "event {second_id} to a quarantined address: {}",
        pretty(&second)
    );
    let entries = deliveries(&second);
    assert!(
        !entries.is_empty() && entries.iter().all(|e| e["status"] == "ignored"),
        "only `ignored` entries: {}",
        pretty(&second)
    );
    assert_eq!(
        entries.last().map(|e| &e["final"]),
        Some(&json!(true)),
        "{}",
        pretty(&second)
    );
    assert_eq!(
        env.smtp.attempts_to(address).len(),
        1,
        "no new SMTP attempt for a quarantined address: {:?}",
        env.smtp.attempts_to(address)
    );
}

on_both_databases!(temporary_failures_exhaust_retries);

/// A 451 at RCPT is retried `retries` times; every attempt is in the log, only the last one final.
async fn temporary_failures_exhaust_retries(env: Env) {
    let server = &env.server;
    let address = "tempfail-1@example.com";
    let why = "retries + 1 attempts";
    let (event, entries) = greet_failing(server, address, "T", DEFAULT_RETRIES + 1, why).await;
    for (n, entry) in entries.iter().enumerate() {
        assert_eq!(entry["attempt"], n + 1, "{}", pretty(&event));
        assert_eq!(entry["status"], "failed", "{}", pretty(&event));
        assert_eq!(
            entry["final"],
            n == DEFAULT_RETRIES,
            "only the last attempt is final: {}",
            pretty(&event)
        );
        assert!(
            str_of(entry, "error").contains("451"),
            "attempt {} names the SMTP code: {}",
            n + 1,
            pretty(entry)
        );
    }
    let times: Vec<&str> = entries.iter().map(|e| str_of(e, "at")).collect();
    assert!(
        times.windows(2).all(|w| w[0] <= w[1]),
        "attempts in time order: {times:?}"
    );
    assert_eq!(
        env.smtp.attempts_to(address).len(),
        DEFAULT_RETRIES + 1,
        "RCPT commands at the SMTP server: {:?}",
        env.smtp.attempts_to(address)
    );
}

on_both_databases!(sms_gateway_errors);

/// Gateway 400 → failed at once; gateway 500 → retried, then failed.
async fn sms_gateway_errors(env: Env) {
    let server = &env.server;
    put_template(server, "otp", sms_template("OTP")).await;
    let invalid = "+33600000400";
    let broken = "+33600000500";
    let invalid_id = push_event(
        server,
        json!({ "type": "OTP", "channel": "sms", "mobilePhone": invalid, "ctx": { "code": "1" } }),
    )
    .await;
    let broken_id = push_event(
        server,
        json!({ "type": "OTP", "channel": "sms", "mobilePhone": broken, "ctx": { "code": "2" } }),
    )
    .await;

    let event = server.wait_final(&invalid_id, DELIVERY_TIMEOUT).await;
    assert_eq!(event["status"], "delivery_failed", "{}", pretty(&event));
    let entries = deliveries(&event);
    assert_eq!(entries.len(), 1, "a 400 is not retried: {}", pretty(&event));
    assert_final_failure(&entries[0], &event, "400", "HTTP status");
    assert_eq!(
        env.sms.attempts_to(invalid).len(),
        1,
        "{:?}",
        env.sms.attempts_to(invalid)
    );

    let event = server.wait_final(&broken_id, DELIVERY_TIMEOUT).await;
    assert_eq!(event["status"], "delivery_failed", "{}", pretty(&event));
    let entries = deliveries(&event);
    assert_eq!(
        entries.len(),
        DEFAULT_RETRIES + 1,
        "a 500 is retried: {}",
        pretty(&event)
    );
    for (n, entry) in entries.iter().enumerate() {
        assert_eq!(entry["status"], "failed", "{}", pretty(&event));
        assert_eq!(entry["final"], n == DEFAULT_RETRIES, "{}", pretty(&event));
    }
    assert!(
        str_of(&entries[DEFAULT_RETRIES], "error").contains("500"),
        "{}",
        pretty(&event)
    );
    assert_eq!(
        env.sms.attempts_to(broken).len(),
        DEFAULT_RETRIES + 1,
        "{:?}",
        env.sms.attempts_to(broken)
    );
    assert!(env.sms.requests().is_empty(), "{:?}", env.sms.requests());
}

on_both_databases!(smtp_outage_is_ridden_out, |backend| Env::start(
    backend,
    |o| o.email_retries(10, "200ms")
));

/// With the SMTP server down, deliveries fail transiently and are retried; once it is back every message
/// arrives and every event is `sent`.
async fn smtp_outage_is_ridden_out(mut env: Env) {
    put_template(&env.server, "greeting", greeting_template("GREETING")).await;
    env.smtp.stop();
    let mut ids = Vec::new();
    for n in 0..20 {
        ids.push(
            push_event(
                &env.server,
                json!({ "type": "GREETING", "email": format!("outage{n}@example.com"), "ctx": { "firstName": n } }),
            )
            .await,
        );
    }
    // The engine has tried, and failed, while the server was down.
    let failed = wait_for(
        DELIVERY_TIMEOUT,
        "a failed attempt during the outage",
        async || {
            for id in &ids {
                let event = env.server.event(id).await;
                if deliveries(&event).iter().any(|d| d["status"] == "failed") {
                    return Some(event);
                }
            }
            None
        },
    )
    .await;
    assert_eq!(
        deliveries(&failed)[0]["final"],
        false,
        "a refused connection is transient: {}",
        pretty(&failed)
    );
    env.smtp.restart();

    let statuses = wait_all_final(&env.server, &ids, DELIVERY_TIMEOUT).await;
    let not_sent: Vec<_> = statuses.iter().filter(|(_, s)| *s != "sent").collect();
    assert!(not_sent.is_empty(), "events not sent: {not_sent:?}");
    let messages = env.smtp.wait_for_messages(20, secs(10)).await;
    for n in 0..20 {
        let address = format!("outage{n}@example.com");
        assert!(
            messages.iter().any(|m| message_is_to(m, &address)),
            "no message to {address}"
        );
    }
}

on_both_databases!(batch_queue_delivers);

/// A batch of 50 events: all `sent`, 50 messages.
async fn batch_queue_delivers(env: Env) {
    let server = &env.server;
    put_greeting(server).await;
    let events: Vec<Value> = (0..50)
        .map(|n| json!({ "type": "GREETING", "email": format!("batch{n}@example.com"), "ctx": { "firstName": n } }))
        .collect();
    let ids = push_batch(server, events).await;
    let statuses = wait_all_final(server, &ids, DELIVERY_TIMEOUT).await;
    let not_sent: Vec<_> = statuses.iter().filter(|(_, s)| *s != "sent").collect();
    assert!(not_sent.is_empty(), "events not sent: {not_sent:?}");
    let event = server.event(&ids[0]).await;
    assert_eq!(event["queue"], "batch", "{}", pretty(&event));
    let messages = env.smtp.wait_for_messages(50, secs(10)).await;
    let recipients: BTreeSet<String> = messages
        .iter()
        .flat_map(|m| m["rcptTos"].as_array().cloned().unwrap_or_default())
        .filter_map(|r| r.as_str().map(str::to_lowercase))
        .collect();
    for n in 0..50 {
        assert!(
            recipients.contains(&format!("batch{n}@example.com")),
            "no message to batch{n}@example.com"
        );
    }
    assert_eq!(messages.len(), 50, "one message per event");
}

on_both_databases!(crash_mid_delivery_loses_nothing, |backend| {
    Env::start_with(
        backend,
        SmtpServer::start_with_data_delay(millis(30)),
        |o| o.email_retries(10, "200ms"),
    )
});

/// 200 events (half real-time, half batch); the server is SIGKILLed when some but not all messages have
/// arrived; a new server on the same database finishes the work: every event final and `sent`, every
/// recipient reached (duplicates allowed and counted).
async fn crash_mid_delivery_loses_nothing(mut env: Env) {
    const TOTAL: usize = 200;
    put_template(&env.server, "greeting", greeting_template("GREETING")).await;
    let address = |n: usize| format!("crash{n}@example.com");

    let mut pushes = Vec::new();
    for chunk in 0..4 {
        let api = env.server.api();
        pushes.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for n in (chunk * 25)..(chunk * 25 + 25) {
                let body = json!({ "type": "GREETING", "email": format!("crash{n}@example.com"), "ctx": { "firstName": n } });
                let (status, answer) = api.post_json("/api/v1/events", &body, &[]).await;
                assert_eq!(status, 201, "POST /api/v1/events {body}: {answer}");
                ids.push(answer["id"].as_str().expect("id").to_owned());
            }
            ids
        }));
    }
    let batch: Vec<Value> = (TOTAL / 2..TOTAL)
        .map(|n| json!({ "type": "GREETING", "email": address(n), "ctx": { "firstName": n } }))
        .collect();
    let mut ids = push_batch(&env.server, batch).await;
    for push in pushes {
        ids.extend(push.await.expect("push task"));
    }
    assert_eq!(ids.len(), TOTAL);

    wait_for(DELIVERY_TIMEOUT, "the first 20 messages", async || {
        (env.smtp.messages().len() >= 20).then_some(())
    })
    .await;
    env.crash();
    let before_crash = env.smtp.messages();
    let at_crash = before_crash.len();
    eprintln!("crash: {at_crash} of {TOTAL} messages had arrived when the server was killed");
    assert!(
        at_crash < TOTAL,
        "all {TOTAL} messages arrived before the crash: nothing was interrupted"
    );
    env.restart_after_crash();

    let statuses = wait_all_final(&env.server, &ids, secs(180)).await;
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for status in statuses.values() {
        *counts.entry(status.as_str()).or_default() += 1;
    }
    assert_eq!(
        counts.get("sent").copied(),
        Some(TOTAL),
        "statuses after the restart: {counts:?}"
    );

    let messages = env.smtp.wait_for_messages(TOTAL, secs(10)).await;
    let mut per_recipient: BTreeMap<String, usize> = BTreeMap::new();
    for message in &messages {
        for rcpt in message["rcptTos"].as_array().into_iter().flatten() {
            *per_recipient
                .entry(rcpt.as_str().unwrap_or_default().to_lowercase())
                .or_default() += 1;
        }
    }
    let missing: Vec<String> = (0..TOTAL)
        .map(address)
        .filter(|a| !per_recipient.contains_key(a))
        .collect();
    assert!(missing.is_empty(), "never received: {missing:?}");
    let duplicates: usize = per_recipient.values().map(|n| n - 1).sum();
    let resent = before_crash
        .iter()
        .filter(|m| {
            m["rcptTos"].as_array().into_iter().flatten().any(|r| {
                per_recipient.get(&r.as_str().unwrap_or_default().to_lowercase()) > Some(&1)
            })
        })
        .count();
    eprintln!(
        "crash: {} messages for {} distinct recipients ({duplicates} duplicates; {resent} of the \
         {at_crash} received before the crash were sent again)",
        messages.len(),
        per_recipient.len()
    );
    assert!(per_recipient.len() >= TOTAL);
    // README, "At least once, with a bounded duplicate window": the unrecorded outcomes (at most two
    // groups of 32) plus the sends in flight (the test server's `pool_size` of 4).
    assert!(
        duplicates <= 2 * 32 + 4,
        "{duplicates} duplicates: more than the README's bound"
    );
}

// ---------------------------------------------------------------------------------------------------------
// The test peers themselves (no server needed)
// ---------------------------------------------------------------------------------------------------------

/// A minimal SMTP client over a plain socket: each command's reply code.
struct SmtpClient {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl SmtpClient {
    fn connect(port: u16) -> SmtpClient {
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to the SMTP server");
        stream.set_read_timeout(Some(secs(10))).expect("timeout");
        let mut client = SmtpClient {
            reader: BufReader::new(stream.try_clone().expect("clone")),
            writer: stream,
        };
        assert_eq!(client.reply(), 220, "greeting");
        client
    }

    /// Reads one (possibly multi-line) reply; its code.
    fn reply(&mut self) -> u16 {
        loop {
            let mut line = String::new();
            self.reader.read_line(&mut line).expect("read a reply");
            assert!(line.len() >= 4, "short SMTP reply {line:?}");
            if line.as_bytes()[3] != b'-' {
                return line[..3].parse().expect("reply code");
            }
        }
    }

    fn command(&mut self, line: &str) -> u16 {
        self.writer
            .write_all(format!("{line}\r\n").as_bytes())
            .expect("write a command");
        self.reply()
    }

    /// MAIL, the RCPTs (their codes), and DATA if one was accepted (its code).
    fn send(&mut self, from: &str, rcpts: &[&str], message: &str) -> (Vec<u16>, Option<u16>) {
        assert_eq!(self.command(&format!("MAIL FROM:<{from}>")), 250);
        let codes: Vec<u16> = rcpts
            .iter()
            .map(|r| self.command(&format!("RCPT TO:<{r}>")))
            .collect();
        if !codes.contains(&250) {
            assert_eq!(self.command("RSET"), 250);
            return (codes, None);
        }
        assert_eq!(self.command("DATA"), 354);
        let body = message.replace('\n', "\r\n");
        self.writer
            .write_all(format!("{body}\r\n.\r\n").as_bytes())
            .expect("write data");
        (codes, Some(self.reply()))
    }
}

const MULTIPART: &str = "From: Shop <shop@example.com>
To: ann@example.com
Subject: =?utf-8?q?Hello_=C3=A9?=
Message-ID: <m1@example.com>
MIME-Version: 1.0
Content-Type: multipart/alternative; boundary=\"b1\"

--b1
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: quoted-printable

Hi <b>Ann</b> =C3=A9
--b1
Content-Type: text/html; charset=utf-8
Content-Transfer-Encoding: base64

PHA+SGkgJmx0O2ImZ3Q7QW5uPC9wPg==
--b1--";

#[tokio::test]
async fn smtp_test_server_records_refuses_and_restarts() {
    let mut smtp = SmtpServer::start();
    let port = smtp.port();
    {
        let mut client = SmtpClient::connect(port);
        assert_eq!(client.command("EHLO test"), 250);
        let (codes, data) = client.send(
            "shop@example.com",
            &[
                "ann@example.com",
                "reject-x@example.com",
                "tempfail-y@example.com",
            ],
            MULTIPART,
        );
        assert_eq!(codes, vec![250, 550, 451]);
        assert_eq!(data, Some(250));
        // Keep-alive: a second message on the same connection.
        let (codes, data) = client.send(
            "shop@example.com",
            &["bob@example.com"],
            "Subject: plain\n\nonly text",
        );
        assert_eq!((codes, data), (vec![250], Some(250)));
        assert_eq!(client.command("QUIT"), 221);
    }
    let messages = smtp.wait_for_messages(2, secs(10)).await;
    let first = &messages[0];
    assert_eq!(first["mailFrom"], "shop@example.com");
    assert_eq!(first["rcptTos"], json!(["ann@example.com"]));
    for (key, value) in [
        ("subject", "Hello é"),
        ("messageId", "<m1@example.com>"),
        ("text", "Hi <b>Ann</b> é"),
        ("html", "<p>Hi &lt;b&gt;Ann</p>"),
        ("from", "Shop <shop@example.com>"),
        ("to", "ann@example.com"),
    ] {
        assert_eq!(first[key], value, "{key}");
    }
    assert!(str_of(first, "receivedAt").ends_with('Z'), "{first}");
    assert_eq!(messages[1]["text"], "only text\n");
    assert_eq!(messages[1]["html"], Value::Null);
    assert_eq!(smtp.attempts_to("reject-x@example.com")[0]["code"], 550);
    assert_eq!(smtp.attempts_to("tempfail-y@example.com")[0]["code"], 451);
    assert_eq!(smtp.attempts().len(), 4);

    smtp.stop();
    assert!(!smtp.is_running());
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "port {port} still accepts after stop"
    );
    smtp.restart();
    assert_eq!(smtp.port(), port, "restarted on the same port");
    let mut client = SmtpClient::connect(port);
    assert_eq!(client.command("HELO test"), 250);
    let (_, data) = client.send(
        "a@example.com",
        &["carl@example.com"],
        "Subject: again\n\nx",
    );
    assert_eq!(data, Some(250));
    let messages = smtp.wait_for_messages(3, secs(10)).await;
    assert_eq!(
        messages.len(),
        3,
        "messages from before the restart are kept"
    );
}

#[tokio::test]
async fn sms_test_gateway_answers_by_number() {
    let mut gateway = SmsGateway::start();
    // No pooled connection may outlive the gateway's restart.
    let client = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(0)
        .build()
        .expect("client");
    let mut codes = Vec::new();
    for to in ["+33612345678", "+33600000400", "+33600000500"] {
        let response = client
            .post(gateway.url())
            .bearer_auth("gw-key")
            .json(&json!({ "to": to, "text": "hi", "from": "MC", "eventId": "42" }))
            .send()
            .await
            .expect("POST /sms");
        let status = response.status().as_u16();
        let body: Value = response.json().await.expect("JSON answer");
        codes.push((status, body));
    }
    assert_eq!(codes[0].0, 200);
    assert!(codes[0].1["id"].as_str().is_some_and(|id| id.len() == 36));
    assert_eq!(codes[1], (400, json!({ "error": "invalid number" })));
    assert_eq!(codes[2].0, 500);

    let requests = gateway.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert_eq!(requests[0]["to"], "+33612345678");
    assert_eq!(requests[0]["text"], "hi");
    assert_eq!(requests[0]["from"], "MC");
    assert_eq!(requests[0]["eventId"], "42");
    assert_eq!(requests[0]["id"], codes[0].1["id"]);
    assert_eq!(requests[0]["authorization"], "Bearer gw-key");
    let statuses: Vec<Value> = gateway
        .attempts()
        .iter()
        .map(|a| a["status"].clone())
        .collect();
    assert_eq!(statuses, vec![json!(200), json!(400), json!(500)]);

    let port = gateway.port();
    gateway.restart();
    assert_eq!(gateway.port(), port);
    let response = client
        .post(gateway.url())
        .json(&json!({ "to": "+33699999999", "text": "again" }))
        .send()
        .await
        .expect("POST /sms after restart");
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(gateway.wait_for_requests(2, secs(10)).await.len(), 2);
}
