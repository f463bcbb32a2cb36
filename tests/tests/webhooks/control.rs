//! On a control instance the endpoint calls apply to every execution instance and answer per instance, as
//! template publishing does: an endpoint created on the control instance exists on the execution instance,
//! which notifies its events to it; a DELETE there removes it there.

use super::*;

/// `instance → status` of a fanned-out answer.
fn instances(answer: &Value) -> BTreeMap<String, Value> {
    answer["instances"]
        .as_array()
        .unwrap_or_else(|| panic!("an answer per instance: {}", pretty(answer)))
        .iter()
        .map(|r| {
            (
                r["instance"].as_str().unwrap_or_default().to_owned(),
                r["status"].clone(),
            )
        })
        .collect()
}

on_both_databases!(control_instance_fans_out);

async fn control_instance_fans_out(backend: Backend) {
    let env = Env::start(backend, Setup::default()).await;
    let exec = &env.server;
    let control_db = match backend {
        Backend::Sqlite => None,
        Backend::Postgres => Some(PostgresDatabase::create()),
    };
    let mut options = ServerOptions::new(PluginDir::new())
        .role("control")
        .instance_id(100)
        .extra_toml(&format!(
            "[[execution_instances]]\nname = \"exec-1\"\nurl = \"http://{}\"\ntimeout = \"5s\"",
            exec.api_addr()
        ));
    if let Some(db) = &control_db {
        options = options.database_url(db.url());
    }
    let control = TestServer::start(options);

    let secret = test_webhook_secret(11);
    env.receiver.set_secret("fanned", &secret).await;
    let body = json!({
        "url": env.receiver.url("fanned", "ok"),
        "events": ["event.sent"],
        "secret": secret,
    });
    let (status, answer) = put_webhook(&control, "fanned", &body).await;
    assert!(
        (200..300).contains(&status),
        "PUT on the control instance: {status} {}",
        pretty(&answer)
    );
    let per_instance = instances(&answer);
    assert_eq!(
        per_instance,
        BTreeMap::from([("exec-1".to_owned(), json!(201))]),
        "created on exec-1: {}",
        pretty(&answer)
    );
    assert_eq!(answer["failed"], 0, "{}", pretty(&answer));
    assert!(
        answer.to_string().matches(&secret).count() <= 1,
        "the secret is not repeated per instance beyond the creating answer: {}",
        pretty(&answer)
    );

    let on_exec = get_webhook(exec, "fanned").await;
    assert_eq!(on_exec["url"], body["url"], "{}", pretty(&on_exec));
    assert_eq!(on_exec["events"], json!(["event.sent"]));
    let (status, listed) = control.get_json("/api/v1/webhooks").await;
    assert_eq!(status, 200, "{}", pretty(&listed));
    assert!(
        listed.to_string().contains("fanned"),
        "the control instance lists it per instance: {}",
        pretty(&listed)
    );

    // The execution instance notifies with the secret given on the control instance.
    let id = env.push("ok-fanned@example.com", json!({})).await;
    exec.wait_final(&id, TIMEOUT).await;
    let received = wait_unique(&env.receiver, "fanned", 1).await;
    let request = &received.values().next().expect("one")[0];
    assert_eq!(event_id_of(request), id);
    assert_all_verified(&env.receiver);

    let (status, answer) = control.api().delete("/api/v1/webhooks/fanned", &[]).await;
    assert!(
        (200..300).contains(&status),
        "DELETE on the control instance: {status} {}",
        pretty(&answer)
    );
    let (status, body) = exec.get_json("/api/v1/webhooks/fanned").await;
    assert_eq!(status, 404, "deleted on exec-1 too: {}", pretty(&body));
    drop(control);
    drop(control_db);
}
