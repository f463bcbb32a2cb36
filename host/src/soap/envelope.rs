//! The SOAP 1.1 envelope: finding the called method in a request, and wrapping answers the way Adobe
//! Campaign does (its clients look for `SOAP-ENV:Body` and `<Method>Response` by literal name).

use super::fault::{FaultCode, SoapFault};
use super::xml::Element;

/// The SOAP 1.1 envelope namespace, the only one Adobe Campaign speaks.
pub const SOAP_ENVELOPE_NS: &str = "http://schemas.xmlsoap.org/soap/envelope/";
/// SOAP 1.2's, recognised to say precisely why it is refused.
const SOAP12_ENVELOPE_NS: &str = "http://www.w3.org/2003/05/soap-envelope";
/// `SOAP-ENV:encodingStyle` of a method response.
pub const ENCODING_SOAP: &str = "http://schemas.xmlsoap.org/soap/encoding/";
/// `SOAP-ENV:encodingStyle` of a parameter that holds an XML document.
pub const ENCODING_LITERAL_XML: &str = "http://xml.apache.org/xml-soap/literalxml";

/// A method call: `nms:rtEvent#PushEvent` is schema `nms:rtEvent`, method `PushEvent`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Action {
    pub schema: String,
    pub method: String,
}

impl Action {
    /// Reads `schema#Method` (quotes around it, as the SOAPAction header often has, are dropped).
    pub fn parse(text: &str) -> Result<Action, SoapFault> {
        let text = text.trim().trim_matches('"');
        match text.split_once('#') {
            Some((schema, method))
                if schema.contains(':') && !method.is_empty() && !schema.is_empty() =>
            {
                Ok(Action {
                    schema: schema.to_owned(),
                    method: method.to_owned(),
                })
            }
            _ => Err(SoapFault::client(
                "invalid_soap_action",
                format!(
                    "invalid field `SOAPAction`: `{text}` is not a SOAP action such as nms:rtEvent#PushEvent"
                ),
            )),
        }
    }

    /// The namespace of the method element: `urn:nms:rtEvent`.
    pub fn urn(&self) -> String {
        format!("urn:{}", self.schema)
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}#{}", self.schema, self.method)
    }
}

/// What a request carries: the method element (the Body's first child element) and the SOAP header.
#[derive(Debug)]
pub struct SoapRequest {
    pub method: Element,
    pub header: Option<Element>,
}

/// Takes the envelope apart, refusing anything but a SOAP 1.1 envelope with a method in its body.
pub fn open(root: Element) -> Result<SoapRequest, SoapFault> {
    let namespace = root.namespace.as_deref().unwrap_or("");
    if root.name != "Envelope" || namespace != SOAP_ENVELOPE_NS {
        let why = if namespace == SOAP12_ENVELOPE_NS {
            "this is a SOAP 1.2 envelope; Adobe Campaign's API (and this endpoint) speak SOAP 1.1"
                .to_owned()
        } else {
            format!(
                "the root element must be Envelope in namespace {SOAP_ENVELOPE_NS}, not `{}` in `{namespace}`",
                root.name
            )
        };
        return Err(SoapFault {
            code: FaultCode::VersionMismatch,
            ..SoapFault::client("invalid_envelope", why)
        });
    }
    let mut header = None;
    let mut body = None;
    for child in root.children {
        if child.namespace.as_deref() != Some(SOAP_ENVELOPE_NS) {
            continue;
        }
        match child.name.as_str() {
            "Header" if header.is_none() => header = Some(child),
            "Body" if body.is_none() => body = Some(child),
            _ => {}
        }
    }
    let body = body.ok_or_else(|| {
        SoapFault::client("invalid_envelope", "the envelope has no SOAP-ENV:Body")
    })?;
    let method = body.children.into_iter().next().ok_or_else(|| {
        SoapFault::client(
            "invalid_envelope",
            "the SOAP-ENV:Body is empty: it must hold the method element, such as <urn:PushEvent>",
        )
    })?;
    Ok(SoapRequest { method, header })
}

/// The called method: from the SOAPAction header or `soapAction` query parameter when the client sent one
/// (it must then agree with the body), otherwise from the method element and its `urn:` namespace.
pub fn action(declared: Option<&str>, method: &Element) -> Result<Action, SoapFault> {
    let in_body = method
        .namespace
        .as_deref()
        .and_then(|ns| ns.strip_prefix("urn:"));
    let Some(declared) = declared.filter(|d| !d.trim().trim_matches('"').is_empty()) else {
        let schema = in_body.ok_or_else(|| {
            SoapFault::client(
                "invalid_soap_action",
                format!(
                    "no SOAPAction header and the method element <{}> has no urn: namespace to say which schema it belongs to",
                    method.name
                ),
            )
        })?;
        return Ok(Action {
            schema: schema.to_owned(),
            method: method.name.clone(),
        });
    };
    let action = Action::parse(declared)?;
    if method.name != action.method {
        return Err(SoapFault::client(
            "invalid_envelope",
            format!(
                "the body calls <{}> but the SOAP action is {action}",
                method.name
            ),
        ));
    }
    if let Some(schema) = in_body
        && schema != action.schema
    {
        return Err(SoapFault::client(
            "invalid_envelope",
            format!(
                "the method element is in namespace urn:{schema} but the SOAP action is {action} (namespace {})",
                action.urn()
            ),
        ));
    }
    if method.namespace.is_some() && in_body.is_none() {
        return Err(SoapFault::client(
            "invalid_envelope",
            format!(
                "the method element is in namespace `{}`; expected {}",
                method.namespace.as_deref().unwrap_or_default(),
                action.urn()
            ),
        ));
    }
    Ok(action)
}

/// A complete answer document around `body` (the content of `SOAP-ENV:Body`), with the namespace prefixes
/// Adobe Campaign's answers declare (`xsd`, `xsi`, `ns`, `SOAP-ENV`).
pub fn response_document(body: &str) -> String {
    format!(
        "<?xml version='1.0' encoding='UTF-8'?>\n<SOAP-ENV:Envelope xmlns:xsd='http://www.w3.org/2001/XMLSchema' xmlns:xsi='http://www.w3.org/2001/XMLSchema-instance' xmlns:ns='http://xml.apache.org/xml-soap' xmlns:SOAP-ENV='{SOAP_ENVELOPE_NS}'><SOAP-ENV:Body>{body}</SOAP-ENV:Body></SOAP-ENV:Envelope>\n"
    )
}

/// The answer of `action`: `<MethodResponse xmlns='urn:schema'>` around the output parameters.
pub fn method_response(action: &Action, parameters: &str) -> String {
    response_document(&format!(
        "<{method}Response xmlns='{urn}' SOAP-ENV:encodingStyle='{ENCODING_SOAP}'>{parameters}</{method}Response>",
        method = action.method,
        urn = action.urn(),
    ))
}

/// Escapes text for element content and single- or double-quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::soap::xml::parse;

    fn request(xml: &str) -> Result<SoapRequest, SoapFault> {
        open(parse(xml.as_bytes()).expect("well-formed"))
    }

    const PUSH: &str = r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" xmlns:urn="urn:nms:rtEvent"><s:Header/><s:Body><urn:PushEvent/></s:Body></s:Envelope>"#;

    #[test]
    fn the_action_comes_from_the_header_or_the_body() {
        let method = request(PUSH).expect("envelope").method;
        let from_body = action(None, &method).expect("from the body");
        assert_eq!(from_body.to_string(), "nms:rtEvent#PushEvent");
        let declared = action(Some("\"nms:rtEvent#PushEvent\""), &method).expect("declared");
        assert_eq!(declared, from_body);
        let other = action(Some("nms:batchEvent#PushEvent"), &method).unwrap_err();
        assert!(other.string.contains("urn:nms:rtEvent"), "{other:?}");
        assert!(action(Some("PushEvent"), &method).is_err());
    }

    #[test]
    fn envelopes_of_other_namespaces_are_refused() {
        let soap12 = PUSH.replace(SOAP_ENVELOPE_NS, SOAP12_ENVELOPE_NS);
        let fault = request(&soap12).unwrap_err();
        assert_eq!(fault.code, FaultCode::VersionMismatch);
        assert!(fault.string.contains("SOAP 1.2"));
        assert!(request(&PUSH.replace(SOAP_ENVELOPE_NS, "urn:wrong")).is_err());
        assert!(request(&PUSH.replace("<urn:PushEvent/>", "")).is_err());
    }

    #[test]
    fn answers_escape_their_text() {
        assert_eq!(escape("a<b>&\"'"), "a&lt;b&gt;&amp;&quot;&apos;");
        let answer = method_response(
            &Action::parse("nms:rtEvent#PushEvent").expect("action"),
            "<plId xsi:type='xsd:long'>1</plId>",
        );
        let root = parse(answer.as_bytes()).expect("the answer is XML");
        let body = root.child("Body").expect("Body");
        assert_eq!(body.children[0].name, "PushEventResponse");
        assert_eq!(body.children[0].children[0].text, "1");
    }
}
