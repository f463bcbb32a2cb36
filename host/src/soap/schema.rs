//! `xtk:persist#GetEntityIfMoreRecent` for `xtk:schema|nms:rtEvent` and `xtk:schema|nms:batchEvent`.
//!
//! Generic SOAP clients do not know a method's parameters in advance: Adobe's JavaScript SDK fetches the
//! schema of `nms:rtEvent` before its first `NLWS.nmsRtEvent.pushEvent(…)`, and builds the call from the
//! `<method>` it finds there (parameter names, types, which ones are output). So these documents are the
//! contract of the push methods as much as the code that serves them: parameter names are those of Adobe's
//! documentation (`domEvent`, `domEventCollection`) and the output is the 64-bit `plId`.

use super::envelope::{Action, ENCODING_LITERAL_XML, escape, method_response};
use super::fault::SoapFault;
use super::xml::Element;

/// The schemas this server describes, by name in `nms`.
const EVENT_SCHEMAS: [(&str, &str); 2] = [
    ("rtEvent", "Real-time events"),
    ("batchEvent", "Batch events"),
];

/// The event element's attributes, with their types, as the schema lists them.
const EVENT_ATTRIBUTES: [(&str, &str, &str); 8] = [
    (
        "type",
        "string",
        "Event type: the template published for it is used",
    ),
    ("email", "string", "Recipient email address (email channel)"),
    (
        "mobilePhone",
        "string",
        "Recipient mobile phone (SMS channel)",
    ),
    (
        "externalId",
        "string",
        "The client's own identifier of the event",
    ),
    ("wishedChannel", "byte", "0 email, 1 SMS"),
    ("language", "string", "Language of the recipient"),
    ("scheduled", "datetime", "Not delivered before this time"),
    ("expiration", "datetime", "Not delivered after this time"),
];

/// Answers the schema document asked for in `pk` (`xtk:schema|nms:rtEvent`); an unknown one is an empty
/// answer, or a fault when `mustExist` is true.
pub fn get_entity_if_more_recent(action: &Action, method: &Element) -> Result<String, SoapFault> {
    let pk = method.child("pk").map(Element::trimmed_text).unwrap_or("");
    let must_exist = method
        .child("mustExist")
        .is_some_and(|e| matches!(e.trimmed_text(), "true" | "1"));
    let document = pk
        .strip_prefix("xtk:schema|nms:")
        .and_then(|name| EVENT_SCHEMAS.iter().find(|(n, _)| *n == name))
        .map(|(name, label)| event_schema(name, label));
    if document.is_none() && must_exist {
        return Err(SoapFault::client(
            "not_found",
            format!(
                "invalid field `pk`: `{pk}` is not an entity this server has; it describes xtk:schema|nms:rtEvent and xtk:schema|nms:batchEvent"
            ),
        ));
    }
    Ok(method_response(
        action,
        &format!(
            "<pdomDoc xsi:type='ns:Element' SOAP-ENV:encodingStyle='{ENCODING_LITERAL_XML}'>{}</pdomDoc>",
            document.unwrap_or_default()
        ),
    ))
}

/// The schema of `nms:<name>`: the event element and the two push methods.
fn event_schema(name: &str, label: &str) -> String {
    let attributes: String = EVENT_ATTRIBUTES
        .iter()
        .map(|(attribute, kind, description)| {
            format!(
                "<attribute name='{attribute}' type='{kind}' label='{}'/>",
                escape(description)
            )
        })
        .collect();
    format!(
        "<schema xmlns='urn:xtk:schema' namespace='nms' name='{name}' label='{label}' mappingType='sql' xtkschema='xtk:schema'>\
<element name='{name}' label='{label}'>{attributes}<element name='ctx' type='anyType' label='Personalisation data'/></element>\
<methods>\
<method name='PushEvent' static='true'><parameters>\
<param name='domEvent' type='DOMDocument' desc='The event: &lt;{name} type=&quot;…&quot; email=&quot;…&quot;&gt;&lt;ctx&gt;…&lt;/ctx&gt;&lt;/{name}&gt;'/>\
<param name='plId' type='int64' inout='out' desc='The id of the event'/>\
</parameters></method>\
<method name='PushEvents' static='true'><parameters>\
<param name='domEventCollection' type='DOMDocument' desc='A collection element holding the events'/>\
<param name='plIds' type='DOMDocument' inout='out' desc='&lt;plIds&gt; with one &lt;plId&gt; per event, in order'/>\
</parameters></method>\
</methods></schema>"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::soap::xml::parse;

    fn call(pk: &str, must_exist: bool) -> Result<String, SoapFault> {
        let method = parse(
            format!("<GetEntityIfMoreRecent><pk>{pk}</pk><md5/><mustExist>{must_exist}</mustExist></GetEntityIfMoreRecent>")
                .as_bytes(),
        )
        .expect("xml");
        get_entity_if_more_recent(
            &Action::parse("xtk:persist#GetEntityIfMoreRecent").expect("action"),
            &method,
        )
    }

    #[test]
    fn event_schemas_describe_the_push_methods() {
        let answer = call("xtk:schema|nms:rtEvent", true).expect("known schema");
        let root = parse(answer.as_bytes()).expect("the answer is XML");
        let response = &root.child("Body").expect("Body").children[0];
        assert_eq!(response.name, "GetEntityIfMoreRecentResponse");
        let schema = &response.child("pdomDoc").expect("pdomDoc").children[0];
        assert_eq!(schema.attribute("name"), Some("rtEvent"));
        let methods = schema.child("methods").expect("methods");
        let names: Vec<_> = methods
            .children
            .iter()
            .filter_map(|m| m.attribute("name"))
            .collect();
        assert_eq!(names, ["PushEvent", "PushEvents"]);
        assert!(call("xtk:schema|nms:batchEvent", true).is_ok());
    }

    #[test]
    fn unknown_entities_are_empty_or_a_fault() {
        let answer = call("xtk:schema|nms:recipient", false).expect("empty answer");
        assert!(answer.contains("<pdomDoc xsi:type='ns:Element'"));
        assert!(!answer.contains("<schema"));
        let fault = call("xtk:schema|nms:recipient", true).unwrap_err();
        assert!(fault.string.contains("`pk`"));
    }
}
