//! A hostile-input corpus (issue #15): several thousand bodies, generated here deterministically, sent to
//! `POST /api/v1/events`, `POST /api/v1/events/batch`, `PUT /api/v1/templates/{name}` and the Adobe SOAP
//! endpoint (`PushEvent`, `PushEvents`) of one real server per backend: malformed and truncated JSON and
//! XML, deep nesting, huge numbers, invalid UTF-8, duplicated keys, oversize bodies and fields, every
//! control character in every string field, CR/LF in addresses and headers, entity tricks.
//!
//! Each body's answer is predicted exactly (the rules are docs/api.md "Input rules"):
//! - JSON: a 4xx whose `error` names the field (`error.field`) or the body (`malformed_json`,
//!   `invalid_utf8`, `payload_too_large`), or 201 for the bodies that are valid after all;
//! - SOAP: a `SOAP-ENV:Client` fault (HTTP 500 as SOAP 1.1 and Adobe Campaign answer faults, 413 for a body
//!   over the size limit) whose `faultstring` names the field (``invalid field `email` ``) or whose
//!   `detail` names what is wrong with the body (`malformed_xml`…), or 200 with one `plId` per event.
//!
//! Never a 5xx (beyond SOAP's fault status), a `SOAP-ENV:Server` fault, a transport error or a hang. After
//! the corpus the server is healthy, its RSS is bounded, and nothing is half-written: the events stored
//! are exactly the 201/200 answers times their events, the templates exactly the 201 answers.

use std::collections::BTreeMap;
use std::time::Duration;

use message_center_tests::*;
use serde_json::Value;

const LOGIN: &str = "mc";
const PASSWORD: &str = "s3cret-pw";
const ROUTER: &str = "/nl/jsp/soaprouter.jsp";
const EVENTS: &str = "/api/v1/events";
const BATCH: &str = "/api/v1/events/batch";

/// `[server]` limits of the server under test.
const MAX_BODY: usize = 65_536;
const MAX_BATCH: usize = 20;
const MAX_CTX: usize = 20_000;
/// The server's resident memory after the corpus stays under this.
const MAX_RSS_KB: u64 = 300 * 1024;
/// One answer may take this long (the machine is shared; a hang is far longer).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(20);

/// Cases whose expectation comes from the ctx depth limit another branch of issue #15 adds
/// (`host/src/ingest/validate.rs`, `host/src/soap/ctx.rs`): a ctx nested 8,000 levels deep is refused with
/// 400 naming `ctx`. Listed here so that a failure of these alone is recognised as "not merged yet".
const AWAITING_DEPTH_LIMIT: &[&str] = &["deep ctx arrays 8000", "deep ctx objects 8000"];

/// Where a body goes.
#[derive(Clone, Debug)]
enum Endpoint {
    Event,
    Batch,
    Template(String),
    /// The SOAP router with this SOAPAction.
    Soap(&'static str),
}

/// What the answer must be.
#[derive(Clone, Debug)]
enum Expect {
    /// 201 with this many events stored.
    Created(u64),
    /// 201: a new template.
    TemplateCreated,
    /// 4xx, `error.code` and `error.field`.
    Field(&'static str, String),
    /// 4xx, `error.code`, no field: the body is at fault.
    Body(&'static str),
    /// 200 with this many `plId`s.
    SoapOk(u64),
    /// A client fault naming the field.
    SoapField(String),
    /// A client fault with this `detail`.
    SoapBody(&'static str),
}

struct Case {
    name: String,
    endpoint: Endpoint,
    body: Vec<u8>,
    expect: Expect,
}

/// The corpus, built up by the generators below.
#[derive(Default)]
struct Corpus {
    cases: Vec<Case>,
    templates: usize,
}

impl Corpus {
    fn add(
        &mut self,
        name: impl Into<String>,
        endpoint: Endpoint,
        body: impl Into<Vec<u8>>,
        expect: Expect,
    ) {
        self.cases.push(Case {
            name: name.into(),
            endpoint,
            body: body.into(),
            expect,
        });
    }

    /// A template endpoint with a name no other case uses (so that a valid body answers 201).
    fn template(&mut self) -> Endpoint {
        self.templates += 1;
        Endpoint::Template(format!("hostile-{}", self.templates))
    }
}

// ---------------------------------------------------------------------------------------------------------
// Characters
// ---------------------------------------------------------------------------------------------------------

/// Every C0 control, DEL, every C1 control, and the invisible characters that pass for nothing.
fn hostile_chars() -> Vec<char> {
    (0u32..0x20)
        .chain([0x7f])
        .chain(0x80..0xa0)
        .chain([0x2028, 0x2029, 0xfeff, 0x200b])
        .map(|n| char::from_u32(n).expect("a char"))
        .collect()
}

/// XML 1.0 allows these controls only: tab, LF, CR.
fn xml_forbids(c: char) -> bool {
    (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r')
}

/// `base` with `c` inserted at the start, the middle or the end (by `position` % 3).
fn insert(base: &str, c: char, position: usize) -> String {
    let at = match position % 3 {
        0 => 0,
        1 => base.len() / 2,
        _ => base.len(),
    };
    format!("{}{c}{}", &base[..at], &base[at..])
}

/// `s` as a JSON string literal, with `c` written raw (`raw`) or as a `\u` escape.
fn json_string(s: &str, raw: bool) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if !raw && (c.is_control() || !c.is_ascii()) => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `s` as XML attribute or text content: `<&'"` escaped, and `c` as a character reference unless `raw`.
fn xml_text(s: &str, raw: bool) -> String {
    let mut out = String::new();
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            c if !raw && (c.is_control() || !c.is_ascii()) => {
                out.push_str(&format!("&#x{:X};", c as u32))
            }
            c => out.push(c),
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------------------
// Bodies
// ---------------------------------------------------------------------------------------------------------

/// The JSON event's fields, each its JSON text, in order.
fn base_event() -> Vec<(&'static str, String)> {
    vec![
        ("type", "\"ORDER\"".to_owned()),
        ("email", "\"ann@example.com\"".to_owned()),
        ("externalId", "\"x-1\"".to_owned()),
        ("language", "\"fr\"".to_owned()),
        ("scheduled", "\"2026-11-22T10:00:00Z\"".to_owned()),
        ("ctx", r#"{"name":"Zoé","n":1}"#.to_owned()),
    ]
}

/// An event object with `set` replacing or adding fields.
fn event_with(set: &[(&'static str, String)]) -> String {
    let mut fields = base_event();
    for (name, value) in set {
        match fields.iter_mut().find(|(n, _)| n == name) {
            Some(field) => field.1 = value.clone(),
            None => fields.push((name, value.clone())),
        }
    }
    let inner: Vec<String> = fields.iter().map(|(n, v)| format!("\"{n}\":{v}")).collect();
    format!("{{{}}}", inner.join(","))
}

fn batch_of(events: &[String]) -> String {
    format!("{{\"events\":[{}]}}", events.join(","))
}

fn base_template() -> Vec<(&'static str, String)> {
    vec![
        ("eventType", "\"ORDER\"".to_owned()),
        ("channel", "\"email\"".to_owned()),
        ("from", "\"Shop <shop@example.com>\"".to_owned()),
        (
            "subject",
            "\"Hello dear customer {{ ctx.name }}\"".to_owned(),
        ),
        ("text", "\"Hello Zoé\"".to_owned()),
        ("html", "\"<p>Hello</p>\"".to_owned()),
    ]
}

fn template_with(set: &[(&'static str, String)]) -> String {
    let mut fields = base_template();
    for (name, value) in set {
        match fields.iter_mut().find(|(n, _)| n == name) {
            Some(field) => field.1 = value.clone(),
            None => fields.push((name, value.clone())),
        }
    }
    let inner: Vec<String> = fields.iter().map(|(n, v)| format!("\"{n}\":{v}")).collect();
    format!("{{{}}}", inner.join(","))
}

/// The attributes of the SOAP event element, each its escaped XML text.
fn base_soap_attributes() -> Vec<(&'static str, String)> {
    vec![
        ("type", "ORDER".to_owned()),
        ("email", "ann@example.com".to_owned()),
        ("externalId", "x-1".to_owned()),
        ("language", "fr".to_owned()),
        ("wishedChannel", "0".to_owned()),
        ("scheduled", "2026-11-22 10:00:00.000Z".to_owned()),
    ]
}

/// An `<rtEvent>` with `set` replacing or adding attributes and `ctx` as the content of its `<ctx>`.
fn soap_event(set: &[(&'static str, String)], ctx: &str) -> String {
    let mut attributes = base_soap_attributes();
    for (name, value) in set {
        match attributes.iter_mut().find(|(n, _)| n == name) {
            Some(attribute) => attribute.1 = value.clone(),
            None => attributes.push((name, value.clone())),
        }
    }
    let attributes: String = attributes
        .iter()
        .map(|(n, v)| format!(" {n}=\"{v}\""))
        .collect();
    format!("<rtEvent{attributes}>{ctx}</rtEvent>")
}

const SOAP_CTX: &str = "<ctx><name>Zoé</name><orderId>A-1</orderId></ctx>";

fn envelope(method: &str, parameter: &str) -> String {
    format!(
        r#"<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:urn="urn:nms:rtEvent"><soapenv:Body><urn:{method}><urn:sessiontoken>{LOGIN}/{PASSWORD}</urn:sessiontoken>{parameter}</urn:{method}></soapenv:Body></soapenv:Envelope>"#
    )
}

fn push_event(event: &str) -> String {
    envelope(
        "PushEvent",
        &format!("<urn:domEvent>{event}</urn:domEvent>"),
    )
}

fn push_events(events: &[String]) -> String {
    envelope(
        "PushEvents",
        &format!(
            "<urn:domEventCollection><Events>{}</Events></urn:domEventCollection>",
            events.concat()
        ),
    )
}

const PUSH_EVENT: Endpoint = Endpoint::Soap("nms:rtEvent#PushEvent");
const PUSH_EVENTS: Endpoint = Endpoint::Soap("nms:rtEvent#PushEvents");

fn field(name: &str) -> Expect {
    Expect::Field("invalid_field", name.to_owned())
}

fn soap_field(name: &str) -> Expect {
    Expect::SoapField(name.to_owned())
}

// ---------------------------------------------------------------------------------------------------------
// Generators
// ---------------------------------------------------------------------------------------------------------

/// The valid bodies everything else is a variation of: they must pass, or the corpus proves nothing.
fn valid_bodies(corpus: &mut Corpus) {
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
fn truncations(corpus: &mut Corpus) {
    let json = [
        (Endpoint::Event, event_with(&[])),
        (
            Endpoint::Batch,
            batch_of(&[event_with(&[]), event_with(&[])]),
        ),
        (Endpoint::Template(String::new()), template_with(&[])),
    ];
    for (endpoint, body) in json {
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

/// What the JSON API does with character `c` in the string field `name` (valid JSON, `c` escaped or a
/// character JSON allows unescaped). `type`, `externalId` and `language` are opaque labels stored and
/// returned verbatim, control characters included (ingest_api's hostile_strings), except NUL, which no
/// database text column holds; `ctx` is data, any JSON string goes; addresses, timestamps and the channel
/// have a grammar no control or invisible character belongs to.
fn json_expectation(name: &str, c: char, prefix: &str) -> Expect {
    match name {
        "type" | "externalId" | "language" if c == '\0' => field(&format!("{prefix}{name}")),
        "type" | "externalId" | "language" | "ctx value" | "ctx key" => Expect::Created(1),
        _ => field(&format!("{prefix}{name}")),
    }
}

/// The event fields a string can be put in, with the value it varies.
const EVENT_STRINGS: [(&str, &str); 10] = [
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
fn event_with_string(name: &str, value: String) -> String {
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
fn event_control_characters(corpus: &mut Corpus) {
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
        corpus.add(
            format!("email injection {email:?}"),
            Endpoint::Event,
            event_with(&[("email", json_string(email, false))]),
            field("email"),
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
fn template_expectation(name: &str, c: char) -> Expect {
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

fn template_control_characters(corpus: &mut Corpus) {
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
fn soap_expectation(name: &str, c: char) -> Expect {
    if xml_forbids(c) {
        return Expect::SoapBody("malformed_xml");
    }
    match json_expectation(name, c, "") {
        Expect::Created(n) => Expect::SoapOk(n),
        Expect::Field(_, field) => Expect::SoapField(field),
        other => other,
    }
}

fn soap_control_characters(corpus: &mut Corpus) {
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
fn invalid_utf8(corpus: &mut Corpus) {
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
    let json = [
        (Endpoint::Event, event_with(&[])),
        (
            Endpoint::Batch,
            batch_of(&[event_with(&[]), event_with(&[])]),
        ),
        (Endpoint::Template(String::new()), template_with(&[])),
    ];
    for (endpoint, body) in json {
        // Inside every string value: after each opening quote of a value.
        let positions: Vec<usize> = body.match_indices(":\"").map(|(i, _)| i + 2).collect();
        for at in positions {
            for sequence in sequences {
                let mut bytes = body.as_bytes()[..at].to_vec();
                bytes.extend_from_slice(sequence);
                bytes.extend_from_slice(&body.as_bytes()[at..]);
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
            let mut bytes = body.as_bytes()[..at].to_vec();
            bytes.extend_from_slice(sequence);
            bytes.extend_from_slice(&body.as_bytes()[at..]);
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
        corpus.add(
            format!("lone surrogate {escape} in type"),
            Endpoint::Event,
            event_with(&[("type", value.clone())]),
            field("type"),
        );
        corpus.add(
            format!("lone surrogate {escape} in email"),
            Endpoint::Event,
            event_with(&[("email", value.clone())]),
            field("email"),
        );
        corpus.add(
            format!("lone surrogate {escape} in ctx"),
            Endpoint::Event,
            event_with(&[("ctx", format!("{{\"name\":{value}}}"))]),
            field("ctx"),
        );
        corpus.add(
            format!("lone surrogate {escape} in a ctx key"),
            Endpoint::Event,
            event_with(&[("ctx", format!("{{{value}:1}}"))]),
            field("ctx"),
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

/// Known fields given twice are refused; unknown ones are ignored, as unknown fields are.
fn duplicated_keys(corpus: &mut Corpus) {
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
        corpus.add(
            format!("duplicated ctx key {ctx}"),
            Endpoint::Event,
            event_with(&[("ctx", ctx.to_owned())]),
            field("ctx"),
        );
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
fn huge_numbers(corpus: &mut Corpus) {
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
        corpus.add(
            format!("wishedChannel {number}"),
            Endpoint::Event,
            event_with(&[("wishedChannel", number.to_owned())]),
            field("wishedChannel"),
        );
        corpus.add(
            format!("type {number}"),
            Endpoint::Event,
            event_with(&[("type", number.to_owned())]),
            field("type"),
        );
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
fn deep_nesting(corpus: &mut Corpus) {
    let arrays = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
    let objects = |n: usize| format!("{}1{}", "{\"a\":".repeat(n), "}".repeat(n));
    corpus.add(
        "deep ctx arrays 8000",
        Endpoint::Event,
        event_with(&[("ctx", format!("{{\"a\":{}}}", arrays(8000)))]),
        field("ctx"),
    );
    corpus.add(
        "deep ctx objects 8000",
        Endpoint::Event,
        event_with(&[("ctx", objects(2000))]),
        field("ctx"),
    );
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
fn oversize(corpus: &mut Corpus) {
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
    corpus.add(
        "ctx over max_ctx_bytes",
        Endpoint::Event,
        event_with(&[("ctx", format!("{{\"pad\":\"{over_ctx}\"}}"))]),
        field("ctx"),
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
    corpus.add(
        "email local part of 65",
        Endpoint::Event,
        event_with(&[("email", long_local)]),
        field("email"),
    );
    corpus.add(
        "email of 266",
        Endpoint::Event,
        event_with(&[("email", long_email)]),
        field("email"),
    );
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
fn entity_tricks(corpus: &mut Corpus) {
    let mut laughs = String::from("<!ENTITY lol0 \"lol\">");
    for level in 1..10 {
        let refs = format!("&lol{};", level - 1).repeat(10);
        laughs.push_str(&format!("<!ENTITY lol{level} \"{refs}\">"));
    }
    let with_ctx = |text: &str| push_event(&soap_event(&[], &format!("<ctx><x>{text}</x></ctx>")));
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
        (
            "entity in attribute",
            push_event(&soap_event(&[("type", "&xxe;".to_owned())], SOAP_CTX)),
        ),
        ("char ref NUL", with_ctx("&#0;")),
        ("char ref x1", with_ctx("&#x1;")),
        ("char ref surrogate", with_ctx("&#xD800;")),
        ("char ref beyond Unicode", with_ctx("&#x110000;")),
        ("char ref huge", with_ctx("&#99999999999999999999;")),
        ("char ref empty", with_ctx("&#;")),
        ("char ref hex empty", with_ctx("&#x;")),
        ("char ref unterminated", with_ctx("&#65")),
        (
            "char ref NUL in attribute",
            push_event(&soap_event(&[("type", "A&#0;".to_owned())], SOAP_CTX)),
        ),
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

fn corpus() -> Corpus {
    let mut corpus = Corpus::default();
    valid_bodies(&mut corpus);
    truncations(&mut corpus);
    event_control_characters(&mut corpus);
    template_control_characters(&mut corpus);
    soap_control_characters(&mut corpus);
    invalid_utf8(&mut corpus);
    duplicated_keys(&mut corpus);
    huge_numbers(&mut corpus);
    deep_nesting(&mut corpus);
    oversize(&mut corpus);
    entity_tricks(&mut corpus);
    corpus
}

// ---------------------------------------------------------------------------------------------------------
// Running it
// ---------------------------------------------------------------------------------------------------------

fn start_server(database_url: Option<&str>) -> TestServer {
    let adobe = format!(
        "[adobe]\nenabled = true\naccounts = [{{ login = {}, password = {} }}]\n",
        toml_string(LOGIN),
        toml_string(PASSWORD)
    );
    let mut options = ServerOptions::new(PluginDir::new())
        .limits(MAX_BODY, MAX_BATCH, MAX_CTX)
        .extra_toml(&adobe);
    if let Some(url) = database_url {
        options = options.database_url(url);
    }
    TestServer::start(options)
}

/// Sends one case; the failure, if the answer is not the one expected. Adds what it stored to `stored`.
async fn check(server: &TestServer, case: &Case, stored: &mut Stored) -> Result<(), String> {
    let api = server.api();
    let (method, path, headers): (reqwest::Method, String, Vec<(&str, &str)>) = match &case.endpoint
    {
        Endpoint::Event => (reqwest::Method::POST, EVENTS.to_owned(), vec![]),
        Endpoint::Batch => (reqwest::Method::POST, BATCH.to_owned(), vec![]),
        Endpoint::Template(name) => (
            reqwest::Method::PUT,
            format!("/api/v1/templates/{name}"),
            vec![],
        ),
        Endpoint::Soap(action) => (
            reqwest::Method::POST,
            ROUTER.to_owned(),
            vec![
                ("content-type", "text/xml; charset=utf-8"),
                ("SOAPAction", action),
            ],
        ),
    };
    let sent = api.request(method, &path, Some(case.body.clone()), &headers);
    let (status, answer) = tokio::time::timeout(ANSWER_TIMEOUT, sent)
        .await
        .map_err(|_| format!("no answer in {ANSWER_TIMEOUT:?}"))?;
    let shown = || {
        let text = match &answer {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        format!("{status} {}", text.chars().take(300).collect::<String>())
    };
    let fail = |why: &str| Err(format!("{why}; got {}", shown()));
    match &case.expect {
        Expect::Created(n) => {
            if status != 201 {
                return fail("expected 201");
            }
            stored.events += n;
        }
        Expect::TemplateCreated => {
            if status != 201 {
                return fail("expected 201");
            }
            stored.templates += 1;
        }
        Expect::Field(code, field) => {
            let error = &answer["error"];
            let expected_status = if *code == "batch_too_large" { 413 } else { 400 };
            if status != expected_status
                || error["code"] != *code
                || error["field"] != field.as_str()
            {
                return fail(&format!(
                    "expected {expected_status} {code} naming `{field}`"
                ));
            }
            if error["message"].as_str().is_none_or(|m| m.is_empty()) {
                return fail("expected an error message");
            }
        }
        Expect::Body(code) => {
            let error = &answer["error"];
            let expected_status = if *code == "payload_too_large" {
                413
            } else {
                400
            };
            if status != expected_status || error["code"] != *code || !error["field"].is_null() {
                return fail(&format!("expected {expected_status} {code} for the body"));
            }
        }
        Expect::SoapOk(n) => {
            let text = answer.as_str().unwrap_or_default();
            if status != 200 || text.matches("</plId>").count() as u64 != *n {
                return fail(&format!("expected 200 with {n} plId"));
            }
            stored.events += n;
        }
        Expect::SoapField(field) => {
            let text = answer.as_str().unwrap_or_default();
            if status != 500
                || !text.contains("<faultcode>SOAP-ENV:Client</faultcode>")
                || !text.contains(&format!("invalid field `{field}`"))
            {
                return fail(&format!("expected a client fault naming `{field}`"));
            }
        }
        Expect::SoapBody(detail) => {
            let text = answer.as_str().unwrap_or_default();
            let expected_status = if *detail == "payload_too_large" {
                413
            } else {
                500
            };
            if status != expected_status
                || !text.contains("<faultcode>SOAP-ENV:Client</faultcode>")
                || !text.contains(&format!("<detail xsi:type='xsd:string'>{detail}</detail>"))
            {
                return fail(&format!("expected a client fault with detail {detail}"));
            }
        }
    }
    Ok(())
}

#[derive(Default)]
struct Stored {
    events: u64,
    templates: u64,
}

/// Every event the server holds, by `GET /api/v1/stats` (no workflow runs: all stay pending).
async fn stored_events(server: &TestServer) -> u64 {
    let (status, stats) = server.get_json("/api/v1/stats").await;
    assert_eq!(status, 200, "GET /api/v1/stats: {}", pretty(&stats));
    ["realtime", "batch"]
        .iter()
        .flat_map(|queue| {
            stats["queues"][queue]["byStatus"]
                .as_object()
                .cloned()
                .unwrap_or_default()
                .into_values()
        })
        .map(|count| count.as_u64().unwrap_or_default())
        .sum()
}

fn rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .expect("VmRSS")
}

async fn run_corpus(server: &TestServer, backend: &str) {
    let corpus = corpus();
    assert!(
        corpus.cases.len() >= 3000,
        "the corpus has {} bodies",
        corpus.cases.len()
    );
    let mut stored = Stored::default();
    let mut failures = Vec::new();
    let mut by_kind: BTreeMap<&str, usize> = BTreeMap::new();
    for case in &corpus.cases {
        let kind = match case.expect {
            Expect::Created(_) | Expect::TemplateCreated | Expect::SoapOk(_) => "accepted",
            _ => "refused",
        };
        *by_kind.entry(kind).or_default() += 1;
        if let Err(why) = check(server, case, &mut stored).await {
            failures.push(format!("{} ({:?}): {why}", case.name, case.endpoint));
        }
    }
    server.assert_healthy().await;
    let rss = rss_kb(server.pid());
    println!(
        "{backend}: {} bodies {by_kind:?}, RSS {rss} kB",
        corpus.cases.len()
    );
    assert!(rss < MAX_RSS_KB, "{backend}: RSS {rss} kB after the corpus");
    let events = stored_events(server).await;
    let (status, templates) = server.get_json("/api/v1/templates").await;
    assert_eq!(status, 200);
    let templates = templates["templates"].as_array().map_or(0, Vec::len) as u64;
    for failure in &failures {
        eprintln!("FAILURE {failure}");
    }
    let pending_depth: Vec<&String> = failures
        .iter()
        .filter(|f| AWAITING_DEPTH_LIMIT.iter().any(|name| f.starts_with(name)))
        .collect();
    assert!(
        failures.is_empty(),
        "{backend}: {} of {} bodies were not answered as expected ({} of them await the ctx depth limit, \
         AWAITING_DEPTH_LIMIT):\n{}\n\nserver log:\n{}",
        failures.len(),
        corpus.cases.len(),
        pending_depth.len(),
        failures
            .iter()
            .take(30)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n"),
        server.log_tail(20)
    );
    assert_eq!(
        events, stored.events,
        "{backend}: events stored vs. accepted"
    );
    assert_eq!(
        templates, stored.templates,
        "{backend}: templates stored vs. accepted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hostile_corpus_is_refused_field_by_field_on_sqlite() {
    let server = start_server(None);
    run_corpus(&server, "SQLite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hostile_corpus_is_refused_field_by_field_on_postgres() {
    let database = PostgresDatabase::create();
    let server = start_server(Some(database.url()));
    run_corpus(&server, "PostgreSQL").await;
}
