//! The event ingestion API of docs/api.md against the real server, on SQLite and on PostgreSQL: single and
//! batch events, idempotency keys, validation (status, `error.code` and `error.field` of every refusal, and
//! nothing half-written), hostile strings, listing and pagination, stats, API keys, body limits, a burst of
//! concurrent requests (group commit) and durability across a SIGKILL.
//!
//! Every scenario is written once, as an async function taking the server, and run on each backend by
//! [`run_backend`]. The scenarios of one server run one after another (their count checks are deltas of
//! the whole server's counts); a failing scenario does not stop the others, and the test fails at the end
//! listing every failure.
//!
//! No workflow is configured, so every accepted event stays `pending` in its queue.

use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;

use message_center_tests::*;
use serde_json::{Value, json};
use tokio::task::JoinSet;

// ---------------------------------------------------------------------------------------------------------
// Servers
// ---------------------------------------------------------------------------------------------------------

/// `[instance] id` of the main server.
const INSTANCE_ID: u8 = 7;
/// `[server] max_batch_events` of the main server.
const MAX_BATCH: usize = 10;
/// `[server] max_ctx_bytes` of the main server.
const MAX_CTX: usize = 2048;

/// `[instance] id` of the restricted server: 255 puts the top bit of every id at 1 (ids above i64::MAX).
const RESTRICTED_INSTANCE_ID: u8 = 255;
/// `[server] max_body_bytes` of the restricted server.
const RESTRICTED_MAX_BODY: usize = 4096;
/// `[auth] api_keys` of the restricted server.
const API_KEY: &str = "k1";
/// How the scenarios on the restricted server authenticate.
const WITH_KEY: &[(&str, &str)] = &[("authorization", "Bearer k1")];
/// The main server needs no key.
const OPEN: &[(&str, &str)] = &[];

const EVENTS: &str = "/api/v1/events";
const BATCH: &str = "/api/v1/events/batch";
const STATS: &str = "/api/v1/stats";

/// Where a backend's servers keep their data: every server gets a database of its own (a file in a
/// temporary directory, or a fresh PostgreSQL database), which outlives the servers using it.
enum Databases {
    Sqlite {
        dir: tempfile::TempDir,
        count: usize,
    },
    Postgres(Vec<PostgresDatabase>),
}

impl Databases {
    fn sqlite() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("mc-ingest-")
            .tempdir()
            .expect("create database directory");
        Databases::Sqlite { dir, count: 0 }
    }

    fn postgres() -> Self {
        Databases::Postgres(Vec::new())
    }

    fn name(&self) -> &'static str {
        match self {
            Databases::Sqlite { .. } => "SQLite",
            Databases::Postgres(_) => "PostgreSQL",
        }
    }

    /// The URL of a new, empty database.
    fn fresh(&mut self) -> String {
        match self {
            Databases::Sqlite { dir, count } => {
                *count += 1;
                format!(
                    "sqlite://{}?mode=rwc",
                    dir.path().join(format!("db{count}.db")).display()
                )
            }
            Databases::Postgres(all) => {
                let db = PostgresDatabase::create();
                let url = db.url().to_owned();
                all.push(db);
                url
            }
        }
    }
}

/// The server most scenarios use: instance 7, open API, small batch and ctx limits, no workflows.
fn main_server(database_url: &str) -> TestServer {
    TestServer::start(
        ServerOptions::new(PluginDir::new())
            .instance_id(INSTANCE_ID)
            .limits(1024 * 1024, MAX_BATCH, MAX_CTX)
            .database_url(database_url),
    )
}

/// A server with an API key, instance id 255 and a 4 KiB body limit (ctx and batch limits at their
/// defaults, so that only the body limit can refuse a large body).
fn restricted_server(database_url: &str) -> TestServer {
    TestServer::start(
        ServerOptions::new(PluginDir::new())
            .instance_id(RESTRICTED_INSTANCE_ID)
            .api_keys(&[API_KEY])
            .limits(RESTRICTED_MAX_BODY, 1000, 64 * 1024)
            .database_url(database_url),
    )
}

#[tokio::test]
async fn ingestion_api_on_sqlite() {
    run_backend(Databases::sqlite()).await;
}

#[tokio::test]
async fn ingestion_api_on_postgres() {
    run_backend(Databases::postgres()).await;
}

/// Runs each named scenario function (`async fn(&TestServer)`) with [`run`], under its own name.
macro_rules! scenarios {
    ($server:expr, $failures:expr, [$($scenario:ident),* $(,)?]) => {
        $(
            run($server, stringify!($scenario), $failures, |s| async move {
                $scenario(&s).await
            })
            .await;
        )*
    };
}

/// Runs every scenario on servers of one backend; panics at the end with the list of failed scenarios.
async fn run_backend(mut databases: Databases) {
    let backend = databases.name();
    let mut failures = Vec::new();

    let main = Arc::new(main_server(&databases.fresh()));
    run(
        &main,
        "stats_of_an_empty_server",
        &mut failures,
        |s| async move { stats_of_an_empty_server(&s, OPEN).await },
    )
    .await;
    scenarios!(
        &main,
        &mut failures,
        [
            valid_event,
            wished_channel,
            idempotency,
            concurrent_idempotency,
            batch,
            bad_input_matrix,
            hostile_strings,
            list,
            stats,
            concurrent_burst,
            still_healthy,
        ]
    );

    let restricted = Arc::new(restricted_server(&databases.fresh()));
    run(
        &restricted,
        "stats_of_an_empty_server (with key)",
        &mut failures,
        |s| async move { stats_of_an_empty_server(&s, WITH_KEY).await },
    )
    .await;
    scenarios!(&restricted, &mut failures, [api_keys, body_limit]);

    if let Err(failure) = tokio::spawn(durable_across_sigkill(databases.fresh())).await {
        failures.push(format!(
            "durable_across_sigkill: {}",
            panic_message(failure)
        ));
    }

    assert!(
        failures.is_empty(),
        "{backend}: {} scenario(s) failed:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

/// Runs one scenario in a task of its own, recording its panic (if any) in `failures`.
async fn run<F, Fut>(server: &Arc<TestServer>, name: &str, failures: &mut Vec<String>, scenario: F)
where
    F: FnOnce(Arc<TestServer>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    eprintln!("--- scenario {name}");
    if let Err(failure) = tokio::spawn(scenario(Arc::clone(server))).await {
        failures.push(format!("{name}: {}", panic_message(failure)));
    }
}

fn panic_message(failure: tokio::task::JoinError) -> String {
    match failure.try_into_panic() {
        Ok(payload) => payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_else(|| "(non-string panic)".to_owned()),
        Err(failure) => format!("task failed: {failure}"),
    }
}

// ---------------------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------------------

fn event_path(id: &str) -> String {
    format!("{EVENTS}/{id}")
}

/// Checks that `id` is a string of digits whose top byte is `instance`; returns its value.
fn check_id(what: &str, id: &Value, instance: u8) -> u64 {
    let text = id
        .as_str()
        .unwrap_or_else(|| panic!("{what}: the id is not a JSON string: {id}"));
    assert!(
        !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()),
        "{what}: the id {text:?} is not a string of digits"
    );
    let value: u64 = text
        .parse()
        .unwrap_or_else(|e| panic!("{what}: the id {text:?} is not a 64-bit integer: {e}"));
    assert_eq!(
        value >> 56,
        u64::from(instance),
        "{what}: id {value} (top byte {}) does not carry instance id {instance}",
        value >> 56
    );
    value
}

/// Asserts a `201 {"id","status":"pending","href"}` answer; returns the id.
fn created(what: &str, answer: &(u16, Value), instance: u8) -> String {
    let (status, body) = answer;
    assert_eq!(
        *status,
        201,
        "{what}: expected 201, got {status}: {}",
        pretty(body)
    );
    check_id(what, &body["id"], instance);
    let id = body["id"].as_str().unwrap().to_owned();
    assert_eq!(body["status"], "pending", "{what}: {}", pretty(body));
    assert_eq!(
        body["href"],
        event_path(&id),
        "{what}: href: {}",
        pretty(body)
    );
    id
}

/// POSTs one event to the main server, asserts 201; returns the id.
async fn post_event(s: &TestServer, event: &Value) -> String {
    let answer = s.post_json(EVENTS, event, OPEN).await;
    created(&format!("POST {EVENTS} {event}"), &answer, INSTANCE_ID)
}

/// POSTs a batch to the main server, asserts `201 {"ids":[…]}` with one id per event; returns the ids.
async fn post_batch(s: &TestServer, events: &[Value]) -> Vec<String> {
    let answer = s.post_json(BATCH, &json!({ "events": events }), OPEN).await;
    batch_ids(&format!("POST {BATCH}"), &answer, events.len(), INSTANCE_ID)
}

fn batch_ids(what: &str, (status, body): &(u16, Value), count: usize, instance: u8) -> Vec<String> {
    assert_eq!(
        *status,
        201,
        "{what}: expected 201, got {status}: {}",
        pretty(body)
    );
    let ids = body["ids"]
        .as_array()
        .unwrap_or_else(|| panic!("{what}: no `ids` array in {}", pretty(body)));
    assert_eq!(ids.len(), count, "{what}: {}", pretty(body));
    let values: HashSet<u64> = ids.iter().map(|id| check_id(what, id, instance)).collect();
    assert_eq!(
        values.len(),
        count,
        "{what}: duplicate ids: {}",
        pretty(body)
    );
    ids.iter()
        .map(|id| id.as_str().unwrap().to_owned())
        .collect()
}

/// `GET /api/v1/events/{id}`, asserting 200 and that the answer is that event.
async fn get_event(s: &TestServer, id: &str, auth: &[(&str, &str)]) -> Value {
    let (status, body) = s.get_json_with(&event_path(id), auth).await;
    assert_eq!(status, 200, "GET {}: {}", event_path(id), pretty(&body));
    assert_eq!(body["id"], id, "GET {}: {}", event_path(id), pretty(&body));
    body
}

/// A valid email event of type `ty`.
fn email_event(ty: &str) -> Value {
    json!({ "type": ty, "email": "someone@example.com" })
}

/// Percent-encodes a query-string value.
fn enc(value: &str) -> String {
    let mut out = String::new();
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// One page of `GET /api/v1/events?{query}`, asserting 200, ids strictly increasing; returns the events
/// and `nextAfter`.
async fn list_page(
    s: &TestServer,
    query: &str,
    auth: &[(&str, &str)],
) -> (Vec<Value>, Option<String>) {
    let path = format!("{EVENTS}?{query}");
    let (status, body) = s.get_json_with(&path, auth).await;
    assert_eq!(status, 200, "GET {path}: {}", pretty(&body));
    let events = body["events"]
        .as_array()
        .unwrap_or_else(|| panic!("GET {path}: no `events` array in {}", pretty(&body)))
        .clone();
    let mut last = None;
    for event in &events {
        let id: u64 = event["id"]
            .as_str()
            .and_then(|id| id.parse().ok())
            .unwrap_or_else(|| panic!("GET {path}: bad id in {}", pretty(event)));
        assert!(
            last.is_none_or(|last| id > last),
            "GET {path}: ids not in increasing order: {}",
            pretty(&body)
        );
        last = Some(id);
    }
    let next = match &body["nextAfter"] {
        Value::Null => None,
        Value::String(next) => Some(next.clone()),
        other => panic!("GET {path}: nextAfter is neither a string nor null: {other}"),
    };
    (events, next)
}

/// Every event matching `filter` (a query string without `after`/`limit`), following `nextAfter`.
async fn list_all(s: &TestServer, filter: &str, auth: &[(&str, &str)]) -> Vec<Value> {
    let mut all: Vec<Value> = Vec::new();
    let mut after: Option<String> = None;
    for _ in 0..1000 {
        let mut query = format!("limit=1000&{filter}");
        if let Some(after) = &after {
            query.push_str(&format!("&after={after}"));
        }
        let (page, next) = list_page(s, &query, auth).await;
        let empty = page.is_empty();
        all.extend(page);
        match next {
            Some(next) if !empty => after = Some(next),
            _ => return all,
        }
    }
    panic!("GET {EVENTS}?{filter}: more than 1000 pages");
}

fn ids_of(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["id"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// `GET /api/v1/stats`, asserting 200 and the shape of both queues.
async fn get_stats(s: &TestServer, auth: &[(&str, &str)]) -> Value {
    let (status, body) = s.get_json_with(STATS, auth).await;
    assert_eq!(status, 200, "GET {STATS}: {}", pretty(&body));
    for queue in ["realtime", "batch"] {
        let q = &body["queues"][queue];
        assert!(
            q["depth"].is_u64(),
            "GET {STATS}: queues.{queue}.depth is not a count: {}",
            pretty(&body)
        );
        for status in EVENT_STATUSES {
            assert!(
                q["byStatus"][status].is_u64(),
                "GET {STATS}: queues.{queue}.byStatus.{status} missing or not a count: {}",
                pretty(&body)
            );
        }
        assert_eq!(
            q["depth"],
            q["byStatus"]["pending"],
            "GET {STATS}: queues.{queue}: depth counts the pending events: {}",
            pretty(&body)
        );
        let age = &q["oldestPendingAgeSeconds"];
        if q["depth"] == 0 {
            assert!(
                age.is_null(),
                "GET {STATS}: queues.{queue}: depth 0 but oldestPendingAgeSeconds is {age}: {}",
                pretty(&body)
            );
        } else {
            assert!(
                age.as_f64().is_some_and(|a| a >= 0.0),
                "GET {STATS}: queues.{queue}: depth > 0 but oldestPendingAgeSeconds is {age}: {}",
                pretty(&body)
            );
        }
    }
    body
}

/// How many events the server holds per queue, by `/api/v1/stats` (sum of `byStatus`), checked against
/// what `GET /api/v1/events?queue=` lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Census {
    realtime: u64,
    batch: u64,
}

impl Census {
    fn plus(self, realtime: u64, batch: u64) -> Census {
        Census {
            realtime: self.realtime + realtime,
            batch: self.batch + batch,
        }
    }
}

async fn census(s: &TestServer, auth: &[(&str, &str)]) -> Census {
    let stats = get_stats(s, auth).await;
    let mut counts = [0u64; 2];
    for (i, queue) in ["realtime", "batch"].into_iter().enumerate() {
        let by_status = &stats["queues"][queue]["byStatus"];
        let total: u64 = EVENT_STATUSES.iter().map(|st| num(by_status, st)).sum();
        let listed = list_all(s, &format!("queue={queue}"), auth).await;
        assert!(
            listed.iter().all(|e| e["queue"] == queue),
            "GET {EVENTS}?queue={queue} lists an event of another queue"
        );
        assert_eq!(
            listed.len() as u64,
            total,
            "stats count {total} {queue} events but GET {EVENTS}?queue={queue} lists {}",
            listed.len()
        );
        counts[i] = total;
    }
    Census {
        realtime: counts[0],
        batch: counts[1],
    }
}

/// Nanoseconds since the epoch of an RFC 3339 date-time (`YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`).
fn instant(text: &str) -> Option<i128> {
    let b = text.as_bytes();
    let digits = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = b.get(range)?;
        if part.is_empty() || !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(part).ok()?.parse().ok()
    };
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    if !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let (year, month, day) = (digits(0..4)?, digits(5..7)?, digits(8..10)?);
    let (hour, minute, second) = (digits(11..13)?, digits(14..16)?, digits(17..19)?);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut i = 19;
    let mut nanos: i128 = 0;
    if b[i] == b'.' {
        let start = i + 1;
        i = start;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start || i - start > 9 {
            return None;
        }
        let frac = std::str::from_utf8(&b[start..i]).ok()?;
        nanos = format!("{frac:0<9}").parse().ok()?;
    }
    let offset_seconds: i64 = match b.get(i)? {
        b'Z' | b'z' if i + 1 == b.len() => 0,
        sign @ (b'+' | b'-') if i + 6 == b.len() && b[i + 3] == b':' => {
            let minutes = digits(i + 1..i + 3)? * 60 + digits(i + 4..i + 6)?;
            if *sign == b'+' {
                minutes * 60
            } else {
                -minutes * 60
            }
        }
        _ => return None,
    };
    // Days from 1970-01-01 (Howard Hinnant's days_from_civil).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset_seconds;
    Some(i128::from(seconds) * 1_000_000_000 + nanos)
}

/// Asserts that `got` is an RFC 3339 string naming the same instant as `sent`.
fn assert_same_instant(what: &str, got: &Value, sent: &str) {
    let text = got
        .as_str()
        .unwrap_or_else(|| panic!("{what}: expected an RFC 3339 string, got {got}"));
    let got_instant =
        instant(text).unwrap_or_else(|| panic!("{what}: {text:?} is not an RFC 3339 date-time"));
    assert_eq!(
        Some(got_instant),
        instant(sent),
        "{what}: sent {sent:?}, got {text:?}: not the same instant"
    );
}

fn assert_rfc3339(what: &str, value: &Value) {
    assert!(
        value.as_str().and_then(instant).is_some(),
        "{what}: expected an RFC 3339 date-time, got {value}"
    );
}

/// What an error answer must be: `{"error":{"code","message","field"?}}`.
#[derive(Clone, Copy, Debug)]
struct Want {
    status: u16,
    /// `None`: the contract names no code; any non-empty one will do.
    code: Option<&'static str>,
    field: Field,
}

#[derive(Clone, Copy, Debug)]
enum Field {
    /// `error.field` must be this.
    Is(&'static str),
    /// A whole-body error: `error.field` must be absent or null.
    Absent,
    /// The contract does not say.
    Any,
}

const fn bad_field(field: &'static str) -> Want {
    Want {
        status: 400,
        code: Some("invalid_field"),
        field: Field::Is(field),
    }
}

/// A 400 naming `field`, with a code the contract leaves open.
const fn bad_param(field: &'static str) -> Want {
    Want {
        status: 400,
        code: None,
        field: Field::Is(field),
    }
}

const MALFORMED: Want = Want {
    status: 400,
    code: Some("malformed_json"),
    field: Field::Absent,
};

const INVALID_UTF8: Want = Want {
    status: 400,
    code: Some("invalid_utf8"),
    field: Field::Absent,
};

const NOT_FOUND: Want = Want {
    status: 404,
    code: Some("not_found"),
    field: Field::Any,
};

const UNAUTHORIZED: Want = Want {
    status: 401,
    code: Some("unauthorized"),
    field: Field::Any,
};

/// `None` if `got` is the error `want` describes, else what differs.
fn error_mismatch((status, body): &(u16, Value), want: Want) -> Option<String> {
    let mut problems = Vec::new();
    if *status != want.status {
        problems.push(format!("status {status}, expected {}", want.status));
    }
    let error = &body["error"];
    match error["code"].as_str() {
        None | Some("") => problems.push("no error.code".to_owned()),
        Some(code) => {
            if let Some(expected) = want.code
                && code != expected
            {
                problems.push(format!("error.code {code:?}, expected {expected:?}"));
            }
        }
    }
    if error["message"].as_str().is_none_or(str::is_empty) {
        problems.push("no error.message".to_owned());
    }
    match want.field {
        Field::Is(expected) => {
            if error["field"] != expected {
                problems.push(format!(
                    "error.field {}, expected {expected:?}",
                    error["field"]
                ));
            }
        }
        Field::Absent => {
            if !error["field"].is_null() {
                problems.push(format!(
                    "error.field {}, expected none (the whole body is at fault)",
                    error["field"]
                ));
            }
        }
        Field::Any => {}
    }
    (!problems.is_empty()).then(|| format!("{} in {}", problems.join(", "), body))
}

fn assert_error(what: &str, got: &(u16, Value), want: Want) {
    if let Some(problem) = error_mismatch(got, want) {
        panic!("{what}: {problem}");
    }
}

/// A request of the bad-input matrix.
enum Req {
    Post(&'static str, Vec<u8>),
    Get(String),
}

fn post(path: &'static str, body: &Value) -> Req {
    Req::Post(path, serde_json::to_vec(body).unwrap())
}

fn post_bytes(path: &'static str, body: &[u8]) -> Req {
    Req::Post(path, body.to_vec())
}

/// Sends every case, then panics listing every answer that is not the expected error.
async fn expect_errors(s: &TestServer, auth: &[(&str, &str)], cases: Vec<(String, Req, Want)>) {
    let mut problems = Vec::new();
    for (what, req, want) in cases {
        let (label, got) = match req {
            Req::Post(path, body) => {
                let label = format!(
                    "{what}: POST {path} {}",
                    truncated(&String::from_utf8_lossy(&body))
                );
                (label, s.post_raw(path, body, auth).await)
            }
            Req::Get(path) => (
                format!("{what}: GET {path}"),
                s.get_json_with(&path, auth).await,
            ),
        };
        if let Some(problem) = error_mismatch(&got, want) {
            problems.push(format!("- {label}\n  expected {want:?}\n  got: {problem}"));
        }
    }
    assert!(
        problems.is_empty(),
        "{} request(s) not refused as the contract says:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

fn truncated(text: &str) -> String {
    if text.chars().count() > 160 {
        let head: String = text.chars().take(160).collect();
        format!("{head}… ({} bytes)", text.len())
    } else {
        text.to_owned()
    }
}

// ---------------------------------------------------------------------------------------------------------
// Scenarios
// ---------------------------------------------------------------------------------------------------------

/// A fresh server: both queues empty, every status at 0, no oldest pending age.
async fn stats_of_an_empty_server(s: &TestServer, auth: &[(&str, &str)]) {
    let stats = get_stats(s, auth).await;
    for queue in ["realtime", "batch"] {
        let q = &stats["queues"][queue];
        assert_eq!(q["depth"], 0, "{}", pretty(&stats));
        assert!(q["oldestPendingAgeSeconds"].is_null(), "{}", pretty(&stats));
        for status in EVENT_STATUSES {
            assert_eq!(q["byStatus"][status], 0, "{status}: {}", pretty(&stats));
        }
    }
    assert_eq!(
        census(s, auth).await,
        Census {
            realtime: 0,
            batch: 0
        }
    );
}

/// A complete event is stored and returned field by field; a minimal one gets the defaults.
async fn valid_event(s: &TestServer) {
    let before = census(s, OPEN).await;
    let scheduled = "2031-05-06T07:08:09.5+02:00";
    let expiration = "2031-06-01T00:00:00Z";
    let ctx = json!({
        "firstName": "Ada",
        "order": {
            "id": 12345,
            "total": 99.95,
            "items": [{ "sku": "A-1", "qty": 2 }, { "sku": "B-2", "qty": 1 }],
            "gift": false,
            "note": null
        },
        "tags": ["a", "b"],
        "empty": {},
        "numbers": {
            "u64max": 18_446_744_073_709_551_615u64,
            "i64min": i64::MIN,
            "tiny": 1e-7,
            "tenth": 0.1,
            "negative": -42
        }
    });
    let event = json!({
        "type": "orderConfirmed",
        "channel": "email",
        "email": "ada@example.com",
        "mobilePhone": "+33612345678",
        "externalId": "order-42",
        "language": "fr-FR",
        "scheduled": scheduled,
        "expiration": expiration,
        "ctx": ctx,
    });
    let id = post_event(s, &event).await;

    let got = get_event(s, &id, OPEN).await;
    let what = format!("GET {}", event_path(&id));
    for (field, expected) in [
        ("queue", json!("realtime")),
        ("status", json!("pending")),
        ("type", json!("orderConfirmed")),
        ("channel", json!("email")),
        ("email", json!("ada@example.com")),
        ("mobilePhone", json!("+33612345678")),
        ("externalId", json!("order-42")),
        ("language", json!("fr-FR")),
        ("ctx", ctx.clone()),
        ("template", Value::Null),
        ("deliveries", json!([])),
    ] {
        assert_eq!(
            got[field],
            expected,
            "{what}: field {field}: {}",
            pretty(&got)
        );
    }
    assert!(
        got.get("template").is_some(),
        "{what}: `template` must be present (null): {}",
        pretty(&got)
    );
    assert_same_instant(&format!("{what}: scheduled"), &got["scheduled"], scheduled);
    assert_same_instant(
        &format!("{what}: expiration"),
        &got["expiration"],
        expiration,
    );
    assert_rfc3339(&format!("{what}: createdAt"), &got["createdAt"]);
    assert_rfc3339(&format!("{what}: updatedAt"), &got["updatedAt"]);

    // Minimal: channel email by default, ctx {} by default, the optional fields null.
    let id2 = post_event(s, &json!({ "type": "minimal", "email": "min@example.com" })).await;
    let got = get_event(s, &id2, OPEN).await;
    assert_eq!(got["channel"], "email", "{}", pretty(&got));
    assert_eq!(got["ctx"], json!({}), "{}", pretty(&got));
    assert_eq!(got["status"], "pending", "{}", pretty(&got));
    for field in [
        "mobilePhone",
        "externalId",
        "language",
        "scheduled",
        "expiration",
    ] {
        assert!(got[field].is_null(), "{field} not null: {}", pretty(&got));
    }

    // Both are listed, in order.
    let listed = ids_of(&list_all(s, "type=orderConfirmed", OPEN).await);
    assert_eq!(listed, std::slice::from_ref(&id));
    assert_eq!(census(s, OPEN).await, before.plus(2, 0));
}

/// `wishedChannel` 0/1 and `channel` pick the channel.
async fn wished_channel(s: &TestServer) {
    let before = census(s, OPEN).await;
    for (event, channel) in [
        (
            json!({ "type": "wished1", "wishedChannel": 1, "mobilePhone": "+33612345678" }),
            "sms",
        ),
        (
            json!({ "type": "wished0", "wishedChannel": 0, "email": "w0@example.com" }),
            "email",
        ),
        (
            json!({ "type": "channelSms", "channel": "sms", "mobilePhone": "0612345678" }),
            "sms",
        ),
        (
            json!({ "type": "smsFormatted", "channel": "sms", "mobilePhone": "+33 (0)6 12-34.56" }),
            "sms",
        ),
    ] {
        let id = post_event(s, &event).await;
        let got = get_event(s, &id, OPEN).await;
        assert_eq!(got["channel"], channel, "{event} → {}", pretty(&got));
        assert_eq!(got["queue"], "realtime", "{event} → {}", pretty(&got));
    }
    assert_eq!(census(s, OPEN).await, before.plus(4, 0));
}

/// A repeated key replays the first answer and queues nothing; a reused key with another body is refused.
async fn idempotency(s: &TestServer) {
    let before = census(s, OPEN).await;
    let key = [("idempotency-key", "order-77-confirmation")];
    let event = json!({ "type": "idem", "email": "idem@example.com", "ctx": { "n": 1 } });

    let first = s.post_json(EVENTS, &event, &key).await;
    let id = created("first POST with Idempotency-Key", &first, INSTANCE_ID);
    assert_eq!(census(s, OPEN).await, before.plus(1, 0));

    let repeat = s.post_json(EVENTS, &event, &key).await;
    assert_eq!(
        repeat.0,
        200,
        "a repeat with the same key and body must answer 200: {}",
        pretty(&repeat.1)
    );
    assert_eq!(
        repeat.1, first.1,
        "a repeat must answer the first answer's body"
    );
    assert_eq!(
        census(s, OPEN).await,
        before.plus(1, 0),
        "the repeat queued an event"
    );

    let other = json!({ "type": "idem", "email": "idem@example.com", "ctx": { "n": 2 } });
    let reused = s.post_json(EVENTS, &other, &key).await;
    assert_error(
        "the same key with another body",
        &reused,
        Want {
            status: 422,
            code: Some("idempotency_key_reused"),
            field: Field::Any,
        },
    );
    assert_eq!(
        census(s, OPEN).await,
        before.plus(1, 0),
        "the refused body was queued"
    );

    // The key still replays the original answer, and the event is the original one.
    let again = s.post_json(EVENTS, &event, &key).await;
    assert_eq!(again.0, 200, "{}", pretty(&again.1));
    assert_eq!(again.1, first.1);
    assert_eq!(get_event(s, &id, OPEN).await["ctx"], json!({ "n": 1 }));

    // Another key with the same body is another event; no key at all is another event too.
    let id2 = created(
        "the same body with another key",
        &s.post_json(EVENTS, &event, &[("idempotency-key", "another-key")])
            .await,
        INSTANCE_ID,
    );
    let id3 = post_event(s, &event).await;
    assert!(id2 != id && id3 != id && id2 != id3);

    // A key that is not 1-255 visible ASCII characters is refused, and nothing is queued.
    let long_key = "k".repeat(256);
    for (what, bad_key) in [
        ("a 256-character key", long_key.as_str()),
        ("a key with a space", "two words"),
        ("an empty key", ""),
    ] {
        assert_error(
            &format!("Idempotency-Key: {what}"),
            &s.post_json(EVENTS, &event, &[("idempotency-key", bad_key)])
                .await,
            Want {
                status: 400,
                code: None,
                field: Field::Is("Idempotency-Key"),
            },
        );
    }
    assert_eq!(census(s, OPEN).await, before.plus(3, 0));

    // The batch endpoint honours keys too.
    let batch_key = [("idempotency-key", "batch-key-1")];
    let body = json!({ "events": [email_event("idemBatch"), email_event("idemBatch")] });
    let first = s.post_json(BATCH, &body, &batch_key).await;
    batch_ids("first batch with Idempotency-Key", &first, 2, INSTANCE_ID);
    let repeat = s.post_json(BATCH, &body, &batch_key).await;
    assert_eq!(repeat.0, 200, "batch repeat: {}", pretty(&repeat.1));
    assert_eq!(repeat.1, first.1, "batch repeat must answer the first body");
    assert_eq!(census(s, OPEN).await, before.plus(3, 2));
}

/// 20 concurrent requests with one key create exactly one event.
async fn concurrent_idempotency(s: &TestServer) {
    let before = census(s, OPEN).await;
    let api = s.api();
    let event = json!({ "type": "idemRace", "email": "race@example.com" });
    let mut tasks = JoinSet::new();
    for _ in 0..20 {
        let api = api.clone();
        let event = event.clone();
        tasks.spawn(async move {
            api.post_json(EVENTS, &event, &[("idempotency-key", "race-key")])
                .await
        });
    }
    let answers = tasks.join_all().await;
    let created_count = answers.iter().filter(|(status, _)| *status == 201).count();
    assert!(
        answers
            .iter()
            .all(|(status, _)| *status == 201 || *status == 200),
        "every answer must be 201 or 200: {answers:?}"
    );
    assert_eq!(
        created_count, 1,
        "exactly one of 20 concurrent requests with one key is the first: {answers:?}"
    );
    let ids: HashSet<&Value> = answers.iter().map(|(_, body)| &body["id"]).collect();
    assert_eq!(
        ids.len(),
        1,
        "every answer names the same event: {answers:?}"
    );
    assert_eq!(list_all(s, "type=idemRace", OPEN).await.len(), 1);
    assert_eq!(census(s, OPEN).await, before.plus(1, 0));
}

/// Batches go to the batch queue, in order; a bad event refuses the whole batch.
async fn batch(s: &TestServer) {
    let before = census(s, OPEN).await;
    let events = vec![
        json!({ "type": "batchA", "email": "b0@example.com", "externalId": "b0" }),
        json!({ "type": "batchA", "channel": "sms", "mobilePhone": "+33611111111", "externalId": "b1" }),
        json!({ "type": "batchB", "email": "b2@example.com", "externalId": "b2", "ctx": { "i": 2 } }),
    ];
    let ids = post_batch(s, &events).await;
    for (i, id) in ids.iter().enumerate() {
        let got = get_event(s, id, OPEN).await;
        assert_eq!(got["queue"], "batch", "{}", pretty(&got));
        assert_eq!(got["status"], "pending", "{}", pretty(&got));
        assert_eq!(
            got["externalId"],
            format!("b{i}"),
            "ids[{i}] must be events[{i}]: {}",
            pretty(&got)
        );
        assert_eq!(got["type"], events[i]["type"], "{}", pretty(&got));
    }
    assert_eq!(get_event(s, &ids[1], OPEN).await["channel"], "sms");
    assert_eq!(get_event(s, &ids[2], OPEN).await["ctx"], json!({ "i": 2 }));
    let after_good = census(s, OPEN).await;
    assert_eq!(after_good, before.plus(0, 3));

    // events[2] is bad: nothing of the batch is stored.
    let bad = json!({ "events": [
        email_event("batchRefused"),
        email_event("batchRefused"),
        { "type": "batchRefused", "email": "a b@c.d" },
        email_event("batchRefused"),
    ]});
    assert_error(
        "a batch whose events[2] has an invalid email",
        &s.post_json(BATCH, &bad, OPEN).await,
        bad_field("events[2].email"),
    );
    let big_ctx = json!({ "blob": "x".repeat(MAX_CTX + 100) });
    let bad_ctx = json!({ "events": [
        email_event("batchRefused"),
        { "type": "batchRefused", "email": "ok@example.com", "ctx": big_ctx },
    ]});
    assert_error(
        "a batch whose events[1].ctx is too large",
        &s.post_json(BATCH, &bad_ctx, OPEN).await,
        bad_field("events[1].ctx"),
    );
    let too_many: Vec<Value> = (0..=MAX_BATCH)
        .map(|_| email_event("batchRefused"))
        .collect();
    assert_error(
        &format!(
            "a batch of {} events (max_batch_events {MAX_BATCH})",
            MAX_BATCH + 1
        ),
        &s.post_json(BATCH, &json!({ "events": too_many }), OPEN)
            .await,
        Want {
            status: 413,
            code: Some("batch_too_large"),
            field: Field::Is("events"),
        },
    );
    assert!(
        list_all(s, "type=batchRefused", OPEN).await.is_empty(),
        "an event of a refused batch was stored"
    );
    assert_eq!(
        census(s, OPEN).await,
        after_good,
        "a refused batch stored events"
    );

    // Exactly max_batch_events is accepted.
    let full: Vec<Value> = (0..MAX_BATCH)
        .map(|i| json!({ "type": "batchFull", "email": "f@example.com", "externalId": format!("f{i}") }))
        .collect();
    let ids = post_batch(s, &full).await;
    let listed = list_all(s, "type=batchFull", OPEN).await;
    let mut listed_ids = ids_of(&listed);
    let mut sent_ids = ids.clone();
    listed_ids.sort();
    sent_ids.sort();
    assert_eq!(listed_ids, sent_ids);
    assert_eq!(census(s, OPEN).await, after_good.plus(0, MAX_BATCH as u64));
}

/// Every kind of bad input is refused with the contract's status, code and field, and stores nothing.
async fn bad_input_matrix(s: &TestServer) {
    let before = census(s, OPEN).await;
    let ok = "ok@example.com";
    let long = "t".repeat(256);
    let mut cases: Vec<(String, Req, Want)> = vec![
        // Not JSON, not an object, not UTF-8.
        (
            "truncated JSON".into(),
            post_bytes(EVENTS, br#"{"type": "x", "email": "#),
            MALFORMED,
        ),
        (
            "not JSON at all".into(),
            post_bytes(EVENTS, b"type=x&email=a@b.c"),
            MALFORMED,
        ),
        ("empty body".into(), post_bytes(EVENTS, b""), MALFORMED),
        (
            "a JSON array".into(),
            post(EVENTS, &json!([{ "type": "x", "email": ok }])),
            MALFORMED,
        ),
        (
            "a JSON string".into(),
            post(EVENTS, &json!("hello")),
            MALFORMED,
        ),
        ("JSON null".into(), post(EVENTS, &Value::Null), MALFORMED),
        ("a JSON number".into(), post(EVENTS, &json!(42)), MALFORMED),
        (
            "bytes 0xff 0xfe".into(),
            post_bytes(EVENTS, &[0xff, 0xfe]),
            INVALID_UTF8,
        ),
        (
            "0xff inside a JSON string".into(),
            post_bytes(
                EVENTS,
                b"{\"type\":\"a\xffb\",\"email\":\"ok@example.com\"}",
            ),
            INVALID_UTF8,
        ),
        // Wrong types.
        (
            "type as a number".into(),
            post(EVENTS, &json!({ "type": 5, "email": ok })),
            bad_field("type"),
        ),
        (
            "type null".into(),
            post(EVENTS, &json!({ "type": null, "email": ok })),
            bad_field("type"),
        ),
        (
            "ctx as a string".into(),
            post(EVENTS, &json!({ "type": "x", "email": ok, "ctx": "{}" })),
            bad_field("ctx"),
        ),
        (
            "ctx as an array".into(),
            post(EVENTS, &json!({ "type": "x", "email": ok, "ctx": [1, 2] })),
            bad_field("ctx"),
        ),
        (
            "ctx as a number".into(),
            post(EVENTS, &json!({ "type": "x", "email": ok, "ctx": 3 })),
            bad_field("ctx"),
        ),
        (
            "scheduled not a date".into(),
            post(
                EVENTS,
                &json!({ "type": "x", "email": ok, "scheduled": "tomorrow" }),
            ),
            bad_field("scheduled"),
        ),
        (
            "scheduled as a number".into(),
            post(
                EVENTS,
                &json!({ "type": "x", "email": ok, "scheduled": 1_700_000_000 }),
            ),
            bad_field("scheduled"),
        ),
        (
            "expiration with month 13".into(),
            post(
                EVENTS,
                &json!({ "type": "x", "email": ok, "expiration": "2031-13-01T00:00:00Z" }),
            ),
            bad_field("expiration"),
        ),
        (
            "email as a number".into(),
            post(EVENTS, &json!({ "type": "x", "email": 42 })),
            bad_field("email"),
        ),
        (
            "externalId as a number".into(),
            post(
                EVENTS,
                &json!({ "type": "x", "email": ok, "externalId": 42 }),
            ),
            bad_field("externalId"),
        ),
        // Missing / out of range.
        (
            "missing type".into(),
            post(EVENTS, &json!({ "email": ok })),
            bad_field("type"),
        ),
        (
            "empty type".into(),
            post(EVENTS, &json!({ "type": "", "email": ok })),
            bad_field("type"),
        ),
        (
            "type of 256 characters".into(),
            post(EVENTS, &json!({ "type": long, "email": ok })),
            bad_field("type"),
        ),
        (
            "externalId of 256 characters".into(),
            post(
                EVENTS,
                &json!({ "type": "x", "email": ok, "externalId": long }),
            ),
            bad_field("externalId"),
        ),
        (
            "language of 256 characters".into(),
            post(
                EVENTS,
                &json!({ "type": "x", "email": ok, "language": long }),
            ),
            bad_field("language"),
        ),
        (
            "email channel without email".into(),
            post(EVENTS, &json!({ "type": "x" })),
            bad_field("email"),
        ),
        (
            "email channel with only a phone".into(),
            post(
                EVENTS,
                &json!({ "type": "x", "channel": "email", "mobilePhone": "+33612345678" }),
            ),
            bad_field("email"),
        ),
        (
            "sms without mobilePhone".into(),
            post(
                EVENTS,
                &json!({ "type": "x", "channel": "sms", "email": ok }),
            ),
            bad_field("mobilePhone"),
        ),
        (
            "wishedChannel 1 without mobilePhone".into(),
            post(
                EVENTS,
                &json!({ "type": "x", "wishedChannel": 1, "email": ok }),
            ),
            bad_field("mobilePhone"),
        ),
        (
            "mobilePhone of 5 digits".into(),
            post(
                EVENTS,
                &json!({ "type": "x", "channel": "sms", "mobilePhone": "12345" }),
            ),
            bad_field("mobilePhone"),
        ),
        (
            "mobilePhone of 21 digits".into(),
            post(
                EVENTS,
                &json!({ "type": "x", "channel": "sms", "mobilePhone": "1".repeat(21) }),
            ),
            bad_field("mobilePhone"),
        ),
        (
            "mobilePhone with letters".into(),
            post(
                EVENTS,
                &json!({ "type": "x", "channel": "sms", "mobilePhone": "call-me-123456" }),
            ),
            bad_field("mobilePhone"),
        ),
        (
            "channel fax".into(),
            post(
                EVENTS,
                &json!({ "type": "x", "channel": "fax", "email": ok }),
            ),
            bad_field("channel"),
        ),
        (
            "channel as a number".into(),
            post(EVENTS, &json!({ "type": "x", "channel": 1, "email": ok })),
            bad_field("channel"),
        ),
        (
            "wishedChannel 2".into(),
            post(
                EVENTS,
                &json!({ "type": "x", "wishedChannel": 2, "email": ok }),
            ),
            bad_field("wishedChannel"),
        ),
        (
            "wishedChannel -1".into(),
            post(
                EVENTS,
                &json!({ "type": "x", "wishedChannel": -1, "email": ok }),
            ),
            bad_field("wishedChannel"),
        ),
        (
            format!("ctx over max_ctx_bytes ({MAX_CTX})"),
            post(
                EVENTS,
                &json!({ "type": "x", "email": ok, "ctx": { "blob": "x".repeat(MAX_CTX + 1) } }),
            ),
            bad_field("ctx"),
        ),
        // Batch shape.
        (
            "batch: events missing".into(),
            post(BATCH, &json!({})),
            bad_param("events"),
        ),
        (
            "batch: events not an array".into(),
            post(BATCH, &json!({ "events": email_event("x") })),
            bad_param("events"),
        ),
        (
            "batch: events empty".into(),
            post(BATCH, &json!({ "events": [] })),
            bad_param("events"),
        ),
        (
            "batch: a JSON array".into(),
            post(BATCH, &json!([email_event("x")])),
            MALFORMED,
        ),
        (
            "batch: events[1].type as a number".into(),
            post(
                BATCH,
                &json!({ "events": [email_event("x"), { "type": 1, "email": ok }] }),
            ),
            bad_field("events[1].type"),
        ),
        (
            "batch: truncated JSON".into(),
            post_bytes(BATCH, br#"{"events": [ {"#),
            MALFORMED,
        ),
        (
            "batch: bytes 0xff 0xfe".into(),
            post_bytes(BATCH, &[0xff, 0xfe]),
            INVALID_UTF8,
        ),
        // Reading.
        (
            "id not an integer".into(),
            Req::Get(format!("{EVENTS}/abc")),
            bad_param("id"),
        ),
        (
            "id with a fraction".into(),
            Req::Get(format!("{EVENTS}/12.5")),
            bad_param("id"),
        ),
        (
            "unknown id".into(),
            Req::Get(event_path(
                &((u64::from(INSTANCE_ID) << 56) + 1_000_000_000).to_string(),
            )),
            NOT_FOUND,
        ),
        (
            "an id of another instance".into(),
            Req::Get(event_path(&((3u64 << 56) + 1).to_string())),
            NOT_FOUND,
        ),
    ];
    for email in [
        "not-an-email",
        "a@",
        "@example.com",
        "a b@c.d",
        "a@b c.d",
        "",
        // 255 characters: 64 + 1 + 190.
        &format!(
            "{}@{}.{}.{}.com",
            "l".repeat(64),
            "d".repeat(61),
            "e".repeat(60),
            "f".repeat(63)
        ),
    ] {
        cases.push((
            format!("invalid email {:?}", truncated(email)),
            post(EVENTS, &json!({ "type": "x", "email": email })),
            bad_field("email"),
        ));
    }
    expect_errors(s, OPEN, cases).await;

    // A malformed body's message says where.
    let (_, body) = s
        .post_raw(EVENTS, br#"{"type": "x", "email": }"#.to_vec(), OPEN)
        .await;
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.chars().any(|c| c.is_ascii_digit()),
        "the malformed_json message should say where (line/column): {message:?}"
    );

    // The limits accept what is just within them.
    let email_254 = format!(
        "{}@{}.{}.{}.com",
        "l".repeat(64),
        "d".repeat(60),
        "e".repeat(60),
        "f".repeat(63)
    );
    assert_eq!(email_254.len(), 254);
    let accepted = [
        json!({ "type": "t".repeat(255), "email": ok }),
        json!({ "type": "x", "email": email_254 }),
        json!({ "type": "x", "email": ok, "externalId": "e".repeat(255), "language": "l".repeat(255) }),
        json!({ "type": "x", "channel": "sms", "mobilePhone": "123456" }),
        json!({ "type": "x", "channel": "sms", "mobilePhone": format!("+{}", "9".repeat(20)) }),
        json!({ "type": "x", "email": ok, "ctx": { "blob": "x".repeat(MAX_CTX - 100) } }),
        json!({ "type": "x", "email": ok, "unknownField": { "a": [1] }, "another": true }),
    ];
    for event in &accepted {
        post_event(s, event).await;
    }

    assert_eq!(
        census(s, OPEN).await,
        before.plus(accepted.len() as u64, 0),
        "the stored events are exactly the accepted ones"
    );
    s.assert_healthy().await;
    let (status, body) = s.get_json("/healthz").await;
    assert_eq!(status, 200, "GET /healthz on the API listener: {body}");
}

/// SQL, HTML, emoji and control characters are stored and returned verbatim, and filter exactly.
async fn hostile_strings(s: &TestServer) {
    let before = census(s, OPEN).await;
    let hostile = [
        "'; DROP TABLE events; --",
        "<script>alert('x')</script>",
        "emoji 📨🎉 and ünïcödé",
        "control \u{1}\u{7}\u{8}\t\r\n\u{1b}[31m\u{7f} chars",
        "\\\" backslash and quote \\",
        "percent % and underscore _ wildcards",
        "\u{2028}\u{2029}\u{feff}",
        "query chars a+b&c=d #frag ?q=1 %41",
    ];
    let mut ids = Vec::new();
    for (i, text) in hostile.iter().enumerate() {
        let ctx = json!({
            "value": text,
            *text: "as a key",
            "nested": { "list": [text, { "deep": text }] },
        });
        let event = json!({
            "type": text,
            "email": "o'brien+x'OR'1'='1--@example.com",
            "externalId": text,
            "language": text,
            "ctx": ctx,
        });
        let id = post_event(s, &event).await;
        let got = get_event(s, &id, OPEN).await;
        for field in ["type", "email", "externalId", "language", "ctx"] {
            assert_eq!(
                got[field],
                event[field],
                "hostile string #{i}: field {field} not returned verbatim: {}",
                pretty(&got)
            );
        }
        ids.push(id);
    }
    // Filtering by a hostile type finds exactly that event (no injection, no wildcard).
    for (text, id) in hostile.iter().zip(&ids) {
        let listed = list_all(s, &format!("type={}", enc(text)), OPEN).await;
        assert_eq!(
            ids_of(&listed),
            std::slice::from_ref(id),
            "GET {EVENTS}?type={:?} must list exactly its event",
            text
        );
        assert_eq!(listed[0]["type"], *text);
    }
    let wildcard = list_all(s, &format!("type={}", enc("%")), OPEN).await;
    assert!(wildcard.is_empty(), "type=% matched {}", wildcard.len());
    assert_eq!(census(s, OPEN).await, before.plus(hostile.len() as u64, 0));
    s.assert_healthy().await;
}

/// Filters, pagination with `after`/`limit`/`nextAfter`, and refused parameters.
async fn list(s: &TestServer) {
    let mut realtime = Vec::new();
    for i in 0..5 {
        realtime.push(
            post_event(
                s,
                &json!({ "type": "listA", "email": "l@example.com", "externalId": format!("a{i}") }),
            )
            .await,
        );
    }
    for _ in 0..2 {
        post_event(s, &email_event("listB")).await;
    }
    let batched = post_batch(
        s,
        &[
            email_event("listA"),
            email_event("listA"),
            email_event("listA"),
        ],
    )
    .await;

    let all_a = list_all(s, "type=listA", OPEN).await;
    assert_eq!(all_a.len(), 8, "type=listA: {}", pretty(&json!(all_a)));
    assert!(
        all_a
            .iter()
            .all(|e| e["type"] == "listA" && e["status"] == "pending")
    );
    let ids = ids_of(&all_a);
    for id in realtime.iter().chain(&batched) {
        assert!(ids.contains(id), "type=listA does not list {id}");
    }

    let rt = list_all(s, "type=listA&queue=realtime", OPEN).await;
    assert_eq!(ids_of(&rt), realtime, "queue=realtime&type=listA");
    let b = list_all(s, "type=listA&queue=batch", OPEN).await;
    let mut batched_sorted = batched.clone();
    batched_sorted.sort_by_key(|id| id.parse::<u64>().unwrap_or_default());
    assert_eq!(ids_of(&b), batched_sorted, "queue=batch&type=listA");
    assert!(b.iter().all(|e| e["queue"] == "batch"));
    assert_eq!(list_all(s, "type=listB", OPEN).await.len(), 2);
    assert_eq!(
        list_all(s, "type=listA&status=pending", OPEN).await.len(),
        8
    );
    for status in EVENT_STATUSES.iter().filter(|st| **st != "pending") {
        let (page, next) = list_page(s, &format!("type=listA&status={status}"), OPEN).await;
        assert!(
            page.is_empty() && next.is_none(),
            "status={status}: {page:?} {next:?}"
        );
    }

    // Pages of 3: 3 (full, nextAfter = its last id), 3 (full), 2 (not full, nextAfter null).
    let (p1, n1) = list_page(s, "type=listA&limit=3", OPEN).await;
    assert_eq!(ids_of(&p1), ids[0..3]);
    assert_eq!(
        n1.as_deref(),
        Some(ids[2].as_str()),
        "nextAfter of a full page"
    );
    let (p2, n2) = list_page(s, &format!("type=listA&limit=3&after={}", ids[2]), OPEN).await;
    assert_eq!(ids_of(&p2), ids[3..6]);
    assert_eq!(n2.as_deref(), Some(ids[5].as_str()));
    let (p3, n3) = list_page(s, &format!("type=listA&limit=3&after={}", ids[5]), OPEN).await;
    assert_eq!(ids_of(&p3), ids[6..8]);
    assert_eq!(n3, None, "nextAfter of a page that is not full");
    // Pages of 4: the second is full, the third empty.
    let (_, n) = list_page(s, "type=listA&limit=4", OPEN).await;
    let (p, n) = list_page(s, &format!("type=listA&limit=4&after={}", n.unwrap()), OPEN).await;
    assert_eq!(ids_of(&p), ids[4..8]);
    assert_eq!(n.as_deref(), Some(ids[7].as_str()));
    let (p, n) = list_page(s, &format!("type=listA&limit=4&after={}", ids[7]), OPEN).await;
    assert!(
        p.is_empty() && n.is_none(),
        "after the last id: {p:?} {n:?}"
    );
    // Limits 1 and 1000 are accepted; after=0 starts from the beginning.
    let (p, _) = list_page(s, "type=listA&limit=1", OPEN).await;
    assert_eq!(ids_of(&p), ids[0..1]);
    let (p, _) = list_page(s, "type=listA&limit=1000&after=0", OPEN).await;
    assert_eq!(ids_of(&p), ids);

    let mut cases = Vec::new();
    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=5000", "limit"),
        ("limit=1001", "limit"),
        ("limit=x", "limit"),
        ("limit=-1", "limit"),
        ("status=bogus", "status"),
        ("queue=nope", "queue"),
        ("after=x", "after"),
    ] {
        cases.push((
            "bad list parameter".to_owned(),
            Req::Get(format!("{EVENTS}?{query}")),
            bad_param(field),
        ));
    }
    expect_errors(s, OPEN, cases).await;
}

/// Depth per queue follows the pending events pushed there.
async fn stats(s: &TestServer) {
    let depth = |stats: &Value, queue: &str| num(&stats["queues"][queue], "depth");
    let before = get_stats(s, OPEN).await;
    post_event(s, &email_event("statsRt")).await;
    post_event(s, &email_event("statsRt")).await;
    post_batch(
        s,
        &[
            email_event("statsB"),
            email_event("statsB"),
            email_event("statsB"),
        ],
    )
    .await;
    let after = get_stats(s, OPEN).await;
    assert_eq!(
        depth(&after, "realtime"),
        depth(&before, "realtime") + 2,
        "{}",
        pretty(&after)
    );
    assert_eq!(
        depth(&after, "batch"),
        depth(&before, "batch") + 3,
        "{}",
        pretty(&after)
    );
    // Nothing processes events here: every stored event is pending, so depth is each queue's total.
    let total = census(s, OPEN).await;
    assert_eq!(
        depth(&after, "realtime"),
        total.realtime,
        "{}",
        pretty(&after)
    );
    assert_eq!(depth(&after, "batch"), total.batch, "{}", pretty(&after));
    for queue in ["realtime", "batch"] {
        let age = after["queues"][queue]["oldestPendingAgeSeconds"]
            .as_f64()
            .unwrap_or(-1.0);
        assert!(
            (0.0..3600.0).contains(&age),
            "queues.{queue}.oldestPendingAgeSeconds: {}",
            pretty(&after)
        );
    }
}

/// 200 concurrent single-event POSTs all succeed with distinct ids, all readable (group commit).
async fn concurrent_burst(s: &TestServer) {
    const N: usize = 200;
    let before = census(s, OPEN).await;
    let api = s.api();
    let mut tasks = JoinSet::new();
    for i in 0..N {
        let api = api.clone();
        tasks.spawn(async move {
            let event = json!({
                "type": "burst",
                "email": format!("burst{i}@example.com"),
                "externalId": format!("burst-{i}"),
                "ctx": { "i": i },
            });
            (i, api.post_json(EVENTS, &event, OPEN).await)
        });
    }
    let mut by_index = vec![String::new(); N];
    for (i, answer) in tasks.join_all().await {
        by_index[i] = created(&format!("burst POST #{i}"), &answer, INSTANCE_ID);
    }
    let distinct: HashSet<&String> = by_index.iter().collect();
    assert_eq!(distinct.len(), N, "ids are not distinct");

    let mut reads = JoinSet::new();
    for (i, id) in by_index.iter().enumerate() {
        let api = api.clone();
        let id = id.clone();
        reads.spawn(async move { (i, id.clone(), api.get_json(&event_path(&id)).await) });
    }
    for (i, id, (status, body)) in reads.join_all().await {
        assert_eq!(
            status,
            200,
            "GET burst event #{i} ({id}): {}",
            pretty(&body)
        );
        assert_eq!(
            body["externalId"],
            format!("burst-{i}"),
            "{}",
            pretty(&body)
        );
        assert_eq!(body["ctx"], json!({ "i": i }), "{}", pretty(&body));
    }
    assert_eq!(census(s, OPEN).await, before.plus(N as u64, 0));

    // The default page is 100 events, full, so nextAfter is its last id.
    let mut sorted: Vec<u64> = by_index.iter().map(|id| id.parse().unwrap()).collect();
    sorted.sort_unstable();
    let (page, next) = list_page(s, "type=burst", OPEN).await;
    assert_eq!(page.len(), 100, "default limit");
    assert_eq!(next, Some(sorted[99].to_string()));
    let listed: Vec<u64> = ids_of(&list_all(s, "type=burst", OPEN).await)
        .iter()
        .map(|id| id.parse().unwrap())
        .collect();
    assert_eq!(listed, sorted);
}

async fn still_healthy(s: &TestServer) {
    s.assert_healthy().await;
    let (status, body) = s.get_json("/healthz").await;
    assert_eq!(status, 200, "GET /healthz on the API listener: {body}");
}

/// With `[auth] api_keys`, every `/api/v1/*` call needs a key (either header); ids carry instance 255.
async fn api_keys(s: &TestServer) {
    let before = census(s, WITH_KEY).await;
    let event = email_event("keyed");
    let event_bytes = serde_json::to_vec(&event).unwrap();
    let batch_bytes = serde_json::to_vec(&json!({ "events": [event.clone()] })).unwrap();
    let mut cases = Vec::new();
    for (what, headers) in [
        ("no key", vec![]),
        ("wrong bearer key", vec![("authorization", "Bearer k2")]),
        ("wrong X-Api-Key", vec![("x-api-key", "k2")]),
        ("key without Bearer", vec![("authorization", "k1")]),
        ("empty bearer", vec![("authorization", "Bearer ")]),
        ("key prefix", vec![("x-api-key", "k")]),
    ] {
        for (path, body) in [(EVENTS, &event_bytes), (BATCH, &batch_bytes)] {
            let answer = s.post_raw(path, body.clone(), &headers).await;
            cases.push((format!("{what}: POST {path}"), answer));
        }
        for path in [EVENTS.to_owned(), STATS.to_owned(), event_path("1")] {
            let answer = s.get_json_with(&path, &headers).await;
            cases.push((format!("{what}: GET {path}"), answer));
        }
    }
    // Authentication comes before validation: an invalid body without a key is still 401.
    cases.push((
        "no key, invalid body".to_owned(),
        s.post_raw(EVENTS, b"{not json".to_vec(), &[]).await,
    ));
    let problems: Vec<String> = cases
        .iter()
        .filter_map(|(what, got)| {
            error_mismatch(got, UNAUTHORIZED).map(|p| format!("- {what}: {p}"))
        })
        .collect();
    assert!(
        problems.is_empty(),
        "expected 401 unauthorized:\n{}",
        problems.join("\n")
    );
    assert_eq!(
        census(s, WITH_KEY).await,
        before,
        "an unauthorised request stored an event"
    );

    let mut ids = Vec::new();
    for headers in [[("authorization", "Bearer k1")], [("x-api-key", "k1")]] {
        let answer = s.post_json(EVENTS, &event, &headers).await;
        let id = created(
            &format!("POST with {headers:?}"),
            &answer,
            RESTRICTED_INSTANCE_ID,
        );
        let (status, body) = s.get_json_with(&event_path(&id), &headers).await;
        assert_eq!(status, 200, "GET {id} with {headers:?}: {}", pretty(&body));
        assert_eq!(body["id"], id.as_str());
        ids.push(id);
    }
    let answer = s
        .post_json(
            BATCH,
            &json!({ "events": [event.clone()] }),
            &[("x-api-key", "k1")],
        )
        .await;
    ids.extend(batch_ids(
        "batch with X-Api-Key",
        &answer,
        1,
        RESTRICTED_INSTANCE_ID,
    ));

    // Ids above i64::MAX list and page like any other.
    let listed = list_all(s, "type=keyed", WITH_KEY).await;
    let mut expected = ids.clone();
    expected.sort_by_key(|id| id.parse::<u64>().unwrap());
    assert_eq!(ids_of(&listed), expected);
    let (page, _) = list_page(s, &format!("type=keyed&after={}", expected[0]), WITH_KEY).await;
    assert_eq!(ids_of(&page), expected[1..]);
    // An id of instance 7 is not this instance's.
    let foreign = ((u64::from(INSTANCE_ID) << 56) + 1).to_string();
    assert_error(
        "GET of another instance's id",
        &s.get_json_with(&event_path(&foreign), WITH_KEY).await,
        NOT_FOUND,
    );
    assert_eq!(census(s, WITH_KEY).await, before.plus(2, 1));
}

/// A body over `max_body_bytes` is refused with 413 before anything is stored; exactly the limit passes.
async fn body_limit(s: &TestServer) {
    let before = census(s, WITH_KEY).await;
    // An event padded to exactly `size` bytes of JSON.
    let sized = |size: usize| -> Vec<u8> {
        let base = serde_json::to_vec(
            &json!({ "type": "sized", "email": "s@example.com", "ctx": { "pad": "" } }),
        )
        .unwrap();
        let event = json!({ "type": "sized", "email": "s@example.com", "ctx": { "pad": "p".repeat(size - base.len()) } });
        let bytes = serde_json::to_vec(&event).unwrap();
        assert_eq!(bytes.len(), size);
        bytes
    };
    let at_limit = s
        .post_raw(EVENTS, sized(RESTRICTED_MAX_BODY), WITH_KEY)
        .await;
    created(
        &format!("a body of exactly max_body_bytes ({RESTRICTED_MAX_BODY})"),
        &at_limit,
        RESTRICTED_INSTANCE_ID,
    );
    let too_large = Want {
        status: 413,
        code: Some("payload_too_large"),
        field: Field::Absent,
    };
    assert_error(
        "a body of max_body_bytes + 1",
        &s.post_raw(EVENTS, sized(RESTRICTED_MAX_BODY + 1), WITH_KEY)
            .await,
        too_large,
    );
    assert_error(
        "a body of 10 KB",
        &s.post_raw(EVENTS, sized(10 * 1024), WITH_KEY).await,
        too_large,
    );
    let batch: Vec<Value> = (0..100).map(|_| email_event("sizedBatch")).collect();
    let batch_bytes = serde_json::to_vec(&json!({ "events": batch })).unwrap();
    assert!(batch_bytes.len() > RESTRICTED_MAX_BODY);
    assert_error(
        &format!("a batch body of {} bytes", batch_bytes.len()),
        &s.post_raw(BATCH, batch_bytes, WITH_KEY).await,
        too_large,
    );

    // Without a Content-Length (chunked), the limit holds as well, and a small chunked body is fine.
    let addr = s.api_addr();
    let big = sized(10 * 1024);
    let (status, body) = chunked_post(addr, EVENTS, &big, &[("authorization", "Bearer k1")]).await;
    assert_error("a chunked body of 10 KB", &(status, body), too_large);
    let small = sized(1000);
    let answer = chunked_post(addr, EVENTS, &small, &[("authorization", "Bearer k1")]).await;
    created(
        "a chunked body of 1000 bytes",
        &answer,
        RESTRICTED_INSTANCE_ID,
    );

    assert_eq!(census(s, WITH_KEY).await, before.plus(2, 0));
    s.assert_healthy().await;
}

/// POSTs `body` with `Transfer-Encoding: chunked` (chunks of 700 bytes) over a raw connection; returns
/// the status and the JSON body of the answer.
async fn chunked_post(
    addr: std::net::SocketAddr,
    path: &str,
    body: &[u8],
    headers: &[(&str, &str)],
) -> (u16, Value) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let mut request = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n"
    )
    .into_bytes();
    for (name, value) in headers {
        request.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
    }
    request.extend_from_slice(b"\r\n");
    for chunk in body.chunks(700) {
        request.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        request.extend_from_slice(chunk);
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"0\r\n\r\n");

    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
    // The server may answer (and close) before reading everything: a failed write is not a failure.
    let _ = stream.write_all(&request).await;
    let mut answer = Vec::new();
    let mut buffer = [0u8; 8192];
    let read = async {
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&buffer[..n]),
            }
        }
    };
    tokio::time::timeout(secs(15), read)
        .await
        .unwrap_or_else(|_| panic!("chunked POST {path}: no complete answer in 15 s"));
    let text = String::from_utf8_lossy(&answer).into_owned();
    let (head, payload) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("chunked POST {path}: no HTTP answer in {text:?}"));
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("chunked POST {path}: bad status line in {head:?}"));
    let payload = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(payload)
    } else {
        payload.to_owned()
    };
    let body = serde_json::from_str(&payload).unwrap_or(Value::String(payload));
    (status, body)
}

/// The payload of a chunked HTTP body.
fn dechunk(mut text: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = text.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if size == 0 || rest.len() < size {
            break;
        }
        out.push_str(&rest[..size]);
        text = rest[size..].trim_start_matches("\r\n");
    }
    out
}

/// An event answered 201 survives a SIGKILL of the server, and so does its idempotency key.
async fn durable_across_sigkill(database_url: String) {
    let key = [("idempotency-key", "durable-key")];
    let event = json!({ "type": "durable", "email": "d@example.com", "ctx": { "keep": true } });
    let (id, first) = {
        let server = main_server(&database_url);
        let first = server.post_json(EVENTS, &event, &key).await;
        let id = created("POST before the kill", &first, INSTANCE_ID);
        let batch = post_batch(&server, &[email_event("durableBatch")]).await;
        assert_eq!(batch.len(), 1);
        (id, first)
        // Dropping the server SIGKILLs it: no graceful shutdown.
    };
    let server = main_server(&database_url);
    let got = get_event(&server, &id, OPEN).await;
    assert_eq!(got["ctx"], json!({ "keep": true }), "{}", pretty(&got));
    assert_eq!(got["status"], "pending");
    let repeat = server.post_json(EVENTS, &event, &key).await;
    assert_eq!(
        repeat.0,
        200,
        "idempotency key after a restart: {}",
        pretty(&repeat.1)
    );
    assert_eq!(repeat.1, first.1);
    assert_eq!(
        census(&server, OPEN).await,
        Census {
            realtime: 1,
            batch: 1
        }
    );
}

#[test]
fn rfc3339_instants_compare_across_offsets() {
    assert_eq!(instant("1970-01-01T00:00:00Z"), Some(0));
    assert_eq!(instant("1970-01-01T01:00:00+01:00"), Some(0));
    assert_eq!(
        instant("2031-05-06T07:08:09.5+02:00"),
        instant("2031-05-06T05:08:09.500000Z")
    );
    assert_eq!(
        instant("2000-03-01T00:00:00Z"),
        Some(951_868_800 * 1_000_000_000)
    );
    assert_eq!(instant("1969-12-31T23:59:59.999999999z"), Some(-1));
    for bad in [
        "2031-05-06",
        "2031-05-06T07:08:09",
        "2031-13-06T07:08:09Z",
        "2031-05-06T07:08:09.Z",
        "2031-05-06T07:08:09+0200",
        "tomorrow",
    ] {
        assert_eq!(instant(bad), None, "{bad}");
    }
}
