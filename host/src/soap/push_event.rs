//! `nms:rtEvent#PushEvent(s)` and `nms:batchEvent#PushEvent(s)`: Adobe's way of pushing events, into the
//! same validation and group commit as `POST /api/v1/events(/batch)`.
//!
//! The event element is turned into the JSON object the REST API takes (its attributes `type`, `email`,
//! `mobilePhone`, `externalId`, `wishedChannel`, `language`, `scheduled`, `expiration`; its `<ctx>`), then
//! validated by the very same code, so the rules and the field names in errors cannot drift apart. The
//! events are durable before the answer, as on the REST API.

use mc_plugin_api::Queue;
use serde_json::{Map, Value};

use super::ctx;
use super::envelope::{Action, ENCODING_LITERAL_XML, method_response};
use super::fault::SoapFault;
use super::xml::Element;
use crate::api::ApiContext;
use crate::ingest::validate::{self, Limits};
use crate::store::{NewEvent, Submission, SubmissionOutcome};

/// The event attributes that map to event fields; other attributes (Adobe's `origin`, …) are ignored, as
/// unknown JSON fields are.
const EVENT_ATTRIBUTES: [&str; 8] = [
    "type",
    "email",
    "mobilePhone",
    "externalId",
    "wishedChannel",
    "language",
    "scheduled",
    "expiration",
];

/// One event (`PushEvent`) or several (`PushEvents`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Count {
    One,
    Many,
}

/// Validates and stores the events of the call; the answer carries their ids as `plId`.
pub async fn push(
    ctx: &ApiContext,
    action: &Action,
    method: &Element,
    queue: Queue,
    count: Count,
) -> Result<String, SoapFault> {
    let limits = Limits {
        max_ctx_bytes: ctx.limits.max_ctx_bytes,
        max_batch_events: ctx.limits.max_batch_events,
    };
    let events = match read_events(action, method, count, limits) {
        Ok(events) => events,
        Err(fault) => {
            ctx.metrics.record_events_refused(queue, fault.reason());
            return Err(fault);
        }
    };
    let outcome = ctx
        .ingest
        .submit(Submission {
            queue,
            events,
            idempotency: None,
        })
        .await
        .map_err(|e| SoapFault::from(crate::error::ApiError::from(e)))?;
    let ids = match outcome {
        SubmissionOutcome::Created(ids) => ids,
        other => {
            return Err(SoapFault::from(crate::error::ApiError::Internal(format!(
                "a submission without idempotency key was answered {other:?}"
            ))));
        }
    };
    Ok(match count {
        Count::One => method_response(
            action,
            &format!(
                "<plId xsi:type='xsd:long'>{}</plId>",
                ids.first().copied().unwrap_or_default()
            ),
        ),
        Count::Many => {
            let items: String = ids
                .iter()
                // Inside a literal XML document, SOAP types do not apply: the ids are plain text.
                .map(|id| format!("<plId>{id}</plId>"))
                .collect();
            method_response(
                action,
                &format!(
                    "<plIds xsi:type='ns:Element' SOAP-ENV:encodingStyle='{ENCODING_LITERAL_XML}'><plIds>{items}</plIds></plIds>"
                ),
            )
        }
    })
}

/// The validated events of the call.
fn read_events(
    action: &Action,
    method: &Element,
    count: Count,
    limits: Limits,
) -> Result<Vec<NewEvent>, SoapFault> {
    let parameter = method
        .children
        .iter()
        .find(|c| c.name != "sessiontoken")
        .ok_or_else(|| {
            let expected = match count {
                Count::One => "domEvent",
                Count::Many => "domEventCollection",
            };
            SoapFault::client(
                "invalid_field",
                format!("invalid field `{expected}`: {action} needs the <{expected}> parameter"),
            )
        })?;
    match count {
        Count::One => {
            let element = parameter.children.first().ok_or_else(|| {
                SoapFault::client(
                    "invalid_field",
                    format!(
                        "invalid field `{}`: the parameter holds no event element (<rtEvent type=\"…\" …>)",
                        parameter.name
                    ),
                )
            })?;
            if parameter.children.len() > 1 {
                return Err(SoapFault::client(
                    "invalid_field",
                    format!(
                        "invalid field `{}`: {action} takes one event element, not {}; push several with PushEvents",
                        parameter.name,
                        parameter.children.len()
                    ),
                ));
            }
            check_one_ctx(element, "")?;
            Ok(vec![validate::event_object(event_object(element), limits)?])
        }
        Count::Many => {
            let elements = collection(parameter);
            for (i, element) in elements.iter().enumerate() {
                check_one_ctx(element, &format!("events[{i}]."))?;
            }
            let events = elements
                .iter()
                .map(|e| Value::Object(event_object(e)))
                .collect();
            Ok(validate::event_list(events, limits)?)
        }
    }
}

/// Only the first `<ctx>` of an event is read: a second one is refused rather than silently dropped.
fn check_one_ctx(element: &Element, prefix: &str) -> Result<(), SoapFault> {
    if element.children.iter().filter(|c| c.name == "ctx").count() > 1 {
        return Err(SoapFault::client(
            "invalid_field",
            format!("invalid field `{prefix}ctx`: the event has more than one <ctx> element"),
        ));
    }
    Ok(())
}

/// The event elements of a `PushEvents` parameter. Clients wrap them in a collection element
/// (`<domEventCollection><Events><rtEvent/>…`) or put them directly in the parameter.
fn collection(parameter: &Element) -> &[Element] {
    match parameter.children.first() {
        Some(first) if is_event(first) => &parameter.children,
        Some(wrapper) => &wrapper.children,
        None => &[],
    }
}

fn is_event(element: &Element) -> bool {
    element.name == "rtEvent" || element.name == "batchEvent" || element.attribute("type").is_some()
}

/// The REST API's event object for an event element.
fn event_object(element: &Element) -> Map<String, Value> {
    let mut object = Map::new();
    for name in EVENT_ATTRIBUTES {
        if let Some(value) = element.attribute(name) {
            let value = match name {
                "scheduled" | "expiration" => adobe_timestamp(value),
                _ => value.to_owned(),
            };
            object.insert(name.to_owned(), Value::String(value));
        }
    }
    if let Some(context) = element.child("ctx") {
        object.insert("ctx".to_owned(), Value::Object(ctx::to_json(context)));
    }
    object
}

/// Adobe writes date-times as `2026-11-22 10:00:00.000Z` (a space, and the zone sometimes left out, meaning
/// UTC); RFC 3339 wants a `T` and a zone. Anything else is passed on for validation to refuse by name.
fn adobe_timestamp(value: &str) -> String {
    let value = value.trim();
    let bytes = value.as_bytes();
    let adobe_form = bytes.len() >= 19 && bytes[10] == b' ' && bytes[13] == b':';
    if !adobe_form {
        return value.to_owned();
    }
    // Byte 10 is an ASCII space, so 10 and 11 are character boundaries.
    let (date, time) = (&value[..10], &value[11..]);
    let after_seconds = time.get(8..).unwrap_or_default();
    let has_zone = time.ends_with('Z') || after_seconds.contains(['+', '-']);
    let mut rfc3339 = format!("{date}T{time}");
    if !has_zone {
        rfc3339.push('Z');
    }
    rfc3339
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::soap::xml::parse;

    const LIMITS: Limits = Limits {
        max_ctx_bytes: 1024,
        max_batch_events: 2,
    };

    fn method(xml: &str) -> Element {
        parse(xml.as_bytes()).expect("well-formed")
    }

    fn action(text: &str) -> Action {
        Action::parse(text).expect("action")
    }

    #[test]
    fn an_event_element_becomes_a_validated_event() {
        let call = method(
            r#"<PushEvent><sessiontoken>mc/x</sessiontoken><domEvent><rtEvent type="ORDER" email="ann@example.com" wishedChannel="0" origin="shop" scheduled="2026-11-22 10:00:00.000Z"><ctx><firstName>Ann</firstName></ctx></rtEvent></domEvent></PushEvent>"#,
        );
        let events = read_events(&action("nms:rtEvent#PushEvent"), &call, Count::One, LIMITS)
            .expect("valid");
        assert_eq!(events[0].event_type, "ORDER");
        assert_eq!(events[0].channel, "email");
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(events[0].ctx.get()).unwrap(),
            serde_json::json!({ "firstName": "Ann" })
        );
        assert_eq!(
            events[0].scheduled_at.expect("scheduled").to_rfc3339(),
            "2026-11-22T10:00:00+00:00"
        );
    }

    #[test]
    fn collections_are_read_wrapped_or_not() {
        let wrapped = method(
            r#"<PushEvents><domEventCollection><eventCollection><rtEvent type="A" email="a@b.co"/><rtEvent type="B" mobilePhone="+33612345678" wishedChannel="1"/></eventCollection></domEventCollection></PushEvents>"#,
        );
        let events = read_events(
            &action("nms:rtEvent#PushEvents"),
            &wrapped,
            Count::Many,
            LIMITS,
        )
        .expect("valid");
        assert_eq!(events.len(), 2);
        assert_eq!(events[1].channel, "sms");
        let bare = method(
            r#"<PushEvents><domEventCollection><batchEvent type="A" email="a@b.co"/></domEventCollection></PushEvents>"#,
        );
        assert_eq!(
            read_events(
                &action("nms:batchEvent#PushEvents"),
                &bare,
                Count::Many,
                LIMITS
            )
            .expect("valid")
            .len(),
            1
        );
    }

    #[test]
    fn faults_name_the_field_as_the_json_api_does() {
        let cases = [
            (
                r#"<m><domEvent><rtEvent email="a@b.co"/></domEvent></m>"#,
                Count::One,
                "`type`",
            ),
            (
                r#"<m><domEvent><rtEvent type="T" email="nope"/></domEvent></m>"#,
                Count::One,
                "`email`",
            ),
            (r#"<m><domEvent/></m>"#, Count::One, "`domEvent`"),
            (r#"<m><sessiontoken/></m>"#, Count::One, "`domEvent`"),
            (
                r#"<m><c><e type="T" email="a@b.co"/><e type="T" email="bad"/></c></m>"#,
                Count::Many,
                "`events[1].email`",
            ),
            (
                r#"<m><c><e type="T" email="a@b.co"/><e type="T" email="a@b.co"/><e type="T" email="a@b.co"/></c></m>"#,
                Count::Many,
                "`events`",
            ),
            (
                r#"<m><domEvent><e type="T" email="a@b.co"/><e type="T" email="a@b.co"/></domEvent></m>"#,
                Count::One,
                "`domEvent`",
            ),
            (
                r#"<m><domEvent><e type="T" email="a@b.co"><ctx a="1"/><ctx a="2"/></e></domEvent></m>"#,
                Count::One,
                "`ctx`",
            ),
            (
                r#"<m><c><e type="T" email="a@b.co"/><e type="T" email="a@b.co"><ctx/><ctx/></e></c></m>"#,
                Count::Many,
                "`events[1].ctx`",
            ),
        ];
        for (xml, count, field) in cases {
            let fault = read_events(
                &action("nms:rtEvent#PushEvent"),
                &method(xml),
                count,
                LIMITS,
            )
            .unwrap_err();
            assert!(fault.string.contains(field), "{xml}: {fault:?}");
        }
    }

    #[test]
    fn adobe_timestamps_become_rfc3339() {
        assert_eq!(
            adobe_timestamp("2026-11-22 10:00:00"),
            "2026-11-22T10:00:00Z"
        );
        assert_eq!(
            adobe_timestamp("2026-11-22 10:00:00.000+01:00"),
            "2026-11-22T10:00:00.000+01:00"
        );
        assert_eq!(
            adobe_timestamp("2026-11-22T10:00:00Z"),
            "2026-11-22T10:00:00Z"
        );
        assert_eq!(adobe_timestamp("tomorrow"), "tomorrow");
    }

    #[test]
    fn a_ctx_deeper_than_the_json_limit_is_refused_naming_ctx() {
        let limits = Limits {
            max_ctx_bytes: 1 << 20,
            max_batch_events: 2,
        };
        let call = |ctx: String| {
            method(&format!(
                r#"<PushEvent><domEvent><rtEvent type="A" email="a@b.co"><ctx>{ctx}</ctx></rtEvent></domEvent></PushEvent>"#
            ))
        };
        let push = |ctx: String| {
            read_events(
                &action("nms:rtEvent#PushEvent"),
                &call(ctx),
                Count::One,
                limits,
            )
        };
        // `<ctx>` is level 1, each element with children one more, the innermost one a string.
        let chain = |levels: usize| format!("{}x{}", "<a>".repeat(levels), "</a>".repeat(levels));
        assert!(push(chain(32)).is_ok());
        let fault = push(chain(33)).unwrap_err();
        assert!(
            fault.string.starts_with("invalid field `ctx`"),
            "{}",
            fault.string
        );
        // Repeated elements become arrays, a level each: 16 pairs nest 32 levels of JSON, 17 pairs 34.
        let repeated =
            |pairs: usize| format!("{}x{}", "<a/><a>".repeat(pairs), "</a>".repeat(pairs));
        assert!(push(repeated(16)).is_ok());
        let fault = push(repeated(17)).unwrap_err();
        assert!(
            fault.string.starts_with("invalid field `ctx`"),
            "{}",
            fault.string
        );
    }
}
