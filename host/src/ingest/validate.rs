//! Turning a request body into validated events, or into an error that names the field at fault.
//!
//! Parsing goes through `serde_json::Value` rather than a derived struct so that every wrong type can be
//! reported with its field path (`events[3].email`) and unknown fields can be ignored, as clients of a
//! messaging server expect.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::db::entities::event::{CHANNEL_EMAIL, CHANNEL_SMS};
use crate::store::NewEvent;

/// Longest `type`, `externalId` and `language`, in characters.
const MAX_SHORT_STRING: usize = 255;

/// Why a body was refused: the error code, the field path and a message for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputError {
    pub code: &'static str,
    pub field: Option<String>,
    pub message: String,
}

impl InputError {
    fn field(field: &str, message: impl Into<String>) -> Self {
        InputError {
            code: "invalid_field",
            field: Some(field.to_owned()),
            message: message.into(),
        }
    }

    fn body(code: &'static str, message: impl Into<String>) -> Self {
        InputError {
            code,
            field: None,
            message: message.into(),
        }
    }
}

/// Limits that depend on configuration.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_ctx_bytes: usize,
    pub max_batch_events: usize,
}

/// Parses the body as a JSON object.
pub fn parse_object(body: &[u8]) -> Result<Map<String, Value>, InputError> {
    let text = std::str::from_utf8(body).map_err(|e| {
        InputError::body(
            "invalid_utf8",
            format!("the body is not valid UTF-8 (at byte {})", e.valid_up_to()),
        )
    })?;
    let value: Value = serde_json::from_str(text).map_err(|e| {
        InputError::body("malformed_json", format!("the body is not valid JSON: {e}"))
    })?;
    match value {
        Value::Object(map) => Ok(map),
        other => Err(InputError::body(
            "malformed_json",
            format!("the body must be a JSON object, not {}", kind(&other)),
        )),
    }
}

/// One event of `POST /api/v1/events`.
pub fn single_event(body: &[u8], limits: Limits) -> Result<NewEvent, InputError> {
    let object = parse_object(body)?;
    event(object, "", limits, body.len())
}

/// The events of `POST /api/v1/events/batch`; the first bad one refuses the batch.
pub fn batch_events(body: &[u8], limits: Limits) -> Result<Vec<NewEvent>, InputError> {
    let mut object = parse_object(body)?;
    let events = match object.remove("events") {
        Some(Value::Array(events)) => events,
        None | Some(Value::Null) => {
            return Err(InputError::field(
                "events",
                "`events` is required: an array of events",
            ));
        }
        Some(other) => {
            return Err(InputError::field(
                "events",
                format!("`events` must be an array, not {}", kind(&other)),
            ));
        }
    };
    event_list(events, limits, body.len())
}

/// One event given as an object already (the SOAP endpoint builds it from XML): the same rules and field
/// names as [`single_event`]. `body_len` is the size of the request it came from.
pub fn event_object(
    object: Map<String, Value>,
    limits: Limits,
    body_len: usize,
) -> Result<NewEvent, InputError> {
    event(object, "", limits, body_len)
}

/// The events of a batch (`events[i].` in field names), counted against `server.max_batch_events`; the
/// first bad one refuses the batch. `body_len` is the size of the request they came from.
pub fn event_list(
    events: Vec<Value>,
    limits: Limits,
    body_len: usize,
) -> Result<Vec<NewEvent>, InputError> {
    if events.is_empty() {
        return Err(InputError::field("events", "`events` is empty"));
    }
    if events.len() > limits.max_batch_events {
        return Err(InputError {
            code: "batch_too_large",
            field: Some("events".to_owned()),
            message: format!(
                "the batch has {} events; the limit is {} (server.max_batch_events)",
                events.len(),
                limits.max_batch_events
            ),
        });
    }
    events
        .into_iter()
        .enumerate()
        .map(|(i, value)| match value {
            Value::Object(object) => event(object, &format!("events[{i}]."), limits, body_len),
            other => Err(InputError::field(
                &format!("events[{i}]"),
                format!("each event must be an object, not {}", kind(&other)),
            )),
        })
        .collect()
}

/// Reads one event object. `body_len` bounds the size of its `ctx`: when the whole body fits the ctx
/// limit, the ctx cannot exceed it and is not serialised again to be measured.
fn event(
    mut object: Map<String, Value>,
    prefix: &str,
    limits: Limits,
    body_len: usize,
) -> Result<NewEvent, InputError> {
    let path = |name: &str| format!("{prefix}{name}");
    let event_type = match optional_string(&object, "type", prefix)? {
        Some(t) if !t.is_empty() => t,
        Some(_) => return Err(InputError::field(&path("type"), "`type` is empty")),
        None => return Err(InputError::field(&path("type"), "`type` is required")),
    };
    check_length(&event_type, "type", prefix)?;
    let channel = channel(&object, prefix)?;
    let email = optional_string(&object, "email", prefix)?;
    let mobile_phone = optional_string(&object, "mobilePhone", prefix)?;
    let external_id = optional_string(&object, "externalId", prefix)?;
    let language = optional_string(&object, "language", prefix)?;
    for (name, value) in [("externalId", &external_id), ("language", &language)] {
        if let Some(value) = value {
            check_length(value, name, prefix)?;
        }
    }
    match channel {
        CHANNEL_EMAIL if email.is_none() => {
            return Err(InputError::field(
                &path("email"),
                "`email` is required for the email channel",
            ));
        }
        CHANNEL_SMS if mobile_phone.is_none() => {
            return Err(InputError::field(
                &path("mobilePhone"),
                "`mobilePhone` is required for the sms channel",
            ));
        }
        _ => {}
    }
    if let Some(email) = &email
        && let Err(reason) = check_email(email)
    {
        return Err(InputError::field(
            &path("email"),
            format!("invalid email address: {reason}"),
        ));
    }
    if let Some(phone) = &mobile_phone
        && let Err(reason) = check_phone(phone)
    {
        return Err(InputError::field(
            &path("mobilePhone"),
            format!("invalid mobile phone number: {reason}"),
        ));
    }
    let scheduled_at = timestamp(&object, "scheduled", prefix)?;
    let expires_at = timestamp(&object, "expiration", prefix)?;
    let ctx = match object.remove("ctx") {
        None | Some(Value::Null) => Value::Object(Map::new()),
        Some(Value::Object(ctx)) => {
            let size = if body_len <= limits.max_ctx_bytes {
                0
            } else {
                serde_json::to_vec(&ctx)
                    .map(|v| v.len())
                    .unwrap_or(usize::MAX)
            };
            if size > limits.max_ctx_bytes {
                return Err(InputError::field(
                    &path("ctx"),
                    format!(
                        "`ctx` is {size} bytes of JSON; the limit is {} (server.max_ctx_bytes)",
                        limits.max_ctx_bytes
                    ),
                ));
            }
            Value::Object(ctx)
        }
        Some(other) => {
            return Err(InputError::field(
                &path("ctx"),
                format!("`ctx` must be an object, not {}", kind(&other)),
            ));
        }
    };
    Ok(NewEvent {
        event_type,
        channel: channel.to_owned(),
        email,
        mobile_phone,
        external_id,
        language,
        ctx,
        scheduled_at,
        expires_at,
    })
}

/// `channel` ("email" | "sms") or Adobe's `wishedChannel` (0 | 1); email by default.
fn channel(object: &Map<String, Value>, prefix: &str) -> Result<&'static str, InputError> {
    let named = match object.get("channel") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s == CHANNEL_EMAIL => Some(CHANNEL_EMAIL),
        Some(Value::String(s)) if s == CHANNEL_SMS => Some(CHANNEL_SMS),
        Some(other) => {
            return Err(InputError::field(
                &format!("{prefix}channel"),
                format!("`channel` must be \"email\" or \"sms\", not {other}"),
            ));
        }
    };
    let wished = match object.get("wishedChannel") {
        None | Some(Value::Null) => None,
        Some(value) => match value
            .as_i64()
            .or_else(|| value.as_str().and_then(|s| s.parse().ok()))
        {
            Some(0) => Some(CHANNEL_EMAIL),
            Some(1) => Some(CHANNEL_SMS),
            _ => {
                return Err(InputError::field(
                    &format!("{prefix}wishedChannel"),
                    format!("`wishedChannel` must be 0 (email) or 1 (sms), not {value}"),
                ));
            }
        },
    };
    match (named, wished) {
        (Some(a), Some(b)) if a != b => Err(InputError::field(
            &format!("{prefix}channel"),
            format!("`channel` \"{a}\" contradicts `wishedChannel` (\"{b}\")"),
        )),
        (Some(c), _) | (None, Some(c)) => Ok(c),
        (None, None) => Ok(CHANNEL_EMAIL),
    }
}

/// Field `name` of `object` as an optional string (absent or `null`: `None`); anything else is refused,
/// naming `prefix` + `name` and the JSON type found.
pub fn optional_string(
    object: &Map<String, Value>,
    name: &str,
    prefix: &str,
) -> Result<Option<String>, InputError> {
    match object.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(InputError::field(
            &format!("{prefix}{name}"),
            format!("`{name}` must be a string, not {}", kind(other)),
        )),
    }
}

fn check_length(value: &str, name: &str, prefix: &str) -> Result<(), InputError> {
    let chars = value.chars().count();
    if chars > MAX_SHORT_STRING {
        return Err(InputError::field(
            &format!("{prefix}{name}"),
            format!("`{name}` is {chars} characters; the limit is {MAX_SHORT_STRING}"),
        ));
    }
    Ok(())
}

fn timestamp(
    object: &Map<String, Value>,
    name: &str,
    prefix: &str,
) -> Result<Option<DateTime<Utc>>, InputError> {
    let Some(text) = optional_string(object, name, prefix)? else {
        return Ok(None);
    };
    DateTime::parse_from_rfc3339(&text)
        .map(|t| Some(t.with_timezone(&Utc)))
        .map_err(|e| {
            InputError::field(
                &format!("{prefix}{name}"),
                format!("`{name}` must be an RFC 3339 date-time such as 2026-11-22T10:00:00Z: {e}"),
            )
        })
}

/// A practical address check: what SMTP servers accept in `RCPT TO` without quoting.
pub fn check_email(address: &str) -> Result<(), &'static str> {
    if address.len() > 254 {
        return Err("longer than 254 characters");
    }
    let (local, domain) = address.rsplit_once('@').ok_or("no @")?;
    if local.is_empty() || local.len() > 64 {
        return Err("the part before @ must be 1 to 64 characters");
    }
    let local_ok = local.chars().all(|c| {
        c.is_ascii_alphanumeric()
            || "!#$%&'*+/=?^_`{|}~.-".contains(c)
            || (!c.is_ascii() && !c.is_control() && !c.is_whitespace())
    });
    if !local_ok || local.starts_with('.') || local.ends_with('.') || local.contains("..") {
        return Err("the part before @ has characters an address cannot have unquoted");
    }
    let labels: Vec<&str> = domain.split('.').collect();
    if labels.len() < 2 {
        return Err("the domain needs at least one dot");
    }
    for label in labels {
        let label_ok = !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label.chars().all(|c| {
                c.is_ascii_alphanumeric() || c == '-' || (!c.is_ascii() && c.is_alphanumeric())
            });
        if !label_ok {
            return Err("the domain is not a valid host name");
        }
    }
    Ok(())
}

/// Digits with an optional leading `+`, and the usual separators.
pub fn check_phone(number: &str) -> Result<(), &'static str> {
    let rest = number.strip_prefix('+').unwrap_or(number);
    if !rest
        .chars()
        .all(|c| c.is_ascii_digit() || " -.()".contains(c))
    {
        return Err("only digits, a leading +, spaces, dashes, dots and parentheses are allowed");
    }
    let digits = rest.chars().filter(char::is_ascii_digit).count();
    if !(6..=20).contains(&digits) {
        return Err("it must have 6 to 20 digits");
    }
    Ok(())
}

/// A JSON value's type, with its article, for messages (`not a number`).
pub fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
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
        (err.code.to_owned(), err.field)
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
        assert_eq!(event.ctx, serde_json::json!({"n":1}));
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
    fn phone_numbers() {
        assert!(check_phone("+1 (555) 010-9999").is_ok());
        assert!(check_phone("12345").is_err());
        assert!(check_phone("+33abc").is_err());
    }
}
