//! The body of an outgoing message, with its MIME headers among the message's own headers.
//!
//! lettre writes a MIME body's `Content-Type` (and a single part's `Content-Transfer-Encoding`) after
//! the message headers, from the part, so its DKIM signer does not see them: signing them would fail
//! verification, leaving them out would leave them unsigned. So the part is formatted by lettre once,
//! and its headers and encoded body are put into the message as ordinary headers and a pre-encoded
//! body: the bytes on the wire are the same, and every header is signable.

use lettre::Message;
use lettre::message::header::{ContentTransferEncoding, ContentType, MIME_VERSION_1_0};
use lettre::message::{Body, MessageBuilder, MultiPart, SinglePart};

use crate::templates::Rendered;

/// The rendered parts as `multipart/alternative` (text and HTML), `text/html` or `text/plain`.
pub fn build(builder: MessageBuilder, rendered: &Rendered) -> Result<Message, String> {
    let formatted = match (rendered.text.clone(), rendered.html.clone()) {
        (Some(text), Some(html)) => MultiPart::alternative_plain_html(text, html).formatted(),
        (None, Some(html)) => SinglePart::builder()
            .header(ContentType::TEXT_HTML)
            .body(html)
            .formatted(),
        (text, None) => SinglePart::builder()
            .header(ContentType::TEXT_PLAIN)
            .body(text.unwrap_or_default())
            .formatted(),
    };
    with_part(builder, &formatted)
}

/// `builder` with the headers and body of the formatted part `part`.
fn with_part(mut builder: MessageBuilder, part: &[u8]) -> Result<Message, String> {
    let split = part
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("the MIME part has no header block")?;
    let head = std::str::from_utf8(&part[..split]).map_err(|e| format!("MIME headers: {e}"))?;
    let body = part[split + 4..].to_vec();
    let mut encoding = ContentTransferEncoding::SevenBit;
    // lettre adds it for MIME bodies only, which this one no longer is for lettre.
    builder = builder.header(MIME_VERSION_1_0);
    for (name, value) in unfold(head) {
        if name.eq_ignore_ascii_case("Content-Type") {
            let content_type =
                ContentType::parse(&value).map_err(|e| format!("Content-Type `{value}`: {e}"))?;
            builder = builder.header(content_type);
        } else if name.eq_ignore_ascii_case("Content-Transfer-Encoding") {
            encoding = value
                .parse()
                .map_err(|_| format!("Content-Transfer-Encoding `{value}`"))?;
        } else {
            return Err(format!("unexpected MIME header `{name}`"));
        }
    }
    builder
        .body(Body::dangerous_pre_encoded(body, encoding))
        .map_err(|e| e.to_string())
}

/// `(name, value)` of each header of a header block, continuation lines joined.
fn unfold(head: &str) -> Vec<(String, String)> {
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in head.split("\r\n") {
        if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = headers.last_mut() {
                value.push(' ');
                value.push_str(line.trim());
            }
        } else if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_owned(), value.trim().to_owned()));
        }
    }
    headers
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rendered(text: Option<&str>, html: Option<&str>) -> Rendered {
        Rendered {
            from: None,
            subject: Some("Hi".to_owned()),
            text: text.map(str::to_owned),
            html: html.map(str::to_owned),
        }
    }

    fn message(r: &Rendered) -> String {
        let builder = Message::builder()
            .from("a@example.com".parse().unwrap())
            .to("b@example.com".parse().unwrap());
        String::from_utf8(build(builder, r).unwrap().formatted()).unwrap()
    }

    #[test]
    fn mime_headers_are_message_headers_and_the_body_is_unchanged() {
        let both = message(&rendered(Some("plain é"), Some("<p>html</p>")));
        let (head, body) = both.split_once("\r\n\r\n").unwrap();
        assert!(
            head.contains("Content-Type: multipart/alternative;"),
            "{head}"
        );
        assert!(head.contains("MIME-Version: 1.0"), "{head}");
        assert!(
            body.contains("Content-Type: text/plain; charset=utf-8"),
            "{body}"
        );
        assert!(body.contains("<p>html</p>"), "{body}");
        let text = message(&rendered(Some("plain é"), None));
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(
            head.contains("Content-Type: text/plain; charset=utf-8"),
            "{head}"
        );
        assert!(head.contains("Content-Transfer-Encoding: "), "{head}");
        assert!(!body.contains("Content-Type"), "{body}");
        let html = message(&rendered(None, Some("<b>x</b>")));
        assert!(
            html.contains("Content-Type: text/html; charset=utf-8"),
            "{html}"
        );
    }
}
