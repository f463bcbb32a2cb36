//! `GET /api/v1/quarantine`, `PUT|DELETE /api/v1/quarantine/{address}` (docs/api.md "Quarantine").
//!
//! `{address}` is an email address, a phone number (SMS), or a whole domain written `@example.com` or
//! `example.com`; a domain is stored as `@example.com` and covers every address at that domain (not its
//! subdomains).

use axum::extract::{RawQuery, Request, State};
use hyper::StatusCode;
use serde_json::{Value, json};

use super::{Api, query};
use crate::db::entities::quarantine;
use crate::error::ApiError;
use crate::http::body::read_request_limited;
use crate::http::extract::Param;
use crate::http::response::{HttpResponse, json_response};
use crate::ingest::validate::{check_email, check_phone, optional_string, parse_object};
use crate::store::{NewQuarantine, QuarantineFilter, QuarantineReason, quarantine_key};
use mc_plugin_api::Channel;

const MAX_PAGE: u64 = 1000;
const DEFAULT_PAGE: u64 = 100;
const MAX_DIAGNOSTIC: usize = 1000;

/// `{address}` as stored (lower case, a domain as `@domain`) and its channel, or why it is none.
fn parse_address(raw: &str) -> Result<(String, Channel), ApiError> {
    let raw = raw.trim();
    let bad = |why: &str| ApiError::bad_request("address", format!("`{raw}` {why}"));
    if let Some(domain) = raw
        .strip_prefix('@')
        .or((!raw.contains('@') && !raw.starts_with('+') && raw.contains('.')).then_some(raw))
    {
        let valid = !domain.is_empty()
            && domain.len() <= 253
            && domain.split('.').count() >= 2
            && domain.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            });
        if !valid {
            return Err(bad(
                "is not a domain (write `@example.com` or `example.com`)",
            ));
        }
        return Ok((format!("@{}", domain.to_ascii_lowercase()), Channel::Email));
    }
    if raw.contains('@') {
        check_email(raw).map_err(|why| bad(&format!("is not an email address: {why}")))?;
        return Ok((quarantine_key(raw), Channel::Email));
    }
    check_phone(raw).map_err(|why| {
        bad(&format!(
            "is neither an email address, a domain nor a phone number: {why}"
        ))
    })?;
    Ok((raw.to_owned(), Channel::Sms))
}

fn entry_view(entry: &quarantine::Model, expire_after: Option<std::time::Duration>) -> Value {
    let expires_at = expire_after.map(|d| {
        (entry.created_at + chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX))
            .to_rfc3339()
    });
    json!({
        "address": entry.address,
        "domain": entry.address.starts_with('@'),
        "channel": entry.channel,
        "reason": entry.reason,
        "diagnostic": entry.diagnostic,
        "createdAt": entry.created_at.to_rfc3339(),
        "expiresAt": expires_at,
    })
}

pub async fn list(
    State(ctx): State<Api>,
    RawQuery(query_string): RawQuery,
) -> Result<HttpResponse, ApiError> {
    let mut filter = QuarantineFilter {
        limit: DEFAULT_PAGE,
        ..Default::default()
    };
    for (name, value) in query::pairs(query_string.as_deref()) {
        match name.as_str() {
            "address" => filter.address = Some(parse_address(&value)?.0),
            "reason" => {
                filter.reason = Some(
                    value
                        .parse::<QuarantineReason>()
                        .map_err(|e| ApiError::bad_request("reason", e))?,
                );
            }
            "after" => filter.after = Some(query::time("after", &value)?),
            "limit" => filter.limit = query::page_limit(&value, MAX_PAGE)?,
            _ => {}
        }
    }
    let entries = ctx
        .store
        .list_quarantine(&filter, ctx.quarantine_expiry)
        .await?;
    let entries: Vec<Value> = entries
        .iter()
        .map(|e| entry_view(e, ctx.quarantine_expiry))
        .collect();
    Ok(json_response(
        StatusCode::OK,
        &json!({ "entries": entries }),
    ))
}

pub async fn put(
    State(ctx): State<Api>,
    Param(address): Param,
    request: Request,
) -> Result<HttpResponse, ApiError> {
    let (key, channel) = parse_address(&address)?;
    let body = read_request_limited(request, ctx.limits.body()).await?;
    let (reason, diagnostic) = if body.iter().all(u8::is_ascii_whitespace) {
        (QuarantineReason::Manual, None)
    } else {
        let object = parse_object(&body)?;
        let reason = match optional_string(&object, "reason", "")? {
            Some(name) => name
                .parse::<QuarantineReason>()
                .map_err(|e| ApiError::bad_request("reason", e))?,
            None => QuarantineReason::Manual,
        };
        let diagnostic = optional_string(&object, "diagnostic", "")?;
        if diagnostic
            .as_ref()
            .is_some_and(|d| d.chars().count() > MAX_DIAGNOSTIC)
        {
            return Err(ApiError::bad_request(
                "diagnostic",
                format!("`diagnostic` is longer than {MAX_DIAGNOSTIC} characters"),
            ));
        }
        (reason, diagnostic)
    };
    let entry = ctx
        .store
        .put_quarantine(&NewQuarantine {
            address: key,
            channel: channel.as_str().to_owned(),
            reason,
            diagnostic,
        })
        .await?;
    ctx.metrics.record_quarantine_added(reason.as_str());
    Ok(json_response(
        StatusCode::OK,
        &entry_view(&entry, ctx.quarantine_expiry),
    ))
}

pub async fn release(
    State(ctx): State<Api>,
    Param(address): Param,
) -> Result<HttpResponse, ApiError> {
    let (key, _) = parse_address(&address)?;
    if ctx.store.release_quarantine(&key).await? {
        Ok(json_response(
            StatusCode::OK,
            &json!({ "address": key, "released": true }),
        ))
    } else {
        Err(ApiError::NotFound(format!("`{key}` is not quarantined")))
    }
}
