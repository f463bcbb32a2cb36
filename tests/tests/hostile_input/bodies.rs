//! The hostile characters and the valid bodies the corpus varies.

use super::{Endpoint, Expect, LOGIN, PASSWORD};

/// Every C0 control, DEL, every C1 control, and the invisible characters that pass for nothing.
pub fn hostile_chars() -> Vec<char> {
    (0u32..0x20)
        .chain([0x7f])
        .chain(0x80..0xa0)
        .chain([0x2028, 0x2029, 0xfeff, 0x200b])
        .map(|n| char::from_u32(n).expect("a char"))
        .collect()
}

/// XML 1.0 allows these controls only: tab, LF, CR.
pub fn xml_forbids(c: char) -> bool {
    (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r')
}

/// `base` with `c` inserted at the start, the middle or the end (by `position` % 3).
pub fn insert(base: &str, c: char, position: usize) -> String {
    let at = match position % 3 {
        0 => 0,
        1 => base.len() / 2,
        _ => base.len(),
    };
    format!("{}{c}{}", &base[..at], &base[at..])
}

/// `s` as a JSON string literal, with `c` written raw (`raw`) or as a `\u` escape.
pub fn json_string(s: &str, raw: bool) -> String {
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
pub fn xml_text(s: &str, raw: bool) -> String {
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

/// The JSON event's fields, each its JSON text, in order.
pub fn base_event() -> Vec<(&'static str, String)> {
    let mut fields: Vec<(&'static str, String)> = EVENT_LABELS
        .iter()
        .map(|(name, value)| (*name, format!("\"{value}\"")))
        .collect();
    fields.push(("scheduled", "\"2026-11-22T10:00:00Z\"".to_owned()));
    fields.push(("ctx", r#"{"name":"Zoé","n":1}"#.to_owned()));
    fields
}

/// The labels the JSON event and the SOAP event share, as plain text (no character to escape).
const EVENT_LABELS: [(&str, &str); 4] = [
    ("type", "ORDER"),
    ("email", "ann@example.com"),
    ("externalId", "x-1"),
    ("language", "fr"),
];

/// An event object with `set` replacing or adding fields.
pub fn event_with(set: &[(&'static str, String)]) -> String {
    json_object_with(base_event(), set)
}

/// `fields` with `set` replacing a field of the same name in place or, if none, added at the end.
fn fields_with(
    mut fields: Vec<(&'static str, String)>,
    set: &[(&'static str, String)],
) -> Vec<(&'static str, String)> {
    for (name, value) in set {
        match fields.iter_mut().find(|(n, _)| n == name) {
            Some(field) => field.1 = value.clone(),
            None => fields.push((name, value.clone())),
        }
    }
    fields
}

/// A JSON object of `fields` with `set` replacing or adding fields, each value raw JSON.
fn json_object_with(fields: Vec<(&'static str, String)>, set: &[(&'static str, String)]) -> String {
    let inner: Vec<String> = fields_with(fields, set)
        .iter()
        .map(|(n, v)| format!("\"{n}\":{v}"))
        .collect();
    format!("{{{}}}", inner.join(","))
}

pub fn batch_of(events: &[String]) -> String {
    format!("{{\"events\":[{}]}}", events.join(","))
}

/// One valid body for each JSON endpoint: an event, a batch of two, a template.
pub fn valid_json_bodies() -> [(Endpoint, String); 3] {
    [
        (Endpoint::Event, event_with(&[])),
        (
            Endpoint::Batch,
            batch_of(&[event_with(&[]), event_with(&[])]),
        ),
        (Endpoint::Template(String::new()), template_with(&[])),
    ]
}

pub fn base_template() -> Vec<(&'static str, String)> {
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

pub fn template_with(set: &[(&'static str, String)]) -> String {
    json_object_with(base_template(), set)
}

/// The attributes of the SOAP event element, each its escaped XML text.
pub fn base_soap_attributes() -> Vec<(&'static str, String)> {
    let mut attributes: Vec<(&'static str, String)> = EVENT_LABELS
        .iter()
        .map(|(name, value)| (*name, (*value).to_owned()))
        .collect();
    attributes.push(("wishedChannel", "0".to_owned()));
    attributes.push(("scheduled", "2026-11-22 10:00:00.000Z".to_owned()));
    attributes
}

/// An `<rtEvent>` with `set` replacing or adding attributes and `ctx` as the content of its `<ctx>`.
pub fn soap_event(set: &[(&'static str, String)], ctx: &str) -> String {
    let attributes: String = fields_with(base_soap_attributes(), set)
        .iter()
        .map(|(n, v)| format!(" {n}=\"{v}\""))
        .collect();
    format!("<rtEvent{attributes}>{ctx}</rtEvent>")
}

pub const SOAP_CTX: &str = "<ctx><name>Zoé</name><orderId>A-1</orderId></ctx>";

pub fn envelope(method: &str, parameter: &str) -> String {
    format!(
        r#"<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:urn="urn:nms:rtEvent"><soapenv:Body><urn:{method}><urn:sessiontoken>{LOGIN}/{PASSWORD}</urn:sessiontoken>{parameter}</urn:{method}></soapenv:Body></soapenv:Envelope>"#
    )
}

pub fn push_event(event: &str) -> String {
    envelope(
        "PushEvent",
        &format!("<urn:domEvent>{event}</urn:domEvent>"),
    )
}

pub fn push_events(events: &[String]) -> String {
    envelope(
        "PushEvents",
        &format!(
            "<urn:domEventCollection><Events>{}</Events></urn:domEventCollection>",
            events.concat()
        ),
    )
}

pub const PUSH_EVENT: Endpoint = Endpoint::Soap("nms:rtEvent#PushEvent");
pub const PUSH_EVENTS: Endpoint = Endpoint::Soap("nms:rtEvent#PushEvents");

pub fn field(name: &str) -> Expect {
    Expect::Field("invalid_field", name.to_owned())
}

pub fn soap_field(name: &str) -> Expect {
    Expect::SoapField(name.to_owned())
}
