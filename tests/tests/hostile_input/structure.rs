//! Broken structure: truncation, duplicated keys, huge numbers, deep nesting, oversize, XML entity tricks.

use super::bodies::*;
use super::{Corpus, Endpoint, Expect, LOGIN, MAX_BATCH, MAX_BODY, MAX_CTX, PASSWORD};

/// The valid bodies everything else is a variation of: they must pass, or the corpus proves nothing.
pub fn valid_bodies(corpus: &mut Corpus) {
    corpus.add(
        "valid event",
        Endpoint::Event,
        event_with(&[]),
        Expect::Created(1),
    );
    let three = vec![event_with(&[]); 3];
    corpus.add(
        "valid batch",
        Endpoint::Batch,
        batch_of(&three),
        Expect::Created(3),
    );
    let endpoint = corpus.template();
    corpus.add(
        "valid template",
        endpoint,
        template_with(&[]),
        Expect::TemplateCreated,
    );
    let event = soap_event(&[], SOAP_CTX);
    corpus.add(
        "valid PushEvent",
        PUSH_EVENT,
        push_event(&event),
        Expect::SoapOk(1),
    );
    corpus.add(
        "valid PushEvents",
        PUSH_EVENTS,
        push_events(&[event.clone(), event]),
        Expect::SoapOk(2),
    );
}

/// Every prefix of a valid body: malformed (or, cut inside a multi-byte character, not UTF-8).
pub fn truncations(corpus: &mut Corpus) {
    for (endpoint, body) in valid_json_bodies() {
        for cut in 0..body.len() {
            let prefix = &body.as_bytes()[..cut];
            let expect = if std::str::from_utf8(prefix).is_ok() {
                Expect::Body("malformed_json")
            } else {
                Expect::Body("invalid_utf8")
            };
            let endpoint = match endpoint {
                Endpoint::Template(_) => corpus.template(),
                ref other => other.clone(),
            };
            corpus.add(
                format!("truncated at {cut}"),
                endpoint,
                prefix.to_vec(),
                expect,
            );
        }
    }
    let event = soap_event(&[], SOAP_CTX);
    let soap = [
        (PUSH_EVENT, push_event(&event)),
        (PUSH_EVENTS, push_events(&[event.clone(), event])),
    ];
    for (endpoint, body) in soap {
        for cut in 0..body.len() {
            corpus.add(
                format!("truncated SOAP at {cut}"),
                endpoint.clone(),
                body.as_bytes()[..cut].to_vec(),
                Expect::SoapBody("malformed_xml"),
            );
        }
    }
}

/// Known fields given twice are refused; unknown ones are ignored, as unknown fields are.
pub fn duplicated_keys(corpus: &mut Corpus) {
    for (name, value) in base_event() {
        let body = event_with(&[]).replacen('{', &format!("{{\"{name}\":{value},"), 1);
        corpus.add(
            format!("duplicated {name}"),
            Endpoint::Event,
            body.clone(),
            Expect::Body("malformed_json"),
        );
        corpus.add(
            format!("duplicated {name} in a batch event"),
            Endpoint::Batch,
            batch_of(&[event_with(&[]), body]),
            Expect::Body("malformed_json"),
        );
    }
    for name in ["channel", "wishedChannel", "mobilePhone", "expiration"] {
        let value = match name {
            "channel" => "\"email\"",
            "wishedChannel" => "0",
            "mobilePhone" => "\"+33612345678\"",
            _ => "\"2026-12-22T10:00:00Z\"",
        };
        let body = event_with(&[(name, value.to_owned())]).replacen(
            '{',
            &format!("{{\"{name}\":{value},"),
            1,
        );
        corpus.add(
            format!("duplicated {name}"),
            Endpoint::Event,
            body,
            Expect::Body("malformed_json"),
        );
    }
    corpus.add(
        "duplicated unknown field",
        Endpoint::Event,
        event_with(&[("origin", "\"a\"".to_owned())]).replacen('{', "{\"origin\":\"b\",", 1),
        Expect::Created(1),
    );
    for ctx in [
        r#"{"name":"a","name":"b"}"#,
        r#"{"a":{"x":1,"x":2}}"#,
        r#"{"a":[{"k":1,"k":1}]}"#,
        r#"{"Zo\u00e9":1,"Zoé":2}"#,
    ] {
        corpus.refuse_event_field(format!("duplicated ctx key {ctx}"), "ctx", ctx.to_owned());
    }
    corpus.add(
        "duplicated events",
        Endpoint::Batch,
        batch_of(&[event_with(&[])]).replacen(
            '{',
            &format!("{{\"events\":[{}],", event_with(&[])),
            1,
        ),
        Expect::Body("malformed_json"),
    );
    for (name, value) in base_template()
        .into_iter()
        .chain([("publish", "true".to_owned())])
    {
        let endpoint = corpus.template();
        let body = template_with(&[(name, value.clone())]).replacen(
            '{',
            &format!("{{\"{name}\":{value},"),
            1,
        );
        corpus.add(
            format!("duplicated template {name}"),
            endpoint,
            body,
            Expect::Body("malformed_json"),
        );
    }
    // XML: an attribute twice is not well-formed; a second <ctx> would be silently dropped.
    corpus.add(
        "SOAP duplicated attribute",
        PUSH_EVENT,
        push_event(&soap_event(&[], SOAP_CTX).replacen(" type=", " type=\"OTHER\" type=", 1)),
        Expect::SoapBody("malformed_xml"),
    );
    corpus.add(
        "SOAP two ctx",
        PUSH_EVENT,
        push_event(&soap_event(&[], &format!("{SOAP_CTX}{SOAP_CTX}"))),
        soap_field("ctx"),
    );
}

/// Numbers out of every range, where a field wants something else or where ctx holds them.
pub fn huge_numbers(corpus: &mut Corpus) {
    for number in [
        "1e400",
        "-1e400",
        "1e308",
        "99999999999999999999",
        "18446744073709551616",
        "0.5",
        "1.0",
        "-1",
        "2",
        "1E2",
        "0e0",
    ] {
        for name in ["wishedChannel", "type"] {
            corpus.refuse_event_field(format!("{name} {number}"), name, number.to_owned());
        }
        let endpoint = corpus.template();
        corpus.add(
            format!("template publish {number}"),
            endpoint,
            template_with(&[("publish", number.to_owned())]),
            if number.contains("e400") {
                Expect::Body("malformed_json")
            } else {
                field("publish")
            },
        );
    }
    let many_digits = format!("1{}", "0".repeat(10_000));
    // ctx numbers must read back as JSON numbers (f64): beyond that range they would be stored but could
    // never be rendered or returned.
    for (number, ok) in [
        ("1e400", false),
        ("-1e400", false),
        (many_digits.as_str(), false),
        ("123456789012345678901234567890", true),
        ("1e-400", true),
        ("-0", true),
        ("1.7976931348623157e308", true),
    ] {
        let expect = if ok { Expect::Created(1) } else { field("ctx") };
        corpus.add(
            format!("ctx number {}", &number[..number.len().min(30)]),
            Endpoint::Event,
            event_with(&[("ctx", format!("{{\"n\":{number},\"list\":[{number}]}}"))]),
            expect,
        );
    }
    // Unknown fields are skipped unread, whatever they hold.
    corpus.add(
        "unknown field 1e400",
        Endpoint::Event,
        event_with(&[("origin", "1e400".to_owned())]),
        Expect::Created(1),
    );
    for body in [
        "1e400",
        "-0",
        "123",
        "null",
        "true",
        "\"ORDER\"",
        "[]",
        " ",
        "\u{feff}{}",
    ] {
        corpus.add(
            format!("body {body}"),
            Endpoint::Event,
            body,
            Expect::Body("malformed_json"),
        );
        corpus.add(
            format!("batch body {body}"),
            Endpoint::Batch,
            body,
            Expect::Body("malformed_json"),
        );
        let endpoint = corpus.template();
        corpus.add(
            format!("template body {body}"),
            endpoint,
            body,
            Expect::Body("malformed_json"),
        );
    }
}

/// Nesting far beyond any real document.
pub fn deep_nesting(corpus: &mut Corpus) {
    let arrays = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
    let objects = |n: usize| format!("{}1{}", "{\"a\":".repeat(n), "}".repeat(n));
    corpus.refuse_event_field(
        "deep ctx arrays 8000",
        "ctx",
        format!("{{\"a\":{}}}", arrays(8000)),
    );
    corpus.refuse_event_field("deep ctx objects 8000", "ctx", objects(2000));
    corpus.add(
        "deep body 8000",
        Endpoint::Event,
        arrays(8000),
        Expect::Body("malformed_json"),
    );
    corpus.add(
        "deep batch body 8000",
        Endpoint::Batch,
        arrays(8000),
        Expect::Body("malformed_json"),
    );
    let endpoint = corpus.template();
    corpus.add(
        "deep template field",
        endpoint,
        template_with(&[("extra", arrays(8000))]),
        Expect::Body("malformed_json"),
    );
    let endpoint = corpus.template();
    corpus.add(
        "deep template body",
        endpoint,
        objects(5000),
        Expect::Body("malformed_json"),
    );
    for depth in [70, 1000, 8000] {
        let ctx = format!(
            "<ctx>{}x{}</ctx>",
            "<a>".repeat(depth),
            "</a>".repeat(depth)
        );
        corpus.add(
            format!("SOAP deep ctx {depth}"),
            PUSH_EVENT,
            push_event(&soap_event(&[], &ctx)),
            Expect::SoapBody("malformed_xml"),
        );
    }
}

/// Bodies over `max_body_bytes`, fields over their limits, batches over `max_batch_events`.
pub fn oversize(corpus: &mut Corpus) {
    let padding = "x".repeat(MAX_BODY);
    corpus.add(
        "oversize event",
        Endpoint::Event,
        event_with(&[("ctx", format!("{{\"pad\":\"{padding}\"}}"))]),
        Expect::Body("payload_too_large"),
    );
    corpus.add(
        "oversize batch",
        Endpoint::Batch,
        batch_of(&[event_with(&[("ctx", format!("{{\"pad\":\"{padding}\"}}"))])]),
        Expect::Body("payload_too_large"),
    );
    let endpoint = corpus.template();
    corpus.add(
        "oversize template",
        endpoint,
        template_with(&[("text", format!("\"{padding}\""))]),
        Expect::Body("payload_too_large"),
    );
    corpus.add(
        "oversize SOAP",
        PUSH_EVENT,
        push_event(&soap_event(
            &[],
            &format!("<ctx><pad>{padding}</pad></ctx>"),
        )),
        Expect::SoapBody("payload_too_large"),
    );
    let over_ctx = "y".repeat(MAX_CTX);
    corpus.refuse_event_field(
        "ctx over max_ctx_bytes",
        "ctx",
        format!("{{\"pad\":\"{over_ctx}\"}}"),
    );
    corpus.add(
        "SOAP ctx over max_ctx_bytes",
        PUSH_EVENT,
        push_event(&soap_event(
            &[],
            &format!("<ctx><pad>{over_ctx}</pad></ctx>"),
        )),
        soap_field("ctx"),
    );
    for name in ["type", "externalId", "language"] {
        for (chars, ok) in [(255, true), (256, false)] {
            let value = format!("\"{}\"", "é".repeat(chars));
            let expect = if ok { Expect::Created(1) } else { field(name) };
            corpus.add(
                format!("{name} of {chars} characters"),
                Endpoint::Event,
                event_with(&[(name, value)]),
                expect,
            );
        }
    }
    let long_local = format!("\"{}@example.com\"", "a".repeat(65));
    let long_email = format!("\"a@{}.com\"", "b".repeat(260));
    corpus.refuse_event_field("email local part of 65", "email", long_local);
    corpus.refuse_event_field("email of 266", "email", long_email);
    corpus.add(
        "phone of 21 digits",
        Endpoint::Event,
        event_with(&[
            ("channel", "\"sms\"".to_owned()),
            ("mobilePhone", format!("\"+{}\"", "1".repeat(21))),
        ]),
        field("mobilePhone"),
    );
    let too_many = vec![event_with(&[]); MAX_BATCH + 1];
    corpus.add(
        "batch over max_batch_events",
        Endpoint::Batch,
        batch_of(&too_many),
        Expect::Field("batch_too_large", "events".to_owned()),
    );
    let soap_many = vec![soap_event(&[], SOAP_CTX); MAX_BATCH + 1];
    corpus.add(
        "PushEvents over max_batch_events",
        PUSH_EVENTS,
        push_events(&soap_many),
        Expect::SoapBody("batch_too_large"),
    );
    let endpoint = corpus.template();
    corpus.add(
        "eventType of 256",
        endpoint,
        template_with(&[("eventType", format!("\"{}\"", "e".repeat(256)))]),
        field("eventType"),
    );
}

/// The classic XML tricks.
pub fn entity_tricks(corpus: &mut Corpus) {
    let mut laughs = String::from("<!ENTITY lol0 \"lol\">");
    for level in 1..10 {
        let refs = format!("&lol{};", level - 1).repeat(10);
        laughs.push_str(&format!("<!ENTITY lol{level} \"{refs}\">"));
    }
    let with_ctx = |text: &str| push_event(&soap_event(&[], &format!("<ctx><x>{text}</x></ctx>")));
    let with_type = |text: &str| push_event(&soap_event(&[("type", text.to_owned())], SOAP_CTX));
    let refused = [
        (
            "billion laughs",
            format!(
                "<?xml version=\"1.0\"?><!DOCTYPE lolz [{laughs}]>{}",
                with_ctx("&lol9;")
            ),
        ),
        (
            "external entity",
            format!(
                "<!DOCTYPE x [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]>{}",
                with_ctx("&xxe;")
            ),
        ),
        (
            "parameter entity",
            format!(
                "<!DOCTYPE x [<!ENTITY % p SYSTEM \"http://127.0.0.1:1/x\"> %p;]>{}",
                with_ctx("x")
            ),
        ),
        ("undeclared entity", with_ctx("&xxe;")),
        ("entity in attribute", with_type("&xxe;")),
        ("char ref NUL", with_ctx("&#0;")),
        ("char ref x1", with_ctx("&#x1;")),
        ("char ref surrogate", with_ctx("&#xD800;")),
        ("char ref beyond Unicode", with_ctx("&#x110000;")),
        ("char ref huge", with_ctx("&#99999999999999999999;")),
        ("char ref empty", with_ctx("&#;")),
        ("char ref hex empty", with_ctx("&#x;")),
        ("char ref unterminated", with_ctx("&#65")),
        ("char ref NUL in attribute", with_type("A&#0;")),
        ("char ref FFFE", with_ctx("&#xFFFE;")),
        ("raw FFFF", with_ctx("\u{ffff}")),
        ("CDATA unterminated", with_ctx("<![CDATA[abc")),
        (
            "entity after root",
            format!("{}<!ENTITY x \"y\">", with_ctx("x")),
        ),
        ("undeclared prefix", with_ctx("<p:x/>")),
        ("second root", format!("{}<again/>", with_ctx("x"))),
        ("text after root", format!("{}trailing", with_ctx("x"))),
    ];
    for (name, body) in refused {
        corpus.add(
            format!("SOAP {name}"),
            PUSH_EVENT,
            body,
            Expect::SoapBody("malformed_xml"),
        );
    }
    let accepted = [
        ("escaped char ref", with_ctx("&amp;#0;")),
        ("double escaped", with_ctx("&amp;lt;script&amp;gt;")),
        (
            "CDATA markup",
            with_ctx("<![CDATA[<!DOCTYPE x [<!ENTITY y \"z\">]>&y;]]>"),
        ),
        ("comment", with_ctx("a<!-- &xxe; <!DOCTYPE -->b")),
        ("processing instruction", with_ctx("a<?php echo 1; ?>b")),
        (
            "predefined entities",
            with_ctx("&lt;&gt;&amp;&quot;&apos;&#65;&#x42;"),
        ),
    ];
    for (name, body) in accepted {
        corpus.add(format!("SOAP {name}"), PUSH_EVENT, body, Expect::SoapOk(1));
    }
    let token = format!("{LOGIN}/{PASSWORD}");
    corpus.add(
        "SOAP no token",
        PUSH_EVENT,
        push_event(&soap_event(&[], SOAP_CTX)).replace(&token, ""),
        Expect::SoapBody("unauthorized"),
    );
    // Element text is read trimmed (XML pretty-printing puts whitespace around it): still the token.
    corpus.add(
        "SOAP token with CRLF around it",
        PUSH_EVENT,
        push_event(&soap_event(&[], SOAP_CTX))
            .replace(&token, &format!("&#13;&#10;{LOGIN}/{PASSWORD}&#13;&#10;")),
        Expect::SoapOk(1),
    );
    corpus.add(
        "SOAP token with CRLF inside",
        PUSH_EVENT,
        push_event(&soap_event(&[], SOAP_CTX))
            .replace(&token, &format!("{LOGIN}/&#13;&#10;{PASSWORD}")),
        Expect::SoapBody("invalid_credentials"),
    );
    corpus.add(
        "SOAP two events in PushEvent",
        PUSH_EVENT,
        push_event(&format!("{0}{0}", soap_event(&[], SOAP_CTX))),
        soap_field("domEvent"),
    );
}
