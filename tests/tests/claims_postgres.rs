//! Two execution instances, two server processes, one PostgreSQL database: events pushed to both are each
//! claimed by exactly one of them, through the plugin boundary (the `faultProbe` plugin in `claim` mode
//! claims through `events.claim` and settles through `events.update`).

use message_center_tests::*;
use serde_json::json;

const EVENTS_PER_INSTANCE: usize = 300;

fn claimer_workflow() -> String {
    r#"
[workflows.claimer]
enabled = true
plugin = "faultProbe"
mode = "claim"
batch_size = 25
interval = "50ms"
timeout = "30s"
"#
    .to_owned()
}

fn instance(database: &PostgresDatabase, id: u8) -> TestServer {
    let plugins = PluginDir::new();
    plugins.add("fault-probe");
    TestServer::start(
        ServerOptions::new(plugins)
            .instance_id(id)
            .database_url(database.url())
            .workflows(&claimer_workflow()),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_on_one_postgres_database_never_claim_the_same_event() {
    let database = PostgresDatabase::create();
    // Both start at once: migrations on the shared database must serialise.
    let (first, second) = std::thread::scope(|s| {
        let a = s.spawn(|| instance(&database, 1));
        let b = s.spawn(|| instance(&database, 2));
        (
            a.join().expect("first instance"),
            b.join().expect("second instance"),
        )
    });

    // Push to both instances concurrently; each id carries its instance in the top byte.
    let mut pushes = Vec::new();
    for (server, instance_id) in [(&first, 1u64), (&second, 2u64)] {
        let api = server.api();
        pushes.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for n in 0..EVENTS_PER_INSTANCE {
                let body = json!({ "type": "CLAIM", "email": format!("u{n}@example.com"), "ctx": { "n": n } });
                let (status, answer) = api.post_json("/api/v1/events", &body, &[]).await;
                assert_eq!(status, 201, "{answer}");
                let id: u64 = answer["id"].as_str().expect("id").parse().expect("numeric id");
                assert_eq!(id >> 56, instance_id, "instance byte of {id}");
                ids.push(id);
            }
            ids
        }));
    }
    let mut all_ids = Vec::new();
    for push in pushes {
        all_ids.extend(push.await.expect("pushes"));
    }
    let total = 2 * EVENTS_PER_INSTANCE as u64;
    assert_eq!(all_ids.len() as u64, total);

    // Both instances' claimers drain the shared queue; the claims they report add up to exactly the
    // number of events (an event claimed twice would count twice).
    let processed = wait_for(secs(60), "every event claimed", async || {
        let a = num(&first.workflow("claimer").await, "processed");
        let b = num(&second.workflow("claimer").await, "processed");
        (a + b >= total).then_some((a, b))
    })
    .await;
    // Let any double claim surface before counting for good.
    tokio::time::sleep(millis(500)).await;
    let a = first.workflow("claimer").await;
    let b = second.workflow("claimer").await;
    assert_eq!(
        num(&a, "processed") + num(&b, "processed"),
        total,
        "{processed:?}\n{}\n{}",
        pretty(&a),
        pretty(&b)
    );
    assert_eq!(
        num(&a, "errors") + num(&b, "errors"),
        0,
        "{}\n{}",
        pretty(&a),
        pretty(&b)
    );
    assert!(
        num(&a, "processed") > 0 && num(&b, "processed") > 0,
        "both instances claimed work: {processed:?}"
    );

    // Every event, whichever instance took it in, reached the status the claimer set.
    let (_, stats) = first.get_json("/api/v1/stats").await;
    assert_eq!(
        stats["queues"]["realtime"]["byStatus"]["not_taken_into_account"], total,
        "{stats}"
    );
    assert_eq!(stats["queues"]["realtime"]["depth"], 0, "{stats}");
    for id in all_ids.iter().step_by(37) {
        let (status, event) = second.get_json(&format!("/api/v1/events/{id}")).await;
        assert_eq!(status, 200, "{event}");
        assert_eq!(event["status"], "not_taken_into_account", "{event}");
    }
}
