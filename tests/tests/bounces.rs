//! Bounces end to end, on SQLite and PostgreSQL: a message accepted by the test SMTP server (aiosmtpd)
//! goes out with a VERP envelope sender; a DSN to that address arrives at the bounce listener over a
//! real SMTP conversation; the event turns `delivery_failed` (and re-enters the archive feed), the
//! address is quarantined, the next event to it is `ignored`, and after a release the next one is
//! `sent`. Then the listener's bad input, `POST /api/v1/bounces`, and the quarantine API.
//! The Postfix case (a DSN made by a real MTA) is in `bounces_postfix.rs`.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use message_center_tests::*;
use serde_json::{Value, json};

const TIMEOUT: Duration = Duration::from_secs(60);
const DOMAIN: &str = "bounces.test";

#[derive(Debug, Clone, Copy)]
enum Backend {
    Sqlite,
    Postgres,
}

struct Env {
    server: TestServer,
    smtp: SmtpServer,
    _database: Option<PostgresDatabase>,
}

impl Env {
    fn start(backend: Backend, extra: &str) -> Env {
        let smtp = SmtpServer::start();
        let database = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(PostgresDatabase::create()),
        };
        let mut options = ServerOptions::new(PluginDir::new())
            .processing_workflows()
            .email_channel(smtp.port())
            .extra_toml(&format!(
                "[bounces]\nreturn_path_domain = \"{DOMAIN}\"\nsmtp_listen = \"127.0.0.1:0\"\n\
                 max_message_bytes = 65536\ncommand_timeout = \"5s\"\ndata_timeout = \"2s\"\n{extra}"
            ));
        if let Some(db) = &database {
            options = options.database_url(db.url());
        }
        let server = TestServer::start(options);
        Env {
            server,
            smtp,
            _database: database,
        }
    }

    fn bounce_addr(&self) -> SocketAddr {
        self.server
            .bounce_addr()
            .expect("the ready line names the bounce listener")
    }

    async fn put_greeting(&self) {
        self.server
            .put_template(
                "greeting",
                &json!({ "eventType": "GREETING", "channel": "email",
                         "from": "Shop <shop@example.com>", "subject": "Hello", "text": "Hello" }),
            )
            .await;
    }

    /// Pushes a GREETING event to `address` and waits for its final status.
    async fn greet(&self, address: &str) -> (String, Value) {
        let (status, answer) = self
            .server
            .post_json(
                "/api/v1/events",
                &json!({ "type": "GREETING", "email": address }),
                &[],
            )
            .await;
        assert_eq!(status, 201, "{}", pretty(&answer));
        let id = answer["id"].as_str().unwrap().to_owned();
        let event = self.server.wait_final(&id, TIMEOUT).await;
        (id, event)
    }

    /// The envelope sender the relay saw for the message to `address`.
    async fn verp_sender(&self, address: &str) -> String {
        let message = self.smtp.wait_for_message_to(address, TIMEOUT).await;
        message["mailFrom"].as_str().unwrap().to_owned()
    }

    async fn wait_status(&self, id: &str, status: &str) -> Value {
        self.server
            .wait_event(id, TIMEOUT, status, |e| e["status"] == status)
            .await
    }

    async fn metric(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        metric_value(&self.server.metrics().await, name, labels).unwrap_or(0.0)
    }
}

/// A raw SMTP client: sends `lines` one at a time (a line `DATA-BODY:<text>` sends text as is), and
/// returns every reply (multi-line replies joined).
struct Smtp {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Smtp {
    fn connect(addr: SocketAddr) -> (Smtp, String) {
        let stream = TcpStream::connect(addr).expect("connect to the bounce listener");
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let mut smtp = Smtp {
            reader: BufReader::new(stream.try_clone().unwrap()),
            writer: stream,
        };
        let greeting = smtp.reply();
        (smtp, greeting)
    }

    /// One reply; "" when the connection closed.
    fn reply(&mut self) -> String {
        let mut all = String::new();
        loop {
            let mut line = String::new();
            match self.reader.read_line(&mut line) {
                Ok(0) | Err(_) => return all,
                Ok(_) => {}
            }
            all.push_str(&line);
            if line.len() < 4 || line.as_bytes()[3] != b'-' {
                return all;
            }
        }
    }

    fn send(&mut self, line: &str) -> String {
        if self
            .writer
            .write_all(format!("{line}\r\n").as_bytes())
            .is_err()
        {
            return String::new();
        }
        self.reply()
    }

    /// Sends a message body and the terminating dot; the reply.
    fn data(&mut self, body: &str) -> String {
        let reply = self.send("DATA");
        assert!(reply.starts_with("354"), "DATA: {reply}");
        let mut text = body.replace("\r\n", "\n").replace('\n', "\r\n");
        if !text.ends_with("\r\n") {
            text.push_str("\r\n");
        }
        let stuffed = text.replace("\r\n.", "\r\n..");
        self.writer.write_all(stuffed.as_bytes()).unwrap();
        self.send(".")
    }
}

/// Sends one message to `rcpt` from the null sender; the reply to its DATA (or to the first command
/// refused).
fn send_bounce(addr: SocketAddr, rcpt: &str, body: &str) -> String {
    let (mut smtp, greeting) = Smtp::connect(addr);
    assert!(greeting.starts_with("220"), "{greeting}");
    assert!(smtp.send("EHLO relay.test").starts_with("250"));
    assert!(smtp.send("MAIL FROM:<>").starts_with("250"));
    let reply = smtp.send(&format!("RCPT TO:<{rcpt}>"));
    if !reply.starts_with("250") {
        return reply;
    }
    let reply = smtp.data(body);
    smtp.send("QUIT");
    reply
}

/// An RFC 3464 DSN for `recipient` with `status` (`5.1.1`), as an MTA writes it.
fn dsn(envelope_sender: &str, recipient: &str, action: &str, status: &str) -> String {
    format!(
        "From: MAILER-DAEMON@relay.test\nTo: {envelope_sender}\nSubject: Undelivered Mail Returned to Sender\n\
MIME-Version: 1.0\nAuto-Submitted: auto-replied\n\
Content-Type: multipart/report; report-type=delivery-status; boundary=\"BOUNDARY\"\n\n\
--BOUNDARY\nContent-Type: text/plain\n\nYour message could not be delivered.\n\n\
--BOUNDARY\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; relay.test\n\n\
Final-Recipient: rfc822; {recipient}\nAction: {action}\nStatus: {status}\n\
Diagnostic-Code: smtp; {code} {status} mailbox unavailable\n\n\
--BOUNDARY\nContent-Type: text/rfc822-headers\n\nSubject: Hello\n\n--BOUNDARY--\n",
        code = if status.starts_with('5') {
            "550"
        } else {
            "451"
        },
    )
}

fn deliveries(event: &Value) -> Vec<Value> {
    let mut entries = event["deliveries"].as_array().cloned().unwrap_or_default();
    entries.sort_by_key(|d| d["attempt"].as_u64().unwrap_or(0));
    entries
}

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

// ---------------------------------------------------------------------------------------------------------

on_both_databases!(a_dsn_fails_the_sent_event_and_quarantines_until_released);
async fn a_dsn_fails_the_sent_event_and_quarantines_until_released(backend: Backend) {
    let env = Env::start(backend, "");
    env.put_greeting().await;
    let address = "gone@example.com";
    let (id, event) = env.greet(address).await;
    assert_eq!(event["status"], "sent", "{}", pretty(&event));
    // VERP: the envelope sender names the attempt; the From header is the template's.
    let sender = env.verp_sender(address).await;
    assert!(
        sender.starts_with(&format!("bounces+{id}.")) && sender.ends_with(&format!("@{DOMAIN}")),
        "envelope sender {sender}"
    );
    let message = env.smtp.wait_for_message_to(address, TIMEOUT).await;
    assert_eq!(message["from"], "Shop <shop@example.com>");
    // The archive feed has the sent event; remember where it ends.
    let (status, feed) = env
        .server
        .get_json("/api/v1/archive/events?after=0.0&limit=100")
        .await;
    assert_eq!(status, 200, "{}", pretty(&feed));
    let cursor = feed["nextCursor"].as_str().unwrap().to_owned();

    // The DSN, over SMTP, to the VERP address.
    let reply = send_bounce(
        env.bounce_addr(),
        &sender,
        &dsn(&sender, address, "failed", "5.1.1"),
    );
    assert!(reply.starts_with("250"), "DATA of the DSN: {reply}");
    let failed = env.wait_status(&id, "delivery_failed").await;
    let entry = &deliveries(&failed)[0];
    assert_eq!(entry["status"], "bounced", "{}", pretty(&failed));
    assert!(
        entry["error"].as_str().unwrap().contains("5.1.1"),
        "{}",
        pretty(entry)
    );
    // The change re-enters the archive feed, past the cursor the control instance holds.
    let (_, feed) = env
        .server
        .get_json(&format!("/api/v1/archive/events?after={cursor}&limit=100"))
        .await;
    let again: Vec<&Value> = feed["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["id"] == id.as_str())
        .collect();
    assert_eq!(
        again.len(),
        1,
        "the bounced event is in the feed again: {}",
        pretty(&feed)
    );
    assert_eq!(again[0]["status"], "delivery_failed");

    // Quarantined with the diagnostic.
    let (status, list) = env
        .server
        .get_json(&format!("/api/v1/quarantine?address={address}"))
        .await;
    assert_eq!(status, 200);
    let entries = list["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{}", pretty(&list));
    assert_eq!(entries[0]["reason"], "hard_bounce");
    assert!(entries[0]["diagnostic"].as_str().unwrap().contains("5.1.1"));
    assert_eq!(
        env.metric(
            "mc_bounces_total",
            &[("source", "smtp"), ("outcome", "bounced")]
        )
        .await,
        1.0
    );

    // The same DSN again changes nothing.
    let reply = send_bounce(
        env.bounce_addr(),
        &sender,
        &dsn(&sender, address, "failed", "5.1.1"),
    );
    assert!(reply.starts_with("250"), "{reply}");
    assert_eq!(
        env.metric("mc_bounces_total", &[("outcome", "duplicate")])
            .await,
        1.0
    );

    // The next event to the address is ignored, without a send.
    let (_, next) = env.greet(address).await;
    assert_eq!(next["status"], "ignored", "{}", pretty(&next));
    assert_eq!(env.smtp.messages_to(address).len(), 1);

    // Released: the next one is sent.
    let (status, answer) = env
        .server
        .api()
        .delete(&format!("/api/v1/quarantine/{address}"), &[])
        .await;
    assert_eq!(status, 200, "{}", pretty(&answer));
    let (_, last) = env.greet(address).await;
    assert_eq!(last["status"], "sent", "{}", pretty(&last));

    // A temporary failure (4.x.x) is recorded on the entry, nothing else.
    let sender = env.smtp.wait_for_messages(2, TIMEOUT).await.last().unwrap()["mailFrom"]
        .as_str()
        .unwrap()
        .to_owned();
    let reply = send_bounce(
        env.bounce_addr(),
        &sender,
        &dsn(&sender, address, "delayed", "4.2.2"),
    );
    assert!(reply.starts_with("250"), "{reply}");
    let last_id = last["id"].as_str().unwrap();
    let recorded = env
        .server
        .wait_event(last_id, TIMEOUT, "a soft bounce on its entry", |e| {
            deliveries(e)[0]["error"]
                .as_str()
                .is_some_and(|err| err.contains("soft bounce"))
        })
        .await;
    assert_eq!(recorded["status"], "sent");
    assert_eq!(deliveries(&recorded)[0]["status"], "sent");
}

on_both_databases!(bad_input_on_the_listener_changes_nothing);
async fn bad_input_on_the_listener_changes_nothing(backend: Backend) {
    let env = Env::start(backend, "");
    env.put_greeting().await;
    let address = "kept@example.com";
    let (id, _) = env.greet(address).await;
    let sender = env.verp_sender(address).await;
    let addr = env.bounce_addr();
    let (local, _) = sender.split_once('@').unwrap();

    // A forged token: another entry's id under this one's MAC.
    let (event_part, rest) = local
        .trim_start_matches("bounces+")
        .split_once('.')
        .unwrap();
    let (_, mac) = rest.split_once('.').unwrap();
    let forged = format!("bounces+{event_part}.999999.{mac}@{DOMAIN}");
    let reply = send_bounce(addr, &forged, &dsn(&forged, address, "failed", "5.1.1"));
    assert!(reply.starts_with("550"), "forged token: {reply}");
    let garbled = format!("bounces+{event_part}.1.00000000000000000000@{DOMAIN}");
    assert!(send_bounce(addr, &garbled, "x").starts_with("550"));

    // Another domain.
    let reply = send_bounce(addr, "bounces+1.2.3@elsewhere.test", "x");
    assert!(reply.starts_with("550"), "other domain: {reply}");

    // Not a DSN, to a valid token: accepted and ignored.
    let reply = send_bounce(
        addr,
        &sender,
        "From: friend@example.org\nSubject: hi\n\nJust saying hello, see RFC 3463 section 5.1.1.\n",
    );
    assert!(reply.starts_with("250"), "not a DSN: {reply}");
    // A DSN saying it was delivered.
    let reply = send_bounce(addr, &sender, &dsn(&sender, address, "delivered", "2.0.0"));
    assert!(reply.starts_with("250"), "{reply}");

    // Oversized: announced with SIZE, and sent anyway (64 KiB allowed).
    let (mut smtp, _) = Smtp::connect(addr);
    smtp.send("EHLO relay.test");
    let reply = smtp.send("MAIL FROM:<> SIZE=50000000");
    assert!(reply.starts_with("552"), "SIZE: {reply}");
    assert!(smtp.send("MAIL FROM:<>").starts_with("250"));
    assert!(smtp.send(&format!("RCPT TO:<{sender}>")).starts_with("250"));
    let big = format!(
        "{}\n{}",
        dsn(&sender, address, "failed", "5.1.1"),
        "x".repeat(200) + "\n"
    )
    .repeat(400);
    let reply = smtp.data(&big);
    assert!(reply.starts_with("552"), "oversized DATA: {reply}");
    // The session goes on after it.
    assert!(smtp.send("NOOP").starts_with("250"));
    smtp.send("QUIT");

    // A DATA that never ends: closed at data_timeout (2 s) with 421.
    let (mut smtp, _) = Smtp::connect(addr);
    smtp.send("EHLO relay.test");
    smtp.send("MAIL FROM:<>");
    smtp.send(&format!("RCPT TO:<{sender}>"));
    assert!(smtp.send("DATA").starts_with("354"));
    smtp.writer
        .write_all(b"Subject: never ends\r\n\r\nand on")
        .unwrap();
    let reply = smtp.reply();
    assert!(reply.starts_with("421"), "unfinished DATA: {reply:?}");

    // A line past the command limit.
    let (mut smtp, _) = Smtp::connect(addr);
    let reply = smtp.send(&format!("EHLO {}", "a".repeat(5000)));
    assert!(reply.starts_with("500"), "long line: {reply}");

    // Nothing changed, and the listener still answers.
    let event = env.server.event(&id).await;
    assert_eq!(event["status"], "sent", "{}", pretty(&event));
    assert_eq!(deliveries(&event)[0]["status"], "sent");
    let (_, list) = env.server.get_json("/api/v1/quarantine").await;
    assert_eq!(
        list["entries"].as_array().unwrap().len(),
        0,
        "{}",
        pretty(&list)
    );
    let (mut smtp, greeting) = Smtp::connect(addr);
    assert!(greeting.starts_with("220"), "{greeting}");
    assert!(smtp.send("EHLO relay.test").starts_with("250"));
    smtp.send("QUIT");

    for (name, labels) in [
        ("mc_bounces_total", vec![("outcome", "forged_token")]),
        ("mc_bounces_total", vec![("outcome", "not_a_bounce")]),
        (
            "mc_bounce_listener_refusals_total",
            vec![("reason", "other_domain")],
        ),
        (
            "mc_bounce_listener_refusals_total",
            vec![("reason", "oversized")],
        ),
        (
            "mc_bounce_listener_refusals_total",
            vec![("reason", "data_timeout")],
        ),
        (
            "mc_bounce_listener_refusals_total",
            vec![("reason", "line_too_long")],
        ),
    ] {
        assert!(env.metric(name, &labels).await >= 1.0, "{name} {labels:?}");
    }
    assert_eq!(
        env.metric("mc_bounces_total", &[("outcome", "forged_token")])
            .await,
        2.0
    );
    assert_eq!(
        env.metric("mc_bounces_total", &[("outcome", "not_a_bounce")])
            .await,
        2.0
    );
}

on_both_databases!(bounces_reported_over_http);
async fn bounces_reported_over_http(backend: Backend) {
    let env = Env::start(backend, "");
    env.put_greeting().await;
    let (by_event, _) = env.greet("one@example.com").await;
    let (_, by_message) = env.greet("two@example.com").await;
    let message_id = deliveries(&by_message)[0]["messageId"]
        .as_str()
        .unwrap()
        .to_owned();
    let api = env.server.api();
    for (body, field) in [
        (json!({ "type": "hard" }), "messageId"),
        (
            json!({ "eventId": by_event, "messageId": message_id, "type": "hard" }),
            "messageId",
        ),
        (json!({ "eventId": "abc", "type": "hard" }), "eventId"),
        (json!({ "eventId": by_event }), "type"),
        (json!({ "eventId": by_event, "type": "bounce" }), "type"),
        (
            json!({ "eventId": by_event, "type": "hard", "address": "not an address" }),
            "address",
        ),
        (
            json!({ "eventId": by_event, "type": "hard", "diagnostic": "x".repeat(1001) }),
            "diagnostic",
        ),
        (
            json!({ "eventId": by_event, "type": "hard", "diagnostic": 5 }),
            "diagnostic",
        ),
    ] {
        let (status, answer) = api.post_json("/api/v1/bounces", &body, &[]).await;
        assert_eq!(status, 400, "{body}: {}", pretty(&answer));
        assert_error_field(&answer, "field", |f| f == field);
    }
    // Another address than the message's, an unknown event: 404, nothing changed.
    let (status, _) = api
        .post_json(
            "/api/v1/bounces",
            &json!({ "eventId": by_event, "type": "hard", "address": "other@example.com" }),
            &[],
        )
        .await;
    assert_eq!(status, 404);
    let (status, _) = api
        .post_json(
            "/api/v1/bounces",
            &json!({ "eventId": "12345", "type": "hard" }),
            &[],
        )
        .await;
    assert_eq!(status, 404);
    assert_eq!(env.server.event(&by_event).await["status"], "sent");

    let (status, answer) = api
        .post_json(
            "/api/v1/bounces",
            &json!({ "eventId": by_event, "type": "hard", "address": "ONE@example.com",
                     "diagnostic": "550 5.1.1 user unknown" }),
            &[],
        )
        .await;
    assert_eq!(status, 200, "{}", pretty(&answer));
    assert_eq!(answer["outcome"], "bounced");
    env.wait_status(&by_event, "delivery_failed").await;
    let (status, answer) = api
        .post_json(
            "/api/v1/bounces",
            &json!({ "messageId": message_id, "type": "complaint" }),
            &[],
        )
        .await;
    assert_eq!(status, 200, "{}", pretty(&answer));
    assert_eq!(answer["outcome"], "complaint");
    let id = by_message["id"].as_str().unwrap();
    env.wait_status(id, "delivery_failed").await;
    let (_, list) = env
        .server
        .get_json("/api/v1/quarantine?reason=complaint")
        .await;
    let entries = list["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{}", pretty(&list));
    assert_eq!(entries[0]["address"], "two@example.com");
}

on_both_databases!(the_quarantine_api);
async fn the_quarantine_api(backend: Backend) {
    let env = Env::start(backend, "[quarantine]\nexpire_after = \"10s\"\n");
    env.put_greeting().await;
    let api = env.server.api();
    let before = rfc3339_ago(Duration::from_secs(1));
    let (status, entry) = api
        .put_json(
            "/api/v1/quarantine/Someone@Example.net",
            &json!({ "diagnostic": "asked to stop" }),
            &[],
        )
        .await;
    assert_eq!(status, 200, "{}", pretty(&entry));
    assert_eq!(entry["address"], "someone@example.net");
    assert_eq!(entry["reason"], "manual");
    assert!(entry["expiresAt"].is_string());
    // A whole domain, written either way.
    let (status, domain) = api
        .put_json("/api/v1/quarantine/blocked.test", &json!({}), &[])
        .await;
    assert_eq!(status, 200, "{}", pretty(&domain));
    assert_eq!(domain["address"], "@blocked.test");
    assert_eq!(domain["domain"], true);
    let (status, _) = api
        .put_json(
            "/api/v1/quarantine/@other.test",
            &json!({ "reason": "complaint" }),
            &[],
        )
        .await;
    assert_eq!(status, 200);
    for (path, field) in [
        ("/api/v1/quarantine/not%20an%20address", "address"),
        ("/api/v1/quarantine/a@", "address"),
    ] {
        let (status, answer) = api.put_json(path, &json!({}), &[]).await;
        assert_eq!(status, 400, "{path}: {}", pretty(&answer));
        assert_error_field(&answer, "field", |f| f == field);
    }
    let (status, answer) = api
        .put_json(
            "/api/v1/quarantine/x@example.net",
            &json!({ "reason": "nope" }),
            &[],
        )
        .await;
    assert_eq!(status, 400);
    assert_error_field(&answer, "field", |f| f == "reason");

    // Filters.
    let all = env.server.get_json("/api/v1/quarantine").await.1;
    assert_eq!(
        all["entries"].as_array().unwrap().len(),
        3,
        "{}",
        pretty(&all)
    );
    let manual = env
        .server
        .get_json("/api/v1/quarantine?reason=manual")
        .await
        .1;
    assert_eq!(manual["entries"].as_array().unwrap().len(), 2);
    let one = env
        .server
        .get_json("/api/v1/quarantine?address=SOMEONE@example.net")
        .await
        .1;
    assert_eq!(one["entries"].as_array().unwrap().len(), 1);
    let limited = env.server.get_json("/api/v1/quarantine?limit=1").await.1;
    assert_eq!(limited["entries"].as_array().unwrap().len(), 1);
    let after = env
        .server
        .get_json(&format!(
            "/api/v1/quarantine?after={}",
            rfc3339_in(Duration::from_secs(60))
        ))
        .await
        .1;
    assert_eq!(after["entries"].as_array().unwrap().len(), 0);
    let since = env
        .server
        .get_json(&format!("/api/v1/quarantine?after={before}"))
        .await
        .1;
    assert_eq!(since["entries"].as_array().unwrap().len(), 3);
    for query in ["reason=bad", "after=yesterday", "limit=0"] {
        let (status, _) = env
            .server
            .get_json(&format!("/api/v1/quarantine?{query}"))
            .await;
        assert_eq!(status, 400, "{query}");
    }

    // The engine honours addresses and domains.
    assert_eq!(
        env.greet("someone@example.net").await.1["status"],
        "ignored"
    );
    assert_eq!(
        env.greet("anyone@blocked.test").await.1["status"],
        "ignored"
    );
    assert_eq!(env.greet("fine@example.net").await.1["status"], "sent");

    // Release; a second release is 404.
    let (status, _) = api.delete("/api/v1/quarantine/@blocked.test", &[]).await;
    assert_eq!(status, 200);
    let (status, _) = api.delete("/api/v1/quarantine/blocked.test", &[]).await;
    assert_eq!(status, 404);
    assert_eq!(env.greet("anyone@blocked.test").await.1["status"], "sent");

    // Expiry (10 s): the entries stop counting by themselves.
    poll_until(
        Duration::from_secs(60),
        "the quarantine entries to expire",
        async || {
            let list = env.server.get_json("/api/v1/quarantine").await.1;
            let n = list["entries"].as_array().map_or(0, Vec::len);
            if n == 0 { Ok(()) } else { Err(pretty(&list)) }
        },
    )
    .await;
    assert_eq!(env.greet("someone@example.net").await.1["status"], "sent");
    assert!(
        env.metric("mc_quarantine_added_total", &[("reason", "manual")])
            .await
            >= 2.0
    );
}

/// On SIGTERM an open bounce session is told `421` and the server exits cleanly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_listener_shuts_down_with_the_server() {
    let mut env = Env::start(Backend::Sqlite, "");
    let (mut smtp, greeting) = Smtp::connect(env.bounce_addr());
    assert!(greeting.starts_with("220"), "{greeting}");
    assert!(smtp.send("EHLO relay.test").starts_with("250"));
    env.server.sigterm();
    let reply = smtp.reply();
    assert!(
        reply.starts_with("421"),
        "an open session on shutdown: {reply:?}"
    );
    let status = env
        .server
        .wait_exit(Duration::from_secs(30))
        .await
        .expect("the server exits");
    assert!(status.success(), "{status:?}");
}
