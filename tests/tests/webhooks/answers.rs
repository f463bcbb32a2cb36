//! What the receiver answers decides what happens next: 410 disables the endpoint (and nothing more is
//! sent to it), 503 with `Retry-After` is retried no earlier than it says, a receiver slower than
//! `request_timeout`, a huge answer, a garbage one and a redirect (not followed) each cost one attempt.

use super::*;

/// The receiver's arrival time of a request, Unix seconds.
fn arrival(request: &Value) -> f64 {
    request["at"].as_f64().expect("arrival time")
}

on_both_databases!(answers_decide_what_follows);

async fn answers_decide_what_follows(backend: Backend) {
    let env = Env::start(backend, Setup::default()).await;
    let server = &env.server;
    let sent_only: &[&str] = &["event.sent"];
    env.endpoint("gone", "gone", Some(sent_only)).await;
    env.endpoint("busy", "busy/3", Some(sent_only)).await;
    env.endpoint("slow", "slow/5", Some(sent_only)).await;
    env.endpoint("huge", "huge", Some(sent_only)).await;
    env.endpoint("garbage", "garbage", Some(sent_only)).await;
    env.endpoint("redirect", "redirect", Some(sent_only)).await;
    env.endpoint("fine", "ok", Some(sent_only)).await;

    let first = env.push("ok-answers-1@example.com", json!({})).await;
    server.wait_final(&first, TIMEOUT).await;

    // ---- 410: the endpoint is disabled, says why, and gets nothing more ----
    let gone = poll_until(TIMEOUT, "webhook gone disabled", async || {
        let endpoint = get_webhook(server, "gone").await;
        if endpoint["enabled"] == false {
            Ok(endpoint)
        } else {
            Err(pretty(&endpoint))
        }
    })
    .await;
    assert!(
        gone["disabledReason"]
            .as_str()
            .is_some_and(|r| !r.is_empty()),
        "GET shows why it was disabled: {}",
        pretty(&gone)
    );
    let history = wait_history(server, "gone", "one attempt", |all| {
        all.len() == 1 && !attempts(&all[0]).is_empty()
    })
    .await;
    assert_eq!(attempts(&history[0])[0]["httpStatus"], 410);

    // ---- 503 + Retry-After: 3 s, not the schedule's 1 s ----
    let busy = wait_history(server, "busy", "delivered", |all| {
        all.len() == 1 && all[0]["status"] == "delivered"
    })
    .await;
    let statuses: Vec<&Value> = attempts(&busy[0])
        .iter()
        .map(|a| &a["httpStatus"])
        .collect();
    assert_eq!(statuses, [&json!(503), &json!(200)], "{}", pretty(&busy[0]));
    let requests = env.receiver.requests_to("busy");
    assert_eq!(requests.len(), 2, "{}", pretty(&json!(requests)));
    let gap = arrival(&requests[1]) - arrival(&requests[0]);
    assert!(
        gap >= 2.9,
        "the second attempt came {gap:.2} s after the first, before its Retry-After of 3 s"
    );

    // ---- slow, garbage, redirect: one failed attempt per request, retried, then failed ----
    for name in ["slow", "garbage", "redirect"] {
        let history = wait_history(server, name, "failed", |all| {
            all.len() == 1 && all[0]["status"] == "failed"
        })
        .await;
        let tries = attempts(&history[0]);
        assert_eq!(tries.len(), 4, "1 + 3 retries: {}", pretty(&history[0]));
        let requests = env.receiver.requests_to(name);
        assert_eq!(
            requests.len(),
            tries.len(),
            "{name}: one attempt per request: {}",
            pretty(&json!(requests))
        );
        // Without an answer, the error says why; a 302 is its own reason.
        for attempt in tries.iter().filter(|a| a["httpStatus"].is_null()) {
            assert!(
                attempt["error"].as_str().is_some_and(|e| !e.is_empty()),
                "{name}: the attempt says why it failed: {}",
                pretty(&history[0])
            );
        }
        match name {
            "slow" => {
                for attempt in tries {
                    assert_eq!(attempt["httpStatus"], Value::Null, "{}", pretty(attempt));
                    // The receiver answers after 5 s: a duration under that is the 2 s timeout.
                    assert!(
                        attempt["durationMs"].as_f64().is_some_and(|d| d < 5000.0),
                        "cut at request_timeout: {}",
                        pretty(attempt)
                    );
                }
            }
            "garbage" => {
                for attempt in tries {
                    assert_eq!(attempt["httpStatus"], Value::Null, "{}", pretty(attempt));
                }
            }
            _ => {
                for attempt in tries {
                    assert_eq!(attempt["httpStatus"], 302, "{}", pretty(attempt));
                }
                assert!(
                    requests.iter().all(|r| r["behaviour"] == "redirect"),
                    "the redirect was not followed to /redirect/ok: {}",
                    pretty(&json!(requests))
                );
            }
        }
    }

    // ---- huge: a 2xx, read only in part ----
    let huge = wait_history(server, "huge", "settled", |all| {
        all.len() == 1 && settled(all)
    })
    .await;
    let tries = attempts(&huge[0]);
    assert_eq!(
        env.receiver.requests_to("huge").len(),
        tries.len(),
        "one attempt per request"
    );
    assert_eq!(huge[0]["status"], "delivered", "{}", pretty(&huge[0]));
    assert_eq!(tries.len(), 1, "{}", pretty(&huge[0]));
    assert_eq!(tries[0]["httpStatus"], 200);
    let kept = tries[0]["response"].as_str().map_or(0, str::len);
    assert!(
        kept < 64 * 1024,
        "only the first bytes of the 8 MiB answer are kept ({kept} bytes)"
    );

    // ---- a second event: nothing to the disabled endpoint, the others still served ----
    let second = env.push("ok-answers-2@example.com", json!({})).await;
    server.wait_final(&second, TIMEOUT).await;
    wait_unique(&env.receiver, "fine", 2).await;
    quiet_for(secs(3)).await;
    let to_gone = env.receiver.requests_to("gone");
    assert_eq!(
        to_gone.len(),
        1,
        "nothing after the 410: {}",
        pretty(&json!(to_gone))
    );
    assert_eq!(event_id_of(&to_gone[0]), first);
    assert_eq!(
        get_webhook(server, "gone").await["enabled"],
        false,
        "still disabled"
    );
    server.assert_healthy().await;
    assert_all_verified(&env.receiver);
}
