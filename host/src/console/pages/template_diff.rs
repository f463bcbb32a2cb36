//! `/console/templates/{name}/diff?from=A&to=B`: what changed between two versions of a template, part
//! by part, as line diffs (`similar`), rendered on the server.

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use similar::{ChangeTag, TextDiff};

use super::super::ConsoleState;
use super::super::response::{Refusal, refuse};
use super::super::session::Signed;
use super::super::view::{render, time};
use super::templates::frame;
use crate::db::entities::template_version;

/// One line of a part's diff.
#[derive(Serialize)]
struct Line {
    /// `equal`, `insert` or `delete`.
    kind: &'static str,
    old: String,
    new: String,
    text: String,
}

#[derive(Serialize)]
struct Part {
    name: &'static str,
    changed: bool,
    inserted: usize,
    deleted: usize,
    lines: Vec<Line>,
}

#[derive(Serialize)]
struct VersionInfo {
    version: i32,
    created_at: String,
}

#[derive(Serialize)]
struct View {
    name: String,
    from: VersionInfo,
    to: VersionInfo,
    parts: Vec<Part>,
    unchanged: Vec<&'static str>,
    versions: Vec<i32>,
}

/// The parts of a version, by name, as text (an absent part is empty).
fn parts(v: &template_version::Model) -> [(&'static str, String); 6] {
    [
        ("eventType", v.event_type.clone()),
        ("channel", v.channel.clone()),
        ("from", v.from_address.clone().unwrap_or_default()),
        ("subject", v.subject.clone().unwrap_or_default()),
        ("text", v.text_body.clone().unwrap_or_default()),
        ("html", v.html_body.clone().unwrap_or_default()),
    ]
}

/// The line diff of `old` → `new`.
fn diff(name: &'static str, old: &str, new: &str) -> Part {
    let mut part = Part {
        name,
        changed: old != new,
        inserted: 0,
        deleted: 0,
        lines: Vec::new(),
    };
    let number = |n: Option<usize>| n.map(|n| (n + 1).to_string()).unwrap_or_default();
    for change in TextDiff::from_lines(old, new).iter_all_changes() {
        let kind = match change.tag() {
            ChangeTag::Equal => "equal",
            ChangeTag::Insert => {
                part.inserted += 1;
                "insert"
            }
            ChangeTag::Delete => {
                part.deleted += 1;
                "delete"
            }
        };
        part.lines.push(Line {
            kind,
            old: number(change.old_index()),
            new: number(change.new_index()),
            text: change.value().trim_end_matches(['\n', '\r']).to_owned(),
        });
    }
    part
}

/// `GET /console/templates/{name}/diff?from=A&to=B`.
pub async fn page(
    State(console): State<ConsoleState>,
    user: Signed,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let pairs = crate::urls::query_pairs(query.as_deref().unwrap_or(""));
    let number = |key: &str| -> Result<i32, Refusal> {
        let value = pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .unwrap_or("");
        value
            .parse::<i32>()
            .ok()
            .filter(|n| *n >= 1)
            .ok_or_else(|| {
                Refusal::bad_request(format!("{key}: `{value}` is not a version number"))
            })
    };
    let (from, to) = match (number("from"), number("to")) {
        (Ok(from), Ok(to)) => (from, to),
        (Err(refusal), _) | (_, Err(refusal)) => return refusal.into_response(),
    };
    let store = &console.ctx.store;
    let mut found = Vec::new();
    for (key, n) in [("from", from), ("to", to)] {
        match store.get_template_version(&name, n).await {
            Ok(Some(v)) => found.push(v),
            Ok(None) => {
                return refuse(
                    StatusCode::NOT_FOUND,
                    &format!("{key}: template `{name}` has no version {n}"),
                );
            }
            Err(e) => return refuse(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
        }
    }
    let (Some(new), Some(old)) = (found.pop(), found.pop()) else {
        return refuse(StatusCode::INTERNAL_SERVER_ERROR, "versions went missing");
    };
    let versions = match store.template_versions_of(&name, 100).await {
        Ok(versions) => versions.iter().map(|v| v.version).collect(),
        Err(e) => return refuse(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    };
    let mut changed = Vec::new();
    let mut unchanged = Vec::new();
    for ((part, old_text), (_, new_text)) in parts(&old).into_iter().zip(parts(&new)) {
        if old_text == new_text {
            unchanged.push(part);
        } else {
            changed.push(diff(part, &old_text, &new_text));
        }
    }
    render(
        &console.pages,
        StatusCode::OK,
        "template_diff.html",
        Some(frame(&console, &user)),
        &View {
            name,
            from: VersionInfo {
                version: old.version,
                created_at: time(old.created_at),
            },
            to: VersionInfo {
                version: new.version,
                created_at: time(new.created_at),
            },
            parts: changed,
            unchanged,
            versions,
        },
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_line_diff_numbers_both_sides() {
        let part = super::diff("text", "Hello\nBye\n", "Hello\nSee you\n");
        assert!(part.changed);
        assert_eq!((part.inserted, part.deleted), (1, 1));
        let kinds: Vec<_> = part.lines.iter().map(|l| l.kind).collect();
        assert_eq!(kinds, ["equal", "delete", "insert"]);
        assert_eq!(part.lines[1].old, "2");
        assert_eq!(part.lines[2].new, "2");
        assert_eq!(part.lines[2].text, "See you");
    }
}
