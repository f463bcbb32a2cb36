//! The console's webhooks and quarantine pages in a real browser (headless Chromium over WebDriver)
//! against the real server, its real `webhookDelivery` workflow, the real webhook receiver
//! (`tests/support/webhook_receiver.py`, which verifies every request with the Standard Webhooks
//! reference library) and the real SMTP test server:
//!
//! - an endpoint whose receiver fails four times shows its notification `failed` with every attempt;
//!   an operator's retry delivers it (same `webhook-id`); another endpoint answering `410` shows
//!   disabled with why; rotating the secret shows the new one once, and the next attempt is signed with
//!   it; a replay queues what became final in the range; the history pages newest first; a viewer sees
//!   no button and is refused (403);
//! - an address quarantined by a hard bounce is found by part of its address, with its reason, its
//!   diagnostic and since when; a viewer cannot release it; an operator releases it and the address
//!   receives the next event;
//! - `POST /api/v1/webhooks/{name}/rotate-secret` on both databases.
//!
//! Each browser test saves screenshots under `<target>/console-screenshots/`.

use std::time::Duration;

use message_center_tests::console::*;
use message_center_tests::*;
use serde_json::{Value, json};

/// How long events and notifications may take on a busy machine.
const TIMEOUT: Duration = Duration::from_secs(90);

/// A server with the console's users, the processing workflows, email on `smtp`, and (with
/// `webhooks`) the `webhookDelivery` workflow sending to the loopback receiver.
fn server(smtp: &SmtpServer, webhooks: bool, database_url: Option<&str>) -> TestServer {
    let plugins = PluginDir::new();
    if webhooks {
        plugins.add("webhook-delivery");
    }
    let mut options = console_options(plugins)
        .processing_workflows()
        .email_channel(smtp.port());
    if webhooks {
        options = options.extra_toml(&webhooks_toml("127.0.0.1/32", true));
    }
    if let Some(url) = database_url {
        options = options.database_url(url);
    }
    TestServer::start(options)
}

/// The template of every event here (`GREETING`, email).
async fn put_greeting(server: &TestServer) {
    server
        .put_template(
            "greeting",
            &json!({
                "eventType": "GREETING",
                "channel": "email",
                "from": "Shop <shop@example.com>",
                "subject": "Hello {{ ctx.n }}",
                "text": "Hello {{ ctx.n }}",
            }),
        )
        .await;
}

/// Pushes a `GREETING` to `email` and waits for its final status; its id and the event.
async fn greet(server: &TestServer, email: &str) -> (String, Value) {
    let (status, answer) = server
        .post_json(
            "/api/v1/events",
            &json!({ "type": "GREETING", "email": email, "ctx": { "n": 1 } }),
            &[],
        )
        .await;
    assert_eq!(status, 201, "{}", pretty(&answer));
    let id = answer["id"].as_str().expect("id").to_owned();
    let event = server.wait_final(&id, TIMEOUT).await;
    (id, event)
}

/// Creates endpoint `name` at the receiver's `/<name>/<behaviour>` with a secret of its own, told to
/// the receiver; the secret.
async fn endpoint(
    server: &TestServer,
    receiver: &WebhookReceiver,
    name: &str,
    behaviour: &str,
) -> String {
    let secret = test_webhook_secret(name.len() as u8 + 40);
    receiver.set_secret(name, &secret).await;
    let (status, answer) = server
        .api()
        .put_json(
            &format!("/api/v1/webhooks/{name}"),
            &json!({ "url": receiver.url(name, behaviour), "secret": secret }),
            &[],
        )
        .await;
    assert_eq!(status, 201, "{}", pretty(&answer));
    secret
}

/// The API's history of endpoint `name` (one page is plenty here).
async fn history(server: &TestServer, name: &str) -> Vec<Value> {
    let (status, page) = server
        .get_json(&format!("/api/v1/webhooks/{name}/deliveries?limit=100"))
        .await;
    assert_eq!(status, 200, "{}", pretty(&page));
    page["deliveries"].as_array().cloned().unwrap_or_default()
}

/// The number of rows matching `css` on the page.
async fn count(browser: &Browser, css: &str) -> u64 {
    browser
        .script(&format!(
            "return document.querySelectorAll({}).length",
            json!(css)
        ))
        .await
        .as_u64()
        .unwrap_or(0)
}

/// Reloads `path` until `css` matches; panics with the page's text after [`TIMEOUT`].
async fn reload_until(browser: &Browser, server: &TestServer, path: &str, css: &str, what: &str) {
    let deadline = std::time::Instant::now() + TIMEOUT;
    loop {
        browser.goto(&url(server, path)).await;
        if browser.has(css).await {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what} (`{css}`)\n{}",
            body_text(browser).await
        );
        tokio::time::sleep(millis(300)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_webhook_history_retry_rotation_replay_and_a_viewer_refused() {
    let smtp = SmtpServer::start();
    let receiver = WebhookReceiver::start_with_secret(&test_webhook_secret(7));
    let server = server(&smtp, true, None);
    put_greeting(&server).await;
    // `orders` answers 500 to the first four attempts of each notification (one attempt and the three
    // retries of the schedule: `failed`), 200 from the fifth; `legacy` answers 410 Gone.
    let old_secret = endpoint(&server, &receiver, "orders", "fail/4").await;
    endpoint(&server, &receiver, "legacy", "gone").await;
    let (event_id, event) = greet(&server, "buyer@example.com").await;
    assert_eq!(event["status"], "sent", "{}", pretty(&event));
    let failed = poll_until(TIMEOUT, "the orders notification to fail", async || {
        let all = history(&server, "orders").await;
        if all.len() == 1 && all[0]["status"] == "failed" {
            Ok(all)
        } else {
            Err(pretty(&json!(all)))
        }
    })
    .await;
    let notification = failed[0]["id"].as_str().expect("id").to_owned();
    assert_eq!(failed[0]["attempts"].as_array().map(Vec::len), Some(4));
    poll_until(TIMEOUT, "legacy disabled by its 410", async || {
        let (_, legacy) = server.get_json("/api/v1/webhooks/legacy").await;
        if legacy["enabled"] == false {
            Ok(())
        } else {
            Err(pretty(&legacy))
        }
    })
    .await;

    let browser = Browser::start().await;
    sign_in(&browser, &server, OPERATOR).await;
    assert_signed_in_as(&browser, "olga · operator").await;
    browser
        .click_to_load("nav a[href='/console/webhooks']")
        .await;
    browser
        .wait_for_css("#endpoints", secs(15), "the endpoints")
        .await;
    assert_eq!(
        browser
            .attr(r#"tr[data-endpoint="orders"]"#, "data-state")
            .await
            .as_deref(),
        Some("enabled")
    );
    assert_eq!(
        browser
            .attr(r#"tr[data-endpoint="legacy"]"#, "data-state")
            .await
            .as_deref(),
        Some("disabled")
    );
    let reason = browser.text(r#"tr[data-endpoint="legacy"] .reason"#).await;
    assert!(reason.contains("410"), "{reason}");
    let page = body_text(&browser).await;
    assert!(!page.contains(&old_secret), "a secret on the list page");
    assert!(page.contains(&format!("whsec_…{}", &old_secret[old_secret.len() - 4..])));
    browser.screenshot("webhooks_list").await;
    browser
        .goto(&url(&server, "/console/webhooks/nobody"))
        .await;
    assert_eq!(
        browser.text("#webhooks-error").await,
        "There is no webhook endpoint `nobody` here."
    );
    assert!(!browser.has("#endpoints").await);
    browser.goto(&url(&server, "/console/webhooks")).await;

    // The history: the notification failed, with its four attempts answered 500.
    browser
        .click_to_load(r#"tr[data-endpoint="orders"] a.endpoint-link"#)
        .await;
    assert_eq!(browser.path().await, "/console/webhooks/orders");
    let row = format!(r#"tbody[data-notification="{notification}"]"#);
    assert_eq!(
        browser.attr(&row, "data-status").await.as_deref(),
        Some("failed")
    );
    assert_eq!(
        count(
            &browser,
            &format!(r#"{row} tr.attempt[data-http-status="500"]"#)
        )
        .await,
        4
    );
    let summary = browser.text(&format!("{row} tr.summary")).await;
    assert!(
        summary.contains("event.sent") && summary.contains(&event_id),
        "{summary}"
    );
    browser.full_page_screenshot("webhook_history_failed").await;

    // Retry: due again, the fifth attempt is answered 200, under the same webhook-id.
    browser
        .click_to_load(&format!(r#"{row} button[data-action="retry"]"#))
        .await;
    let notice = browser.text("#notice").await;
    assert!(
        notice.starts_with(&format!("Notification {notification} is due again")),
        "{notice}"
    );
    reload_until(
        &browser,
        &server,
        "/console/webhooks/orders",
        &format!(r#"{row}[data-status="delivered"]"#),
        "the retried notification delivered",
    )
    .await;
    assert_eq!(count(&browser, &format!("{row} tr.attempt")).await, 5);
    assert_eq!(
        browser
            .attr(&format!("{row} tr.attempt:last-child"), "data-http-status")
            .await
            .as_deref(),
        Some("200")
    );
    let requests = receiver.requests_to("orders");
    assert_eq!(requests.len(), 5, "{}", pretty(&json!(requests)));
    assert!(
        requests
            .iter()
            .all(|r| r["webhookId"] == notification.as_str())
    );
    assert!(
        receiver.unverified().is_empty(),
        "{}",
        pretty(&json!(receiver.unverified()))
    );
    browser.full_page_screenshot("webhook_retried").await;

    // Rotating the secret shows the new one once; the next attempt is signed with it.
    browser.click_to_load("#rotate-secret").await;
    let new_secret = browser.text("#new-secret-value").await;
    assert!(
        new_secret.starts_with("whsec_") && new_secret != old_secret,
        "{new_secret}"
    );
    let hint = browser.text("#secret-hint").await;
    assert_eq!(
        hint,
        format!("whsec_…{}", &new_secret[new_secret.len() - 4..])
    );
    browser.screenshot("webhook_secret_rotated").await;
    let (_, by_api) = server.get_json("/api/v1/webhooks/orders").await;
    assert_eq!(by_api["secretHint"], hint.as_str());
    assert!(by_api.get("secret").is_none(), "{}", pretty(&by_api));
    browser
        .goto(&url(&server, "/console/webhooks/orders"))
        .await;
    assert!(!browser.has("#new-secret").await, "shown once only");
    let source = browser
        .script("return document.documentElement.outerHTML")
        .await;
    assert!(!source.as_str().unwrap_or_default().contains(&new_secret));
    receiver.set_secret("orders", &new_secret).await;
    browser
        .click_to_load(&format!(r#"{row} button[data-action="retry"]"#))
        .await;
    let requests = receiver.wait_for_requests_to("orders", 6, TIMEOUT).await;
    assert_eq!(requests[5]["verified"], true, "{}", pretty(&requests[5]));
    assert_eq!(requests[5]["webhookId"], notification.as_str());

    // Replay the last hour: the event's notification again, under a new id.
    browser
        .goto(&url(&server, "/console/webhooks/orders"))
        .await;
    browser.fill("#replay-from", &rfc3339_ago(secs(3600))).await;
    browser.fill("#replay-to", &rfc3339_in(secs(60))).await;
    browser.click_to_load("#replay-button").await;
    assert_eq!(
        browser.text("#notice").await,
        "Replay: 1 notification(s) queued."
    );
    assert_eq!(count(&browser, "tbody.notification").await, 2);
    // A wrong range names the field and keeps what was typed.
    browser.fill("#replay-from", "yesterday").await;
    browser.fill("#replay-to", &rfc3339_in(secs(60))).await;
    browser.click_to_load("#replay-button").await;
    assert!(browser.text("#webhook-error").await.starts_with("from:"));
    assert_eq!(
        browser.attr("#replay-from", "value").await.as_deref(),
        Some("yesterday")
    );
    // The history's pages, newest first: the replayed notification, then the first one.
    browser
        .goto(&url(&server, "/console/webhooks/orders?limit=1"))
        .await;
    assert_eq!(count(&browser, "tbody.notification").await, 1);
    let newest = browser
        .attr("tbody.notification", "data-notification")
        .await
        .expect("an id");
    assert_ne!(newest, notification);
    browser.click_to_load("#next-page").await;
    assert!(browser.path().await.contains(&format!("after={newest}")));
    assert_eq!(count(&browser, "tbody.notification").await, 1);
    assert!(browser.has(&row).await, "{}", body_text(&browser).await);
    browser
        .full_page_screenshot("webhook_history_second_page")
        .await;

    // A viewer sees the history but no button, and each change is refused with 403.
    browser.click(".user button").await;
    browser
        .wait_for_css("form#sign-in", secs(15), "the sign-in page")
        .await;
    sign_in(&browser, &server, VIEWER).await;
    assert_signed_in_as(&browser, "vera · viewer").await;
    browser
        .goto(&url(&server, "/console/webhooks/orders"))
        .await;
    browser.wait_for_css(&row, secs(15), "the history").await;
    for css in ["button[data-action]", "#rotate-secret", "#replay"] {
        assert!(!browser.has(css).await, "a viewer sees {css}");
    }
    let csrf_body =
        "'csrf=' + encodeURIComponent(document.querySelector('input[name=csrf]').value)";
    for path in [
        format!("/console/webhooks/orders/deliveries/{notification}/retry"),
        "/console/webhooks/orders/rotate-secret".to_owned(),
        "/console/webhooks/orders/replay".to_owned(),
    ] {
        assert_eq!(
            post_from_page(&browser, &path, csrf_body).await,
            json!(403),
            "{path}"
        );
    }
    let (_, after) = server.get_json("/api/v1/webhooks/orders").await;
    assert_eq!(
        after["secretHint"],
        hint.as_str(),
        "the viewer rotated nothing"
    );
    browser.full_page_screenshot("webhook_viewer").await;
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_an_address_released_from_quarantine_receives_the_next_event() {
    let smtp = SmtpServer::start();
    let server = server(&smtp, false, None);
    put_greeting(&server).await;
    let address = "gone@example.com";
    let (id, event) = greet(&server, address).await;
    assert_eq!(event["status"], "sent", "{}", pretty(&event));
    // A hard bounce reported over HTTP quarantines the address; two entries of other kinds beside it.
    let (status, answer) = server
        .post_json(
            "/api/v1/bounces",
            &json!({ "eventId": id, "type": "hard", "address": address, "diagnostic": "550 5.1.1 <gone@example.com>: user unknown" }),
            &[],
        )
        .await;
    assert_eq!(status, 200, "{}", pretty(&answer));
    let api = server.api();
    for entry in ["@blocked.test", "+33612345678"] {
        let (status, answer) = api
            .put_json(
                &format!("/api/v1/quarantine/{entry}"),
                &json!({ "diagnostic": "added by the test" }),
                &[],
            )
            .await;
        assert_eq!(status, 200, "{entry}: {}", pretty(&answer));
    }
    let (_, ignored) = greet(&server, address).await;
    assert_eq!(ignored["status"], "ignored", "{}", pretty(&ignored));
    assert_eq!(smtp.messages_to(address).len(), 1);

    let browser = Browser::start().await;
    // A viewer finds it, sees no release button, and its release is refused.
    sign_in(&browser, &server, VIEWER).await;
    assert_signed_in_as(&browser, "vera").await;
    browser
        .click_to_load("nav a[href='/console/quarantine']")
        .await;
    browser
        .wait_for_css("#entries", secs(15), "the entries")
        .await;
    assert_eq!(count(&browser, "tr.entry").await, 3);
    assert!(!browser.has("button[data-action=release]").await);
    let release_body = format!(
        "'csrf=' + encodeURIComponent(document.querySelector('input[name=csrf]').value) + '&address=' + encodeURIComponent({})",
        json!(address)
    );
    assert_eq!(
        post_from_page(&browser, "/console/quarantine/release", &release_body).await,
        json!(403)
    );
    browser.full_page_screenshot("quarantine_viewer").await;
    browser.click(".user button").await;
    browser
        .wait_for_css("form#sign-in", secs(15), "the sign-in page")
        .await;

    sign_in(&browser, &server, OPERATOR).await;
    assert_signed_in_as(&browser, "olga").await;
    browser.goto(&url(&server, "/console/quarantine")).await;
    // Search by part of the address (any case): the entry, its reason, diagnostic and since when.
    browser.fill("#address", "GONE@").await;
    browser.click_to_load("#search-button").await;
    browser
        .wait_for_css("#entries", secs(15), "the results")
        .await;
    assert_eq!(count(&browser, "tr.entry").await, 1);
    let entry = format!(r#"tr.entry[data-address="{address}"]"#);
    assert_eq!(
        browser.attr(&entry, "data-reason").await.as_deref(),
        Some("hard_bounce")
    );
    let text = browser.text(&entry).await;
    assert!(text.contains("5.1.1") && text.contains("email"), "{text}");
    assert!(
        text.contains(&rfc3339_ago(secs(0))[..10]),
        "since today: {text}"
    );
    browser.screenshot("quarantine_search").await;
    // The other filters.
    browser
        .goto(&url(&server, "/console/quarantine?channel=sms"))
        .await;
    assert_eq!(count(&browser, "tr.entry").await, 1);
    assert!(
        browser
            .has(r#"tr.entry[data-address="+33612345678"]"#)
            .await
    );
    browser
        .goto(&url(&server, "/console/quarantine?reason=manual"))
        .await;
    assert_eq!(count(&browser, "tr.entry").await, 2);
    browser
        .goto(&url(&server, "/console/quarantine?since=yesterday"))
        .await;
    assert!(
        browser
            .text("#quarantine-error")
            .await
            .starts_with("since:")
    );
    // Pages of one: three pages, each entry once.
    browser
        .goto(&url(&server, "/console/quarantine?limit=1"))
        .await;
    let mut seen = Vec::new();
    loop {
        // A full page links to the next; after the third, an empty one.
        if count(&browser, "tr.entry").await == 0 {
            assert!(browser.has("#no-entries").await);
            break;
        }
        assert_eq!(count(&browser, "tr.entry").await, 1);
        seen.push(
            browser
                .attr("tr.entry", "data-address")
                .await
                .unwrap_or_default(),
        );
        assert!(seen.len() <= 3, "{seen:?}");
        browser.click_to_load("#next-page").await;
    }
    seen.sort();
    assert_eq!(seen, ["+33612345678", "@blocked.test", address]);

    // Released: gone from the list, and the next event to the address is delivered.
    browser.goto(&url(&server, "/console/quarantine")).await;
    browser
        .click_to_load(&format!(r#"{entry} button[data-action="release"]"#))
        .await;
    assert_eq!(
        browser.text("#notice").await,
        format!("Released {address}: its next events are delivered.")
    );
    assert!(!browser.has(&entry).await);
    assert_eq!(count(&browser, "tr.entry").await, 2);
    browser.full_page_screenshot("quarantine_released").await;
    let (_, list) = server
        .get_json(&format!("/api/v1/quarantine?address={address}"))
        .await;
    assert_eq!(list["entries"], json!([]), "{}", pretty(&list));
    let (_, next) = greet(&server, address).await;
    assert_eq!(next["status"], "sent", "{}", pretty(&next));
    let messages = smtp.messages_to(address);
    assert_eq!(messages.len(), 2, "{}", pretty(&json!(messages)));
    // Releasing it again says it is not quarantined.
    assert_eq!(
        post_from_page(&browser, "/console/quarantine/release", &release_body).await,
        json!(404)
    );
    browser.close().await;
}

/// `POST /api/v1/webhooks/{name}/rotate-secret`: a new secret in the answer only, the one given when
/// given, 404 for an unknown endpoint, 400 naming a bad field.
async fn rotate_secret_api(database: Option<&PostgresDatabase>) {
    let smtp = SmtpServer::start();
    let server = server(&smtp, false, database.map(PostgresDatabase::url));
    let api = server.api();
    let (status, created) = api
        .put_json(
            "/api/v1/webhooks/hooks",
            &json!({ "url": "https://hooks.example.com/mc" }),
            &[],
        )
        .await;
    assert_eq!(status, 201, "{}", pretty(&created));
    let first = created["secret"].as_str().expect("secret").to_owned();
    let (status, rotated) = server
        .post_raw("/api/v1/webhooks/hooks/rotate-secret", "", &[])
        .await;
    assert_eq!(status, 200, "{}", pretty(&rotated));
    let second = rotated["secret"].as_str().expect("secret").to_owned();
    assert!(second.starts_with("whsec_") && second != first);
    assert_eq!(
        rotated["secretHint"],
        format!("whsec_…{}", &second[second.len() - 4..])
    );
    let (_, shown) = server.get_json("/api/v1/webhooks/hooks").await;
    assert_eq!(shown["secretHint"], rotated["secretHint"]);
    assert!(shown.get("secret").is_none(), "{}", pretty(&shown));
    let chosen = test_webhook_secret(3);
    let (status, given) = server
        .post_json(
            "/api/v1/webhooks/hooks/rotate-secret",
            &json!({ "secret": chosen }),
            &[],
        )
        .await;
    assert_eq!(
        (status, given["secret"].as_str()),
        (200, Some(chosen.as_str()))
    );
    for (body, field) in [
        (json!({ "secret": "hunter2" }), "secret"),
        (json!({ "colour": "red" }), "colour"),
    ] {
        let (status, answer) = server
            .post_json("/api/v1/webhooks/hooks/rotate-secret", &body, &[])
            .await;
        assert_eq!(status, 400, "{body}: {}", pretty(&answer));
        assert_eq!(answer["error"]["field"], field, "{}", pretty(&answer));
    }
    let (status, _) = server
        .post_raw("/api/v1/webhooks/nobody/rotate-secret", "", &[])
        .await;
    assert_eq!(status, 404);
    let (_, shown) = server.get_json("/api/v1/webhooks/hooks").await;
    assert_eq!(
        shown["secretHint"],
        format!("whsec_…{}", &chosen[chosen.len() - 4..]),
        "refused rotations change nothing"
    );
}

#[tokio::test]
async fn sqlite_rotate_secret_api() {
    rotate_secret_api(None).await;
}

#[tokio::test]
async fn postgres_rotate_secret_api() {
    let database = PostgresDatabase::create();
    rotate_secret_api(Some(&database)).await;
}

#[tokio::test]
async fn sqlite_a_control_instance_says_webhooks_and_quarantine_are_per_execution_instance() {
    let execution = TestServer::start(ServerOptions::new(PluginDir::new()));
    let control = TestServer::start(
        console_options(PluginDir::new())
            .role("control")
            .instance_id(100)
            .extra_toml(&format!(
                "[[execution_instances]]\nname = \"exec-1\"\nurl = \"http://{}\"\n",
                execution.api_addr()
            )),
    );
    let browser = Browser::start().await;
    sign_in(&browser, &control, OPERATOR).await;
    assert_signed_in_as(&browser, "olga").await;
    for (path, name) in [
        ("/console/webhooks", "control_webhooks"),
        ("/console/quarantine", "control_quarantine"),
    ] {
        browser.goto(&url(&control, path)).await;
        let text = browser.text("#per-instance").await;
        assert!(text.contains("each execution instance"), "{path}: {text}");
        assert!(!browser.has("#endpoints, #entries").await, "{path}");
        browser.screenshot(name).await;
    }
    // Nothing to change here either.
    browser
        .goto(&url(&control, "/console/webhooks/orders"))
        .await;
    assert!(browser.has("#webhooks-error").await);
    let release_body = "'csrf=' + encodeURIComponent(document.querySelector('input[name=csrf]').value) + '&address=a%40example.com'";
    assert_eq!(
        post_from_page(&browser, "/console/quarantine/release", release_body).await,
        json!(404)
    );
    browser.close().await;
}
