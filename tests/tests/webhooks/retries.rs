//! A receiver failing the first attempts gets them retried on `retry_schedule` (`["1s","1s","1s"]` here)
//! with the same `webhook-id` and the same body; one that never succeeds ends `failed` after 1 + 3
//! attempts; `/metrics` carries the contract's series for both.

use super::*;

/// The value of `family{labels…}` in `/metrics`, or 0 when absent (counters start unexported).
fn sample(metrics: &str, family: &str, labels: &[(&str, &str)]) -> f64 {
    metric_value(metrics, family, labels).unwrap_or(0.0)
}

/// The sum of every sample of `family` whose labels include `labels`.
fn sum_of(metrics: &str, family: &str, labels: &[(&str, &str)]) -> f64 {
    metrics
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (name, label_text) = series.split_once('{')?;
            (name == family
                && labels
                    .iter()
                    .all(|(k, v)| label_text.contains(&format!("{k}=\"{v}\""))))
            .then(|| value.trim().parse::<f64>().ok())?
        })
        .sum()
}

on_both_databases!(failed_attempts_are_retried_then_given_up);

async fn failed_attempts_are_retried_then_given_up(backend: Backend) {
    let env = Env::start(backend, Setup::default()).await;
    let server = &env.server;
    env.endpoint("flaky", "fail/2", Some(&["event.sent"])).await;
    env.endpoint("doomed", "fail/1000", Some(&["event.sent"]))
        .await;

    let id = env.push("ok-retried@example.com", json!({})).await;
    let event = server.wait_final(&id, TIMEOUT).await;
    assert_eq!(event["status"], "sent", "{}", pretty(&event));

    // flaky: 500, 500, then 200: three attempts of one notification.
    let flaky = wait_history(server, "flaky", "delivered", |all| {
        all.len() == 1 && all[0]["status"] == "delivered"
    })
    .await;
    let tries = attempts(&flaky[0]);
    let statuses: Vec<&Value> = tries.iter().map(|a| &a["httpStatus"]).collect();
    assert_eq!(
        statuses,
        [&json!(500), &json!(500), &json!(200)],
        "{}",
        pretty(&flaky[0])
    );
    assert!(
        tries
            .iter()
            .all(|a| a["durationMs"].is_number() && a["at"].is_string()),
        "{}",
        pretty(&flaky[0])
    );
    let requests = env.receiver.requests_to("flaky");
    assert_eq!(requests.len(), 3, "{}", pretty(&json!(requests)));
    let ids = by_webhook_id(&requests);
    assert_eq!(ids.len(), 1, "one webhook-id on every attempt: {ids:?}");
    assert_eq!(
        ids.keys().next().map(String::as_str),
        flaky[0]["id"].as_str(),
        "the history's id is the header's"
    );
    assert!(
        requests.iter().all(|r| r["raw"] == requests[0]["raw"]),
        "every attempt sends the same bytes: {}",
        pretty(&json!(requests))
    );
    assert!(
        requests.windows(2).all(|w| {
            let gap = w[1]["at"].as_f64().unwrap_or(0.0) - w[0]["at"].as_f64().unwrap_or(0.0);
            gap >= 0.9
        }),
        "retried after the schedule's 1 s: {}",
        pretty(&json!(requests))
    );
    assert_eq!(event_id_of(&requests[0]), id);

    // doomed: 1 + 3 attempts, then `failed`; nothing more after that.
    let doomed = wait_history(server, "doomed", "failed", |all| {
        all.len() == 1 && all[0]["status"] == "failed"
    })
    .await;
    assert_eq!(attempts(&doomed[0]).len(), 4, "{}", pretty(&doomed[0]));
    assert!(
        attempts(&doomed[0]).iter().all(|a| a["httpStatus"] == 500),
        "{}",
        pretty(&doomed[0])
    );
    quiet_for(secs(3)).await;
    let requests = env.receiver.requests_to("doomed");
    assert_eq!(
        requests.len(),
        4,
        "no attempt after `failed`: {}",
        pretty(&json!(requests))
    );
    assert_eq!(by_webhook_id(&requests).len(), 1);
    assert_all_verified(&env.receiver);

    // /metrics, once its gauges (sampled, not updated per attempt) show nothing pending.
    let metrics = poll_until(
        secs(30),
        "no webhook notification pending in /metrics",
        async || {
            let metrics = server.metrics().await;
            let pending = |endpoint| {
                metric_value(
                    &metrics,
                    "mc_webhook_notifications_pending",
                    &[("endpoint", endpoint)],
                )
            };
            if pending("flaky") == Some(0.0) && pending("doomed") == Some(0.0) {
                Ok(metrics)
            } else {
                Err(metrics)
            }
        },
    )
    .await;
    for (endpoint, outcome, count) in [
        ("flaky", "delivered", 1.0),
        ("doomed", "failed", 1.0),
        ("doomed", "delivered", 0.0),
    ] {
        assert_eq!(
            sample(
                &metrics,
                "mc_webhook_notifications_total",
                &[("endpoint", endpoint), ("outcome", outcome)]
            ),
            count,
            "{endpoint} {outcome}: {metrics}"
        );
    }
    assert_eq!(
        sum_of(
            &metrics,
            "mc_webhook_attempts_total",
            &[("endpoint", "flaky")]
        ),
        3.0,
        "{metrics}"
    );
    assert_eq!(
        sum_of(
            &metrics,
            "mc_webhook_attempts_total",
            &[("endpoint", "doomed")]
        ),
        4.0,
        "{metrics}"
    );
    for endpoint in ["flaky", "doomed"] {
        assert_eq!(
            metric_value(
                &metrics,
                "mc_webhook_notifications_pending",
                &[("endpoint", endpoint)]
            ),
            Some(0.0),
            "{endpoint}: {metrics}"
        );
        assert!(
            metric_value(
                &metrics,
                "mc_webhook_oldest_pending_seconds",
                &[("endpoint", endpoint)]
            )
            .is_some(),
            "{endpoint}: {metrics}"
        );
    }
    assert_eq!(
        metric_value(
            &metrics,
            "mc_webhook_attempt_duration_seconds_count",
            &[("endpoint", "flaky")]
        ),
        Some(3.0),
        "{metrics}"
    );
    assert!(
        metrics.contains("# TYPE mc_webhook_attempt_duration_seconds histogram"),
        "{metrics}"
    );
}
