//! A DSN made by a real MTA: Postfix (Debian's package, [`PostfixRelay`]) is the server's relay. It
//! accepts the message (the event is `sent`), tries the destination (the test SMTP server, which refuses
//! `reject…` recipients with `550 5.1.1`), and sends its own RFC 3464 bounce to the VERP envelope sender,
//! which its transport map routes to the bounce listener. The event then turns `delivery_failed` with
//! Postfix's diagnostic, the address is quarantined, and the next event to it is `ignored`. On SQLite and
//! PostgreSQL.

use std::time::Duration;

use message_center_tests::*;
use serde_json::json;

const TIMEOUT: Duration = Duration::from_secs(90);
const DOMAIN: &str = "bounces.test";

async fn postfix_bounces_the_message(database: Option<PostgresDatabase>) {
    let smtp = SmtpServer::start();
    let bounce_port = free_port();
    let relay = PostfixRelay::start(&[("example.com", smtp.port()), (DOMAIN, bounce_port)]);
    let mut options = ServerOptions::new(PluginDir::new())
        .processing_workflows()
        .email_channel(relay.port())
        .extra_toml(&format!(
            "[bounces]\nreturn_path_domain = \"{DOMAIN}\"\nsmtp_listen = \"127.0.0.1:{bounce_port}\"\n"
        ));
    if let Some(db) = &database {
        options = options.database_url(db.url());
    }
    let server = TestServer::start(options);
    server
        .put_template(
            "greeting",
            &json!({ "eventType": "GREETING", "channel": "email", "subject": "Hi", "text": "Hi" }),
        )
        .await;
    let push = async |address: &str| {
        let (status, answer) = server
            .post_json(
                "/api/v1/events",
                &json!({ "type": "GREETING", "email": address }),
                &[],
            )
            .await;
        assert_eq!(status, 201, "{}", pretty(&answer));
        answer["id"].as_str().unwrap().to_owned()
    };
    let address = "reject-postfix@example.com";
    let id = push(address).await;
    // Postfix took it: the relay's 250 makes the event `sent` first.
    let sent = server
        .wait_event(&id, TIMEOUT, "sent or already bounced", |e| {
            e["status"] == "sent" || e["status"] == "delivery_failed"
        })
        .await;
    assert!(
        sent["deliveries"][0]["messageId"].is_string(),
        "{}",
        pretty(&sent)
    );
    // Postfix tried the destination (refused with 550) and bounced to the VERP address.
    let failed = server
        .wait_event(&id, TIMEOUT, "delivery_failed by Postfix's DSN", |e| {
            e["status"] == "delivery_failed"
        })
        .await;
    let entry = &failed["deliveries"][0];
    assert_eq!(entry["status"], "bounced", "{}", pretty(&failed));
    let error = entry["error"].as_str().unwrap();
    assert!(
        error.contains("5.1.1") && error.contains("mailbox unavailable"),
        "Postfix's diagnostic: {error}"
    );
    let refused = smtp.attempts_to(address);
    assert!(
        refused.iter().any(|a| a["code"] == 550),
        "the destination refused the recipient: {refused:?}"
    );
    assert!(
        relay
            .log_tail(200)
            .contains("sender non-delivery notification"),
        "Postfix logged its bounce:\n{}",
        relay.log_tail(40)
    );
    let (_, list) = server
        .get_json(&format!("/api/v1/quarantine?address={address}"))
        .await;
    assert_eq!(
        list["entries"][0]["reason"],
        "hard_bounce",
        "{}",
        pretty(&list)
    );

    let next = push(address).await;
    let next = server.wait_final(&next, TIMEOUT).await;
    assert_eq!(next["status"], "ignored", "{}", pretty(&next));

    // Postfix advertises CHUNKING (RFC 3030): the server's pool sent the message as one `BDAT` chunk,
    // not with `DATA`. Postfix counts a session's commands when it ends, here when the server stops.
    drop(server);
    let session = poll_until(
        Duration::from_secs(30),
        "Postfix's summary of the server's SMTP session",
        async || {
            let log = relay.log_tail(400);
            log.lines()
                .find(|line| line.contains("postfix/smtpd") && line.contains(" mail="))
                .map(str::to_owned)
                .ok_or(log)
        },
    )
    .await;
    assert!(
        session.contains(" bdat=1") && !session.contains(" data="),
        "{session}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite() {
    postfix_bounces_the_message(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres() {
    postfix_bounces_the_message(Some(PostgresDatabase::create())).await;
}
