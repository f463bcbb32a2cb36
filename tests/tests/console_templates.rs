//! The console's template pages in a real browser (headless Chromium over WebDriver) against the real
//! server (issue 18): an operator edits a template and sees the server's compile error with its line as
//! they type, then a valid edit and its preview for each seed (the HTML part in the sandboxed frame);
//! a proof sent from the page reaches the real SMTP test server and moves no statistic, monitoring
//! indicator, webhook or archive entry; a viewer reads the diff between two versions and cannot post;
//! and a control instance publishes to two execution instances, one of them down, the page saying
//! which failed. Each test saves a screenshot under `<target>/console-screenshots/`.

use std::time::Duration;

use message_center_tests::console::*;
use message_center_tests::*;
use serde_json::{Value, json};

/// How long deliveries and notifications may take on a busy machine.
const TIMEOUT: Duration = Duration::from_secs(60);

/// A template whose text part has three lines, the third depending on `ctx.vip`.
fn receipt(text: &str) -> Value {
    json!({
        "eventType": "RECEIPT",
        "channel": "email",
        "from": "Shop <shop@example.com>",
        "subject": "Your receipt, {{ ctx.firstName }}",
        "text": text,
        "html": "<h1>Hi {{ ctx.firstName }}</h1><p style=\"color:#2f6fde\">Order {{ ctx.order }}</p>",
    })
}

const TEXT_V1: &str = "Hello {{ ctx.firstName }}\nThanks for order {{ ctx.order }}.\n";

/// Alice (a VIP) and Bob.
fn seeds() -> Value {
    json!({ "seeds": [
        { "label": "alice", "address": "alice@example.com", "ctx": { "firstName": "Alice", "order": "A-1", "vip": true } },
        { "label": "bob", "address": "bob@example.com", "ctx": { "firstName": "Bob", "order": "B-2" } },
    ]})
}

/// Creates template `receipt` (version 1, published) with the two seeds.
async fn create_receipt(server: &TestServer) {
    server.put_template("receipt", &receipt(TEXT_V1)).await;
    let (status, answer) = server
        .api()
        .put_json("/api/v1/templates/receipt/seeds", &seeds(), &[])
        .await;
    assert_eq!(status, 200, "{}", pretty(&answer));
}

/// Waits for the editor's live check to reach `state` (`ok` or `error`).
async fn wait_check(browser: &Browser, state: &str) {
    browser
        .wait_for_css(
            &format!("#check[data-state='{state}']"),
            secs(15),
            &format!("the live check to say {state}"),
        )
        .await;
}

#[tokio::test]
async fn sqlite_edit_shows_the_compile_error_with_its_line_then_previews_a_valid_edit_per_seed() {
    let server = TestServer::start(console_options(PluginDir::new()));
    create_receipt(&server).await;
    let browser = Browser::start().await;
    sign_in(&browser, &server, OPERATOR).await;
    assert_signed_in_as(&browser, "olga").await;
    browser.click("nav a[href='/console/templates']").await;
    browser
        .wait_for_css("tr[data-template='receipt']", secs(15), "the list")
        .await;
    let row = browser.text("tr[data-template='receipt']").await;
    assert!(row.contains("RECEIPT") && row.contains("v1"), "{row}");
    browser.screenshot("templates_list").await;
    browser.click("tr[data-template='receipt'] a").await;
    browser
        .wait_for_css("#editor", secs(15), "the editor")
        .await;
    // The stored version, previewed for the first seed.
    assert!(
        browser.text("#preview-text").await.contains("Hello Alice"),
        "{}",
        body_text(&browser).await
    );

    // A typo on line 3 of the text part: the server's error names the part and the line.
    browser
        .fill(
            "#f-text",
            "Hello {{ ctx.firstName }}\nThanks for order {{ ctx.order }}.\n{% if ctx.vip %}You are a VIP{% endfi %}\n",
        )
        .await;
    wait_check(&browser, "error").await;
    assert_eq!(
        browser.attr("#check", "data-field").await.as_deref(),
        Some("text")
    );
    assert_eq!(
        browser.attr("#check", "data-line").await.as_deref(),
        Some("3")
    );
    let error = browser.text("#check").await;
    assert!(error.starts_with("text: line 3:"), "{error}");
    assert!(browser.has("#f-text.invalid").await);
    browser.screenshot("template_compile_error").await;

    // Fixed: it compiles, and the preview is Alice's, VIP line included.
    browser
        .fill(
            "#f-text",
            "Hello {{ ctx.firstName }}\nThanks for order {{ ctx.order }}.\n{% if ctx.vip %}You are a VIP{% endif %}\n",
        )
        .await;
    wait_check(&browser, "ok").await;
    let text = browser.text("#preview-text").await;
    assert!(
        text.contains("Hello Alice")
            && text.contains("order A-1")
            && text.contains("You are a VIP"),
        "{text}"
    );
    assert_eq!(
        browser.text("#preview-subject").await,
        "Your receipt, Alice"
    );
    assert!(!browser.has("#f-text.invalid").await);
    // Another seed: Bob's data, no VIP line, and his HTML part in the sandboxed frame.
    browser.select("#f-seed", "bob").await;
    // The proof form follows the previewed seed.
    assert_eq!(
        browser
            .script("return document.getElementById('proof-seed').value")
            .await,
        json!("bob")
    );
    let deadline = std::time::Instant::now() + secs(15);
    while !browser.text("#preview-text").await.contains("Hello Bob") {
        assert!(
            std::time::Instant::now() < deadline,
            "{}",
            body_text(&browser).await
        );
        tokio::time::sleep(POLL_INTERVAL).await;
    }
    wait_check(&browser, "ok").await;
    let text = browser.text("#preview-text").await;
    assert!(
        text.contains("order B-2") && !text.contains("VIP"),
        "{text}"
    );
    assert_eq!(browser.text("#preview-to").await, "bob@example.com");
    let frame = browser.frame_text("#preview-frame", "Hi Bob").await;
    assert!(
        frame.contains("Hi Bob") && frame.contains("Order B-2"),
        "{frame}"
    );
    assert_eq!(
        browser.attr("#preview-frame", "sandbox").await.as_deref(),
        Some(""),
        "the frame allows nothing"
    );
    browser.screenshot("template_preview_for_a_seed").await;

    // Saved as version 2, unpublished: version 1 stays the published one.
    browser.click("#save-button").await;
    browser
        .wait_for_css("#notice", secs(15), "the saved notice")
        .await;
    assert_eq!(browser.text("#notice").await, "Version 2 saved.");
    let (status, stored) = server.get_json("/api/v1/templates/receipt?version=2").await;
    assert_eq!(status, 200);
    assert_eq!(
        stored["content"]["text"],
        "Hello {{ ctx.firstName }}\nThanks for order {{ ctx.order }}.\n{% if ctx.vip %}You are a VIP{% endif %}\n",
        "stored with LF line ends"
    );
    assert_eq!(stored["publishedVersion"], 1);
    // A save that does not compile is refused by the server, the error with its line on the page.
    browser.fill("#f-subject", "Hi {{ ctx.firstName ").await;
    browser.click("#save-button").await;
    browser
        .wait_for_css(
            "#check[data-state='error'][data-field='subject']",
            secs(15),
            "the refused save",
        )
        .await;
    assert!(browser.text("#check").await.starts_with("subject: line 1:"));
    let (_, template) = server.get_json("/api/v1/templates/receipt").await;
    assert_eq!(template["latestVersion"], 2, "nothing stored");

    // A new template, named on the list page, is created by its first save.
    browser.goto(&url(&server, "/console/templates")).await;
    browser.fill("#new-name", "bad name!").await;
    browser.click_to_load("#new-button").await;
    assert!(browser.text("#new-error").await.contains("A-Z, a-z, 0-9"));
    browser.fill("#new-name", "otp-sms").await;
    browser.click("#new-button").await;
    browser
        .wait_for_css("#editor", secs(15), "the new editor")
        .await;
    assert_eq!(browser.path().await, "/console/templates/otp-sms");
    browser.fill("#f-eventType", "OTP").await;
    browser.select("#f-channel", "sms").await;
    browser.fill("#f-text", "Your code is {{ ctx.code }}").await;
    wait_check(&browser, "ok").await;
    assert_eq!(
        browser.text("#preview-text").await.trim_end(),
        "Your code is"
    );
    browser.click("#f-publish").await;
    browser.click("#save-button").await;
    browser
        .wait_for_css("#notice", secs(15), "the saved notice")
        .await;
    assert_eq!(
        browser.text("#notice").await,
        "Version 1 saved and published."
    );
    browser.full_page_screenshot("template_new_saved").await;
    let (status, created) = server.get_json("/api/v1/templates/otp-sms").await;
    assert_eq!(status, 200, "{}", pretty(&created));
    assert_eq!(created["publishedVersion"], 1);
    assert_eq!(created["channel"], "sms");
    assert_eq!(created["content"]["text"], "Your code is {{ ctx.code }}");
    assert_eq!(created["content"]["html"], Value::Null);
    // Its seeds, from the page, checked against its channel: an sms template wants phone numbers.
    browser
        .fill(
            "#f-seeds",
            r#"[{"label": "me", "address": "me@example.com", "ctx": {"code": "4711"}}]"#,
        )
        .await;
    browser.click("#seeds-button").await;
    let refused = wait_text(&browser, "#notice", "Seeds not saved").await;
    assert!(refused.contains("seeds[0].address"), "{refused}");
    browser
        .fill(
            "#f-seeds",
            r#"[{"label": "me", "address": "+33612345678", "ctx": {"code": "4711"}}]"#,
        )
        .await;
    browser.click("#seeds-button").await;
    wait_text(&browser, "#notice", "1 seed saved.").await;
    assert_eq!(
        browser.text("tr[data-seed='me'] td:nth-child(2)").await,
        "+33612345678"
    );
    assert_eq!(
        browser.text("#preview-text").await.trim_end(),
        "Your code is 4711"
    );
    assert_eq!(browser.text("#preview-to").await, "+33612345678");
    browser.full_page_screenshot("template_sms_seeded").await;
    browser.close().await;
}

/// Waits until the text of `css` contains `needle` (the page may still be the previous one); returns it.
async fn wait_text(browser: &Browser, css: &str, needle: &str) -> String {
    let deadline = std::time::Instant::now() + secs(15);
    loop {
        if browser.has(css).await {
            let text = browser.text(css).await;
            if text.contains(needle) {
                return text;
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "`{css}` never said `{needle}`:\n{}",
            body_text(browser).await
        );
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// What a proof must not move: statistics, monitoring indicators, delivery metrics.
async fn counters(server: &TestServer) -> (Value, Vec<Value>, Option<f64>) {
    let (status, stats) = server.get_json("/api/v1/stats").await;
    assert_eq!(status, 200);
    let (status, monitoring) = server.admin_get("/admin/monitoring").await;
    assert_eq!(status, 200, "{}", pretty(&monitoring));
    let indicators = monitoring["indicators"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|i| json!([i["queue"], i["indicator"], i["value"], i["state"]]))
        .collect();
    let metrics = server.metrics().await;
    let sent = metric_value(
        &metrics,
        "mc_delivery_attempts_total",
        &[("channel", "email"), ("outcome", "sent")],
    );
    (stats, indicators, sent)
}

#[tokio::test]
async fn sqlite_a_proof_reaches_the_smtp_server_and_moves_no_report_indicator_or_webhook() {
    let smtp = SmtpServer::start();
    let receiver = WebhookReceiver::start_with_secret(&test_webhook_secret(3));
    let plugins = PluginDir::new();
    plugins.add("webhook-delivery");
    let server = TestServer::start(
        console_options(plugins)
            .processing_workflows()
            .email_channel(smtp.port())
            .extra_toml(
                "[webhooks]\nallowed_destinations = [\"127.0.0.1/32\"]\n\n\
                 [workflows.webhookDelivery]\ninterval = \"200ms\"\n",
            ),
    );
    create_receipt(&server).await;
    let (status, answer) = server
        .api()
        .put_json(
            "/api/v1/webhooks/app",
            &json!({ "url": receiver.url("app", "ok"), "secret": test_webhook_secret(3) }),
            &[],
        )
        .await;
    assert_eq!(status, 201, "{}", pretty(&answer));
    // One real event, delivered and notified: the figures a proof must leave alone.
    let (status, pushed) = server
        .post_json(
            "/api/v1/events",
            &json!({ "type": "RECEIPT", "email": "customer@example.com", "ctx": { "firstName": "Carl", "order": "C-3" } }),
            &[],
        )
        .await;
    assert_eq!(status, 201, "{}", pretty(&pushed));
    let id = pushed["id"].as_str().expect("id").to_owned();
    assert_eq!(server.wait_final(&id, TIMEOUT).await["status"], "sent");
    receiver.wait_for_requests_to("app", 1, TIMEOUT).await;
    smtp.wait_for_message_to("customer@example.com", TIMEOUT)
        .await;
    // The monitor refreshes on its own schedule: wait until it has seen the event.
    let deadline = std::time::Instant::now() + TIMEOUT;
    let before = loop {
        let now = counters(&server).await;
        let seen = now
            .1
            .iter()
            .any(|i| i[1] == "throughput" && i[2].as_f64().unwrap_or(0.0) > 0.0)
            || now
                .1
                .iter()
                .any(|i| i[1] == "avg_processing_time" && i[2].as_f64().unwrap_or(0.0) > 0.0);
        if seen || std::time::Instant::now() >= deadline {
            break now;
        }
        tokio::time::sleep(millis(300)).await;
    };
    assert_eq!(
        before.0.pointer("/queues/realtime/byStatus/sent"),
        Some(&json!(1)),
        "{}",
        pretty(&before.0)
    );

    // The proof, from the console.
    let browser = Browser::start().await;
    sign_in(&browser, &server, OPERATOR).await;
    assert_signed_in_as(&browser, "olga").await;
    browser
        .goto(&url(&server, "/console/templates/receipt"))
        .await;
    browser.select("#proof-seed", "alice").await;
    browser.click("#proof-button").await;
    browser
        .wait_for_css("#notice", secs(30), "the proof's notice")
        .await;
    let notice = browser.text("#notice").await;
    assert_eq!(
        notice,
        "Proof of version 1 sent to alice@example.com (alice)."
    );
    let message = smtp.wait_for_message_to("alice@example.com", TIMEOUT).await;
    assert_eq!(message["subject"], "Your receipt, Alice");
    assert!(
        message["text"]
            .as_str()
            .unwrap_or_default()
            .contains("Thanks for order A-1."),
        "{}",
        pretty(&message)
    );
    assert!(
        message["messageId"]
            .as_str()
            .unwrap_or_default()
            .starts_with("<mc.proof."),
        "{}",
        message["messageId"]
    );
    assert!(browser.has("#proofs tr[data-proof-status='sent']").await);
    browser.full_page_screenshot("template_proof_sent").await;
    browser.close().await;

    // And one through the API.
    let (status, proof) = server
        .post_json(
            "/api/v1/templates/receipt/proof",
            &json!({ "seed": "bob" }),
            &[],
        )
        .await;
    assert_eq!(status, 201, "{}", pretty(&proof));
    assert_eq!(proof["proof"]["status"], "sent");
    assert_eq!(proof["proof"]["address"], "bob@example.com");
    assert_eq!(proof["proof"]["version"], 1);
    let message = smtp.wait_for_message_to("bob@example.com", TIMEOUT).await;
    assert_eq!(message["subject"], "Your receipt, Bob");
    let (status, proofs) = server.get_json("/api/v1/templates/receipt/proofs").await;
    assert_eq!(status, 200);
    let listed: Vec<(&str, &str, &str)> = proofs["proofs"]
        .as_array()
        .expect("proofs")
        .iter()
        .map(|p| {
            (
                p["seed"].as_str().unwrap_or_default(),
                p["status"].as_str().unwrap_or_default(),
                p["sentBy"].as_str().unwrap_or("API"),
            )
        })
        .collect();
    assert_eq!(listed, [("bob", "sent", "API"), ("alice", "sent", "olga")]);

    // Two proofs later, and after the monitor and webhookDelivery had time to run: nothing moved.
    tokio::time::sleep(secs(3)).await;
    let after = counters(&server).await;
    assert_eq!(after.0, before.0, "statistics");
    assert_eq!(after.1, before.1, "monitoring indicators");
    assert_eq!(after.2, before.2, "mc_delivery_attempts_total");
    assert_eq!(
        receiver.requests_to("app").len(),
        1,
        "no webhook for a proof"
    );
    let (status, events) = server.get_json("/api/v1/events?limit=100").await;
    assert_eq!(status, 200);
    assert_eq!(
        events["events"].as_array().map(Vec::len),
        Some(1),
        "no event for a proof"
    );
    let (status, feed) = server.get_json("/api/v1/archive/events?limit=100").await;
    assert_eq!(status, 200, "{}", pretty(&feed));
    let archived = feed["events"].as_array().expect("events");
    assert_eq!(archived.len(), 1, "{}", pretty(&feed));
    assert_eq!(archived[0]["deliveries"].as_array().map(Vec::len), Some(1));
    assert_eq!(
        smtp.messages().len(),
        3,
        "the event's message and the two proofs"
    );
}

#[tokio::test]
async fn sqlite_a_viewer_reads_the_diff_between_two_versions_and_cannot_post() {
    let server = TestServer::start(console_options(PluginDir::new()));
    create_receipt(&server).await;
    let mut v2 = receipt("Hello {{ ctx.firstName }}\nThanks for order {{ ctx.order }}.\n");
    v2["subject"] = json!("Receipt for {{ ctx.order }}");
    v2["publish"] = json!(false);
    server.put_template("receipt", &v2).await;
    let mut v3 = receipt(
        "Hello {{ ctx.firstName }}\nYour order {{ ctx.order }} ships today.\nSee you soon\n",
    );
    v3["subject"] = json!("Receipt for {{ ctx.order }}");
    v3["publish"] = json!(false);
    server.put_template("receipt", &v3).await;

    let browser = Browser::start().await;
    sign_in(&browser, &server, VIEWER).await;
    assert_signed_in_as(&browser, "vera").await;
    browser
        .goto(&url(&server, "/console/templates/receipt"))
        .await;
    browser
        .wait_for_css("#versions", secs(15), "the versions")
        .await;
    assert!(
        !browser.has("#save-button").await,
        "a viewer has no save button"
    );
    assert!(!browser.has("button[data-action='publish']").await);
    assert_eq!(
        browser.attr("#f-text", "readonly").await.as_deref(),
        Some("")
    );
    // Even with the session's token, a viewer's POST is refused.
    let csrf = browser
        .attr("#editor input[name='csrf']", "value")
        .await
        .expect("csrf");
    for path in [
        "/console/templates/receipt/check",
        "/console/templates/receipt/publish",
        "/console/templates/receipt/proof",
    ] {
        let status = post_from_page(
            &browser,
            path,
            &json!(format!("csrf={csrf}&version=1")).to_string(),
        )
        .await;
        assert_eq!(status, json!(403), "{path}");
    }
    // A viewer previews stored versions for any seed (the page and its frame are GETs).
    browser.select("#seed-choice #f-seed", "bob").await;
    browser.click("#seed-button").await;
    browser
        .wait_for_css(
            "#seed-choice option[value='bob'][selected]",
            secs(15),
            "Bob's preview",
        )
        .await;
    let text = browser.text("#preview-text").await;
    assert!(
        text.contains("Hello Bob") && text.contains("Your order B-2 ships today."),
        "{text}"
    );
    let frame = browser.frame_text("#preview-frame", "Hi Bob").await;
    assert!(frame.contains("Order B-2"), "{frame}");
    browser.full_page_screenshot("template_viewer").await;
    browser.select("#diff-from", "1").await;
    browser.select("#diff-to", "3").await;
    browser.click("#diff-button").await;
    browser
        .wait_for_css("section.diff[data-part='text']", secs(15), "the diff")
        .await;
    assert_eq!(
        browser.path().await,
        "/console/templates/receipt/diff?from=1&to=3"
    );
    let deleted = browser.text("section[data-part='text'] tr.delete").await;
    assert!(
        deleted.contains("Thanks for order {{ ctx.order }}."),
        "{deleted}"
    );
    let inserted = browser.text("section[data-part='text'] tr.insert").await;
    assert!(
        inserted.contains("Your order {{ ctx.order }} ships today."),
        "{inserted}"
    );
    let counts = browser.text("section[data-part='text'] h2").await;
    assert!(counts.contains("+2") && counts.contains("−1"), "{counts}");
    let subject = browser.text("section[data-part='subject']").await;
    assert!(
        subject.contains("Your receipt, {{ ctx.firstName }}")
            && subject.contains("Receipt for {{ ctx.order }}"),
        "{subject}"
    );
    assert!(!browser.has("section[data-part='html']").await);
    assert!(
        body_text(&browser)
            .await
            .contains("unchanged: eventType, channel, from, html")
    );
    browser.screenshot("template_diff").await;
    browser.close().await;
}

#[tokio::test]
async fn sqlite_publish_from_a_control_instance_shows_which_execution_instance_failed() {
    let execution = TestServer::start(ServerOptions::new(PluginDir::new()));
    let dead = std::net::TcpListener::bind("127.0.0.1:0").expect("port");
    let dead_addr = dead.local_addr().expect("addr");
    drop(dead);
    let control = TestServer::start(
        console_options(PluginDir::new())
            .role("control")
            .instance_id(100)
            .extra_toml(&format!(
                "[[execution_instances]]\nname = \"exec-1\"\nurl = \"http://{}\"\n\n\
                 [[execution_instances]]\nname = \"exec-down\"\nurl = \"http://{dead_addr}\"\ntimeout = \"1s\"\n",
                execution.api_addr()
            )),
    );
    let mut draft = receipt(TEXT_V1);
    draft["publish"] = json!(false);
    control.put_template("receipt", &draft).await;
    let (status, _) = execution.get_json("/api/v1/templates/receipt").await;
    assert_eq!(status, 404, "not on the execution instance yet");

    let browser = Browser::start().await;
    sign_in(&browser, &control, OPERATOR).await;
    assert_signed_in_as(&browser, "olga").await;
    browser
        .goto(&url(&control, "/console/templates/receipt"))
        .await;
    assert_eq!(browser.text("#published-badge").await, "not published");
    // The control instance delivers nothing: no proof from here.
    assert_eq!(
        browser.attr("#proof-button", "disabled").await.as_deref(),
        Some("")
    );
    browser
        .click("tr[data-version='1'] button[data-action='publish']")
        .await;
    browser
        .wait_for_css("#publish-results", secs(30), "the per-instance outcome")
        .await;
    assert!(
        browser
            .has("tr[data-instance='exec-1'][data-status='published']")
            .await
    );
    assert!(
        browser
            .has("tr[data-instance='exec-down'][data-status='failed']")
            .await
    );
    let why = browser
        .text("tr[data-instance='exec-down'] td:last-child")
        .await;
    assert!(
        why.contains("exec-down") && why.contains("unreachable"),
        "{why}"
    );
    assert!(
        browser
            .text("#publish-results h2")
            .await
            .contains("1 failed")
    );
    assert!(
        browser
            .text("#notice")
            .await
            .contains("1 execution instance(s) failed")
    );
    assert_eq!(browser.text("#published-badge").await, "published v1");
    browser
        .screenshot("template_publish_one_instance_down")
        .await;
    browser.close().await;

    let (status, published) = execution.get_json("/api/v1/templates/receipt").await;
    assert_eq!(status, 200, "{}", pretty(&published));
    assert_eq!(published["publishedVersion"], 1);
    assert_eq!(
        published["content"]["subject"],
        "Your receipt, {{ ctx.firstName }}"
    );
    let (_, local) = control.get_json("/api/v1/templates/receipt").await;
    assert_eq!(local["publishedVersion"], 1);
}
