//! Every final status, and `delivery.deferred`, produces exactly one verified notification per endpoint
//! whose `events` match, whose `data` is the event as `GET /api/v1/events/{id}` shows it.

use super::*;

/// The notification type of a final event status.
fn type_of_status(status: &str) -> String {
    format!("event.{status}")
}

on_both_databases!(every_status_notifies_once_per_matching_endpoint);

async fn every_status_notifies_once_per_matching_endpoint(backend: Backend) {
    let env = Env::start(backend, Setup::default()).await;
    let server = &env.server;
    env.endpoint("all", "ok", None).await;
    env.endpoint(
        "failures",
        "ok",
        Some(&["event.delivery_failed", "event.expired"]),
    )
    .await;

    // One event per outcome; the second to the refused address is `ignored` (quarantined by the first).
    let sent = env.push("ok-sent@example.com", json!({})).await;
    let failed = env.push("reject-hook@example.com", json!({})).await;
    let unlinked = push_event(
        server,
        &json!({ "type": "NO_TEMPLATE", "email": "ok-unlinked@example.com" }),
    )
    .await;
    let expired = env
        .push(
            "ok-expired@example.com",
            json!({ "expiration": rfc3339_ago(secs(3600)) }),
        )
        .await;
    let deferred = env.push("tempfirst-hook@example.com", json!({})).await;
    let expected_status = [
        (&sent, "sent"),
        (&failed, "delivery_failed"),
        (&unlinked, "not_taken_into_account"),
        (&expired, "expired"),
        (&deferred, "sent"),
    ];
    for (id, status) in expected_status {
        let event = server.wait_final(id, TIMEOUT).await;
        assert_eq!(event["status"], status, "{}", pretty(&event));
    }
    let ignored = env.push("reject-hook@example.com", json!({})).await;
    let event = server.wait_final(&ignored, TIMEOUT).await;
    assert_eq!(event["status"], "ignored", "{}", pretty(&event));

    // One `delivery.deferred` per retry the delivery log scheduled for the `tempfirst` event: one when
    // the relay refused its first RCPT (it did in every run but one, where the log shows a single,
    // accepted attempt; then none is due).
    let deferrals = server.event(&deferred).await["deliveries"]
        .as_array()
        .map_or(0, |entries| {
            entries
                .iter()
                .filter(|e| e["status"] == "failed" && e["final"] == false)
                .count()
        });

    // What `all` must get: each final status once, and each deferral.
    let mut expected_all: Vec<(String, String)> = vec![
        (sent.clone(), "event.sent".to_owned()),
        (failed.clone(), "event.delivery_failed".to_owned()),
        (unlinked.clone(), "event.not_taken_into_account".to_owned()),
        (expired.clone(), "event.expired".to_owned()),
        (deferred.clone(), "event.sent".to_owned()),
        (ignored.clone(), "event.ignored".to_owned()),
    ];
    expected_all.extend(std::iter::repeat_n(
        (deferred.clone(), "delivery.deferred".to_owned()),
        deferrals,
    ));
    expected_all.sort();
    let mut expected_failures = vec![
        (failed.clone(), "event.delivery_failed".to_owned()),
        (expired.clone(), "event.expired".to_owned()),
    ];
    expected_failures.sort();

    let all = wait_unique(&env.receiver, "all", expected_all.len()).await;
    let failures = wait_unique(&env.receiver, "failures", expected_failures.len()).await;
    // Time for a duplicate or a stray notification to show up.
    quiet_for(secs(3)).await;
    assert_all_verified(&env.receiver);

    for (name, wanted, first_seen) in [
        ("all", &expected_all, all),
        ("failures", &expected_failures, failures),
    ] {
        let requests = env.receiver.requests_to(name);
        let ids = by_webhook_id(&requests);
        assert_eq!(
            ids.len(),
            first_seen.len(),
            "{name}: no notification after the expected ones: {}",
            pretty(&json!(requests))
        );
        for (id, attempts) in &ids {
            assert_eq!(
                attempts.len(),
                1,
                "{name}: webhook-id {id} answered 204 once, so sent once: {}",
                pretty(&json!(attempts))
            );
        }
        let mut got: Vec<(String, String)> = requests
            .iter()
            .map(|r| {
                (
                    event_id_of(r),
                    body_of(r)["type"].as_str().unwrap_or("").to_owned(),
                )
            })
            .collect();
        got.sort();
        assert_eq!(&got, wanted, "{name}: (event, type) notified");

        for request in &requests {
            let body = body_of(request);
            let event_id = event_id_of(request);
            assert_eq!(
                request["headers"]["content-type"]
                    .as_str()
                    .map(|c| c.starts_with("application/json")),
                Some(true),
                "{}",
                pretty(request)
            );
            let timestamp: f64 = request["webhookTimestamp"]
                .as_str()
                .and_then(|t| t.parse().ok())
                .unwrap_or_else(|| {
                    panic!("webhook-timestamp in Unix seconds: {}", pretty(request))
                });
            let arrived = request["at"].as_f64().expect("arrival time");
            assert!(
                (timestamp - arrived).abs() < 60.0,
                "webhook-timestamp {timestamp} is the attempt's time ({arrived})"
            );
            assert!(
                body["timestamp"].as_str().is_some_and(|t| t.contains('T')),
                "an RFC 3339 timestamp: {}",
                pretty(body)
            );
            let event = server.event(&event_id).await;
            if body["type"] == "delivery.deferred" {
                // `data` is the event when the body was fixed, at the notification's first attempt:
                // still `pending_delivery`, or already past the retry (`sent`), never before the
                // failed attempt that deferred it.
                assert_eq!(body["data"]["id"], event["id"]);
                assert!(
                    ["pending_delivery", "sent"]
                        .contains(&body["data"]["status"].as_str().unwrap_or("")),
                    "{}",
                    pretty(body)
                );
                let entries = body["data"]["deliveries"]
                    .as_array()
                    .unwrap_or_else(|| panic!("deliveries in data: {}", pretty(body)));
                assert!(
                    entries.iter().any(|e| e["status"] == "failed"),
                    "the failed first attempt is in data: {}",
                    pretty(body)
                );
            } else {
                assert_eq!(
                    body["type"],
                    type_of_status(event["status"].as_str().unwrap_or("")),
                    "{}",
                    pretty(body)
                );
                assert_eq!(
                    body["data"], event,
                    "{name}: data is the event as GET /api/v1/events/{event_id} shows it"
                );
            }
        }
    }

    // The history agrees: every notification delivered at its first attempt, under the same ids.
    for name in ["all", "failures"] {
        let history = wait_history(server, name, "all delivered", |all| {
            !all.is_empty() && all.iter().all(|d| d["status"] == "delivered")
        })
        .await;
        let received = by_webhook_id(&env.receiver.requests_to(name));
        let mut ids: Vec<&str> = history.iter().filter_map(|d| d["id"].as_str()).collect();
        ids.sort_unstable();
        let received_ids: Vec<&str> = received.keys().map(String::as_str).collect();
        assert_eq!(ids, received_ids, "{name}: history ids are the webhook-ids");
        for delivery in &history {
            let tries = attempts(delivery);
            assert_eq!(tries.len(), 1, "{}", pretty(delivery));
            assert_eq!(tries[0]["httpStatus"], 204, "{}", pretty(delivery));
            assert!(
                ALL_TYPES.contains(&delivery["type"].as_str().unwrap_or("")),
                "{}",
                pretty(delivery)
            );
            assert!(delivery["eventId"].is_string(), "{}", pretty(delivery));
        }
    }
}
