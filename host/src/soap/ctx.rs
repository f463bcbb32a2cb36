//! An event's `<ctx>` element as the JSON object templates render: the same data, whichever way a client
//! wrote it.
//!
//! Adobe clients write personalisation data both as elements (`<ctx><firstName>Ann</firstName></ctx>`,
//! Adobe's documentation) and as attributes (`<ctx firstName="Ann"/>`, what Adobe's JavaScript SDK makes of
//! a JSON object), and templates say `rtEvent.ctx.firstName` for either, so both become the key `firstName`:
//! - an attribute becomes a string value (namespaced attributes such as `xsi:type` are SOAP plumbing and
//!   are left out);
//! - a child element with neither attributes nor children becomes its text;
//! - any other child element becomes an object, its own text (if not blank) under `$` as in Adobe's SDK;
//! - an element name that occurs more than once becomes an array of the values, in document order (as does
//!   a child element that has the name of an attribute: nothing the client sent is dropped).
//!
//! The recursion here is bounded by the XML reader's nesting limit (`xml::MAX_DEPTH`). The object is then
//! validated as the REST API's is (`push_event.rs`), so a `ctx` nested deeper than
//! `ingest::ctx_depth::MAX_CTX_DEPTH` levels of JSON (repeated elements add a level: an array) is
//! refused naming `ctx`, as on REST.

use serde_json::{Map, Value};

use super::xml::Element;

/// The JSON object for `<ctx>` (or any element treated the same way).
pub fn to_json(element: &Element) -> Map<String, Value> {
    let mut object = Map::new();
    for attribute in element.attributes.iter().filter(|a| a.namespace.is_none()) {
        add(
            &mut object,
            &attribute.name,
            Value::String(attribute.value.clone()),
        );
    }
    for child in &element.children {
        add(&mut object, &child.name, value_of(child));
    }
    object
}

fn value_of(element: &Element) -> Value {
    let has_attributes = element.attributes.iter().any(|a| a.namespace.is_none());
    if !has_attributes && element.children.is_empty() {
        return Value::String(element.text.clone());
    }
    let mut object = to_json(element);
    let text = element.trimmed_text();
    if !text.is_empty() {
        add(&mut object, "$", Value::String(text.to_owned()));
    }
    Value::Object(object)
}

/// Adds `value` under `key`; a key seen before becomes an array. Values built here are strings and
/// objects, never arrays, so an array under a key always means "repeated".
fn add(object: &mut Map<String, Value>, key: &str, value: Value) {
    match object.get_mut(key) {
        None => {
            object.insert(key.to_owned(), value);
        }
        Some(Value::Array(values)) => values.push(value),
        Some(existing) => {
            let first = existing.take();
            *existing = Value::Array(vec![first, value]);
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::soap::xml::parse;

    fn ctx(xml: &str) -> Value {
        Value::Object(to_json(&parse(xml.as_bytes()).expect("well-formed")))
    }

    #[test]
    fn elements_attributes_and_repeats_become_keys_and_arrays() {
        let value = ctx(r#"<ctx xmlns:xsi="urn:i" xsi:type="x" orderId="42">
                <firstName>Ann</firstName>
                <address city="Paris"><street>1 rue</street></address>
                <item sku="A">first</item>
                <item sku="B"/>
                <note>  spaced  </note>
            </ctx>"#);
        assert_eq!(
            value,
            json!({
                "orderId": "42",
                "firstName": "Ann",
                "address": { "city": "Paris", "street": "1 rue" },
                "item": [ { "sku": "A", "$": "first" }, { "sku": "B" } ],
                "note": "  spaced  ",
            })
        );
    }

    #[test]
    fn nothing_is_dropped_when_an_attribute_and_an_element_share_a_name() {
        assert_eq!(
            ctx(r#"<ctx a="1"><a>2</a><a>3</a></ctx>"#),
            json!({ "a": ["1", "2", "3"] })
        );
        assert_eq!(ctx("<ctx/>"), json!({}));
    }
}
