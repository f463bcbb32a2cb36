use super::*;

const LIMITS: Limits = Limits {
    max_ctx_bytes: 64,
    max_batch_events: 3,
};

fn single(body: &str) -> Result<NewEvent, InputError> {
    single_event(body.as_bytes(), LIMITS)
}

fn field_of(body: &str) -> (String, Option<String>) {
    let err = single(body).unwrap_err();
    (err.code.as_str().to_owned(), err.field)
}

#[test]
fn a_full_event_is_read_field_by_field() {
    let event = single(
        r#"{"type":"ORDER","email":"a.b+c@example.com","externalId":"x","language":"fr",
                "scheduled":"2026-11-22T10:00:00+01:00","ctx":{"n":1},"unknown":true}"#,
    )
    .unwrap();
    assert_eq!(event.event_type, "ORDER");
    assert_eq!(event.channel, "email");
    assert_eq!(
        event.scheduled_at.unwrap().to_rfc3339(),
        "2026-11-22T09:00:00+00:00"
    );
    assert_eq!(event.ctx.get(), r#"{"n":1}"#);
    let sms =
        single(r#"{"type":"T","wishedChannel":1,"mobilePhone":"+33 6 12 34 56 78"}"#).unwrap();
    assert_eq!(sms.channel, "sms");
}

#[test]
fn each_bad_input_names_its_field() {
    let cases = [
        (r#"{"email":"a@b.co"}"#, "type"),
        (r#"{"type":5,"email":"a@b.co"}"#, "type"),
        (r#"{"type":"T"}"#, "email"),
        (r#"{"type":"T","channel":"sms"}"#, "mobilePhone"),
        (r#"{"type":"T","email":"not-an-email"}"#, "email"),
        (r#"{"type":"T","email":"a b@c.de"}"#, "email"),
        (r#"{"type":"T","email":"a@"}"#, "email"),
        (r#"{"type":"T","email":7}"#, "email"),
        (r#"{"type":"T","email":"a@b.co","ctx":"x"}"#, "ctx"),
        (r#"{"type":"T","email":"a@b.co","ctx":[1]}"#, "ctx"),
        (
            r#"{"type":"T","email":"a@b.co","ctx":{"big":"0123456789012345678901234567890123456789012345678901234567890123"}}"#,
            "ctx",
        ),
        (
            r#"{"type":"T","email":"a@b.co","scheduled":"tomorrow"}"#,
            "scheduled",
        ),
        (
            r#"{"type":"T","email":"a@b.co","channel":"fax"}"#,
            "channel",
        ),
        (
            r#"{"type":"T","email":"a@b.co","wishedChannel":2}"#,
            "wishedChannel",
        ),
    ];
    for (body, field) in cases {
        assert_eq!(
            field_of(body),
            ("invalid_field".to_owned(), Some(field.to_owned())),
            "{body}"
        );
    }
}

#[test]
fn bodies_that_are_not_json_objects_are_refused() {
    assert_eq!(
        single_event(&[0xff, 0xfe], LIMITS).unwrap_err().code,
        "invalid_utf8"
    );
    assert_eq!(single("{").unwrap_err().code, "malformed_json");
    assert_eq!(single("[1]").unwrap_err().code, "malformed_json");
    let twice = single(r#"{"type":"T","email":"a@b.co","type":"U"}"#).unwrap_err();
    assert_eq!(twice.code, "malformed_json");
    assert!(
        twice.message.contains("duplicate field `type`"),
        "{}",
        twice.message
    );
}

#[test]
fn a_batch_is_refused_with_the_path_of_its_first_bad_event() {
    let ok = r#"{"type":"T","email":"a@b.co"}"#;
    let body = format!(r#"{{"events":[{ok},{ok},{{"type":"T","email":"bad"}}]}}"#);
    let err = batch_events(body.as_bytes(), LIMITS).unwrap_err();
    assert_eq!(err.field.as_deref(), Some("events[2].email"));
    let body = format!(r#"{{"events":[{ok},{ok},{ok},{ok}]}}"#);
    assert_eq!(
        batch_events(body.as_bytes(), LIMITS).unwrap_err().code,
        "batch_too_large"
    );
    assert_eq!(
        batch_events(br#"{"events":[]}"#, LIMITS)
            .unwrap_err()
            .field
            .as_deref(),
        Some("events")
    );
    assert_eq!(
        batch_events(br#"{}"#, LIMITS).unwrap_err().field.as_deref(),
        Some("events")
    );
    let body = format!(r#"{{"events":[{ok},{ok}]}}"#);
    assert_eq!(batch_events(body.as_bytes(), LIMITS).unwrap().len(), 2);
}

#[test]
fn ctx_is_kept_as_sent_and_measured_as_sent() {
    let body = r#"{"type":"T","email":"a@b.co","ctx":{ "name": "Zo\u00e9", "tags": [1, 2], "x": {"y": null} }}"#;
    let event = single(body).unwrap();
    assert_eq!(
        event.ctx.get(),
        r#"{ "name": "Zo\u00e9", "tags": [1, 2], "x": {"y": null} }"#
    );
    let no_ctx = single(r#"{"type":"T","email":"a@b.co","ctx":null}"#).unwrap();
    assert_eq!(no_ctx.ctx.get(), "{}");
    // 64 bytes fit the test limit, 65 do not.
    let fits = format!(
        r#"{{"type":"T","email":"a@b.co","ctx":{{"k":"{}"}}}}"#,
        "x".repeat(56)
    );
    assert!(single(&fits).is_ok());
    let over = format!(
        r#"{{"type":"T","email":"a@b.co","ctx":{{"k":"{}"}}}}"#,
        "x".repeat(57)
    );
    let err = single(&over).unwrap_err();
    assert_eq!(err.field.as_deref(), Some("ctx"));
    assert!(err.message.contains("65 bytes"), "{}", err.message);
}

#[test]
fn fields_of_the_wrong_type_are_named_with_the_type_found() {
    let err = single(r#"{"type":["T"],"email":"a@b.co"}"#).unwrap_err();
    assert_eq!(err.message, "`type` must be a string, not an array");
    let err = single(r#"{"type":"T","email":"a@b.co","language":true}"#).unwrap_err();
    assert_eq!(err.message, "`language` must be a string, not a boolean");
    let err = single(r#"{"type":"T","email":"a@b.co","channel":"fax"}"#).unwrap_err();
    assert_eq!(
        err.message,
        r#"`channel` must be "email" or "sms", not "fax""#
    );
    let escaped = single(r#"{"type":"T\u00e9","email":"a@b.co"}"#).unwrap();
    assert_eq!(escaped.event_type, "T\u{e9}");
    let err = single("[1]").unwrap_err();
    assert_eq!(
        (err.code.as_str(), err.message.as_str()),
        (
            "malformed_json",
            "the body must be a JSON object, not an array"
        )
    );
    let ok = r#"{"type":"T","email":"a@b.co"}"#;
    let body = format!(r#"{{"events":[{ok},7]}}"#);
    let err = batch_events(body.as_bytes(), LIMITS).unwrap_err();
    assert_eq!(
        (err.field.as_deref(), err.message.as_str()),
        (
            Some("events[1]"),
            "each event must be an object, not a number"
        )
    );
    // serde would read an array into the fields of a struct by position: refused as not an object.
    for body in [
        r#"[{"type":"T","email":"a@b.co"}]"#,
        r#"["T","email","a@b.co"]"#,
    ] {
        assert_eq!(single(body).unwrap_err().code, "malformed_json", "{body}");
        let err = batch_events(body.as_bytes(), LIMITS).unwrap_err();
        assert_eq!(err.code, "malformed_json", "{body}");
    }
    let body = format!(r#"{{"events":[{ok},["T","email","a@b.co"]]}}"#);
    let err = batch_events(body.as_bytes(), LIMITS).unwrap_err();
    assert_eq!(err.field.as_deref(), Some("events[1]"));
    let err = batch_events(br#"{"events":{"type":"T"}}"#, LIMITS).unwrap_err();
    assert_eq!(err.message, "`events` must be an array, not an object");
}

#[test]
fn nul_is_refused_in_labels_and_other_controls_are_kept() {
    for name in ["type", "externalId", "language"] {
        // Every field once: `type` given here is the one.
        let base = if name == "type" { "" } else { r#""type":"T","# };
        let body = format!(r#"{{{base}"email":"a@b.co","{name}":"a\u0000b"}}"#);
        assert_eq!(single(&body).unwrap_err().field.as_deref(), Some(name));
        let body = format!(r#"{{{base}"email":"a@b.co","{name}":"a\u0001\r\nb"}}"#);
        assert!(single(&body).is_ok(), "{body}");
    }
    for email in ["a\\u200bb@c.de", "\\ufeffa@c.de", "a@c.de\\r\\nBcc: x@y.z"] {
        let body = format!(r#"{{"type":"T","email":"{email}"}}"#);
        assert_eq!(
            single(&body).unwrap_err().field.as_deref(),
            Some("email"),
            "{email}"
        );
    }
}

#[test]
fn ctx_must_read_back_as_json_values() {
    let refused = [
        r#"{"a":"\ud800"}"#,
        r#"{"\udc00":1}"#,
        r#"{"n":1e400}"#,
        r#"{"n":[-1e400]}"#,
        r#"{"k":1,"k":2}"#,
        r#"{"a":{"x":null,"x":null}}"#,
    ];
    let limits = Limits {
        max_ctx_bytes: 1 << 20,
        max_batch_events: 3,
    };
    for ctx in refused {
        let body = format!(r#"{{"type":"T","email":"a@b.co","ctx":{ctx}}}"#);
        let err = single_event(body.as_bytes(), limits).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("ctx"), "{ctx}");
    }
    let deep = format!(r#"{{"a":{}{}}}"#, "[".repeat(8000), "]".repeat(8000));
    let body = format!(r#"{{"type":"T","email":"a@b.co","ctx":{deep}}}"#);
    let err = single_event(body.as_bytes(), limits).unwrap_err();
    assert_eq!(err.field.as_deref(), Some("ctx"));
    for ctx in [
        r#"{"n":123456789012345678901234567890,"m":1e-400}"#,
        r#"{"a":[{"k":1},{"k":2}]}"#,
    ] {
        let body = format!(r#"{{"type":"T","email":"a@b.co","ctx":{ctx}}}"#);
        assert!(single_event(body.as_bytes(), limits).is_ok(), "{ctx}");
    }
}

#[test]
fn parse_object_refuses_a_field_given_twice() {
    let err = parse_object(br#"{"a":1,"b":{"c":1},"a":2}"#).unwrap_err();
    assert_eq!(err.code, "malformed_json");
    assert!(
        err.message.contains("duplicate field `a`"),
        "{}",
        err.message
    );
    assert_eq!(parse_object(br#"{"a":1,"b":2}"#).unwrap().len(), 2);
    assert_eq!(
        parse_object(b"[1]").unwrap_err().message,
        "the body must be a JSON object, not an array"
    );
}

#[test]
fn phone_numbers() {
    assert!(check_phone("+1 (555) 010-9999").is_ok());
    assert!(check_phone("12345").is_err());
    assert!(check_phone("+33abc").is_err());
}

#[test]
fn a_ctx_nested_past_the_depth_limit_is_refused_by_name_in_single_batch_and_object() {
    let limits = Limits {
        max_ctx_bytes: 1 << 20,
        max_batch_events: 10,
    };
    let nested = |levels: usize| format!("{}1{}", "{\"a\":".repeat(levels), "}".repeat(levels));
    let event = |levels: usize| {
        format!(
            r#"{{"type":"T","email":"a@b.co","ctx":{}}}"#,
            nested(levels)
        )
    };
    assert!(single_event(event(MAX_CTX_DEPTH).as_bytes(), limits).is_ok());
    for levels in [MAX_CTX_DEPTH + 1, 8_000] {
        let err = single_event(event(levels).as_bytes(), limits).unwrap_err();
        assert_eq!(
            (err.code, err.field.as_deref()),
            (ErrorCode::InvalidField, Some("ctx"))
        );
        assert!(err.message.contains("32 levels"), "{}", err.message);
        let batch = format!(r#"{{"events":[{},{}]}}"#, event(1), event(levels));
        let err = batch_events(batch.as_bytes(), limits).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("events[1].ctx"));
    }
    let object: Map<String, Value> = serde_json::from_str(&event(MAX_CTX_DEPTH + 1)).unwrap();
    let err = event_object(object, limits).unwrap_err();
    assert_eq!(err.field.as_deref(), Some("ctx"));
}
