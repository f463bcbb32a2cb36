//! Turning a request body into validated events, or into an error that names the field at fault.
//!
//! Parsing goes through `serde_json::Value` rather than a derived struct so that every wrong type can be
//! reported with its field path (`events[3].email`) and unknown fields can be ignored, as clients of a
//! messaging server expect.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::ctx_depth::{MAX_CTX_DEPTH, nesting_depth};
use crate::store::NewEvent;
use mc_plugin_api::Channel;

use crate::error::ErrorCode;

mod readback;

use self::readback::{UniqueObject, check_ctx};

/// Longest `type`, `externalId` and `language`, in characters.
const MAX_SHORT_STRING: usize = 255;

/// Why a body was refused: the error code, the field path and a message for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputError {
    pub code: ErrorCode,
    pub field: Option<String>,
    pub message: String,
}

impl InputError {
    fn field(field: &str, message: impl Into<String>) -> Self {
        InputError {
            code: ErrorCode::InvalidField,
            field: Some(field.to_owned()),
            message: message.into(),
        }
    }

    fn body(code: ErrorCode, message: impl Into<String>) -> Self {
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
    let text = utf8(body)?;
    if text.trim_start().starts_with('{') {
        // A field given twice is refused, as on the event endpoints: `Value` would keep the last silently.
        return serde_json::from_str::<UniqueObject>(text)
            .map(|object| object.0)
            .map_err(|e| {
                InputError::body(
                    ErrorCode::MalformedJson,
                    format!("the body is not valid JSON: {e}"),
                )
            });
    }
    let value: Value = serde_json::from_str(text).map_err(|e| {
        InputError::body(
            ErrorCode::MalformedJson,
            format!("the body is not valid JSON: {e}"),
        )
    })?;
    match value {
        Value::Object(map) => Ok(map),
        other => Err(InputError::body(
            ErrorCode::MalformedJson,
            format!("the body must be a JSON object, not {}", kind(&other)),
        )),
    }
}

/// The fields of one event object as they were sent: each the raw JSON text of its value, `None` when
/// absent or `null`. Unknown fields are skipped unparsed, and `ctx` stays text all the way into the
/// database: a request is read once, with no `serde_json::Value` tree built for it (BENCHMARKS.md).
#[derive(Deserialize)]
struct EventFields<'a> {
    #[serde(rename = "type", borrow)]
    event_type: Option<&'a RawValue>,
    #[serde(borrow)]
    channel: Option<&'a RawValue>,
    #[serde(rename = "wishedChannel", borrow)]
    wished_channel: Option<&'a RawValue>,
    #[serde(borrow)]
    email: Option<&'a RawValue>,
    #[serde(rename = "mobilePhone", borrow)]
    mobile_phone: Option<&'a RawValue>,
    #[serde(rename = "externalId", borrow)]
    external_id: Option<&'a RawValue>,
    #[serde(borrow)]
    language: Option<&'a RawValue>,
    #[serde(borrow)]
    scheduled: Option<&'a RawValue>,
    #[serde(borrow)]
    expiration: Option<&'a RawValue>,
    #[serde(borrow)]
    ctx: Option<&'a RawValue>,
}

/// The body of `POST /api/v1/events/batch`.
#[derive(Deserialize)]
struct BatchFields<'a> {
    #[serde(borrow)]
    events: Option<&'a RawValue>,
}

/// One event of `POST /api/v1/events`.
pub fn single_event(body: &[u8], limits: Limits) -> Result<NewEvent, InputError> {
    let fields = parse_body::<EventFields>(utf8(body)?)?;
    event(fields, "", limits)
}

/// The events of `POST /api/v1/events/batch`; the first bad one refuses the batch.
pub fn batch_events(body: &[u8], limits: Limits) -> Result<Vec<NewEvent>, InputError> {
    let events = match parse_body::<BatchFields>(utf8(body)?)?.events {
        None => {
            return Err(InputError::field(
                "events",
                "`events` is required: an array of events",
            ));
        }
        Some(raw) if RawKind::of(raw.get()) == RawKind::Array => {
            serde_json::from_str::<Vec<&RawValue>>(raw.get()).map_err(|e| {
                InputError::body(
                    ErrorCode::MalformedJson,
                    format!("the body is not valid JSON: {e}"),
                )
            })?
        }
        Some(raw) => {
            return Err(InputError::field(
                "events",
                format!("`events` must be an array, not {}", raw_kind(raw)),
            ));
        }
    };
    check_batch_size(events.len(), limits)?;
    events
        .iter()
        .enumerate()
        .map(|(i, raw)| event_text(raw.get(), &format!("events[{i}]"), limits))
        .collect()
}

/// One event given as an object already (the SOAP endpoint builds it from XML): the same rules and field
/// names as [`single_event`].
pub fn event_object(object: Map<String, Value>, limits: Limits) -> Result<NewEvent, InputError> {
    event_text(&Value::Object(object).to_string(), "", limits)
}

/// The events of a batch given as values already (the SOAP endpoint): `events[i].` in field names,
/// counted against `server.max_batch_events`; the first bad one refuses the batch.
pub fn event_list(events: Vec<Value>, limits: Limits) -> Result<Vec<NewEvent>, InputError> {
    check_batch_size(events.len(), limits)?;
    events
        .iter()
        .enumerate()
        .map(|(i, value)| event_text(&value.to_string(), &format!("events[{i}]"), limits))
        .collect()
}

fn check_batch_size(events: usize, limits: Limits) -> Result<(), InputError> {
    if events == 0 {
        return Err(InputError::field("events", "`events` is empty"));
    }
    if events > limits.max_batch_events {
        return Err(InputError {
            code: ErrorCode::BatchTooLarge,
            field: Some("events".to_owned()),
            message: format!(
                "the batch has {events} events; the limit is {} (server.max_batch_events)",
                limits.max_batch_events
            ),
        });
    }
    Ok(())
}

fn utf8(body: &[u8]) -> Result<&str, InputError> {
    std::str::from_utf8(body).map_err(|e| {
        InputError::body(
            ErrorCode::InvalidUtf8,
            format!("the body is not valid UTF-8 (at byte {})", e.valid_up_to()),
        )
    })
}

/// Reads a whole body into `T`, which holds the fields of a JSON object. Anything but an object is
/// refused first: serde would read an array into `T`'s fields by position.
fn parse_body<'a, T: Deserialize<'a>>(text: &'a str) -> Result<T, InputError> {
    let malformed = |e: serde_json::Error| {
        InputError::body(
            ErrorCode::MalformedJson,
            format!("the body is not valid JSON: {e}"),
        )
    };
    if !text.trim_start().starts_with('{') {
        let raw = serde_json::from_str::<&RawValue>(text).map_err(malformed)?;
        return Err(InputError::body(
            ErrorCode::MalformedJson,
            format!("the body must be a JSON object, not {}", raw_kind(raw)),
        ));
    }
    serde_json::from_str(text).map_err(malformed)
}

/// Reads the event object `text`, the element `element` of a batch (`""` for a single event).
fn event_text(text: &str, element: &str, limits: Limits) -> Result<NewEvent, InputError> {
    let prefix = if element.is_empty() {
        String::new()
    } else {
        // An element's text is a `RawValue` of the batch or a serialised value: valid JSON already.
        let kind = RawKind::of(text);
        if kind != RawKind::Object {
            return Err(InputError::field(
                element,
                format!("each event must be an object, not {}", kind.described()),
            ));
        }
        format!("{element}.")
    };
    event(parse_body::<EventFields>(text)?, &prefix, limits)
}

/// Checks one event's fields and turns them into a [`NewEvent`].
fn event(fields: EventFields<'_>, prefix: &str, limits: Limits) -> Result<NewEvent, InputError> {
    let path = |name: &str| format!("{prefix}{name}");
    let event_type = match raw_string(fields.event_type, "type", prefix)? {
        Some(t) if !t.is_empty() => t,
        Some(_) => return Err(InputError::field(&path("type"), "`type` is empty")),
        None => return Err(InputError::field(&path("type"), "`type` is required")),
    };
    check_length(&event_type, "type", prefix)?;
    check_no_nul(&event_type, "type", prefix)?;
    let channel = channel(fields.channel, fields.wished_channel, prefix)?;
    let email = raw_string(fields.email, "email", prefix)?;
    let mobile_phone = raw_string(fields.mobile_phone, "mobilePhone", prefix)?;
    let external_id = raw_string(fields.external_id, "externalId", prefix)?;
    let language = raw_string(fields.language, "language", prefix)?;
    for (name, value) in [("externalId", &external_id), ("language", &language)] {
        if let Some(value) = value {
            check_length(value, name, prefix)?;
            check_no_nul(value, name, prefix)?;
        }
    }
    match channel {
        Channel::Email if email.is_none() => {
            return Err(InputError::field(
                &path("email"),
                "`email` is required for the email channel",
            ));
        }
        Channel::Sms if mobile_phone.is_none() => {
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
    let scheduled_at = timestamp(fields.scheduled, "scheduled", prefix)?;
    let expires_at = timestamp(fields.expiration, "expiration", prefix)?;
    let ctx = match fields.ctx {
        None => RawValue::from_string("{}".to_owned()).expect("`{}` is JSON"),
        Some(raw) if RawKind::of(raw.get()) == RawKind::Object => {
            let size = raw.get().len();
            if size > limits.max_ctx_bytes {
                return Err(InputError::field(
                    &path("ctx"),
                    format!(
                        "`ctx` is {size} bytes of JSON; the limit is {} (server.max_ctx_bytes)",
                        limits.max_ctx_bytes
                    ),
                ));
            }
            check_depth(raw.get(), &path("ctx"))?;
            check_ctx(raw.get())
                .map_err(|e| InputError::field(&path("ctx"), format!("`ctx`: {e}")))?;
            raw.to_owned()
        }
        Some(raw) => {
            return Err(InputError::field(
                &path("ctx"),
                format!("`ctx` must be an object, not {}", raw_kind(raw)),
            ));
        }
    };
    Ok(NewEvent {
        event_type,
        channel,
        email,
        mobile_phone,
        external_id,
        language,
        ctx,
        scheduled_at,
        expires_at,
    })
}

/// Refuses a `ctx` nested deeper than [`MAX_CTX_DEPTH`]: it could be stored but never read back
/// (see `ingest::ctx_depth`).
fn check_depth(ctx: &str, field: &str) -> Result<(), InputError> {
    if nesting_depth(ctx, MAX_CTX_DEPTH) > MAX_CTX_DEPTH {
        return Err(InputError::field(
            field,
            format!(
                "`ctx` nests objects and arrays more than {MAX_CTX_DEPTH} levels deep; the limit is {MAX_CTX_DEPTH}"
            ),
        ));
    }
    Ok(())
}

/// The type of a JSON value, told from the first character of its text: no parsing (a `RawValue`, or
/// a value serialised by `serde_json`, starts with it).
#[derive(Clone, Copy, PartialEq, Eq)]
enum RawKind {
    Null,
    Boolean,
    Number,
    String,
    Array,
    Object,
}

impl RawKind {
    fn of(text: &str) -> Self {
        match text.as_bytes().first() {
            Some(b'n') => RawKind::Null,
            Some(b't' | b'f') => RawKind::Boolean,
            Some(b'"') => RawKind::String,
            Some(b'[') => RawKind::Array,
            Some(b'{') => RawKind::Object,
            _ => RawKind::Number,
        }
    }

    /// The type with its article, for messages.
    fn described(self) -> &'static str {
        match self {
            RawKind::Null => "null",
            RawKind::Boolean => "a boolean",
            RawKind::Number => "a number",
            RawKind::String => "a string",
            RawKind::Array => "an array",
            RawKind::Object => "an object",
        }
    }
}

impl From<&Value> for RawKind {
    fn from(value: &Value) -> Self {
        match value {
            Value::Null => RawKind::Null,
            Value::Bool(_) => RawKind::Boolean,
            Value::Number(_) => RawKind::Number,
            Value::String(_) => RawKind::String,
            Value::Array(_) => RawKind::Array,
            Value::Object(_) => RawKind::Object,
        }
    }
}

/// A raw JSON value's type, with its article, for messages.
fn raw_kind(raw: &RawValue) -> &'static str {
    RawKind::of(raw.get()).described()
}

/// Field `name` as an optional string (absent or `null`: `None`); anything else is refused, naming
/// `prefix` + `name` and the JSON type found.
fn raw_string(
    raw: Option<&RawValue>,
    name: &str,
    prefix: &str,
) -> Result<Option<String>, InputError> {
    let Some(raw) = raw else {
        return Ok(None);
    };
    match RawKind::of(raw.get()) {
        RawKind::String => serde_json::from_str(raw.get())
            .map(Some)
            .map_err(|e| InputError::field(&format!("{prefix}{name}"), format!("`{name}`: {e}"))),
        other => Err(InputError::field(
            &format!("{prefix}{name}"),
            format!("`{name}` must be a string, not {}", other.described()),
        )),
    }
}

/// `channel` ("email" | "sms") or Adobe's `wishedChannel` (0 | 1); email by default.
fn channel(
    named: Option<&RawValue>,
    wished: Option<&RawValue>,
    prefix: &str,
) -> Result<Channel, InputError> {
    let named = match raw_string(named, "channel", prefix) {
        Ok(None) => None,
        Ok(Some(s)) if s == Channel::Email.as_str() => Some(Channel::Email),
        Ok(Some(s)) if s == Channel::Sms.as_str() => Some(Channel::Sms),
        _ => {
            return Err(InputError::field(
                &format!("{prefix}channel"),
                format!(
                    "`channel` must be \"email\" or \"sms\", not {}",
                    named.map_or("null", RawValue::get)
                ),
            ));
        }
    };
    let wished = match wished {
        None => None,
        Some(raw) => {
            let value: Value = serde_json::from_str(raw.get()).unwrap_or(Value::Null);
            match value
                .as_i64()
                .or_else(|| value.as_str().and_then(|s| s.parse().ok()))
            {
                Some(0) => Some(Channel::Email),
                Some(1) => Some(Channel::Sms),
                _ => {
                    return Err(InputError::field(
                        &format!("{prefix}wishedChannel"),
                        format!(
                            "`wishedChannel` must be 0 (email) or 1 (sms), not {}",
                            raw.get()
                        ),
                    ));
                }
            }
        }
    };
    match (named, wished) {
        (Some(a), Some(b)) if a != b => Err(InputError::field(
            &format!("{prefix}channel"),
            format!("`channel` \"{a}\" contradicts `wishedChannel` (\"{b}\")"),
        )),
        (Some(c), _) | (None, Some(c)) => Ok(c),
        (None, None) => Ok(Channel::Email),
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
    raw: Option<&RawValue>,
    name: &str,
    prefix: &str,
) -> Result<Option<DateTime<Utc>>, InputError> {
    let Some(text) = raw_string(raw, name, prefix)? else {
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

/// Refuses U+0000 in a stored label: no database text column holds it (PostgreSQL refuses it outright,
/// which would turn a bad request into a failed write). Other control characters are stored and returned
/// verbatim: labels are opaque.
fn check_no_nul(value: &str, name: &str, prefix: &str) -> Result<(), InputError> {
    if value.contains('\0') {
        return Err(InputError::field(
            &format!("{prefix}{name}"),
            format!("`{name}` contains U+0000 (NUL), which cannot be stored"),
        ));
    }
    Ok(())
}

/// Zero-width and direction-control characters: invisible, so an address holding one is not the address
/// it looks like.
pub fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{ad}' | '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{2064}' | '\u{feff}'
    )
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
            || (!c.is_ascii() && !c.is_control() && !c.is_whitespace() && !is_invisible(c))
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
    RawKind::from(value).described()
}

#[cfg(test)]
mod tests;
