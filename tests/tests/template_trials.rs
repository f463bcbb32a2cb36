//! Seeds, previews and proofs over the HTTP API (issue 18, docs/api.md "Seeds, previews and proofs")
//! against the real server: the seed list replaced and validated field by field (per channel), a
//! preview for a seed, for an inline event and of an older version, refused with the field at fault,
//! bounded by delivery's render limits; a proof on an instance without the channel refused; a proof
//! over SMS through the real SMS test gateway.

use message_center_tests::*;
use serde_json::{Value, json};

async fn put_seeds(server: &TestServer, name: &str, body: &Value) -> (u16, Value) {
    server
        .api()
        .put_json(&format!("/api/v1/templates/{name}/seeds"), body, &[])
        .await
}

async fn preview(server: &TestServer, name: &str, body: &Value) -> (u16, Value) {
    server
        .post_json(&format!("/api/v1/templates/{name}/preview"), body, &[])
        .await
}

fn assert_refused(status: u16, answer: &Value, expected_status: u16, field: &str) {
    assert_eq!(status, expected_status, "{}", pretty(answer));
    assert_eq!(answer["error"]["field"], field, "{}", pretty(answer));
}

#[tokio::test]
async fn sqlite_seeds_are_validated_and_previews_render_with_delivery_limits() {
    let server = TestServer::start(
        ServerOptions::new(PluginDir::new()).extra_toml("[templates]\nmax_output_bytes = 4096\n"),
    );
    // Seeds need a template (its channel says what an address is).
    let (status, answer) = put_seeds(&server, "welcome", &json!({ "seeds": [] })).await;
    assert_eq!(status, 404, "{}", pretty(&answer));
    server
        .put_template(
            "welcome",
            &json!({
                "eventType": "WELCOME",
                "subject": "Hi {{ ctx.firstName }}",
                "text": "Hello {{ ctx.firstName }} <{{ email }}>{% for i in range(ctx.repeat or 0) %}0123456789{% endfor %}",
                "html": "<b>{{ ctx.firstName }}</b>",
            }),
        )
        .await;
    for (body, field) in [
        (json!({}), "seeds"),
        (json!({ "seeds": {} }), "seeds"),
        (
            json!({ "seeds": [{ "address": "a@example.com" }] }),
            "seeds[0].label",
        ),
        (
            json!({ "seeds": [{ "label": "a", "address": "not an address" }] }),
            "seeds[0].address",
        ),
        (
            json!({ "seeds": [{ "label": "a", "address": "+33612345678" }] }),
            "seeds[0].address",
        ),
        (
            json!({ "seeds": [{ "label": "a", "address": "a@example.com", "ctx": "x" }] }),
            "seeds[0].ctx",
        ),
        (
            json!({ "seeds": [{ "label": "a", "address": "a@example.com" }, { "label": "a", "address": "b@example.com" }] }),
            "seeds[1].label",
        ),
    ] {
        let (status, answer) = put_seeds(&server, "welcome", &body).await;
        assert_refused(status, &answer, 400, field);
    }
    let seeds = json!({ "seeds": [
        { "label": "ann", "address": "ann@example.com", "ctx": { "firstName": "Ann" } },
        { "label": "huge", "address": "huge@example.com", "ctx": { "firstName": "Huge", "repeat": 1000 } },
    ]});
    let (status, answer) = put_seeds(&server, "welcome", &seeds).await;
    assert_eq!(status, 200, "{}", pretty(&answer));
    let (status, listed) = server.get_json("/api/v1/templates/welcome/seeds").await;
    assert_eq!(status, 200);
    assert_eq!(listed["seeds"], seeds["seeds"]);

    // For a seed: its ctx, and its address as `email`.
    let (status, answer) = preview(&server, "welcome", &json!({ "seed": "ann" })).await;
    assert_eq!(status, 200, "{}", pretty(&answer));
    assert_eq!(answer["version"], 1);
    assert_eq!(answer["seed"], "ann");
    assert_eq!(answer["rendered"]["subject"], "Hi Ann");
    assert_eq!(answer["rendered"]["text"], "Hello Ann <ann@example.com>");
    assert_eq!(answer["rendered"]["html"], "<b>Ann</b>");
    // For an inline event, HTML escaped as delivery escapes it; of an older version.
    server
        .put_template(
            "welcome",
            &json!({ "eventType": "WELCOME", "subject": "v2 {{ ctx.firstName }}", "text": "two", "publish": false }),
        )
        .await;
    let (status, answer) = preview(
        &server,
        "welcome",
        &json!({ "version": 1, "event": { "email": "x@example.com", "ctx": { "firstName": "<i>X</i>" } } }),
    )
    .await;
    assert_eq!(status, 200, "{}", pretty(&answer));
    assert_eq!(answer["version"], 1);
    assert_eq!(answer["seed"], Value::Null);
    assert_eq!(
        answer["rendered"]["html"],
        "<b>&lt;i&gt;X&lt;&#x2f;i&gt;</b>"
    );
    let (_, latest) = preview(&server, "welcome", &json!({ "seed": "ann" })).await;
    assert_eq!(latest["version"], 2);
    assert_eq!(latest["rendered"]["subject"], "v2 Ann");
    assert_eq!(latest["rendered"]["html"], Value::Null);

    // Refusals name the field.
    for (body, field) in [
        (json!({}), "seed"),
        (json!({ "seed": "ann", "event": {} }), "event"),
        (json!({ "seed": "nobody" }), "seed"),
        (json!({ "seed": "ann", "version": 9 }), "version"),
        (json!({ "seed": "ann", "version": 0 }), "version"),
        (json!({ "event": { "ctx": [] } }), "event.ctx"),
        (json!({ "event": { "email": 3 } }), "event.email"),
    ] {
        let (status, answer) = preview(&server, "welcome", &body).await;
        assert_refused(status, &answer, 400, field);
    }
    let (status, answer) = preview(&server, "nope", &json!({ "seed": "ann" })).await;
    assert_eq!(status, 404, "{}", pretty(&answer));
    // Delivery's limits: 10 000 bytes of text for this seed is over `max_output_bytes`.
    let (status, answer) =
        preview(&server, "welcome", &json!({ "version": 1, "seed": "huge" })).await;
    assert_refused(status, &answer, 400, "text");
    assert_eq!(answer["error"]["code"], "template_error");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("max_output_bytes"),
        "{}",
        pretty(&answer)
    );
    // This instance has no email channel: a proof is refused, and nothing is recorded.
    let (status, answer) = server
        .post_json(
            "/api/v1/templates/welcome/proof",
            &json!({ "seed": "ann" }),
            &[],
        )
        .await;
    assert_eq!(status, 422, "{}", pretty(&answer));
    assert_eq!(answer["error"]["code"], "channel_not_configured");
    let (status, answer) = server
        .post_json("/api/v1/templates/welcome/proof", &json!({}), &[])
        .await;
    assert_refused(status, &answer, 400, "seed");
    let (_, proofs) = server.get_json("/api/v1/templates/welcome/proofs").await;
    assert_eq!(proofs["proofs"], json!([]));
}

#[tokio::test]
async fn sqlite_an_sms_proof_goes_through_the_sms_gateway() {
    let gateway = SmsGateway::start();
    let server =
        TestServer::start(ServerOptions::new(PluginDir::new()).sms_channel(gateway.port()));
    server
        .put_template(
            "code",
            &json!({ "eventType": "OTP", "channel": "sms", "text": "Your code is {{ ctx.code }}" }),
        )
        .await;
    let (status, answer) = put_seeds(
        &server,
        "code",
        &json!({ "seeds": [{ "label": "phone", "address": "+33612345678", "ctx": { "code": "4711" } }] }),
    )
    .await;
    assert_eq!(status, 200, "{}", pretty(&answer));
    let (status, proof) = server
        .post_json(
            "/api/v1/templates/code/proof",
            &json!({ "seed": "phone" }),
            &[],
        )
        .await;
    assert_eq!(status, 201, "{}", pretty(&proof));
    assert_eq!(proof["proof"]["channel"], "sms");
    let requests = gateway.wait_for_requests(1, secs(30)).await;
    assert_eq!(requests[0]["to"], "+33612345678");
    assert_eq!(requests[0]["text"], "Your code is 4711");
    assert_eq!(requests[0]["eventId"], Value::Null, "a proof is no event");
    let (status, stats) = server.get_json("/api/v1/stats").await;
    assert_eq!(status, 200);
    assert_eq!(
        stats.pointer("/queues/realtime/depth"),
        Some(&json!(0)),
        "{}",
        pretty(&stats)
    );
}
