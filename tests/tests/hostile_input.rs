//! A hostile-input corpus (issue #15): several thousand bodies, generated here deterministically, sent to
//! `POST /api/v1/events`, `POST /api/v1/events/batch`, `PUT /api/v1/templates/{name}` and the Adobe SOAP
//! endpoint (`PushEvent`, `PushEvents`) of one real server per backend: malformed and truncated JSON and
//! XML, deep nesting, huge numbers, invalid UTF-8, duplicated keys, oversize bodies and fields, every
//! control character in every string field, CR/LF in addresses and headers, entity tricks.
//!
//! Each body's answer is predicted exactly (the rules are docs/api.md "Input rules"):
//! - JSON: a 4xx whose `error` names the field (`error.field`) or the body (`malformed_json`,
//!   `invalid_utf8`, `payload_too_large`), or 201 for the bodies that are valid after all;
//! - SOAP: a `SOAP-ENV:Client` fault (HTTP 500 as SOAP 1.1 and Adobe Campaign answer faults, 413 for a body
//!   over the size limit) whose `faultstring` names the field (``invalid field `email` ``) or whose
//!   `detail` names what is wrong with the body (`malformed_xml`…), or 200 with one `plId` per event.
//!
//! Never a 5xx (beyond SOAP's fault status), a `SOAP-ENV:Server` fault, a transport error or a hang. After
//! the corpus the server is healthy, its RSS is bounded, and nothing is half-written: the events stored
//! are exactly the 201/200 answers times their events, the templates exactly the 201 answers.

use std::collections::BTreeMap;
use std::time::Duration;

use message_center_tests::*;

#[path = "hostile_input/bodies.rs"]
mod bodies;
#[path = "hostile_input/characters.rs"]
mod characters;
#[path = "hostile_input/structure.rs"]
mod structure;

use characters::*;
use serde_json::Value;
use structure::*;

const LOGIN: &str = "mc";
const PASSWORD: &str = "s3cret-pw";
const ROUTER: &str = "/nl/jsp/soaprouter.jsp";
const EVENTS: &str = "/api/v1/events";
const BATCH: &str = "/api/v1/events/batch";

/// `[server]` limits of the server under test.
const MAX_BODY: usize = 65_536;
const MAX_BATCH: usize = 20;
const MAX_CTX: usize = 20_000;
/// The server's resident memory after the corpus stays under this.
const MAX_RSS_KB: u64 = 300 * 1024;
/// One answer may take this long (the machine is shared; a hang is far longer).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(20);

/// Cases whose expectation is also the ctx depth limit another branch of issue #15 adds
/// (`host/src/ingest/validate.rs`, `host/src/soap/ctx.rs`): a ctx nested 8,000 levels deep is refused with
/// 400 naming `ctx`. This branch refuses them already (the ctx read-back check stops at `serde_json`'s
/// 128 levels); listed here so that a failure of these alone after a merge points at the depth check.
const AWAITING_DEPTH_LIMIT: &[&str] = &["deep ctx arrays 8000", "deep ctx objects 8000"];

/// Where a body goes.
#[derive(Clone, Debug)]
enum Endpoint {
    Event,
    Batch,
    Template(String),
    /// The SOAP router with this SOAPAction.
    Soap(&'static str),
}

/// What the answer must be.
#[derive(Clone, Debug)]
enum Expect {
    /// 201 with this many events stored.
    Created(u64),
    /// 201: a new template.
    TemplateCreated,
    /// 4xx, `error.code` and `error.field`.
    Field(&'static str, String),
    /// 4xx, `error.code`, no field: the body is at fault.
    Body(&'static str),
    /// 200 with this many `plId`s.
    SoapOk(u64),
    /// A client fault naming the field.
    SoapField(String),
    /// A client fault with this `detail`.
    SoapBody(&'static str),
}

struct Case {
    name: String,
    endpoint: Endpoint,
    body: Vec<u8>,
    expect: Expect,
}

/// The corpus, built up by the generators below.
#[derive(Default)]
struct Corpus {
    cases: Vec<Case>,
    templates: usize,
}

impl Corpus {
    fn add(
        &mut self,
        name: impl Into<String>,
        endpoint: Endpoint,
        body: impl Into<Vec<u8>>,
        expect: Expect,
    ) {
        self.cases.push(Case {
            name: name.into(),
            endpoint,
            body: body.into(),
            expect,
        });
    }

    /// An event whose field `field` is `value` (raw JSON), refused naming that field.
    fn refuse_event_field(&mut self, name: impl Into<String>, field: &'static str, value: String) {
        let body = bodies::event_with(&[(field, value)]);
        self.add(name, Endpoint::Event, body, bodies::field(field));
    }

    /// A template endpoint with a name no other case uses (so that a valid body answers 201).
    fn template(&mut self) -> Endpoint {
        self.templates += 1;
        Endpoint::Template(format!("hostile-{}", self.templates))
    }
}

fn corpus() -> Corpus {
    let mut corpus = Corpus::default();
    valid_bodies(&mut corpus);
    truncations(&mut corpus);
    event_control_characters(&mut corpus);
    template_control_characters(&mut corpus);
    soap_control_characters(&mut corpus);
    invalid_utf8(&mut corpus);
    duplicated_keys(&mut corpus);
    huge_numbers(&mut corpus);
    deep_nesting(&mut corpus);
    oversize(&mut corpus);
    entity_tricks(&mut corpus);
    corpus
}

// ---------------------------------------------------------------------------------------------------------
// Running it
// ---------------------------------------------------------------------------------------------------------

fn start_server(database_url: Option<&str>) -> TestServer {
    let adobe = format!(
        "[adobe]\nenabled = true\naccounts = [{{ login = {}, password = {} }}]\n",
        toml_string(LOGIN),
        toml_string(PASSWORD)
    );
    let mut options = ServerOptions::new(PluginDir::new())
        .limits(MAX_BODY, MAX_BATCH, MAX_CTX)
        .extra_toml(&adobe);
    if let Some(url) = database_url {
        options = options.database_url(url);
    }
    TestServer::start(options)
}

/// Sends one case; the failure, if the answer is not the one expected. Adds what it stored to `stored`.
async fn check(server: &TestServer, case: &Case, stored: &mut Stored) -> Result<(), String> {
    let api = server.api();
    let (method, path, headers): (reqwest::Method, String, Vec<(&str, &str)>) = match &case.endpoint
    {
        Endpoint::Event => (reqwest::Method::POST, EVENTS.to_owned(), vec![]),
        Endpoint::Batch => (reqwest::Method::POST, BATCH.to_owned(), vec![]),
        Endpoint::Template(name) => (
            reqwest::Method::PUT,
            format!("/api/v1/templates/{name}"),
            vec![],
        ),
        Endpoint::Soap(action) => (
            reqwest::Method::POST,
            ROUTER.to_owned(),
            vec![
                ("content-type", "text/xml; charset=utf-8"),
                ("SOAPAction", action),
            ],
        ),
    };
    let sent = api.request(method, &path, Some(case.body.clone()), &headers);
    let (status, answer) = tokio::time::timeout(ANSWER_TIMEOUT, sent)
        .await
        .map_err(|_| format!("no answer in {ANSWER_TIMEOUT:?}"))?;
    let shown = || {
        let text = match &answer {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        format!("{status} {}", text.chars().take(300).collect::<String>())
    };
    let fail = |why: &str| Err(format!("{why}; got {}", shown()));
    match &case.expect {
        Expect::Created(n) => {
            if status != 201 {
                return fail("expected 201");
            }
            stored.events += n;
        }
        Expect::TemplateCreated => {
            if status != 201 {
                return fail("expected 201");
            }
            stored.templates += 1;
        }
        Expect::Field(code, field) => {
            let error = &answer["error"];
            let expected_status = if *code == "batch_too_large" { 413 } else { 400 };
            if status != expected_status
                || error["code"] != *code
                || error["field"] != field.as_str()
            {
                return fail(&format!(
                    "expected {expected_status} {code} naming `{field}`"
                ));
            }
            if error["message"].as_str().is_none_or(|m| m.is_empty()) {
                return fail("expected an error message");
            }
        }
        Expect::Body(code) => {
            let error = &answer["error"];
            let expected_status = if *code == "payload_too_large" {
                413
            } else {
                400
            };
            if status != expected_status || error["code"] != *code || !error["field"].is_null() {
                return fail(&format!("expected {expected_status} {code} for the body"));
            }
        }
        Expect::SoapOk(n) => {
            let text = answer.as_str().unwrap_or_default();
            if status != 200 || text.matches("</plId>").count() as u64 != *n {
                return fail(&format!("expected 200 with {n} plId"));
            }
            stored.events += n;
        }
        Expect::SoapField(field) => {
            let text = answer.as_str().unwrap_or_default();
            if status != 500
                || !text.contains("<faultcode>SOAP-ENV:Client</faultcode>")
                || !text.contains(&format!("invalid field `{field}`"))
            {
                return fail(&format!("expected a client fault naming `{field}`"));
            }
        }
        Expect::SoapBody(detail) => {
            let text = answer.as_str().unwrap_or_default();
            let expected_status = if *detail == "payload_too_large" {
                413
            } else {
                500
            };
            if status != expected_status
                || !text.contains("<faultcode>SOAP-ENV:Client</faultcode>")
                || !text.contains(&format!("<detail xsi:type='xsd:string'>{detail}</detail>"))
            {
                return fail(&format!("expected a client fault with detail {detail}"));
            }
        }
    }
    Ok(())
}

#[derive(Default)]
struct Stored {
    events: u64,
    templates: u64,
}

/// Every event the server holds, by `GET /api/v1/stats` (no workflow runs: all stay pending).
async fn stored_events(server: &TestServer) -> u64 {
    let (status, stats) = server.get_json("/api/v1/stats").await;
    assert_eq!(status, 200, "GET /api/v1/stats: {}", pretty(&stats));
    ["realtime", "batch"]
        .iter()
        .flat_map(|queue| {
            stats["queues"][queue]["byStatus"]
                .as_object()
                .cloned()
                .unwrap_or_default()
                .into_values()
        })
        .map(|count| count.as_u64().unwrap_or_default())
        .sum()
}

fn rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .expect("VmRSS")
}

async fn run_corpus(server: &TestServer, backend: &str) {
    let corpus = corpus();
    assert!(
        corpus.cases.len() >= 3000,
        "the corpus has {} bodies",
        corpus.cases.len()
    );
    let mut stored = Stored::default();
    let mut failures = Vec::new();
    let mut by_kind: BTreeMap<&str, usize> = BTreeMap::new();
    for case in &corpus.cases {
        let kind = match case.expect {
            Expect::Created(_) | Expect::TemplateCreated | Expect::SoapOk(_) => "accepted",
            _ => "refused",
        };
        *by_kind.entry(kind).or_default() += 1;
        if let Err(why) = check(server, case, &mut stored).await {
            failures.push(format!("{} ({:?}): {why}", case.name, case.endpoint));
        }
    }
    server.assert_healthy().await;
    let rss = rss_kb(server.pid());
    println!(
        "{backend}: {} bodies {by_kind:?}, RSS {rss} kB",
        corpus.cases.len()
    );
    assert!(rss < MAX_RSS_KB, "{backend}: RSS {rss} kB after the corpus");
    let events = stored_events(server).await;
    let (status, templates) = server.get_json("/api/v1/templates").await;
    assert_eq!(status, 200);
    let templates = templates["templates"].as_array().map_or(0, Vec::len) as u64;
    for failure in &failures {
        eprintln!("FAILURE {failure}");
    }
    let pending_depth: Vec<&String> = failures
        .iter()
        .filter(|f| AWAITING_DEPTH_LIMIT.iter().any(|name| f.starts_with(name)))
        .collect();
    assert!(
        failures.is_empty(),
        "{backend}: {} of {} bodies were not answered as expected ({} of them await the ctx depth limit, \
         AWAITING_DEPTH_LIMIT):\n{}\n\nserver log:\n{}",
        failures.len(),
        corpus.cases.len(),
        pending_depth.len(),
        failures
            .iter()
            .take(30)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n"),
        server.log_tail(20)
    );
    assert_eq!(
        events, stored.events,
        "{backend}: events stored vs. accepted"
    );
    assert_eq!(
        templates, stored.templates,
        "{backend}: templates stored vs. accepted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hostile_corpus_is_refused_field_by_field_on_sqlite() {
    let server = start_server(None);
    run_corpus(&server, "SQLite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hostile_corpus_is_refused_field_by_field_on_postgres() {
    let database = PostgresDatabase::create();
    let server = start_server(Some(database.url()));
    run_corpus(&server, "PostgreSQL").await;
}
