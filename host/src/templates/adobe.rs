//! Adobe Campaign placeholders in templates: `<%= rtEvent.ctx.firstName %>` renders as
//! `{{ ctx.firstName }}` does, so message templates exported from Adobe Campaign can be imported unchanged.
//!
//! The translation happens when a template is compiled (the stored text stays as written), into the
//! equivalent Jinja expression, so the usual rules apply to the result: HTML escaping in the `html` part,
//! absent values rendering empty. Adobe's placeholders name the event as `rtEvent` or `batchEvent`:
//! - `rtEvent.ctx.a.b` (and `rtEvent.ctx.@a`, Adobe's attribute syntax: the SOAP endpoint makes
//!   attributes and elements the same keys) → `ctx.a.b`;
//! - `rtEvent.email`, `.mobilePhone`, `.language`, `.externalId` → the event field of that name.
//!
//! Anything else between `<%` and `%>` is Adobe's server-side JavaScript, which this server does not run:
//! such a template is refused with the line of the block, rather than sent with the code in it.

use std::borrow::Cow;

/// The event fields a placeholder can name besides `ctx` (the variables templates render with).
const EVENT_FIELDS: [&str; 4] = ["email", "mobilePhone", "language", "externalId"];

/// Why a template's Adobe placeholder cannot be translated: the line (from 1) and the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlaceholderError {
    pub line: usize,
    pub message: String,
}

/// `source` with every `<%= … %>` placeholder replaced by its Jinja equivalent; unchanged (and not copied)
/// when it has none.
pub fn translate(source: &str) -> Result<Cow<'_, str>, PlaceholderError> {
    if !source.contains("<%") {
        return Ok(Cow::Borrowed(source));
    }
    let mut out = String::with_capacity(source.len());
    let mut rest = source;
    while let Some(start) = rest.find("<%") {
        out.push_str(&rest[..start]);
        let line = source[..source.len() - rest.len() + start]
            .matches('\n')
            .count()
            + 1;
        let error = |message: String| PlaceholderError { line, message };
        let block = &rest[start + 2..];
        let end = block
            .find("%>")
            .ok_or_else(|| error("`<%` is never closed by `%>`".to_owned()))?;
        let Some(expression) = block[..end].strip_prefix('=') else {
            return Err(error(format!(
                "Adobe JavaScript blocks (`<%{} %>`) are not supported; only `<%= rtEvent.… %>` placeholders are translated: write the logic in Jinja (`{{% if … %}}`)",
                first_words(&block[..end])
            )));
        };
        out.push_str("{{ ");
        out.push_str(&jinja_expression(expression.trim()).map_err(error)?);
        out.push_str(" }}");
        rest = &block[end + 2..];
    }
    out.push_str(rest);
    Ok(Cow::Owned(out))
}

/// `rtEvent.ctx.a.@b` → `ctx.a.b`; `batchEvent.email` → `email`.
fn jinja_expression(expression: &str) -> Result<String, String> {
    let unsupported = || {
        format!(
            "`<%= {expression} %>` is not a placeholder this server translates: use rtEvent.ctx.…, or rtEvent.{} (batchEvent. works the same)",
            EVENT_FIELDS.join(", rtEvent.")
        )
    };
    let mut segments = expression.split('.');
    if !matches!(segments.next(), Some("rtEvent" | "batchEvent")) {
        return Err(unsupported());
    }
    let segments: Vec<&str> = segments.map(|s| s.trim().trim_start_matches('@')).collect();
    match segments.as_slice() {
        ["ctx", path @ ..] if path.iter().all(|s| !s.is_empty()) => {
            let mut jinja = "ctx".to_owned();
            for segment in path {
                if is_identifier(segment) {
                    jinja.push('.');
                    jinja.push_str(segment);
                } else {
                    // A key such as `order-id` is not a Jinja attribute name; the subscript is equivalent.
                    jinja.push_str(&format!("[{}]", quoted(segment)));
                }
            }
            Ok(jinja)
        }
        [field] if EVENT_FIELDS.contains(field) => Ok((*field).to_owned()),
        _ => Err(unsupported()),
    }
}

fn is_identifier(text: &str) -> bool {
    let mut chars = text.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A Jinja string literal.
fn quoted(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The start of a code block, for the error message.
fn first_words(code: &str) -> String {
    let code = code.trim();
    let cut: String = code.chars().take(30).collect();
    if cut.len() < code.len() {
        format!(" {cut}…")
    } else {
        format!(" {cut}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_become_jinja() {
        assert_eq!(
            translate("Hi <%= rtEvent.ctx.firstName %>, <%=batchEvent.email%> <%= rtEvent.ctx.@a.order-id %>")
                .expect("translatable"),
            r#"Hi {{ ctx.firstName }}, {{ email }} {{ ctx.a["order-id"] }}"#
        );
        assert!(matches!(
            translate("plain {{ ctx.x }}"),
            Ok(Cow::Borrowed(_))
        ));
    }

    #[test]
    fn code_blocks_and_unknown_fields_are_refused_with_their_line() {
        let error = translate("a\nb <% if (x) { %>").unwrap_err();
        assert_eq!(error.line, 2);
        assert!(error.message.contains("not supported"), "{}", error.message);
        assert!(translate("<%= recipient.firstName %>").is_err());
        assert!(translate("<%= rtEvent.type %>").is_err());
        assert!(translate("<%= rtEvent.ctx %>").is_ok());
        assert!(translate("<%= rtEvent.ctx. %>").is_err());
        assert_eq!(translate("x\n\n<%= rtEvent.email").unwrap_err().line, 3);
    }
}
