//! The templates API of docs/api.md ("Templates") against the real server: versions, publishing, reads by
//! version, the list, delete, every validation refusal with its field, template errors with the part and
//! the line, concurrent PUTs of one name, API keys and the body limit. The lifecycle runs on SQLite and on
//! PostgreSQL.
//!
//! Rendering itself (HTML escaping, undefined variables) is not exposed over HTTP; the unit tests of
//! `message_center::templates` cover it.

use std::collections::BTreeSet;

use message_center_tests::*;
use serde_json::{Value, json};
use tokio::task::JoinSet;

const TEMPLATES: &str = "/api/v1/templates";

fn path(name: &str) -> String {
    format!("{TEMPLATES}/{name}")
}

fn welcome(subject: &str) -> Value {
    json!({
        "eventType": "SIGNUP",
        "subject": subject,
        "text": "Hello {{ ctx.firstName }}",
        "html": "<p>Hello {{ ctx.firstName }}</p>",
    })
}

/// The error code and field of a refusal.
fn error_of(answer: &Value) -> (Option<&str>, Option<&str>) {
    (
        answer["error"]["code"].as_str(),
        answer["error"]["field"].as_str(),
    )
}

fn names(list: &Value) -> Vec<&str> {
    list["templates"]
        .as_array()
        .unwrap_or_else(|| panic!("no templates array in {}", pretty(list)))
        .iter()
        .map(|t| t["name"].as_str().expect("name"))
        .collect()
}

fn keys(value: &Value) -> BTreeSet<&str> {
    value
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {value}"))
        .keys()
        .map(String::as_str)
        .collect()
}

#[tokio::test]
async fn template_lifecycle_on_sqlite() {
    let server = TestServer::start(ServerOptions::new(PluginDir::new()));
    lifecycle(&server).await;
    concurrent_puts(&server).await;
}

#[tokio::test]
async fn template_lifecycle_on_postgres() {
    let database = PostgresDatabase::create();
    let server =
        TestServer::start(ServerOptions::new(PluginDir::new()).database_url(database.url()));
    lifecycle(&server).await;
    concurrent_puts(&server).await;
}

async fn lifecycle(server: &TestServer) {
    let api = server.api();
    let (status, list) = api.get_json(TEMPLATES).await;
    assert_eq!((status, list), (200, json!({ "templates": [] })));

    // First version: 201, published.
    let (status, v1) = api
        .put_json(&path("welcome"), &welcome("Hi one"), &[])
        .await;
    assert_eq!(status, 201, "{}", pretty(&v1));
    assert_eq!(
        keys(&v1),
        BTreeSet::from([
            "name",
            "eventType",
            "channel",
            "latestVersion",
            "publishedVersion",
            "publishedAt",
            "createdAt",
            "updatedAt",
            "content",
        ])
    );
    assert_eq!(v1["name"], "welcome");
    assert_eq!(v1["eventType"], "SIGNUP");
    assert_eq!(v1["channel"], "email");
    assert_eq!(v1["latestVersion"], 1);
    assert_eq!(v1["publishedVersion"], 1);
    assert!(v1["publishedAt"].is_string(), "{}", pretty(&v1));
    assert!(v1["createdAt"].is_string() && v1["updatedAt"].is_string());
    let content = &v1["content"];
    assert_eq!(
        keys(content),
        BTreeSet::from([
            "version",
            "eventType",
            "channel",
            "from",
            "subject",
            "text",
            "html",
            "createdAt"
        ])
    );
    assert_eq!(content["version"], 1);
    assert_eq!(content["eventType"], "SIGNUP");
    assert_eq!(content["channel"], "email");
    assert_eq!(content["from"], Value::Null);
    assert_eq!(content["subject"], "Hi one");
    assert_eq!(content["text"], "Hello {{ ctx.firstName }}");
    assert_eq!(content["html"], "<p>Hello {{ ctx.firstName }}</p>");

    // A second version, not published: 200, the published version stays.
    let mut draft = welcome("Hi two");
    draft["publish"] = json!(false);
    draft["from"] = json!("\"Shop\" <shop@example.com>");
    let (status, v2) = api.put_json(&path("welcome"), &draft, &[]).await;
    assert_eq!(status, 200, "{}", pretty(&v2));
    assert_eq!(v2["latestVersion"], 2);
    assert_eq!(v2["publishedVersion"], 1);
    assert_eq!(v2["publishedAt"], v1["publishedAt"]);
    assert_eq!(v2["createdAt"], v1["createdAt"]);
    assert_eq!(v2["content"]["version"], 2);
    assert_eq!(v2["content"]["subject"], "Hi two");
    assert_eq!(v2["content"]["from"], "\"Shop\" <shop@example.com>");

    // GET: the latest version, or the one asked for.
    let (status, latest) = api.get_json(&path("welcome")).await;
    assert_eq!(status, 200, "{}", pretty(&latest));
    assert_eq!(latest, v2);
    let (status, first) = api
        .get_json(&format!("{}?version=1", path("welcome")))
        .await;
    assert_eq!(status, 200, "{}", pretty(&first));
    assert_eq!(first["content"], v1["content"]);
    assert_eq!(first["latestVersion"], 2);
    let (status, answer) = api
        .get_json(&format!("{}?version=3", path("welcome")))
        .await;
    assert_eq!(status, 404, "{}", pretty(&answer));
    assert_eq!(error_of(&answer).0, Some("not_found"));
    for bad in ["0", "-1", "abc", "1.5", ""] {
        let (status, answer) = api
            .get_json(&format!("{}?version={bad}", path("welcome")))
            .await;
        assert_eq!(status, 400, "version={bad}: {}", pretty(&answer));
        assert_eq!(
            error_of(&answer),
            (Some("invalid_field"), Some("version")),
            "version={bad}"
        );
    }

    // A third version, published, for another event type: the template follows it.
    let mut moved = welcome("Hi three");
    moved["eventType"] = json!("REGISTERED");
    moved["publish"] = json!(true);
    let (status, v3) = api.put_json(&path("welcome"), &moved, &[]).await;
    assert_eq!(status, 200, "{}", pretty(&v3));
    assert_eq!(v3["latestVersion"], 3);
    assert_eq!(v3["publishedVersion"], 3);
    assert_eq!(v3["eventType"], "REGISTERED");
    assert_ne!(v3["publishedAt"], v1["publishedAt"]);

    // An SMS template, and one never published.
    let (status, otp) = api
        .put_json(
            &path("otp.code-1"),
            &json!({ "eventType": "OTP", "channel": "sms", "text": "Code {{ ctx.code }}" }),
            &[],
        )
        .await;
    assert_eq!(status, 201, "{}", pretty(&otp));
    assert_eq!(otp["channel"], "sms");
    assert_eq!(otp["content"]["text"], "Code {{ ctx.code }}");
    assert_eq!(otp["content"]["subject"], Value::Null);
    assert_eq!(otp["content"]["html"], Value::Null);
    let (status, unpublished) = api
        .put_json(
            &path("A_draft"),
            &json!({ "eventType": "LATER", "subject": "s", "html": "<b>x</b>", "publish": false }),
            &[],
        )
        .await;
    assert_eq!(status, 201, "{}", pretty(&unpublished));
    assert_eq!(unpublished["publishedVersion"], Value::Null);
    assert_eq!(unpublished["publishedAt"], Value::Null);
    assert_eq!(unpublished["content"]["text"], Value::Null);

    // The list, by name.
    let (status, list) = api.get_json(TEMPLATES).await;
    assert_eq!(status, 200, "{}", pretty(&list));
    assert_eq!(names(&list), ["A_draft", "otp.code-1", "welcome"]);
    let entry = &list["templates"][2];
    assert_eq!(
        keys(entry),
        BTreeSet::from([
            "name",
            "eventType",
            "channel",
            "latestVersion",
            "publishedVersion",
            "publishedAt",
            "updatedAt"
        ])
    );
    assert_eq!(entry["latestVersion"], 3);
    assert_eq!(entry["publishedVersion"], 3);
    assert_eq!(entry["eventType"], "REGISTERED");
    assert_eq!(entry["updatedAt"], v3["updatedAt"]);

    // Delete: 204, then 404 everywhere; the name starts again at version 1.
    let (status, answer) = api.delete(&path("welcome"), &[]).await;
    assert_eq!(
        (status, &answer),
        (204, &Value::Null),
        "{}",
        pretty(&answer)
    );
    let (status, answer) = api.get_json(&path("welcome")).await;
    assert_eq!(status, 404, "{}", pretty(&answer));
    assert_eq!(error_of(&answer).0, Some("not_found"));
    let (status, _) = api
        .get_json(&format!("{}?version=1", path("welcome")))
        .await;
    assert_eq!(status, 404);
    let (status, answer) = api.delete(&path("welcome"), &[]).await;
    assert_eq!(status, 404, "{}", pretty(&answer));
    assert_eq!(error_of(&answer).0, Some("not_found"));
    let (status, answer) = api.get_json(&path("never-made")).await;
    assert_eq!(status, 404, "{}", pretty(&answer));
    let (_, list) = api.get_json(TEMPLATES).await;
    assert_eq!(names(&list), ["A_draft", "otp.code-1"]);
    let (status, again) = api.put_json(&path("welcome"), &welcome("Back"), &[]).await;
    assert_eq!(status, 201, "{}", pretty(&again));
    assert_eq!(again["latestVersion"], 1);
    assert_eq!(again["content"]["subject"], "Back");
}

/// Concurrent PUTs of one new name: one 201, the others 200, every version number exactly once.
async fn concurrent_puts(server: &TestServer) {
    const PUTS: usize = 12;
    let mut tasks = JoinSet::new();
    for n in 0..PUTS {
        let api = server.api();
        tasks.spawn(async move {
            api.put_json(&path("busy"), &welcome(&format!("n{n}")), &[])
                .await
        });
    }
    let mut versions = BTreeSet::new();
    let mut created = 0;
    while let Some(result) = tasks.join_next().await {
        let (status, answer) = result.expect("task");
        assert!(
            status == 200 || status == 201,
            "{status}: {}",
            pretty(&answer)
        );
        created += usize::from(status == 201);
        versions.insert(answer["content"]["version"].as_u64().expect("version"));
    }
    assert_eq!(created, 1);
    assert_eq!(versions, (1..=PUTS as u64).collect::<BTreeSet<_>>());
    let (_, busy) = server.api().get_json(&path("busy")).await;
    assert_eq!(busy["latestVersion"], PUTS as u64);
    assert_eq!(busy["publishedVersion"], PUTS as u64);
}

#[tokio::test]
async fn refusals_name_the_field_and_store_nothing() {
    let server = TestServer::start(ServerOptions::new(PluginDir::new()));
    let api = server.api();
    let email = |extra: Value| {
        let mut body = json!({ "eventType": "E", "subject": "s", "text": "t" });
        for (key, value) in extra.as_object().expect("object") {
            body[key] = value.clone();
        }
        body
    };
    let long = "x".repeat(256);
    let cases: Vec<(&str, Value, &str, &str)> = vec![
        (
            "event type missing",
            json!({ "subject": "s", "text": "t" }),
            "invalid_field",
            "eventType",
        ),
        (
            "event type null",
            email(json!({ "eventType": null })),
            "invalid_field",
            "eventType",
        ),
        (
            "event type number",
            email(json!({ "eventType": 5 })),
            "invalid_field",
            "eventType",
        ),
        (
            "event type empty",
            email(json!({ "eventType": "" })),
            "invalid_field",
            "eventType",
        ),
        (
            "event type too long",
            email(json!({ "eventType": long })),
            "invalid_field",
            "eventType",
        ),
        (
            "channel unknown",
            email(json!({ "channel": "fax" })),
            "invalid_field",
            "channel",
        ),
        (
            "channel number",
            email(json!({ "channel": 1 })),
            "invalid_field",
            "channel",
        ),
        (
            "publish string",
            email(json!({ "publish": "yes" })),
            "invalid_field",
            "publish",
        ),
        (
            "subject missing",
            json!({ "eventType": "E", "text": "t" }),
            "invalid_field",
            "subject",
        ),
        (
            "subject empty",
            email(json!({ "subject": "" })),
            "invalid_field",
            "subject",
        ),
        (
            "subject number",
            email(json!({ "subject": 3 })),
            "invalid_field",
            "subject",
        ),
        (
            "no body part",
            json!({ "eventType": "E", "subject": "s" }),
            "invalid_field",
            "text",
        ),
        (
            "empty body parts",
            email(json!({ "text": "", "html": "" })),
            "invalid_field",
            "text",
        ),
        (
            "text array",
            email(json!({ "text": ["t"] })),
            "invalid_field",
            "text",
        ),
        (
            "html number",
            email(json!({ "html": 12 })),
            "invalid_field",
            "html",
        ),
        (
            "from object",
            email(json!({ "from": {} })),
            "invalid_field",
            "from",
        ),
        (
            "sms without text",
            json!({ "eventType": "E", "channel": "sms" }),
            "invalid_field",
            "text",
        ),
        (
            "sms with html",
            json!({ "eventType": "E", "channel": "sms", "text": "t", "html": "<b>h</b>" }),
            "invalid_field",
            "html",
        ),
        (
            "sms with subject",
            json!({ "eventType": "E", "channel": "sms", "text": "t", "subject": "s" }),
            "invalid_field",
            "subject",
        ),
        (
            "syntax error in subject",
            email(json!({ "subject": "Hi {{ ctx.name" })),
            "template_error",
            "subject",
        ),
        (
            "syntax error in from",
            email(json!({ "from": "{% endif %}" })),
            "template_error",
            "from",
        ),
        (
            "unknown filter in html",
            email(json!({ "html": "<p>{{ ctx.name | shout }}</p>" })),
            "template_error",
            "html",
        ),
        (
            "error while rendering text",
            email(json!({ "text": "{{ 1 + [] }}" })),
            "template_error",
            "text",
        ),
    ];
    for (n, (what, body, code, field)) in cases.iter().enumerate() {
        let name = format!("refused-{n}");
        let (status, answer) = api.put_json(&path(&name), body, &[]).await;
        assert_eq!(status, 400, "{what}: {body}\n{}", pretty(&answer));
        assert_eq!(
            error_of(&answer),
            (Some(*code), Some(*field)),
            "{what}: {body}\n{}",
            pretty(&answer)
        );
        assert!(
            answer["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{what}: {}",
            pretty(&answer)
        );
        let (status, _) = api.get_json(&path(&name)).await;
        assert_eq!(status, 404, "{what}: a refused PUT stored a template");
    }

    // A syntax error is reported with its line.
    let body = email(json!({ "text": "Hello {{ ctx.firstName }},\n\n{% if ctx.vip %}\nwelcome" }));
    let (status, answer) = api.put_json(&path("broken"), &body, &[]).await;
    assert_eq!(status, 400, "{}", pretty(&answer));
    assert_eq!(error_of(&answer), (Some("template_error"), Some("text")));
    let message = answer["error"]["message"].as_str().expect("message");
    assert!(
        message.starts_with("line 3: ") && message.contains("unexpected end of input"),
        "{message}"
    );
    let (status, answer) = api
        .put_json(
            &path("broken"),
            &email(json!({ "html": "<p>\n\n\n{{ x | nope }}</p>" })),
            &[],
        )
        .await;
    assert_eq!(status, 400, "{}", pretty(&answer));
    let message = answer["error"]["message"].as_str().expect("message");
    assert!(message.starts_with("line 4: "), "{message}");
    assert!(message.contains("unknown filter"), "{message}");

    // A refused PUT of an existing template adds no version.
    let (status, _) = api.put_json(&path("kept"), &email(json!({})), &[]).await;
    assert_eq!(status, 201);
    let (status, _) = api
        .put_json(&path("kept"), &email(json!({ "text": "{% for %}" })), &[])
        .await;
    assert_eq!(status, 400);
    let (_, kept) = api.get_json(&path("kept")).await;
    assert_eq!(kept["latestVersion"], 1);

    // Bodies that are not a JSON object.
    for (body, code) in [
        (b"{".to_vec(), "malformed_json"),
        (b"[1]".to_vec(), "malformed_json"),
        (b"".to_vec(), "malformed_json"),
        (vec![b'"', 0xff, b'"'], "invalid_utf8"),
    ] {
        let (status, answer) = api.put_raw(&path("raw"), body.clone(), &[]).await;
        assert_eq!(status, 400, "{body:?}: {}", pretty(&answer));
        assert_eq!(error_of(&answer).0, Some(code), "{body:?}");
    }

    // Names: 1 to 100 of A-Z a-z 0-9 _ . -
    for bad in [
        "bad%20name",
        "%C3%A9t%C3%A9",
        "a%2Fb",
        "semi;colon",
        &"n".repeat(101),
    ] {
        for (status, answer) in [
            api.put_json(&path(bad), &email(json!({})), &[]).await,
            api.get_json(&path(bad)).await,
            api.delete(&path(bad), &[]).await,
        ] {
            assert_eq!(status, 400, "{bad}: {}", pretty(&answer));
            assert_eq!(
                error_of(&answer),
                (Some("invalid_field"), Some("name")),
                "{bad}"
            );
        }
    }
    let longest = "n".repeat(100);
    let (status, answer) = api.put_json(&path(&longest), &email(json!({})), &[]).await;
    assert_eq!(status, 201, "{}", pretty(&answer));

    // Other methods.
    let (status, answer) = api.post_json(&path("kept"), &email(json!({})), &[]).await;
    assert_eq!(status, 405, "{}", pretty(&answer));
    let (status, _) = api.put_json(TEMPLATES, &email(json!({})), &[]).await;
    assert_eq!(status, 405);

    let (_, list) = api.get_json(TEMPLATES).await;
    assert_eq!(names(&list), ["kept", longest.as_str()]);
}

#[tokio::test]
async fn api_keys_and_body_limit_apply() {
    let server = TestServer::start(
        ServerOptions::new(PluginDir::new())
            .api_keys(&["k1"])
            .limits(2048, 1000, 64 * 1024),
    );
    let api = server.api();
    let key = &[("x-api-key", "k1")];
    let body = welcome("s");
    let (status, answer) = api.put_json(&path("t"), &body, &[]).await;
    assert_eq!(status, 401, "{}", pretty(&answer));
    let (status, _) = api.get_json(TEMPLATES).await;
    assert_eq!(status, 401);
    let (status, _) = api.get_json(&path("t")).await;
    assert_eq!(status, 401);
    let (status, _) = api.delete(&path("t"), &[]).await;
    assert_eq!(status, 401);
    let (status, answer) = api.put_json(&path("t"), &body, key).await;
    assert_eq!(status, 201, "{}", pretty(&answer));
    let (status, list) = api.get_json_with(TEMPLATES, key).await;
    assert_eq!(status, 200);
    assert_eq!(names(&list), ["t"]);

    let mut large = welcome("s");
    large["html"] = json!("x".repeat(4096));
    let (status, answer) = api.put_json(&path("t"), &large, key).await;
    assert_eq!(status, 413, "{}", pretty(&answer));
    assert_eq!(error_of(&answer).0, Some("payload_too_large"));
    let (_, t) = api.get_json_with(&path("t"), key).await;
    assert_eq!(t["latestVersion"], 1);

    let (status, answer) = api.delete(&path("t"), key).await;
    assert_eq!(status, 204, "{}", pretty(&answer));
}
