//! The relay path's security, against a real SMTP server (aiosmtpd) with a throwaway certificate made by
//! `openssl` in the test and trusted through `[channels.email] tls_ca_file`: STARTTLS
//! (`smtp://…?tls=required`), TLS from the first byte (`smtps://`), AUTH (`user:password@`), and what
//! must fail: a wrong password, and `tls=required` towards a server that offers no STARTTLS (nothing is
//! sent in clear). The database plays no part: SQLite only.

use std::time::Duration;

use message_center_tests::*;
use serde_json::{Value, json};

const DELIVERY_TIMEOUT: Duration = Duration::from_secs(60);
const CREDENTIALS: &str = "mc-user:s3cret";

/// A server with the processing workflows and its email channel on `url`, trusting `cert`.
async fn server_on(url: String, smtp: &SmtpServer, cert: Option<&TestCert>) -> TestServer {
    let ca = cert.map(|c| format!("tls_ca_file = {:?}\n", c.ca.display().to_string()));
    let server = TestServer::start(
        ServerOptions::new(PluginDir::new())
            .processing_workflows()
            .email_channel(smtp.port())
            .with_email_channel(|email| {
                email.smtp_url = Some(url);
                email.extra_toml = ca.unwrap_or_default();
                email.retry.set_retries(1, "200ms");
            }),
    );
    server
        .put_template(
            "hello",
            &json!({ "eventType": "HELLO", "channel": "email", "subject": "Hello", "text": "Hello" }),
        )
        .await;
    server
}

/// Pushes a `HELLO` event to `to`; the event once final.
async fn deliver(server: &TestServer, to: &str) -> Value {
    let body = json!({ "type": "HELLO", "email": to });
    let (status, answer) = server.post_json("/api/v1/events", &body, &[]).await;
    assert_eq!(status, 201, "POST /api/v1/events: {answer}");
    let id = answer["id"].as_str().expect("an event id").to_owned();
    server.wait_final(&id, DELIVERY_TIMEOUT).await
}

/// The errors of an event's delivery attempts, joined.
fn errors(event: &Value) -> String {
    event["deliveries"]
        .as_array()
        .map(|entries| {
            entries
                .iter()
                .filter_map(|d| d["error"].as_str())
                .collect::<Vec<_>>()
                .join(" | ")
        })
        .unwrap_or_default()
}

async fn sends_securely(url: impl Fn(u16) -> String, mode: SmtpTlsMode, auth: Option<&str>) {
    let cert = TestCert::generate();
    let smtp = SmtpServer::start_secured(Some((&cert, mode)), auth);
    let server = server_on(url(smtp.port()), &smtp, Some(&cert)).await;
    let event = deliver(&server, "ada@dest.test").await;
    assert_eq!(event["status"], "sent", "{}", pretty(&event));
    let message = smtp
        .wait_for_message_to("ada@dest.test", DELIVERY_TIMEOUT)
        .await;
    assert_eq!(message["tls"], true, "received over TLS: {message}");
    let user = auth.map(|a| a.split_once(':').expect("user:password").0);
    assert_eq!(message["auth"], json!(user), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starttls_required_is_used() {
    sends_securely(
        |port| format!("smtp://127.0.0.1:{port}?tls=required"),
        SmtpTlsMode::StartTls,
        None,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtps_is_tls_from_the_first_byte() {
    sends_securely(
        |port| format!("smtps://127.0.0.1:{port}"),
        SmtpTlsMode::Smtps,
        None,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_over_starttls() {
    sends_securely(
        |port| format!("smtp://{CREDENTIALS}@127.0.0.1:{port}?tls=required"),
        SmtpTlsMode::StartTls,
        Some(CREDENTIALS),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_over_smtps() {
    sends_securely(
        |port| format!("smtps://{CREDENTIALS}@127.0.0.1:{port}"),
        SmtpTlsMode::Smtps,
        Some(CREDENTIALS),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_fails_the_delivery_with_a_clear_error() {
    let cert = TestCert::generate();
    let smtp = SmtpServer::start_secured(Some((&cert, SmtpTlsMode::StartTls)), Some(CREDENTIALS));
    let url = format!(
        "smtp://mc-user:wrong@127.0.0.1:{}?tls=required",
        smtp.port()
    );
    let server = server_on(url, &smtp, Some(&cert)).await;
    let event = deliver(&server, "ada@dest.test").await;
    assert_eq!(event["status"], "delivery_failed", "{}", pretty(&event));
    let said = errors(&event);
    assert!(
        said.contains("535") && said.to_ascii_lowercase().contains("authentication"),
        "the error says the relay refused the credentials: {said}"
    );
    assert!(smtp.messages().is_empty(), "nothing was accepted");
    // The relay refused our credentials, which says nothing of the recipient: retried, not quarantined.
    assert!(
        event["deliveries"].as_array().is_some_and(|d| d.len() == 2),
        "one retry: {}",
        pretty(&event)
    );
    let again = deliver(&server, "ada@dest.test").await;
    assert!(
        !errors(&again).contains("quarantined"),
        "the recipient is not quarantined: {}",
        pretty(&again)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_required_against_a_server_without_starttls_sends_nothing() {
    let smtp = SmtpServer::start();
    let url = format!("smtp://127.0.0.1:{}?tls=required", smtp.port());
    let server = server_on(url, &smtp, None).await;
    let event = deliver(&server, "ada@dest.test").await;
    assert_eq!(event["status"], "delivery_failed", "{}", pretty(&event));
    assert!(
        errors(&event).to_ascii_lowercase().contains("starttls"),
        "the error names STARTTLS: {}",
        errors(&event)
    );
    assert!(
        smtp.attempts().is_empty() && smtp.messages().is_empty(),
        "no RCPT, no message in clear: {:?} {:?}",
        smtp.attempts(),
        smtp.messages()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untrusted_certificate_is_refused() {
    let cert = TestCert::generate();
    let smtp = SmtpServer::start_secured(Some((&cert, SmtpTlsMode::StartTls)), None);
    let url = format!("smtp://127.0.0.1:{}?tls=required", smtp.port());
    // No tls_ca_file: the throwaway certificate is not trusted.
    let server = server_on(url, &smtp, None).await;
    let event = deliver(&server, "ada@dest.test").await;
    assert_eq!(event["status"], "delivery_failed", "{}", pretty(&event));
    assert!(smtp.messages().is_empty(), "nothing was sent");
}
