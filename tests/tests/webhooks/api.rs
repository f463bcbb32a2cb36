//! The endpoints API: bad input answers 400 naming the field and writes nothing; the secret is generated
//! when absent and shown only in the answer that created the endpoint (a hint afterwards); update and
//! DELETE; the history pages with its cursor and filters by status; retrying one notification sends it again
//! under the same id; replaying a range sends new notifications, under new ids, for what became final in
//! it.

use base64::Engine as _;

use super::*;

/// PUT `body` as endpoint `name`; asserts 400 naming `field`.
async fn assert_refused(server: &TestServer, name: &str, body: Value, field: &str) {
    let (status, answer) = put_webhook(server, name, &body).await;
    assert_eq!(
        status,
        400,
        "PUT webhook {name:?} {body}: {}",
        pretty(&answer)
    );
    assert_eq!(
        answer["error"]["field"],
        field,
        "PUT webhook {name:?} {body}: {}",
        pretty(&answer)
    );
}

/// The secret bytes of a `whsec_…` secret.
fn secret_bytes(secret: &str) -> Vec<u8> {
    let encoded = secret
        .strip_prefix("whsec_")
        .unwrap_or_else(|| panic!("not a whsec_ secret: {secret}"));
    base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .unwrap_or_else(|e| panic!("{secret}: {e}"))
}

on_both_databases!(bad_input_is_refused_and_nothing_is_written);

async fn bad_input_is_refused_and_nothing_is_written(backend: Backend) {
    let env = Env::start(backend, Setup::default()).await;
    let server = &env.server;
    let good = env.receiver.url("valid", "ok");
    let long = format!("http://127.0.0.1/{}", "a".repeat(2001));
    let short_secret = format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode([1u8; 8])
    );
    for (body, field) in [
        (json!({}), "url"),
        (json!({ "url": "ftp://127.0.0.1/x" }), "url"),
        (json!({ "url": "not a url" }), "url"),
        (json!({ "url": "http://user:pw@127.0.0.1/x" }), "url"),
        (json!({ "url": long }), "url"),
        (json!({ "url": good, "events": ["event.nope"] }), "events"),
        (json!({ "url": good, "events": "event.sent" }), "events"),
        (json!({ "url": good, "secret": "hunter2" }), "secret"),
        (json!({ "url": good, "secret": "whsec_***" }), "secret"),
        (json!({ "url": good, "secret": short_secret }), "secret"),
        (json!({ "url": good, "enabled": "yes" }), "enabled"),
    ] {
        assert_refused(server, "valid", body, field).await;
    }
    for name in ["bad!name", "bad%20name", "b%C3%A9"] {
        assert_refused(server, name, json!({ "url": good }), "name").await;
    }
    let too_long = "n".repeat(300);
    let (status, _) = put_webhook(server, &too_long, &json!({ "url": good })).await;
    assert_eq!(status, 400, "a 300-character name");
    let (status, list) = server.get_json("/api/v1/webhooks").await;
    assert_eq!(status, 200, "{}", pretty(&list));
    assert_eq!(
        list["webhooks"],
        json!([]),
        "no half-written endpoint: {}",
        pretty(&list)
    );
    for path in [
        "/api/v1/webhooks/valid",
        "/api/v1/webhooks/valid/deliveries",
    ] {
        let (status, body) = server.get_json(path).await;
        assert_eq!(status, 404, "{path}: {}", pretty(&body));
    }
    let (status, body) = server.api().delete("/api/v1/webhooks/valid", &[]).await;
    assert_eq!(status, 404, "{}", pretty(&body));
}

on_both_databases!(secrets_history_retry_and_replay);

async fn secrets_history_retry_and_replay(backend: Backend) {
    let env = Env::start(backend, Setup::default()).await;
    let server = &env.server;

    // ---- a generated secret, shown once ----
    let url = env.receiver.url("made", "ok");
    let (status, created) = put_webhook(server, "made", &json!({ "url": url })).await;
    assert_eq!(status, 201, "{}", pretty(&created));
    let secret = created["secret"]
        .as_str()
        .unwrap_or_else(|| panic!("the secret in the creating answer: {}", pretty(&created)))
        .to_owned();
    let bytes = secret_bytes(&secret);
    assert!(
        (24..=64).contains(&bytes.len()),
        "24 to 64 random bytes: {} in {secret}",
        bytes.len()
    );
    assert_eq!(created["name"], "made");
    assert_eq!(created["url"], url.as_str());
    assert_eq!(created["enabled"], true);
    assert_eq!(created["disabledReason"], Value::Null);
    let mut events: Vec<&str> = created["events"]
        .as_array()
        .unwrap_or_else(|| panic!("events: {}", pretty(&created)))
        .iter()
        .filter_map(Value::as_str)
        .collect();
    events.sort_unstable();
    let mut all_types = ALL_TYPES.to_vec();
    all_types.sort_unstable();
    assert_eq!(events, all_types, "every type by default");
    env.receiver.set_secret("made", &secret).await;

    let shown = get_webhook(server, "made").await;
    let hint = shown["secretHint"]
        .as_str()
        .unwrap_or_else(|| panic!("a secretHint: {}", pretty(&shown)));
    assert!(
        !hint.is_empty() && !hint.contains(&secret[6..]),
        "a hint, not the secret: {hint}"
    );
    assert!(
        shown.get("secret").is_none(),
        "GET never shows the secret: {}",
        pretty(&shown)
    );
    for key in ["createdAt", "updatedAt"] {
        assert!(shown[key].is_string(), "{key}: {}", pretty(&shown));
    }
    let (status, list) = server.get_json("/api/v1/webhooks").await;
    assert_eq!(status, 200);
    let listed = list["webhooks"].as_array().expect("webhooks");
    assert_eq!(listed.len(), 1, "{}", pretty(&list));
    assert!(listed[0].get("secret").is_none(), "{}", pretty(&list));
    assert!(
        !list.to_string().contains(&secret[6..]),
        "the list never shows it"
    );

    // ---- update: 200, no secret, same secret kept ----
    let (status, updated) = put_webhook(
        server,
        "made",
        &json!({ "url": url, "events": ["event.sent", "event.expired"] }),
    )
    .await;
    assert_eq!(status, 200, "{}", pretty(&updated));
    assert!(updated.get("secret").is_none(), "{}", pretty(&updated));
    let mut events: Vec<&str> = updated["events"]
        .as_array()
        .unwrap_or_else(|| panic!("events: {}", pretty(&updated)))
        .iter()
        .filter_map(Value::as_str)
        .collect();
    events.sort_unstable();
    assert_eq!(
        events,
        ["event.expired", "event.sent"],
        "{}",
        pretty(&updated)
    );
    assert_eq!(
        updated["secretHint"], shown["secretHint"],
        "the secret is kept"
    );

    // ---- a given secret is the one shown ----
    let given = test_webhook_secret(3);
    let (status, other) = put_webhook(
        server,
        "given",
        &json!({ "url": env.receiver.url("given", "ok"), "secret": given, "enabled": false }),
    )
    .await;
    assert_eq!(status, 201, "{}", pretty(&other));
    assert_eq!(other["secret"], given.as_str());
    assert_eq!(other["enabled"], false);

    // ---- history: three notifications, paged, filtered ----
    let started = rfc3339_ago(secs(1));
    let mut ids = Vec::new();
    for n in 0..3 {
        let id = env
            .push(&format!("ok-history-{n}@example.com"), json!({}))
            .await;
        server.wait_final(&id, TIMEOUT).await;
        ids.push(id);
    }
    let received = wait_unique(&env.receiver, "made", 3).await;
    let delivered = wait_history(server, "made", "three delivered", |all| {
        all.len() == 3 && all.iter().all(|d| d["status"] == "delivered")
    })
    .await;
    let mut history_events: Vec<&str> = delivered
        .iter()
        .filter_map(|d| d["eventId"].as_str())
        .collect();
    history_events.sort_unstable();
    let mut pushed: Vec<&str> = ids.iter().map(String::as_str).collect();
    pushed.sort_unstable();
    assert_eq!(history_events, pushed);
    for delivery in &delivered {
        assert_eq!(delivery["type"], "event.sent");
        let tries = attempts(delivery);
        assert_eq!(tries.len(), 1, "{}", pretty(delivery));
        assert_eq!(tries[0]["httpStatus"], 204);
        assert_eq!(tries[0]["error"], Value::Null);
    }
    let (status, page) = server
        .get_json("/api/v1/webhooks/made/deliveries?status=failed")
        .await;
    assert_eq!(status, 200, "{}", pretty(&page));
    assert_eq!(page["deliveries"], json!([]), "{}", pretty(&page));
    let (status, page) = server
        .get_json("/api/v1/webhooks/made/deliveries?status=delivered&limit=10")
        .await;
    assert_eq!(status, 200, "{}", pretty(&page));
    assert_eq!(page["deliveries"].as_array().map(Vec::len), Some(3));
    for bad in ["status=nope", "limit=-1", "limit=abc"] {
        let path = format!("/api/v1/webhooks/made/deliveries?{bad}");
        let (status, body) = server.get_json(&path).await;
        assert_eq!(status, 400, "{path}: {}", pretty(&body));
        let field = bad.split('=').next().unwrap_or_default();
        assert_eq!(body["error"]["field"], field, "{path}: {}", pretty(&body));
    }

    // ---- retry one: the same id again ----
    let retried = delivered[0]["id"].as_str().expect("an id").to_owned();
    let (status, body) = server
        .post_json(
            &format!("/api/v1/webhooks/made/deliveries/{retried}/retry"),
            &json!({}),
            &[],
        )
        .await;
    assert_eq!(status, 202, "{}", pretty(&body));
    poll_until(TIMEOUT, "the retried notification again", async || {
        let again = by_webhook_id(&env.receiver.requests_to("made"));
        match again.get(&retried) {
            Some(requests) if requests.len() == 2 => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    let again = by_webhook_id(&env.receiver.requests_to("made"));
    let requests = &again[&retried];
    assert_eq!(event_id_of(&requests[0]), event_id_of(&requests[1]));
    assert_eq!(
        requests[0]["raw"], requests[1]["raw"],
        "the body fixed at the first attempt"
    );
    wait_history(server, "made", "two attempts on the retried one", |all| {
        all.iter().any(|d| {
            d["id"] == retried.as_str() && attempts(d).len() == 2 && d["status"] == "delivered"
        })
    })
    .await;
    for path in [
        "/api/v1/webhooks/made/deliveries/msg_999999999/retry".to_owned(),
        // Not even of the `msg_<n>` form: no such delivery either.
        "/api/v1/webhooks/made/deliveries/nope/retry".to_owned(),
        format!("/api/v1/webhooks/ghost/deliveries/{retried}/retry"),
    ] {
        let (status, body) = server.post_json(&path, &json!({}), &[]).await;
        assert_eq!(status, 404, "{path}: {}", pretty(&body));
    }

    // ---- replay: new notifications, new ids, for the events final in the range ----
    let range = json!({ "from": started, "to": rfc3339_in(secs(1)) });
    let (status, body) = server
        .post_json("/api/v1/webhooks/made/replay", &range, &[])
        .await;
    assert_eq!(status, 202, "{}", pretty(&body));
    assert_eq!(body["queued"], 3, "{}", pretty(&body));
    let all = wait_unique(&env.receiver, "made", 6).await;
    let replayed: Vec<&Vec<Value>> = all
        .iter()
        .filter(|(id, _)| !received.contains_key(*id))
        .map(|(_, requests)| requests)
        .collect();
    assert_eq!(replayed.len(), 3, "three new ids");
    let mut replayed_events: Vec<String> = replayed.iter().map(|r| event_id_of(&r[0])).collect();
    replayed_events.sort();
    assert_eq!(replayed_events, pushed, "the same events again");
    let (status, body) = server
        .post_json(
            "/api/v1/webhooks/made/replay",
            &json!({ "from": rfc3339_in(secs(3600)), "to": rfc3339_in(secs(7200)) }),
            &[],
        )
        .await;
    assert_eq!(status, 202, "{}", pretty(&body));
    assert_eq!(body["queued"], 0, "nothing final in the future");
    let (status, body) = server
        .post_json(
            "/api/v1/webhooks/made/replay",
            &json!({ "from": "yesterday", "to": rfc3339_in(secs(1)) }),
            &[],
        )
        .await;
    assert_eq!(status, 400, "{}", pretty(&body));
    assert_eq!(body["error"]["field"], "from", "{}", pretty(&body));
    assert_all_verified(&env.receiver);

    // ---- DELETE ----
    let (status, body) = server.api().delete("/api/v1/webhooks/made", &[]).await;
    assert_eq!(status, 204, "{}", pretty(&body));
    let (status, _) = server.get_json("/api/v1/webhooks/made").await;
    assert_eq!(status, 404);
    let (status, _) = server.api().delete("/api/v1/webhooks/made", &[]).await;
    assert_eq!(status, 404);
    let (_, list) = server.get_json("/api/v1/webhooks").await;
    let names: Vec<&Value> = list["webhooks"]
        .as_array()
        .expect("webhooks")
        .iter()
        .map(|w| &w["name"])
        .collect();
    assert_eq!(names, [&json!("given")], "{}", pretty(&list));
    let before = env.receiver.requests_to("made").len();
    let id = env.push("ok-after-delete@example.com", json!({})).await;
    server.wait_final(&id, TIMEOUT).await;
    quiet_for(secs(2)).await;
    assert_eq!(
        env.receiver.requests_to("made").len(),
        before,
        "nothing to a deleted endpoint"
    );
    assert!(
        env.receiver.requests_to("given").is_empty(),
        "nothing to a disabled endpoint"
    );
}
