//! DKIM signing end to end: the server signs what it sends to a real SMTP server (aiosmtpd), and dkimpy,
//! an independent implementation, verifies the message as received, given the public key instead of
//! DNS (`tests/support/dkim_verify.py`). RSA-2048 and Ed25519 keys are made by `openssl` in the test.
//! A key the server cannot use stops it at start with a message naming the entry and the file.
//! Signing does not touch the database: these run on SQLite only.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use message_center_tests::*;
use serde_json::{Value, json};

const DELIVERY_TIMEOUT: Duration = Duration::from_secs(60);
const DOMAIN: &str = "example.com";
const SELECTOR: &str = "mc2026";

/// The `[[channels.email.dkim]]` table for `key`.
fn dkim_table(domain: &str, selector: &str, key_file: &std::path::Path) -> String {
    format!(
        "\n[[channels.email.dkim]]\ndomain = {domain:?}\nselector = {selector:?}\nprivate_key_file = {:?}\n",
        key_file.display().to_string()
    )
}

/// dkimpy's verdict on `raw`, with the key published as `txt`: the JSON line it printed.
fn dkimpy_verify(raw: &str, txt: &str) -> Value {
    let mut child = Command::new(python())
        .arg(support_file("dkim_verify.py"))
        .args([SELECTOR, DOMAIN, txt])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run dkim_verify.py");
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(raw.as_bytes())
        .expect("write the message");
    let output = child.wait_with_output().expect("wait for dkim_verify.py");
    let stdout = String::from_utf8_lossy(&output.stdout);
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "dkim_verify.py printed {stdout:?} ({e}); stderr: {} (it needs `python3 -m pip install dkimpy pynacl`)",
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

/// Pushes a `type` event to `to` and waits until it is `sent`; the message the SMTP server got.
async fn send(server: &TestServer, smtp: &SmtpServer, event_type: &str, to: &str) -> Value {
    let body = json!({ "type": event_type, "email": to, "ctx": { "firstName": "Ada" } });
    let (status, answer) = server.post_json("/api/v1/events", &body, &[]).await;
    assert_eq!(status, 201, "POST /api/v1/events: {answer}");
    let id = answer["id"].as_str().expect("an event id").to_owned();
    let event = server.wait_final(&id, DELIVERY_TIMEOUT).await;
    assert_eq!(event["status"], "sent", "{}", pretty(&event));
    smtp.wait_for_message_to(to, DELIVERY_TIMEOUT).await
}

async fn signs_verifiably(algorithm: DkimAlgorithm, tag: &str) {
    let key = DkimTestKey::generate(algorithm);
    let smtp = SmtpServer::start();
    let table = dkim_table(DOMAIN, SELECTOR, &key.private_key_file);
    let server = TestServer::start(
        ServerOptions::new(PluginDir::new())
            .processing_workflows()
            .email_channel(smtp.port())
            .with_email_channel(|email| email.extra_toml = table),
    );
    // The default `from` is noreply@example.com: signed. A template from another domain: not signed.
    server
        .put_template(
            "welcome",
            &json!({
                "eventType": "WELCOME",
                "channel": "email",
                "subject": "Welcome {{ ctx.firstName }}, a subject long enough to be folded by some writers of headers",
                "text": "Hello {{ ctx.firstName }},\n\nline with trailing spaces   \n\n\n",
                "html": "<p>Hello <b>{{ ctx.firstName }}</b></p>",
            }),
        )
        .await;
    server
        .put_template(
            "other",
            &json!({
                "eventType": "OTHER",
                "channel": "email",
                "from": "Other <news@other.test>",
                "subject": "Not ours to sign",
                "text": "Hello",
            }),
        )
        .await;

    let message = send(&server, &smtp, "WELCOME", "ada@dest.test").await;
    let raw = message["raw"].as_str().expect("the raw message");
    let verdict = dkimpy_verify(raw, &key.dns_txt);
    assert_eq!(
        verdict["ok"], true,
        "dkimpy: {verdict}\n--- message ---\n{raw}"
    );
    assert_eq!(verdict["d"], DOMAIN, "{verdict}");
    assert_eq!(verdict["s"], SELECTOR, "{verdict}");
    assert_eq!(verdict["a"], tag, "{verdict}");
    assert_eq!(verdict["c"], "relaxed/relaxed", "{verdict}");
    let signed: Vec<&str> = verdict["h"].as_str().unwrap_or("").split(':').collect();
    for header in [
        "from",
        "to",
        "subject",
        "date",
        "message-id",
        "mime-version",
        "content-type",
    ] {
        assert!(signed.contains(&header), "h= lacks {header}: {verdict}");
    }
    // The verifier really checks: a changed subject fails.
    let tampered = raw.replacen("Subject: Welcome", "Subject: Welcone", 1);
    assert_ne!(tampered, raw, "the subject is in the message: {raw}");
    assert_eq!(dkimpy_verify(&tampered, &key.dns_txt)["ok"], false);
    // And a changed body fails too (the body hash, `bh=`).
    let tampered = raw.replacen("line with trailing", "line with trailinG", 1);
    assert_ne!(tampered, raw, "the text is in the message: {raw}");
    assert_eq!(dkimpy_verify(&tampered, &key.dns_txt)["ok"], false);

    let unsigned = send(&server, &smtp, "OTHER", "bob@dest.test").await;
    let unsigned_raw = unsigned["raw"].as_str().expect("the raw message");
    assert!(
        !unsigned_raw.to_ascii_lowercase().contains("dkim-signature"),
        "a From domain without a key is not signed: {unsigned_raw}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rsa_2048_signatures_verify_with_dkimpy() {
    signs_verifiably(DkimAlgorithm::Rsa(2048), "rsa-sha256").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ed25519_signatures_verify_with_dkimpy() {
    signs_verifiably(DkimAlgorithm::Ed25519, "ed25519-sha256").await;
}

/// Starts a server whose one DKIM entry uses `file`; asserts it refuses to start naming the entry, the
/// file and `reason`.
fn refuses_key(file: &std::path::Path, reason: &str) {
    let options = ServerOptions::new(PluginDir::new())
        .email_channel(1)
        .with_email_channel(|email| email.extra_toml = dkim_table(DOMAIN, SELECTOR, file));
    let (exited, config) = TestServer::start_expecting_failure(options);
    assert!(
        exited.status.is_some_and(|s| !s.success()),
        "the server must exit with an error: {exited:?}\n{config}"
    );
    let said = format!("{}{}", exited.stderr, exited.stdout);
    for part in [
        "channels.email.dkim[0]",
        &format!("domain `{DOMAIN}`"),
        &file.display().to_string(),
        reason,
    ] {
        assert!(said.contains(part), "`{part}` not in what it said:\n{said}");
    }
}

#[test]
fn a_missing_key_file_stops_the_server_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    refuses_key(&dir.path().join("absent.pem"), "cannot read it");
}

#[test]
fn a_short_rsa_key_stops_the_server_naming_it() {
    let key = DkimTestKey::generate(DkimAlgorithm::Rsa(1024));
    refuses_key(&key.private_key_file, "RSA key of 1024 bits");
}

#[test]
fn a_file_that_is_not_a_private_key_stops_the_server_naming_it() {
    let cert = TestCert::generate();
    refuses_key(&cert.cert, "`CERTIFICATE` PEM block");
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "not a key\n").unwrap();
    refuses_key(&garbage, "not a PEM file");
}

#[test]
fn an_ec_key_stops_the_server_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ec.pem");
    openssl(&[
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-out",
        file.to_str().unwrap(),
    ]);
    refuses_key(&file, "neither RSA nor Ed25519");
}
