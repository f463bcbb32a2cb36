//! `PUT|GET|DELETE /api/v1/templates/{name}`, `GET /api/v1/templates` (docs/api.md "Templates").

use axum::extract::{RawQuery, Request, State};
use bytes::Bytes;
use http_body_util::Full;
use hyper::{Response, StatusCode};
use serde_json::{Map, Value, json};

use super::{Api, ApiContext, query};
use crate::db::entities::{template, template_version};
use crate::error::ApiError;
use crate::http::body::read_request_limited;
use crate::http::extract::Param;
use crate::http::response::{HttpResponse, json_response};
use crate::ingest::validate::{kind, optional_string, parse_object};
use crate::templates::{self, NewTemplateVersion};

/// Longest template name, in characters.
const MAX_NAME: usize = 100;
/// Longest `eventType`, in characters.
const MAX_EVENT_TYPE: usize = 255;

/// `PUT /api/v1/templates/{name}`: a new version, checked, published unless `"publish": false`.
pub async fn put(
    State(ctx): State<Api>,
    Param(name): Param,
    request: Request,
) -> Result<HttpResponse, ApiError> {
    let name = name.as_str();
    check_name(name)?;
    let body = read_body(&ctx, request).await?;
    let (version, publish) = parse_version(&body)?;
    // Off the async workers and bounded: a runaway template is refused, naming the limit it hit.
    templates::check(&version.content(), &ctx.limits.render)
        .await
        .map_err(|e| ApiError::BadRequest {
            code: crate::error::ErrorCode::TemplateError,
            field: Some(e.field.to_owned()),
            message: e.detail(),
        })?;
    let (template, stored, created) = ctx
        .store
        .put_template_version(name, version, publish)
        .await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(json_response(status, &full_view(&template, &stored)))
}

/// `GET /api/v1/templates/{name}[?version=N]`.
pub async fn get(
    State(ctx): State<Api>,
    Param(name): Param,
    RawQuery(query_string): RawQuery,
) -> Result<HttpResponse, ApiError> {
    let name = name.as_str();
    check_name(name)?;
    let mut wanted = None;
    for (key, value) in query::pairs(query_string.as_deref()) {
        if key == "version" {
            wanted = Some(
                value
                    .parse::<i32>()
                    .ok()
                    .filter(|n| *n >= 1)
                    .ok_or_else(|| {
                        ApiError::bad_request(
                            "version",
                            format!("`version` must be a positive integer, not `{value}`"),
                        )
                    })?,
            );
        }
    }
    let (template, version) = template_version(&ctx, name, wanted).await?;
    Ok(json_response(
        StatusCode::OK,
        &full_view(&template, &version),
    ))
}

/// Template `name` and its version `wanted` (the latest when `None`); 404 naming which is missing.
pub(super) async fn template_version(
    ctx: &ApiContext,
    name: &str,
    wanted: Option<i32>,
) -> Result<(template::Model, template_version::Model), ApiError> {
    let template = ctx
        .store
        .get_template(name)
        .await?
        .ok_or_else(|| not_found(name))?;
    let number = wanted.unwrap_or(template.latest_version);
    let version = ctx
        .store
        .get_template_version(name, number)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("template `{name}` has no version {number}")))?;
    Ok((template, version))
}

/// `DELETE /api/v1/templates/{name}`: the template and every version.
pub async fn delete(State(ctx): State<Api>, Param(name): Param) -> Result<HttpResponse, ApiError> {
    check_name(&name)?;
    if !ctx.store.delete_template(&name).await? {
        return Err(not_found(&name));
    }
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = StatusCode::NO_CONTENT;
    Ok(response)
}

/// `GET /api/v1/templates`: every template, by name.
pub async fn list(State(ctx): State<Api>) -> Result<HttpResponse, ApiError> {
    let templates: Vec<Value> = ctx
        .store
        .list_templates()
        .await?
        .iter()
        .map(|t| Value::Object(summary(t)))
        .collect();
    Ok(json_response(
        StatusCode::OK,
        &json!({ "templates": templates }),
    ))
}

pub(super) fn not_found(name: &str) -> ApiError {
    ApiError::NotFound(format!("no template `{name}`"))
}

/// `{name}`: 1 to 100 characters of `A-Z a-z 0-9 _ . -`.
pub(crate) fn check_name(name: &str) -> Result<(), ApiError> {
    let valid = !name.is_empty()
        && name.len() <= MAX_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if valid {
        Ok(())
    } else {
        Err(ApiError::bad_request(
            "name",
            format!(
                "a template name is 1 to {MAX_NAME} characters of A-Z, a-z, 0-9, `_`, `.` and `-`"
            ),
        ))
    }
}

pub(super) async fn read_body(ctx: &ApiContext, request: Request) -> Result<Bytes, ApiError> {
    read_request_limited(request, ctx.limits.body()).await
}

/// The body of a PUT: the version to store and whether to publish it.
fn parse_version(body: &[u8]) -> Result<(NewTemplateVersion, bool), ApiError> {
    version_from_object(&parse_object(body)?)
}

/// The fields of a PUT's body (also what the console's editor sends, as an object): the version to
/// store and whether to publish it; a field at fault is named.
pub(crate) fn version_from_object(
    object: &Map<String, Value>,
) -> Result<(NewTemplateVersion, bool), ApiError> {
    let event_type = optional_string(object, "eventType", "")?
        .ok_or_else(|| ApiError::bad_request("eventType", "`eventType` is required"))?;
    refuse_characters("eventType", &event_type, |c| c == '\0')?;
    let chars = event_type.chars().count();
    if chars == 0 || chars > MAX_EVENT_TYPE {
        return Err(ApiError::bad_request(
            "eventType",
            format!("`eventType` must be 1 to {MAX_EVENT_TYPE} characters, not {chars}"),
        ));
    }

    let channel = match optional_string(object, "channel", "")? {
        None => mc_plugin_api::Channel::Email,
        Some(other) => other.parse().map_err(|_| {
            ApiError::bad_request(
                "channel",
                format!("`channel` must be \"email\" or \"sms\", not \"{other}\""),
            )
        })?,
    };

    let publish = match object.get("publish") {
        None | Some(Value::Null) => true,
        Some(Value::Bool(publish)) => *publish,
        Some(other) => {
            return Err(ApiError::bad_request(
                "publish",
                format!("`publish` must be true or false, not {}", kind(other)),
            ));
        }
    };

    // An empty part is no part (an empty `from` means the configured default).
    let part = |name: &str| -> Result<Option<String>, ApiError> {
        Ok(optional_string(object, name, "")?.filter(|s| !s.is_empty()))
    };
    let subject = optional_string(object, "subject", "")?;
    let from = part("from")?;
    let text = part("text")?;
    let html = part("html")?;
    // `from` and `subject` become header lines (CR/LF would add headers); `text` and `html` are bodies.
    for (name, value) in [("from", &from), ("subject", &subject)] {
        if let Some(value) = value {
            refuse_characters(name, value, |c| c.is_control() && c != '\t')?;
        }
    }
    for (name, value) in [("text", &text), ("html", &html)] {
        if let Some(value) = value {
            refuse_characters(name, value, |c| {
                c.is_control() && !matches!(c, '\t' | '\n' | '\r')
            })?;
        }
    }

    if channel == mc_plugin_api::Channel::Email {
        match subject.as_deref() {
            None => {
                return Err(ApiError::bad_request(
                    "subject",
                    "`subject` is required for an email template",
                ));
            }
            Some("") => {
                return Err(ApiError::bad_request(
                    "subject",
                    "`subject` must not be empty",
                ));
            }
            Some(_) => {}
        }
        if text.is_none() && html.is_none() {
            return Err(ApiError::bad_request(
                "text",
                "an email template needs `text` or `html` (or both)",
            ));
        }
    } else {
        if text.is_none() {
            return Err(ApiError::bad_request(
                "text",
                "`text` is required for an sms template",
            ));
        }
        let has_subject = subject.as_ref().is_some_and(|s| !s.is_empty());
        for (name, given) in [
            ("from", from.is_some()),
            ("subject", has_subject),
            ("html", html.is_some()),
        ] {
            if given {
                return Err(ApiError::bad_request(
                    name,
                    format!("`{name}` is for email templates only; an sms template has `text`"),
                ));
            }
        }
    }

    let subject = subject.filter(|s| !s.is_empty());
    let version = NewTemplateVersion {
        event_type,
        channel,
        from,
        subject,
        text,
        html,
    };
    Ok((version, publish))
}

/// Refuses field `name` when `value` holds a character `refused` picks, naming the first.
fn refuse_characters(
    name: &str,
    value: &str,
    refused: impl Fn(char) -> bool,
) -> Result<(), ApiError> {
    match value.chars().find(|c| refused(*c)) {
        Some(c) => Err(ApiError::bad_request(
            name,
            format!("`{name}` contains the control character U+{:04X}", c as u32),
        )),
        None => Ok(()),
    }
}

/// A template as `GET /api/v1/templates` lists it.
fn summary(t: &template::Model) -> Map<String, Value> {
    let value = json!({
        "name": t.name,
        "eventType": t.event_type,
        "channel": t.channel,
        "latestVersion": t.latest_version,
        "publishedVersion": t.published_version,
        "publishedAt": t.published_at.map(|at| at.to_rfc3339()),
        "updatedAt": t.updated_at.to_rfc3339(),
    });
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// A template with one version's content, as `GET /api/v1/templates/{name}` shows it.
pub(super) fn full_view(t: &template::Model, v: &template_version::Model) -> Value {
    let mut view = summary(t);
    view.insert("createdAt".to_owned(), json!(t.created_at.to_rfc3339()));
    view.insert(
        "content".to_owned(),
        json!({
            "version": v.version,
            "eventType": v.event_type,
            "channel": v.channel,
            "from": v.from_address,
            "subject": v.subject,
            "text": v.text_body,
            "html": v.html_body,
            "createdAt": v.created_at.to_rfc3339(),
        }),
    );
    Value::Object(view)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused_field(body: &str) -> Option<String> {
        match parse_version(body.as_bytes()) {
            Err(ApiError::BadRequest { field, .. }) => field,
            other => panic!("{body}: {:?}", other.map(|(_, publish)| publish)),
        }
    }

    #[test]
    fn control_characters_are_refused_where_they_do_not_belong() {
        let base = r#""eventType":"E","from":"a@b.co","subject":"S","text":"T","html":"H""#;
        // The base body with `name` set to `value` (its first occurrence renamed away, so it appears once).
        let with = |name: &str, value: &str| {
            format!(r#"{{{base},"{name}":"{value}"}}"#).replacen(
                &format!(r#""{name}":"#),
                r#""x":"#,
                1,
            )
        };
        for (name, value) in [
            ("from", r"a@b.co\r\nBcc: x@y.z"),
            ("subject", r"Hi\nBcc: x@y.z"),
            ("subject", r"Hi\u0085"),
            ("text", r"T\u0000"),
            ("html", r"H\u001b[31m"),
            ("eventType", r"E\u0000"),
        ] {
            let body = with(name, value);
            assert_eq!(refused_field(&body).as_deref(), Some(name), "{body}");
        }
        for (name, value) in [
            ("text", r"a\tb\r\nc"),
            ("subject", r"a\tb"),
            ("eventType", r"E\u0001"),
        ] {
            let body = with(name, value);
            assert!(parse_version(body.as_bytes()).is_ok(), "{body}");
        }
    }

    #[test]
    fn a_field_given_twice_is_refused() {
        let body = r#"{"eventType":"E","subject":"S","text":"T","eventType":"F"}"#;
        match parse_version(body.as_bytes()) {
            Err(ApiError::BadRequest { code, message, .. }) => {
                assert_eq!(code, crate::error::ErrorCode::MalformedJson);
                assert!(message.contains("duplicate field `eventType`"), "{message}");
            }
            other => panic!("{:?}", other.map(|(_, publish)| publish)),
        }
    }
}
