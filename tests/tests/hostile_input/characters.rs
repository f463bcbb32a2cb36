//! Every hostile character in every string field, and invalid UTF-8.

use super::bodies::*;
use super::{Corpus, Endpoint, Expect};

/// What the JSON API does with character `c` in the string field `name` (valid JSON, `c` escaped or a
/// character JSON allows unescaped). `type`, `externalId` and `language` are opaque labels stored and
/// returned verbatim, control characters included (ingest_api's hostile_strings), except NUL, which no
/// database text column holds; `ctx` is data, any JSON string goes; addresses, timestamps and the channel
/// have a grammar no control or invisible character belongs to.
pub fn json_expectation(name: &str, c: char, prefix: &str) -> Expect {
    match name {
        "type" | "externalId" | "language" if c == '\0' => field(&format!("{prefix}{name}")),
        "type" | "externalId" | "language" | "ctx value" | "ctx key" => Expect::Created(1),
        _ => field(&format!("{prefix}{name}")),
    }
}

/// The event fields a string can be put in, with the value it varies.
pub const EVENT_STRINGS: [(&str, &str); 10] = [
    ("type", "ORDER"),
    ("email", "ann@example.com"),
    ("mobilePhone", "+33612345678"),
    ("externalId", "x-1"),
    ("language", "fr"),
    ("scheduled", "2026-11-22T10:00:00Z"),
    ("expiration", "2026-12-22T10:00:00Z"),
    ("channel", "email"),
    ("ctx value", "Ann"),
    ("ctx key", "name"),
];

/// The event with `value` (a JSON string literal) in field `name` of [`EVENT_STRINGS`].
pub fn event_with_string(name: &str, value: String) -> String {
    match name {
        "ctx value" => event_with(&[("ctx", format!("{{\"name\":{value},\"n\":1}}"))]),
        "ctx key" => event_with(&[("ctx", format!("{{{value}:\"x\"}}"))]),
        "mobilePhone" => event_with(&[("channel", "\"sms\"".to_owned()), ("mobilePhone", value)]),
        "type" => event_with(&[("type", value)]),
        "email" => event_with(&[("email", value)]),
        "externalId" => event_with(&[("externalId", value)]),
        "language" => event_with(&[("language", value)]),
        "scheduled" => event_with(&[("scheduled", value)]),
        "expiration" => event_with(&[("expiration", value)]),
        "channel" => event_with(&[("channel", value)]),
        other => unreachable!("{other}"),
    }
}

/// Every hostile character in every string field of an event, escaped and raw; a sample in a batch.
pub fn event_control_characters(corpus: &mut Corpus) {
    for (f, (name, base)) in EVENT_STRINGS.iter().enumerate() {
        for (i, c) in hostile_chars().into_iter().enumerate() {
            let value = insert(base, c, i + f);
            for raw in [false, true] {
                let body = event_with_string(name, json_string(&value, raw));
                // A raw C0 control inside a string is not JSON.
                let expect = if raw && (c as u32) < 0x20 {
                    Expect::Body("malformed_json")
                } else {
                    json_expectation(name, c, "")
                };
                let what = format!(
                    "{name} with U+{:04X} ({})",
                    c as u32,
                    if raw { "raw" } else { "escaped" }
                );
                corpus.add(&what, Endpoint::Event, body.clone(), expect.clone());
                if i % 4 == 0 {
                    let batch = batch_of(&[event_with(&[]), body, event_with(&[])]);
                    let expect = match expect {
                        Expect::Created(_) => Expect::Created(3),
                        Expect::Field(code, f) => Expect::Field(code, format!("events[1].{f}")),
                        other => other,
                    };
                    corpus.add(format!("batch: {what}"), Endpoint::Batch, batch, expect);
                }
            }
        }
    }
    // Header and command injection through addresses.
    for email in [
        "ann@example.com\r\nBcc: eve@example.com",
        "ann@example.com\nRCPT TO:<eve@example.com>",
        "ann@example.com>\r\nDATA",
        "\r\nann@example.com",
        "ann@exa\rmple.com",
        "ann@example.com\u{0}eve@example.com",
    ] {
        corpus.refuse_event_field(
            format!("email injection {email:?}"),
            "email",
            json_string(email, false),
        );
    }
    for phone in [
        "+33612345678\r\n",
        "+336\n12345678",
        "+33612345678\r\nATD112",
    ] {
        corpus.add(
            format!("phone injection {phone:?}"),
            Endpoint::Event,
            event_with(&[
                ("channel", "\"sms\"".to_owned()),
                ("mobilePhone", json_string(phone, false)),
            ]),
            field("mobilePhone"),
        );
    }
}

/// What `PUT /api/v1/templates/{name}` does with character `c` in part `name`: `eventType` follows the
/// events' `type` (NUL only refused); `from` and `subject` are header lines, no control character but tab
/// belongs in them (CR/LF would inject headers); `text` and `html` are bodies: tab, LF and CR only.
pub fn template_expectation(name: &str, c: char) -> Expect {
    let refused = match name {
        "eventType" => c == '\0',
        "from" | "subject" => c.is_control() && c != '\t',
        "text" | "html" => c.is_control() && !matches!(c, '\t' | '\n' | '\r'),
        _ => true,
    };
    if refused {
        field(name)
    } else {
        Expect::TemplateCreated
    }
}

pub fn template_control_characters(corpus: &mut Corpus) {
    let parts = [
        ("eventType", "ORDER"),
        ("channel", "email"),
        ("from", "Shop <shop@example.com>"),
        ("subject", "Hello dear customer {{ ctx.name }}"),
        ("text", "Hello Zoé"),
        ("html", "<p>Hello</p>"),
    ];
    for (f, (name, base)) in parts.iter().enumerate() {
        for (i, c) in hostile_chars().into_iter().enumerate() {
            let value = insert(base, c, i + f);
            for raw in [false, true] {
                let expect = if raw && (c as u32) < 0x20 {
                    Expect::Body("malformed_json")
                } else {
                    template_expectation(name, c)
                };
                let endpoint = corpus.template();
                corpus.add(
                    format!("template {name} with U+{:04X} (raw: {raw})", c as u32),
                    endpoint,
                    template_with(&[(name, json_string(&value, raw))]),
                    expect,
                );
            }
        }
    }
    for (name, value) in [
        ("from", "Shop <shop@example.com>\r\nBcc: eve@example.com"),
        ("subject", "Hi\r\nBcc: eve@example.com"),
        ("subject", "Hi\nContent-Type: text/html"),
    ] {
        let endpoint = corpus.template();
        corpus.add(
            format!("template header injection in {name}"),
            endpoint,
            template_with(&[(name, json_string(value, false))]),
            field(name),
        );
    }
    // The name in the path: percent-encoded hostile bytes decode to what `check_name` refuses.
    for path_name in [
        "a%0D%0Ab",
        "a%00b",
        "a%0Ab",
        "..%2Fetc",
        "a%20b",
        "%C3%A9t%C3%A9",
        &"n".repeat(101),
    ] {
        corpus.add(
            format!("template name {path_name}"),
            Endpoint::Template(path_name.to_owned()),
            template_with(&[]),
            field("name"),
        );
    }
}

/// What the SOAP endpoint does with character `c` in attribute or ctx `name`: characters XML 1.0 forbids
/// are a malformed document, written raw or as a character reference; the others get the JSON API's
/// answer (the SOAP endpoint validates the same object).
pub fn soap_expectation(name: &str, c: char) -> Expect {
    if xml_forbids(c) {
        return Expect::SoapBody("malformed_xml");
    }
    match json_expectation(name, c, "") {
        Expect::Created(n) => Expect::SoapOk(n),
        Expect::Field(_, field) => Expect::SoapField(field),
        other => other,
    }
}

pub fn soap_control_characters(corpus: &mut Corpus) {
    let fields = [
        ("type", "ORDER"),
        ("email", "ann@example.com"),
        ("mobilePhone", "+33612345678"),
        ("externalId", "x-1"),
        ("language", "fr"),
        ("wishedChannel", "0"),
        ("scheduled", "2026-11-22 10:00:00.000Z"),
        ("expiration", "2026-12-22 10:00:00.000Z"),
        ("ctx value", "Ann"),
        ("ctx attribute", "Ann"),
    ];
    for (name, base) in fields {
        for (i, c) in hostile_chars().into_iter().enumerate() {
            // In the middle: Adobe date-times are trimmed, so an edge would be whitespace around them.
            let value = insert(base, c, 1);
            for raw in [false, true] {
                let text = xml_text(&value, raw);
                let event = match name {
                    "ctx value" => soap_event(&[], &format!("<ctx><name>{text}</name></ctx>")),
                    "ctx attribute" => soap_event(&[], &format!("<ctx name=\"{text}\"/>")),
                    "mobilePhone" => soap_event(
                        &[("wishedChannel", "1".to_owned()), ("mobilePhone", text)],
                        SOAP_CTX,
                    ),
                    "type" => soap_event(&[("type", text)], SOAP_CTX),
                    "email" => soap_event(&[("email", text)], SOAP_CTX),
                    "externalId" => soap_event(&[("externalId", text)], SOAP_CTX),
                    "language" => soap_event(&[("language", text)], SOAP_CTX),
                    "wishedChannel" => soap_event(&[("wishedChannel", text)], SOAP_CTX),
                    "scheduled" => soap_event(&[("scheduled", text)], SOAP_CTX),
                    "expiration" => soap_event(&[("expiration", text)], SOAP_CTX),
                    other => unreachable!("{other}"),
                };
                let json_name = match name {
                    "ctx attribute" => "ctx value",
                    other => other,
                };
                let expect = soap_expectation(json_name, c);
                let what = format!("SOAP {name} with U+{:04X} (raw: {raw})", c as u32);
                if i % 3 == 0 {
                    let good = soap_event(&[], SOAP_CTX);
                    let expect = match &expect {
                        Expect::SoapOk(_) => Expect::SoapOk(2),
                        Expect::SoapField(f) => Expect::SoapField(format!("events[1].{f}")),
                        other => other.clone(),
                    };
                    corpus.add(
                        format!("{what} in PushEvents"),
                        PUSH_EVENTS,
                        push_events(&[good, event.clone()]),
                        expect,
                    );
                }
                corpus.add(what, PUSH_EVENT, push_event(&event), expect);
            }
        }
    }
    for email in [
        "ann@example.com&#13;&#10;Bcc: eve@example.com",
        "ann@example.com&#10;RCPT TO:&lt;eve@example.com>",
    ] {
        corpus.add(
            format!("SOAP email injection {email}"),
            PUSH_EVENT,
            push_event(&soap_event(&[("email", email.to_owned())], SOAP_CTX)),
            soap_field("email"),
        );
    }
}

/// Invalid UTF-8 sequences inside string values.
pub fn invalid_utf8(corpus: &mut Corpus) {
    let sequences: [&[u8]; 8] = [
        b"\xff",
        b"\xfe",
        b"\xc0\x80",
        b"\x80",
        b"\xed\xa0\x80",
        b"\xf0\x9f\x98",
        b"\xf4\x90\x80\x80",
        b"\xe2\x82",
    ];
    for (endpoint, body) in valid_json_bodies() {
        // Inside every string value: after each opening quote of a value.
        let positions: Vec<usize> = body.match_indices(":\"").map(|(i, _)| i + 2).collect();
        for at in positions {
            for sequence in sequences {
                let bytes = spliced(&body, at, sequence);
                let endpoint = match endpoint {
                    Endpoint::Template(_) => corpus.template(),
                    ref other => other.clone(),
                };
                corpus.add(
                    format!("invalid UTF-8 {sequence:x?} at {at}"),
                    endpoint,
                    bytes,
                    Expect::Body("invalid_utf8"),
                );
            }
        }
    }
    let body = push_event(&soap_event(&[], SOAP_CTX));
    let positions: Vec<usize> = body.match_indices("=\"").map(|(i, _)| i + 2).collect();
    for at in positions {
        for sequence in sequences {
            let bytes = spliced(&body, at, sequence);
            corpus.add(
                format!("SOAP invalid UTF-8 {sequence:x?} at {at}"),
                PUSH_EVENT,
                bytes,
                Expect::SoapBody("malformed_xml"),
            );
        }
    }
    // Escapes that are valid JSON syntax but no character: lone surrogates.
    for escape in ["\\ud800", "\\udfff", "\\ud800\\u0041", "\\udc00\\ud800"] {
        let value = format!("\"a{escape}b\"");
        for name in ["type", "email"] {
            corpus.refuse_event_field(
                format!("lone surrogate {escape} in {name}"),
                name,
                value.clone(),
            );
        }
        corpus.refuse_event_field(
            format!("lone surrogate {escape} in ctx"),
            "ctx",
            format!("{{\"name\":{value}}}"),
        );
        corpus.refuse_event_field(
            format!("lone surrogate {escape} in a ctx key"),
            "ctx",
            format!("{{{value}:1}}"),
        );
        let endpoint = corpus.template();
        corpus.add(
            format!("lone surrogate {escape} in a template"),
            endpoint,
            template_with(&[("text", value)]),
            Expect::Body("malformed_json"),
        );
    }
}

/// `body`'s bytes with `sequence` inserted at byte `at`.
fn spliced(body: &str, at: usize, sequence: &[u8]) -> Vec<u8> {
    let mut bytes = body.as_bytes()[..at].to_vec();
    bytes.extend_from_slice(sequence);
    bytes.extend_from_slice(&body.as_bytes()[at..]);
    bytes
}
