//! Destinations are checked at send time, after DNS resolution: with only `127.0.0.2/32` allowed,
//! endpoints at `localhost` and at `127.0.0.1` (where the receiver listens) are never contacted, and every
//! attempt records why.

use super::*;

/// Words one of which an error refusing a destination uses.
const WHY: [&str; 6] = [
    "allowed",
    "loopback",
    "destination",
    "refused",
    "127.0.0.1",
    "private",
];

on_both_databases!(destinations_outside_the_allowed_list_are_never_contacted);

async fn destinations_outside_the_allowed_list_are_never_contacted(backend: Backend) {
    let only_127_0_0_2 = Setup {
        allowed: "127.0.0.2/32",
        ..Setup::default()
    };
    let env = Env::start(backend, only_127_0_0_2).await;
    let server = &env.server;
    for (name, host) in [("byname", "localhost"), ("byaddress", "127.0.0.1")] {
        let secret = test_webhook_secret(90);
        let body = json!({ "url": env.receiver.url_on(host, name, "ok"), "secret": secret });
        let (status, answer) = put_webhook(server, name, &body).await;
        assert_eq!(
            status,
            201,
            "the URL is valid; its address is checked when sending: {}",
            pretty(&answer)
        );
    }
    let id = env.push("ok-destinations@example.com", json!({})).await;
    server.wait_final(&id, TIMEOUT).await;

    for name in ["byname", "byaddress"] {
        let history = wait_history(server, name, "two attempts", |all| {
            all.len() == 1 && attempts(&all[0]).len() >= 2
        })
        .await;
        for attempt in attempts(&history[0]) {
            assert_eq!(attempt["httpStatus"], Value::Null, "{}", pretty(attempt));
            let error = attempt["error"].as_str().unwrap_or_default().to_lowercase();
            assert!(
                WHY.iter().any(|w| error.contains(w)),
                "{name}: the attempt says the destination is not allowed: {}",
                pretty(attempt)
            );
        }
    }
    assert!(
        env.receiver.requests().is_empty(),
        "the receiver was contacted: {}",
        pretty(&json!(env.receiver.requests()))
    );
}
