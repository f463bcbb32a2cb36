//! The operator console in a real browser (headless Chromium over WebDriver, see `tests/src/browser.rs`)
//! against the real server: sign-in (right and wrong password, back-off), the first-run link, the
//! monitoring page turning the batch queue's `queue_size` to `alert`, finding an event by `externalId`
//! and opening it, a `ctx` carrying `<script>` shown as text, an operator stopping and starting a
//! workflow and reloading plugins, a viewer refused, a form without its CSRF token refused, the control
//! instance's page; on SQLite, and sessions surviving a restart and shared by two instances on
//! PostgreSQL. Each test saves a screenshot under `<target>/console-screenshots/`.

use message_center_tests::console::*;
use message_center_tests::*;
use serde_json::{Value, json};

#[tokio::test]
async fn sqlite_sign_in_right_and_wrong_password_and_back_off() {
    let server = TestServer::start(console_options(PluginDir::new()));
    // The headers every page carries.
    let answer = reqwest::get(url(&server, "/console/sign-in"))
        .await
        .expect("GET");
    let csp = answer.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert_eq!(answer.headers()["x-frame-options"], "DENY");
    // Unsigned pages lead to the sign-in page; the admin token is not what the console asks for.
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let answer = no_redirects
        .get(url(&server, "/console/monitoring"))
        .send()
        .await
        .expect("GET");
    assert_eq!(answer.status(), 303);
    assert_eq!(answer.headers()["location"], "/console/sign-in");

    let browser = Browser::start().await;
    browser.goto(&url(&server, "/console/monitoring")).await;
    assert_eq!(browser.path().await, "/console/sign-in");
    sign_in(&browser, &server, (OPERATOR.0, "not the password")).await;
    let error = browser.text("#sign-in-error").await;
    assert_eq!(error, "Wrong login or password.");
    assert_eq!(browser.path().await, "/console/sign-in");

    sign_in(&browser, &server, OPERATOR).await;
    assert_signed_in_as(&browser, "olga · operator").await;
    assert_eq!(browser.path().await, "/console/monitoring");
    let cookie = browser
        .client
        .get_named_cookie("mc_console_session")
        .await
        .expect("session cookie");
    assert_eq!(cookie.http_only(), Some(true));
    assert_eq!(format!("{:?}", cookie.same_site()), "Some(Strict)");
    // Signing out ends the session.
    browser.click(".user button").await;
    // The click returns before the sign-out's redirect has loaded: wait for the sign-in form.
    browser
        .wait_for_css(
            "form#sign-in",
            std::time::Duration::from_secs(15),
            "the sign-in page after sign-out",
        )
        .await;
    assert_eq!(browser.path().await, "/console/sign-in");
    browser.goto(&url(&server, "/console/events")).await;
    assert_eq!(browser.path().await, "/console/sign-in");

    // Five failures start a 30 s pause, during which even the right password is refused unchecked.
    for n in 1..=5 {
        sign_in(&browser, &server, (VIEWER.0, "guess")).await;
        let error = browser.text("#sign-in-error").await;
        assert!(error.starts_with("Wrong login or password."), "{error}");
        assert_eq!(
            error.contains("Too many failed sign-ins"),
            n == 5,
            "after {n} failures: {error}"
        );
    }
    sign_in(&browser, &server, VIEWER).await;
    let error = browser.text("#sign-in-error").await;
    assert!(
        error.starts_with("Too many failed sign-ins: try again in"),
        "{error}"
    );
    assert_eq!(browser.path().await, "/console/sign-in");
    browser.screenshot("sign_in_back_off").await;
    // Another login from the same address is not paused.
    sign_in(&browser, &server, OPERATOR).await;
    assert_signed_in_as(&browser, "olga").await;
    browser.close().await;
}

#[tokio::test]
async fn sqlite_first_run_link_creates_the_first_operator() {
    let server = TestServer::start(ServerOptions::new(PluginDir::new()));
    let log = poll_until(secs(15), "the first-run link in the log", async || {
        let log = server.log_contents();
        if log.contains("/console/first-run?token=") {
            Ok(log)
        } else {
            Err(server.log_tail(20))
        }
    })
    .await;
    let start =
        log.find("/console/first-run?token=").expect("link") + "/console/first-run?token=".len();
    let token: String = log[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    assert_eq!(token.len(), 43, "{token}");

    let browser = Browser::start().await;
    browser
        .goto(&url(&server, "/console/first-run?token=not-the-token"))
        .await;
    assert!(body_text(&browser).await.contains("403 Forbidden"));
    let link = url(&server, &format!("/console/first-run?token={token}"));
    browser.goto(&link).await;
    browser.fill("#login", "first-op").await;
    browser.fill("#password", "a long first password").await;
    browser
        .fill("#password_again", "a long first password")
        .await;
    browser.screenshot("first_run_form").await;
    browser.click("#create-user").await;
    assert_signed_in_as(&browser, "first-op · operator").await;
    // The link is used up.
    browser.goto(&link).await;
    assert!(body_text(&browser).await.contains("already used"));
    // The user is in the database and signs in again.
    browser.goto(&url(&server, "/console/monitoring")).await;
    browser.click(".user button").await;
    sign_in(&browser, &server, ("first-op", "a long first password")).await;
    assert_signed_in_as(&browser, "first-op").await;
    browser.close().await;
}

#[tokio::test]
async fn sqlite_monitoring_page_turns_batch_queue_size_to_alert() {
    let smtp = SmtpServer::start();
    let server = TestServer::start(
        console_options(PluginDir::new())
            .processing_workflows()
            .email_channel(smtp.port())
            .extra_toml("[monitoring]\nrefresh = \"200ms\"\n"),
    );
    server
        .put_template(
            "monitored",
            &json!({
                "eventType": "MONITORED",
                "channel": "email",
                "from": "Shop <shop@example.com>",
                "subject": "Hello {{ ctx.n }}",
                "text": "Hello {{ ctx.n }}",
            }),
        )
        .await;
    // Some real-time traffic for the charts, two of ten refused by the relay.
    let ids = server.push_realtime_events("MONITORED", 10, 2).await;
    for id in &ids {
        server.wait_final(id, secs(60)).await;
    }

    let browser = Browser::start().await;
    sign_in(&browser, &server, VIEWER).await;
    assert_signed_in_as(&browser, "vera · viewer").await;
    let batch_size = r#"tr[data-indicator="queue_size"][data-queue="batch"]"#;
    browser
        .wait_for_css(
            &format!(r#"{batch_size}[data-state="ok"]"#),
            secs(15),
            "batch queue_size ok",
        )
        .await;
    // Every indicator of both queues is on the page, with its state.
    for queue in ["realtime", "batch"] {
        for indicator in [
            "queue_size",
            "error_rate",
            "throughput",
            "avg_queue_time",
            "avg_delivery_time",
            "avg_processing_time",
        ] {
            let css = format!(r#"tr[data-indicator="{indicator}"][data-queue="{queue}"]"#);
            let state = browser.attr(&css, "data-state").await.expect("data-state");
            assert!(
                ["ok", "warning", "alert"].contains(&state.as_str()),
                "{css}: {state}"
            );
        }
    }

    // The batch workflow stops, 500 events wait: the open page turns to alert by itself (live refresh).
    let (status, answer) = server
        .admin_post("/admin/workflows/batchEventsProcessing/stop")
        .await;
    assert_eq!(status, 200, "{}", pretty(&answer));
    let events: Vec<Value> = (0..500)
        .map(|n| json!({ "type": "MONITORED", "email": format!("batch{n}@example.com"), "ctx": { "n": n } }))
        .collect();
    let (status, answer) = server
        .post_json("/api/v1/events/batch", &json!({ "events": events }), &[])
        .await;
    assert_eq!(status, 201, "{}", pretty(&answer));
    browser
        .wait_for_css(
            &format!(r#"{batch_size}[data-state="alert"]"#),
            secs(30),
            "batch queue_size alert without a reload",
        )
        .await;
    assert_eq!(browser.text(&format!("{batch_size} td.value")).await, "500");
    assert!(
        browser.attr("#live", "data-refreshed").await.is_some(),
        "the script refreshed the figures"
    );
    assert_eq!(
        browser
            .attr(
                r#"tr[data-indicator="queue_size"][data-queue="realtime"]"#,
                "data-state"
            )
            .await
            .as_deref(),
        Some("ok")
    );
    assert_eq!(
        browser
            .attr(
                r#"tr[data-indicator="error_rate"][data-queue="realtime"]"#,
                "data-state"
            )
            .await
            .as_deref(),
        Some("alert"),
        "2 of 10 refused: 20 %"
    );
    // The charts carry data: the batch queue-size line reaches 500, messages went out.
    browser
        .wait_for_css(
            r#"figure[data-chart="queue_size"] polyline.s-batch"#,
            secs(15),
            "queue-size chart",
        )
        .await;
    let legend = browser
        .text(r#"figure[data-chart="queue_size"] .legend"#)
        .await;
    assert!(legend.contains("batch: 500"), "{legend}");
    let sent = browser.text(r#"figure[data-chart="sent"] .legend"#).await;
    assert!(sent.contains("real-time: 8 in range"), "{sent}");
    assert!(
        browser
            .has(r#"figure[data-chart="sent"] rect.bar.s-realtime"#)
            .await
    );
    let page = body_text(&browser).await;
    assert!(!page.contains("True") && !page.contains("False"), "{page}");
    browser.full_page_screenshot("monitoring_batch_alert").await;
    // The day's charts too.
    browser
        .goto(&url(&server, "/console/monitoring?range=day"))
        .await;
    browser
        .wait_for_css(
            r#"figure[data-chart="events_in"] rect.s-in"#,
            secs(15),
            "day charts",
        )
        .await;
    browser.close().await;
}

#[tokio::test]
async fn sqlite_find_an_event_by_external_id_and_open_it_with_its_ctx_as_text() {
    let smtp = SmtpServer::start();
    let server = TestServer::start(
        console_options(PluginDir::new())
            .processing_workflows()
            .email_channel(smtp.port()),
    );
    server
        .put_template(
            "order",
            &json!({
                "eventType": "ORDER",
                "channel": "email",
                "from": "Shop <shop@example.com>",
                "subject": "Order {{ ctx.order }}",
                "text": "Hello {{ ctx.name }}",
                "html": "<h1>Order {{ ctx.order }}</h1><p>Hello {{ ctx.name }}</p>",
            }),
        )
        .await;
    let xss = "<script>window.__xss = 1</script><img src=x onerror=\"window.__xss = 2\">";
    let mut target = String::new();
    for n in 0..3 {
        let (status, answer) = server
            .post_json(
                "/api/v1/events",
                &json!({
                    "type": "ORDER",
                    "email": format!("buyer{n}@example.com"),
                    "externalId": format!("order-{n}"),
                    "ctx": { "order": 4710 + n, "name": xss },
                }),
                &[],
            )
            .await;
        assert_eq!(status, 201, "{}", pretty(&answer));
        if n == 1 {
            target = answer["id"].as_str().expect("id").to_owned();
        }
    }
    server.wait_final(&target, secs(60)).await;
    // The list API has the same filters, validated.
    let (status, answer) = server.get_json("/api/v1/events?externalId=order-1").await;
    assert_eq!(status, 200);
    assert_eq!(
        answer["events"].as_array().map(Vec::len),
        Some(1),
        "{}",
        pretty(&answer)
    );
    let (status, answer) = server
        .get_json("/api/v1/events?email=buyer2%40example.com&type=ORDER")
        .await;
    assert_eq!(
        (status, answer["events"].as_array().map(Vec::len)),
        (200, Some(1))
    );
    let (status, answer) = server.get_json("/api/v1/events?from=yesterday").await;
    assert_eq!(status, 400);
    assert_eq!(answer["error"]["field"], "from", "{}", pretty(&answer));

    let browser = Browser::start().await;
    sign_in(&browser, &server, VIEWER).await;
    assert_signed_in_as(&browser, "vera").await;
    browser.click_to_load("nav a[href='/console/events']").await;
    browser.fill("#externalId", "order-1").await;
    browser.click("#search-button").await;
    browser
        .wait_for_css("#results", secs(15), "the results")
        .await;
    let rows = browser
        .script("return document.querySelectorAll('#results tbody tr').length")
        .await;
    assert_eq!(rows, json!(1));
    browser.screenshot("events_search").await;
    browser.click_to_load("#results a.event-link").await;
    assert_eq!(browser.path().await, format!("/console/events/{target}"));
    let ctx = browser.text("#ctx").await;
    assert!(ctx.contains("<script>window.__xss = 1</script>"), "{ctx}");
    assert_eq!(
        browser.script("return typeof window.__xss").await,
        json!("undefined")
    );
    assert_eq!(
        browser.text(r#"tr[data-field="externalId"] td"#).await,
        "order-1"
    );
    assert_eq!(browser.text(r#"tr[data-field="status"] td"#).await, "sent");
    let timeline = browser.text("#timeline").await;
    for step in ["pushed", "linked", "attempt 1: sent", "final: sent"] {
        assert!(timeline.contains(step), "{timeline}");
    }
    assert_eq!(browser.text("#message-subject").await, "Order 4711");
    let text = browser.text("#message-text").await;
    assert!(text.contains("<script>"), "{text}");
    // The HTML part, sandboxed: no scripts, and its escaped ctx shows as text.
    assert_eq!(
        browser.attr("iframe.message", "sandbox").await.as_deref(),
        Some("")
    );
    let frame = browser.find("iframe.message").await;
    frame
        .clone()
        .enter_frame()
        .await
        .expect("enter the message frame");
    let inner = body_text(&browser).await;
    assert!(
        inner.contains("Hello <script>window.__xss = 1</script>"),
        "{inner}"
    );
    browser
        .client
        .enter_parent_frame()
        .await
        .expect("back to the page");
    assert_eq!(
        browser.script("return typeof window.__xss").await,
        json!("undefined")
    );
    browser.full_page_screenshot("event_page_xss_ctx").await;
    // A wrong search names the field.
    browser
        .goto(&url(&server, "/console/events?from=yesterday"))
        .await;
    assert!(browser.text("#search-error").await.starts_with("from:"));
    browser.close().await;
}

/// The admin API's view of a workflow's `enabled`.
async fn enabled(server: &TestServer, name: &str) -> bool {
    server.workflow(name).await["enabled"]
        .as_bool()
        .expect("enabled")
}

#[tokio::test]
async fn sqlite_operator_stops_and_starts_a_workflow_and_reloads_plugins() {
    let server = TestServer::start(console_options(PluginDir::new()).processing_workflows());
    let browser = Browser::start().await;
    sign_in(&browser, &server, OPERATOR).await;
    assert_signed_in_as(&browser, "olga").await;
    browser.goto(&url(&server, "/console/workflows")).await;
    let row = r#"tr[data-workflow="rtEventsProcessing"]"#;
    browser
        .click_to_load(&format!(r#"{row} button[data-action="stop"]"#))
        .await;
    assert_eq!(
        browser.text("#notice").await,
        "Workflow rtEventsProcessing: stopped."
    );
    assert_eq!(
        browser.attr(row, "data-state").await.as_deref(),
        Some("stopped")
    );
    assert!(!enabled(&server, "rtEventsProcessing").await);
    browser.screenshot("workflow_stopped").await;
    browser
        .click_to_load(&format!(r#"{row} button[data-action="start"]"#))
        .await;
    assert_eq!(
        browser.text("#notice").await,
        "Workflow rtEventsProcessing: started."
    );
    assert!(enabled(&server, "rtEventsProcessing").await);
    browser
        .click_to_load(&format!(r#"{row} button[data-action="run"]"#))
        .await;
    assert_eq!(
        browser.text("#notice").await,
        "Workflow rtEventsProcessing: woken to run now."
    );
    // Rescanning the plugin directory shows each file's outcome.
    browser.click("#reload-all").await;
    browser
        .wait_for_css("#outcomes", secs(15), "the reload outcome")
        .await;
    let outcomes = browser
        .script("return Array.from(document.querySelectorAll('#outcomes tbody tr')).map(r => r.getAttribute('data-outcome'))")
        .await;
    let outcomes = outcomes.as_array().expect("outcomes");
    assert_eq!(outcomes.len(), 3, "{outcomes:?}");
    assert!(outcomes.iter().all(|o| o == "unchanged"), "{outcomes:?}");
    let page = body_text(&browser).await;
    assert!(!page.contains("True") && !page.contains("False"), "{page}");
    browser
        .full_page_screenshot("workflows_reload_outcome")
        .await;
    browser.close().await;
}

#[tokio::test]
async fn sqlite_viewer_is_refused_and_a_form_without_its_csrf_token_is_refused() {
    let server = TestServer::start(console_options(PluginDir::new()).processing_workflows());
    let browser = Browser::start().await;
    sign_in(&browser, &server, VIEWER).await;
    assert_signed_in_as(&browser, "vera · viewer").await;
    browser.goto(&url(&server, "/console/workflows")).await;
    browser
        .wait_for_css("#workflows", secs(15), "the workflows")
        .await;
    assert!(
        !browser.has("button[data-action]").await,
        "a viewer gets no buttons"
    );
    assert!(!browser.has("#reload-all").await);
    // Even with the session's own CSRF token, or any form at all, a viewer's change is refused.
    let csrf_body =
        "'csrf=' + encodeURIComponent(document.querySelector('input[name=csrf]').value)";
    for (path, body) in [
        ("/console/workflows/rtEventsProcessing/stop", csrf_body),
        (
            "/console/workflows/rtEventsProcessing/stop",
            "'garbage=%zz&&='",
        ),
        ("/console/plugins/reload", csrf_body),
        ("/console/plugins/rt-events-processing/reload", "''"),
    ] {
        assert_eq!(
            post_from_page(&browser, path, body).await,
            json!(403),
            "{path}"
        );
    }
    assert!(enabled(&server, "rtEventsProcessing").await);
    browser.screenshot("viewer_workflows").await;
    browser.click(".user button").await;

    // An operator's form without its token (removed from the page before the click) is refused.
    sign_in(&browser, &server, OPERATOR).await;
    assert_signed_in_as(&browser, "olga").await;
    browser.goto(&url(&server, "/console/workflows")).await;
    let form = r#"tr[data-workflow="rtEventsProcessing"] form[action$="/stop"]"#;
    browser
        .script(&format!(
            "document.querySelector({}).querySelector('input[name=csrf]').remove(); return 1",
            json!(form)
        ))
        .await;
    browser.click(&format!("{form} button")).await;
    // The click may return before the refusal has loaded: wait for its text.
    poll_until(secs(15), "the CSRF refusal", async || {
        let page = body_text(&browser).await;
        if page.contains("403 Forbidden: the form's CSRF token is missing or wrong") {
            Ok(())
        } else {
            Err(page)
        }
    })
    .await;
    browser.screenshot("csrf_refused").await;
    assert!(enabled(&server, "rtEventsProcessing").await);
    // A wrong token is no better; the right one works.
    browser.goto(&url(&server, "/console/workflows")).await;
    assert_eq!(
        post_from_page(
            &browser,
            "/console/workflows/rtEventsProcessing/stop",
            "'csrf=forged'"
        )
        .await,
        json!(403)
    );
    assert!(enabled(&server, "rtEventsProcessing").await);
    assert_eq!(
        post_from_page(
            &browser,
            "/console/workflows/rtEventsProcessing/stop",
            csrf_body
        )
        .await,
        json!(0),
        "the right token: a redirect (opaque to `redirect: manual`)"
    );
    assert!(!enabled(&server, "rtEventsProcessing").await);
    // Without a session at all: 403, not a redirect.
    let answer = reqwest::Client::new()
        .post(url(&server, "/console/workflows/rtEventsProcessing/start"))
        .body("csrf=x")
        .send()
        .await
        .expect("POST");
    assert_eq!(answer.status(), 403);
    browser.close().await;
}

#[tokio::test]
async fn sqlite_control_instance_page_shows_each_execution_instance() {
    let execution = TestServer::start(ServerOptions::new(PluginDir::new()));
    let plugins = PluginDir::new();
    plugins.add("archiving");
    let dead = std::net::TcpListener::bind("127.0.0.1:0").expect("port");
    let dead_addr = dead.local_addr().expect("addr");
    drop(dead);
    let control = TestServer::start(
        console_options(plugins)
            .role("control")
            .instance_id(100)
            .workflows("[workflows.archiving]\ninterval = \"200ms\"")
            .extra_toml(&format!(
                "[[execution_instances]]\nname = \"exec-1\"\nurl = \"http://{}\"\n\n\
                 [[execution_instances]]\nname = \"exec-down\"\nurl = \"http://{dead_addr}\"\ntimeout = \"1s\"\n",
                execution.api_addr()
            )),
    );
    let browser = Browser::start().await;
    sign_in(&browser, &control, VIEWER).await;
    assert_signed_in_as(&browser, "vera").await;
    browser
        .click_to_load("nav a[href='/console/instances']")
        .await;
    let deadline = std::time::Instant::now() + secs(30);
    loop {
        browser.goto(&url(&control, "/console/instances")).await;
        if browser
            .has(r#"tr[data-instance="exec-1"][data-state="ok"]"#)
            .await
            && browser
                .has(r#"tr[data-instance="exec-down"][data-state="failing"]"#)
                .await
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{}",
            body_text(&browser).await
        );
        tokio::time::sleep(millis(300)).await;
    }
    let error = browser
        .text(r#"tr[data-instance="exec-down"] td:last-child"#)
        .await;
    assert!(!error.is_empty() && error != "—", "{error}");
    browser.screenshot("control_instances").await;
    browser.close().await;
}

fn shared_options(database: &PostgresDatabase) -> ServerOptions {
    console_options(PluginDir::new()).database_url(database.url())
}

#[tokio::test]
async fn postgres_sessions_survive_a_restart_and_are_shared_by_instances() {
    let database = PostgresDatabase::create();
    let mut a = TestServer::start(shared_options(&database));
    let b = TestServer::start(shared_options(&database));
    let browser = Browser::start().await;
    sign_in(&browser, &a, OPERATOR).await;
    assert_signed_in_as(&browser, "olga").await;
    // The other instance (another port: the browser sends the same cookie) knows the session.
    browser.goto(&url(&b, "/console/workflows")).await;
    assert_eq!(browser.path().await, "/console/workflows");
    assert_signed_in_as(&browser, "olga · operator").await;
    // A restart keeps it.
    a.sigterm();
    a.wait_exit(secs(30)).await.expect("a exits");
    drop(a);
    let a = TestServer::start(shared_options(&database));
    browser.goto(&url(&a, "/console/events")).await;
    assert_eq!(browser.path().await, "/console/events");
    assert_signed_in_as(&browser, "olga").await;
    browser.screenshot("postgres_session_after_restart").await;
    // Signing out on one instance signs out on every one.
    browser.click(".user button").await;
    browser.goto(&url(&b, "/console/monitoring")).await;
    assert_eq!(browser.path().await, "/console/sign-in");
    browser.close().await;
}

/// The list API's search filters (what the console's search runs), on both backends.
async fn event_list_filters(database: Option<&PostgresDatabase>) {
    let mut options = ServerOptions::new(PluginDir::new());
    if let Some(database) = database {
        options = options.database_url(database.url());
    }
    let server = TestServer::start(options);
    let before = rfc3339_ago(secs(1));
    let mut ids = Vec::new();
    for n in 0..4 {
        let mut event = json!({ "type": if n < 2 { "A" } else { "B" }, "externalId": format!("ext-{n}"), "ctx": {} });
        if n % 2 == 0 {
            event["email"] = json!(format!("e{n}@example.com"));
        } else {
            event["channel"] = json!("sms");
            event["mobilePhone"] = json!(format!("+3361234567{n}"));
        }
        let (status, answer) = server.post_json("/api/v1/events", &event, &[]).await;
        assert_eq!(status, 201, "{}", pretty(&answer));
        ids.push(answer["id"].as_str().expect("id").to_owned());
    }
    let found = async |query: &str| -> Vec<String> {
        let (status, page) = server.get_json(&format!("/api/v1/events?{query}")).await;
        assert_eq!(status, 200, "{query}: {}", pretty(&page));
        page["events"]
            .as_array()
            .expect("events")
            .iter()
            .map(|e| e["id"].as_str().expect("id").to_owned())
            .collect()
    };
    assert_eq!(found("externalId=ext-2").await, vec![ids[2].clone()]);
    assert_eq!(found("email=e0%40example.com").await, vec![ids[0].clone()]);
    assert_eq!(
        found("mobilePhone=%2B33612345673").await,
        vec![ids[3].clone()]
    );
    assert_eq!(found(&format!("id={}", ids[1])).await, vec![ids[1].clone()]);
    assert_eq!(found("type=B").await, ids[2..].to_vec());
    assert_eq!(found("type=A&externalId=ext-2").await, Vec::<String>::new());
    let after = rfc3339_in(secs(3600));
    assert_eq!(
        found(&format!("from={}", before.replace('+', "%2B"))).await,
        ids
    );
    assert_eq!(
        found(&format!("to={}", before.replace('+', "%2B"))).await,
        Vec::<String>::new()
    );
    assert_eq!(
        found(&format!("to={}", after.replace('+', "%2B")))
            .await
            .len(),
        4
    );
    for (query, field) in [
        ("from=yesterday", "from"),
        ("to=2026-13-01", "to"),
        ("id=abc", "id"),
    ] {
        let (status, answer) = server.get_json(&format!("/api/v1/events?{query}")).await;
        assert_eq!(status, 400, "{query}");
        assert_eq!(answer["error"]["field"], field, "{}", pretty(&answer));
    }
}

#[tokio::test]
async fn sqlite_event_list_filters() {
    event_list_filters(None).await;
}

#[tokio::test]
async fn postgres_event_list_filters() {
    let database = PostgresDatabase::create();
    event_list_filters(Some(&database)).await;
}
