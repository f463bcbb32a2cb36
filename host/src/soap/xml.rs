//! A request body as an element tree, read so that hostile XML costs nothing.
//!
//! Every classic XML attack needs a feature this reader refuses: a document type declaration
//! (`<!DOCTYPE …>`, the only place entities can be declared) ends the parse at once, before anything in it
//! is looked at, so a billion-laughs body is refused after reading its first few bytes; an entity reference
//! other than the five predefined ones and character references is refused rather than looked up (there is
//! nothing to look it up in, and no external entity is ever fetched); nesting is bounded so that walking the
//! tree cannot exhaust the stack; the element count is bounded so that a body within the size limit cannot
//! turn into an outsized tree. The body size itself is bounded before parsing (`[server] max_body_bytes`).

use quick_xml::NsReader;
use quick_xml::escape::EscapeError;
use quick_xml::events::{BytesStart, Event};
use quick_xml::name::ResolveResult;

/// Deepest element nesting accepted: real SOAP requests nest a dozen levels, a `ctx` a few more.
pub const MAX_DEPTH: usize = 64;
/// Most elements in one request: far more than any real batch of events needs.
pub const MAX_ELEMENTS: usize = 200_000;

/// An element: its namespace and local name, its attributes, its element children and the text directly
/// inside it (character data and CDATA of all its text nodes, concatenated).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Element {
    pub namespace: Option<String>,
    pub name: String,
    pub attributes: Vec<Attribute>,
    pub children: Vec<Element>,
    pub text: String,
}

/// An attribute other than a namespace declaration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribute {
    pub namespace: Option<String>,
    pub name: String,
    pub value: String,
}

impl Element {
    /// The first child element with this local name, whatever its namespace.
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    /// The value of the attribute without namespace named `name`.
    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|a| a.namespace.is_none() && a.name == name)
            .map(|a| a.value.as_str())
    }

    /// The text with surrounding whitespace removed.
    pub fn trimmed_text(&self) -> &str {
        self.text.trim()
    }
}

/// Why a body is not XML this server reads.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XmlError {
    #[error("the body is not UTF-8 (invalid byte at offset {0}); send SOAP requests in UTF-8")]
    NotUtf8(usize),
    #[error(
        "document type declarations (<!DOCTYPE …>) are refused: SOAP requests have none, and entity declarations are how XML bombs work"
    )]
    DocumentType,
    #[error(
        "the entity reference `&{0};` is refused: only &lt; &gt; &amp; &quot; &apos; and character references (&#…;) are expanded"
    )]
    Entity(String),
    #[error("the character U+{code:04X} (at byte {position}) is not allowed in XML 1.0 documents")]
    ForbiddenChar { position: u64, code: u32 },
    #[error("elements are nested deeper than {MAX_DEPTH} levels")]
    TooDeep,
    #[error("the body has more than {MAX_ELEMENTS} elements")]
    TooManyElements,
    #[error("element <{0}> is not closed")]
    Unclosed(String),
    #[error("the body holds no element")]
    NoRoot,
    #[error("there is content after the root element (at byte {0})")]
    AfterRoot(u64),
    #[error("malformed XML at byte {position}: {message}")]
    Malformed { position: u64, message: String },
}

/// Parses `body` into its root element, refusing DTDs, unknown entities, excessive nesting and size.
pub fn parse(body: &[u8]) -> Result<Element, XmlError> {
    let text = std::str::from_utf8(body).map_err(|e| XmlError::NotUtf8(e.valid_up_to()))?;
    // quick-xml does not check characters: a NUL or an escape byte would reach the event fields.
    if let Some((at, c)) = text.char_indices().find(|(_, c)| !is_xml_char(*c)) {
        return Err(XmlError::ForbiddenChar {
            position: at as u64,
            code: c as u32,
        });
    }
    let mut reader = NsReader::from_str(text);
    let mut open: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let mut elements = 0usize;
    loop {
        let position = reader.buffer_position();
        let malformed = |e: &dyn std::fmt::Display| XmlError::Malformed {
            position,
            message: e.to_string(),
        };
        let (namespace, event) = match reader.read_resolved_event() {
            Ok((namespace, event)) => (owned_namespace(&namespace, position)?, event),
            Err(error) => return Err(read_error(error, reader.error_position())),
        };
        match event {
            Event::DocType(_) => return Err(XmlError::DocumentType),
            Event::Start(_) | Event::Empty(_) if root.is_some() => {
                return Err(XmlError::AfterRoot(position));
            }
            Event::Start(start) => {
                admit_element(&mut elements, open.len())?;
                open.push(element(&reader, &start, namespace, position)?);
            }
            Event::Empty(start) => {
                admit_element(&mut elements, open.len())?;
                let done = element(&reader, &start, namespace, position)?;
                close(&mut open, &mut root, done);
            }
            Event::End(_) => {
                // quick-xml checks that the end tag matches the start tag.
                if let Some(done) = open.pop() {
                    close(&mut open, &mut root, done);
                }
            }
            Event::Text(text) => {
                let content = text.xml10_content().map_err(|e| malformed(&e))?;
                push_text(&mut open, &root, &content, position)?;
            }
            Event::CData(data) => {
                let content = data.decode().map_err(|e| malformed(&e))?;
                push_text(&mut open, &root, &content, position)?;
            }
            Event::GeneralRef(reference) => {
                let name = reference.decode().map_err(|e| malformed(&e))?.into_owned();
                let character = match reference.resolve_char_ref() {
                    Ok(Some(c)) if is_xml_char(c) => c,
                    Ok(Some(c)) => {
                        return Err(XmlError::ForbiddenChar {
                            position,
                            code: c as u32,
                        });
                    }
                    Ok(None) => predefined_entity(&name).ok_or(XmlError::Entity(name))?,
                    Err(e) => return Err(malformed(&format!("`&{name};`: {e}"))),
                };
                push_text(
                    &mut open,
                    &root,
                    character.encode_utf8(&mut [0; 4]),
                    position,
                )?;
            }
            Event::Comment(_) | Event::Decl(_) | Event::PI(_) => {}
            Event::Eof => break,
        }
    }
    if let Some(unclosed) = open.pop() {
        return Err(XmlError::Unclosed(unclosed.name));
    }
    root.ok_or(XmlError::NoRoot)
}

/// Counts one more element, refusing it past [`MAX_ELEMENTS`] or deeper than [`MAX_DEPTH`] (`depth` is
/// the number of elements open around it).
fn admit_element(elements: &mut usize, depth: usize) -> Result<(), XmlError> {
    *elements += 1;
    if *elements > MAX_ELEMENTS {
        return Err(XmlError::TooManyElements);
    }
    if depth >= MAX_DEPTH {
        return Err(XmlError::TooDeep);
    }
    Ok(())
}

/// XML 1.0's `Char` production: tab, LF, CR and everything from U+0020 but surrogates, U+FFFE and U+FFFF.
fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}' | '\u{10000}'..)
}

/// The five entities XML predefines.
fn predefined_entity(name: &str) -> Option<char> {
    match name {
        "lt" => Some('<'),
        "gt" => Some('>'),
        "amp" => Some('&'),
        "quot" => Some('"'),
        "apos" => Some('\''),
        _ => None,
    }
}

/// Attaches a finished element to its parent, or makes it the root.
fn close(open: &mut [Element], root: &mut Option<Element>, done: Element) {
    match open.last_mut() {
        Some(parent) => parent.children.push(done),
        None => *root = Some(done),
    }
}

/// Text goes to the innermost open element; outside the root only whitespace is allowed.
fn push_text(
    open: &mut [Element],
    root: &Option<Element>,
    text: &str,
    position: u64,
) -> Result<(), XmlError> {
    match open.last_mut() {
        Some(parent) => parent.text.push_str(text),
        None if text.trim().is_empty() => {}
        None if root.is_some() => return Err(XmlError::AfterRoot(position)),
        None => {
            return Err(XmlError::Malformed {
                position,
                message: "text before the root element".to_owned(),
            });
        }
    }
    Ok(())
}

fn owned_namespace(
    resolved: &ResolveResult<'_>,
    position: u64,
) -> Result<Option<String>, XmlError> {
    match resolved {
        ResolveResult::Bound(namespace) => Ok(Some(
            String::from_utf8_lossy(namespace.as_ref()).into_owned(),
        )),
        ResolveResult::Unbound => Ok(None),
        ResolveResult::Unknown(prefix) => Err(XmlError::Malformed {
            position,
            message: format!(
                "the namespace prefix `{}` is not declared",
                String::from_utf8_lossy(prefix)
            ),
        }),
    }
}

/// An element from its start tag: local name, namespace and attributes (namespace declarations left out).
fn element(
    reader: &NsReader<&[u8]>,
    start: &BytesStart<'_>,
    namespace: Option<String>,
    position: u64,
) -> Result<Element, XmlError> {
    let malformed = |message: String| XmlError::Malformed { position, message };
    let name = String::from_utf8_lossy(start.local_name().as_ref()).into_owned();
    let mut attributes = Vec::new();
    for attribute in start.attributes() {
        let attribute = attribute.map_err(|e| malformed(format!("in <{name}>: {e}")))?;
        if attribute.key.as_namespace_binding().is_some() {
            continue;
        }
        let (resolved, local) = reader.resolve_attribute(attribute.key);
        let attribute_namespace = owned_namespace(&resolved, position)?;
        let value = attribute.unescape_value().map_err(|e| match e {
            quick_xml::Error::Escape(EscapeError::UnrecognizedEntity(_, entity)) => {
                XmlError::Entity(entity)
            }
            other => malformed(format!("in <{name}>: {other}")),
        })?;
        // The body's characters are checked already: a forbidden one here came from a reference (`&#1;`).
        if let Some(c) = value.chars().find(|c| !is_xml_char(*c)) {
            return Err(XmlError::ForbiddenChar {
                position,
                code: c as u32,
            });
        }
        attributes.push(Attribute {
            namespace: attribute_namespace,
            name: String::from_utf8_lossy(local.as_ref()).into_owned(),
            value: value.into_owned(),
        });
    }
    Ok(Element {
        namespace,
        name,
        attributes,
        children: Vec::new(),
        text: String::new(),
    })
}

fn read_error(error: quick_xml::Error, position: u64) -> XmlError {
    match error {
        quick_xml::Error::Escape(EscapeError::UnrecognizedEntity(_, entity)) => {
            XmlError::Entity(entity)
        }
        quick_xml::Error::IllFormed(quick_xml::errors::IllFormedError::MissingEndTag(name)) => {
            XmlError::Unclosed(name)
        }
        other => XmlError::Malformed {
            position,
            message: other.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elements_attributes_text_and_namespaces_are_read() {
        let root = parse(
            br#"<?xml version="1.0"?><e:Envelope xmlns:e="urn:x" xmlns:xsi="urn:i"><b a="1 &lt; 2" xsi:type="t">x &amp; &#x41;<![CDATA[<c>]]></b><!-- note --><c/></e:Envelope>"#,
        )
        .expect("valid XML");
        assert_eq!(root.name, "Envelope");
        assert_eq!(root.namespace.as_deref(), Some("urn:x"));
        let b = root.child("b").expect("b");
        assert_eq!(b.attribute("a"), Some("1 < 2"));
        assert_eq!(b.attribute("type"), None, "a namespaced attribute");
        assert_eq!(b.attributes[1].namespace.as_deref(), Some("urn:i"));
        assert_eq!(b.text, "x & A<c>");
        assert_eq!(root.children.len(), 2);
    }

    #[test]
    fn hostile_and_broken_documents_are_refused() {
        let bomb = br#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]><lolz>&lol2;</lolz>"#;
        assert_eq!(parse(bomb), Err(XmlError::DocumentType));
        assert_eq!(
            parse(b"<a>&xxe;</a>"),
            Err(XmlError::Entity("xxe".to_owned()))
        );
        assert_eq!(
            parse(br#"<a b="&xxe;"/>"#),
            Err(XmlError::Entity("xxe".to_owned()))
        );
        assert!(matches!(
            parse(b"<a><b></a>"),
            Err(XmlError::Malformed { .. })
        ));
        assert_eq!(parse(b"<a><b>"), Err(XmlError::Unclosed("b".to_owned())));
        assert_eq!(parse(b""), Err(XmlError::NoRoot));
        assert!(matches!(parse(b"<a/><b/>"), Err(XmlError::AfterRoot(_))));
        assert!(matches!(parse(b"<p:a/>"), Err(XmlError::Malformed { .. })));
        assert_eq!(parse(&[b'<', 0xff, b'>']), Err(XmlError::NotUtf8(1)));
        for body in ["<a>\u{1}</a>", "<a>\u{ffff}</a>", "<a b=\"\u{1b}\"/>"] {
            assert!(
                matches!(parse(body.as_bytes()), Err(XmlError::ForbiddenChar { .. })),
                "{body:?}"
            );
        }
        for body in ["<a>&#1;</a>", "<a>&#xFFFE;</a>", "<a b=\"x&#x1B;\"/>"] {
            assert!(
                matches!(parse(body.as_bytes()), Err(XmlError::ForbiddenChar { .. })),
                "{body}"
            );
        }
        let allowed =
            parse("<a b=\"&#9;&#10;&#13;\">\t\u{7f}\u{85}&#x85;</a>".as_bytes()).expect("allowed");
        assert_eq!(allowed.attribute("b"), Some("\t\n\r"));
        let deep = "<a>".repeat(MAX_DEPTH + 1) + &"</a>".repeat(MAX_DEPTH + 1);
        assert_eq!(parse(deep.as_bytes()), Err(XmlError::TooDeep));
    }
}
