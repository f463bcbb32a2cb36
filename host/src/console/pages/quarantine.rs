//! `/console/quarantine`: the addresses (and whole domains, `@example.com`) that receive nothing — search
//! by part of the address, reason, channel and since when; why each is there (the reason and what the
//! relay or the bounce said) and since when; operators release one (CSRF-checked POST, 403 for a
//! viewer), after which its next event is delivered. Entries past `[quarantine] expire_after` no longer
//! count and are not listed. Newest first, a page at a time (`after` + `limit`).

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Serialize;

use super::super::response::see_other;
use super::super::session::Signed;
use super::super::view::{Frame, parse_time, render, time};
use super::super::{Console, ConsoleState};
use crate::db::entities::quarantine;
use crate::store::{QuarantineCursor, QuarantineFilter, QuarantineReason};
use mc_plugin_api::Channel;

/// Entries per page unless `limit` says otherwise, and the most it may say.
const PAGE: u64 = 50;
const MAX_PAGE: u64 = 200;
/// The longest search text taken.
const MAX_SEARCH: usize = 320;

/// The search form as typed, to show it again.
#[derive(Default, Serialize)]
struct Form {
    address: String,
    reason: String,
    channel: String,
    since: String,
    limit: String,
}

#[derive(Serialize)]
struct EntryRow {
    address: String,
    domain: bool,
    channel: String,
    reason: String,
    diagnostic: String,
    since: String,
    expires: String,
}

impl EntryRow {
    fn new(entry: &quarantine::Model, expire_after: Option<std::time::Duration>) -> Self {
        EntryRow {
            address: entry.address.clone(),
            domain: entry.address.starts_with('@'),
            channel: entry.channel.clone(),
            reason: entry.reason.clone(),
            diagnostic: entry.diagnostic.clone().unwrap_or_default(),
            since: time(entry.created_at),
            expires: expire_after
                .and_then(|d| chrono::Duration::from_std(d).ok())
                .and_then(|d| entry.created_at.checked_add_signed(d))
                .map_or_else(|| "never (until released)".to_owned(), time),
        }
    }
}

#[derive(Serialize)]
struct View {
    executes: bool,
    form: Form,
    reasons: Vec<&'static str>,
    channels: &'static [&'static str],
    entries: Vec<EntryRow>,
    next: Option<String>,
    notice: Option<String>,
    error: Option<String>,
}

/// The form to show again and the filter of the page's query, or what is wrong (naming the field).
fn filter(pairs: &[(String, String)]) -> (Form, Result<QuarantineFilter, String>) {
    let mut form = Form::default();
    let mut filter = QuarantineFilter {
        limit: PAGE,
        ..Default::default()
    };
    let mut error = None;
    for (key, value) in pairs {
        let value = value.trim();
        if value.is_empty() {
            continue;
        }
        let checked: Result<(), String> = match key.as_str() {
            "address" => {
                form.address = value.to_owned();
                if value.chars().count() > MAX_SEARCH {
                    Err(format!("address: at most {MAX_SEARCH} characters"))
                } else {
                    filter.contains = Some(value.to_owned());
                    Ok(())
                }
            }
            "reason" => {
                form.reason = value.to_owned();
                value
                    .parse::<QuarantineReason>()
                    .map(|r| filter.reason = Some(r))
                    .map_err(|e| format!("reason: {e}"))
            }
            "channel" => {
                form.channel = value.to_owned();
                value
                    .parse::<Channel>()
                    .map(|c| filter.channel = Some(c))
                    .map_err(|e| format!("channel: {e}"))
            }
            "since" => {
                form.since = value.to_owned();
                parse_time("since", value).map(|t| filter.after = Some(t))
            }
            "after" => QuarantineCursor::decode(value)
                .map(|c| filter.page_after = Some(c))
                .ok_or_else(|| format!("after: `{value}` is not a page cursor")),
            "limit" => {
                form.limit = value.to_owned();
                value
                    .parse::<u64>()
                    .ok()
                    .filter(|n| (1..=MAX_PAGE).contains(n))
                    .map(|n| filter.limit = n)
                    .ok_or_else(|| format!("limit: must be a number from 1 to {MAX_PAGE}"))
            }
            _ => Ok(()),
        };
        if let Err(why) = checked {
            error.get_or_insert(why);
        }
    }
    match error {
        Some(why) => (form, Err(why)),
        None => (form, Ok(filter)),
    }
}

/// The page for `query`, with `notice` and answered with `status` unless the search itself fails.
async fn answer(
    console: &Console,
    user: &Signed,
    query: Option<&str>,
    mut status: StatusCode,
    notice: Option<String>,
    mut error: Option<String>,
) -> Response {
    let pairs = crate::urls::query_pairs(query.unwrap_or(""));
    let mut entries = Vec::new();
    let mut next = None;
    let (form, filter) = filter(&pairs);
    match filter {
        Err(why) => {
            status = StatusCode::BAD_REQUEST;
            error = Some(why);
        }
        Ok(_) if !console.ctx.executes => {}
        Ok(filter) => {
            let expiry = console.ctx.quarantine_expiry;
            match console.ctx.store.list_quarantine(&filter, expiry).await {
                Ok(found) => {
                    next = (found.len() as u64 == filter.limit)
                        .then(|| found.last())
                        .flatten()
                        .map(|last| {
                            let mut kept: Vec<(String, String)> = pairs
                                .iter()
                                .filter(|(k, v)| {
                                    matches!(
                                        k.as_str(),
                                        "address" | "reason" | "channel" | "since" | "limit"
                                    ) && !v.is_empty()
                                })
                                .cloned()
                                .collect();
                            kept.push(("after".to_owned(), QuarantineCursor::after(last).encode()));
                            crate::urls::encode_query(&kept)
                        });
                    entries = found.iter().map(|e| EntryRow::new(e, expiry)).collect();
                }
                Err(e) => {
                    status = StatusCode::SERVICE_UNAVAILABLE;
                    error = Some(format!("the search failed: {e}"));
                }
            }
        }
    }
    render(
        &console.pages,
        status,
        "quarantine.html",
        Some(Frame::new(
            user,
            console.ctx.archive.is_some(),
            "quarantine",
        )),
        &View {
            executes: console.ctx.executes,
            form,
            reasons: QuarantineReason::ALL.iter().map(|r| r.as_str()).collect(),
            channels: Channel::NAMES,
            entries,
            next,
            notice,
            error,
        },
    )
}

/// `GET /console/quarantine?address=&reason=&channel=&since=&after=&limit=[&released=]`.
pub async fn page(
    State(console): State<ConsoleState>,
    user: Signed,
    RawQuery(query): RawQuery,
) -> Response {
    let released = crate::urls::query_pairs(query.as_deref().unwrap_or(""))
        .into_iter()
        .find(|(k, _)| k == "released")
        .map(|(_, address)| format!("Released {address}: its next events are delivered."));
    answer(
        &console,
        &user,
        query.as_deref(),
        StatusCode::OK,
        released,
        None,
    )
    .await
}

/// `POST /console/quarantine/release` (`address`; operators, CSRF-checked): back to the list.
pub async fn release(State(console): State<ConsoleState>, user: Signed, body: Bytes) -> Response {
    let form = match user.change_form(&body) {
        Ok(form) => form,
        Err(refusal) => return refusal.into_response(),
    };
    let address = form.get("address").map(|a| a.trim()).unwrap_or("");
    let (status, why) = if address.is_empty() || address.chars().count() > MAX_SEARCH {
        (
            StatusCode::BAD_REQUEST,
            "address: name the quarantined address to release".to_owned(),
        )
    } else if !console.ctx.executes {
        (
            StatusCode::NOT_FOUND,
            "This instance has no quarantine of its own.".to_owned(),
        )
    } else {
        match console.ctx.store.release_quarantine(address).await {
            Ok(true) => {
                tracing::info!(address = %address, login = %user.login, "console: quarantine released");
                return see_other(
                    &format!(
                        "/console/quarantine?{}",
                        crate::urls::encode_query(&[("released".to_owned(), address.to_owned())])
                    ),
                    None,
                );
            }
            Ok(false) => (
                StatusCode::NOT_FOUND,
                format!("{address} is not quarantined."),
            ),
            Err(e) => (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("The release failed: {e}"),
            ),
        }
    };
    answer(&console, &user, None, status, None, Some(why)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_search_is_checked_and_names_the_field() {
        let pairs = crate::urls::query_pairs(
            "address=Shop.test&reason=hard_bounce&channel=email&since=2026-12-01T00:00&limit=10",
        );
        let (form, Ok(found)) = filter(&pairs) else {
            panic!("a good query refused")
        };
        assert_eq!(found.contains.as_deref(), Some("Shop.test"));
        assert_eq!(found.reason, Some(QuarantineReason::HardBounce));
        assert_eq!(found.channel, Some(Channel::Email));
        assert!(found.after.is_some());
        assert_eq!(found.limit, 10);
        assert_eq!(form.since, "2026-12-01T00:00");
        for (query, field) in [
            ("reason=lost", "reason:"),
            ("channel=fax", "channel:"),
            ("since=yesterday", "since:"),
            ("after=x", "after:"),
            ("limit=0", "limit:"),
            ("limit=1000", "limit:"),
        ] {
            let (_, Err(why)) = filter(&crate::urls::query_pairs(query)) else {
                panic!("{query} taken")
            };
            assert!(why.starts_with(field), "{query}: {why}");
        }
    }
}
