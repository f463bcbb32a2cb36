//! `/console/templates/{name}`, one template's editor: its parts (`from`, `subject`, `text`, `html`)
//! checked by the server as the operator types (`assets/templates.js` posting to `.../check`, see
//! `template_tools`), a preview for a chosen seed (the HTML part in a sandboxed frame), its seeds and
//! proofs, and its versions (publish, unpublish, diff between any two). Saving stores a new version
//! after the same check as `PUT /api/v1/templates/{name}`.

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Serialize;
use serde_json::{Map, Value};

use super::super::response::{refuse, see_other};
use super::super::session::Signed;
use super::super::view::{render, time};
use super::super::{Console, ConsoleState};
use super::templates::frame;
use crate::control::publish::{InstanceResult, push_publish};
use crate::db::entities::{template, template_version};
use crate::error::ApiError;
use crate::templates::proofs::{Seed, SeedView};
use crate::templates::trial::{PROOFS_LISTED, Recipient, TrialError, channel_of};
use crate::templates::{RenderEvent, TemplateError};

/// Versions listed on the editor (and offered to the diff).
const VERSIONS_LISTED: u64 = 100;

/// What the preview's `To` says when the template has no seed.
pub const NO_SEED: &str = "— (no seed: an empty ctx)";

/// The parts in the editor: a stored version's, or what the operator sent.
#[derive(Clone, Debug, Default, Serialize)]
pub(super) struct Draft {
    pub event_type: String,
    pub channel: String,
    pub from: String,
    pub subject: String,
    pub text: String,
    pub html: String,
}

impl Draft {
    fn of(version: &template_version::Model) -> Self {
        Draft {
            event_type: version.event_type.clone(),
            channel: version.channel.clone(),
            from: version.from_address.clone().unwrap_or_default(),
            subject: version.subject.clone().unwrap_or_default(),
            text: version.text_body.clone().unwrap_or_default(),
            html: version.html_body.clone().unwrap_or_default(),
        }
    }

    /// The editor's form fields. A textarea sends its line breaks as CR LF: they are stored as LF.
    pub fn from_form(form: &std::collections::HashMap<String, String>) -> Self {
        let field = |name: &str| {
            form.get(name)
                .map(|v| v.replace("\r\n", "\n"))
                .unwrap_or_default()
        };
        Draft {
            event_type: field("eventType").trim().to_owned(),
            channel: field("channel"),
            from: field("from").trim().to_owned(),
            subject: field("subject"),
            text: field("text"),
            html: field("html"),
        }
    }

    /// The draft as the body of `PUT /api/v1/templates/{name}`, so that it is checked by the same code.
    /// An sms draft has `text` only: the email parts, hidden in the editor then, are left out.
    pub fn api_body(&self, publish: bool) -> Map<String, Value> {
        let sms = self.channel == mc_plugin_api::Channel::Sms.as_str();
        let mut body = Map::new();
        for (name, value, email_only) in [
            ("eventType", &self.event_type, false),
            ("channel", &self.channel, false),
            ("from", &self.from, true),
            ("subject", &self.subject, true),
            ("text", &self.text, false),
            ("html", &self.html, true),
        ] {
            if sms && email_only {
                continue;
            }
            body.insert(name.to_owned(), Value::String(value.clone()));
        }
        body.insert("publish".to_owned(), Value::Bool(publish));
        body
    }
}

/// A refused draft: the field and line at fault.
#[derive(Serialize)]
pub(super) struct ErrorView {
    pub field: String,
    pub line: String,
    /// `text: line 3: unexpected end of input …`.
    pub text: String,
}

impl ErrorView {
    pub fn template(e: &TemplateError) -> Self {
        ErrorView {
            field: e.field.to_owned(),
            line: e.line.map(|l| l.to_string()).unwrap_or_default(),
            text: e.to_string(),
        }
    }

    pub fn api(e: &ApiError) -> Self {
        let field = match e {
            ApiError::BadRequest {
                field: Some(field), ..
            } => field.clone(),
            _ => String::new(),
        };
        ErrorView {
            text: if field.is_empty() {
                e.to_string()
            } else {
                format!("{field}: {e}")
            },
            field,
            line: String::new(),
        }
    }
}

#[derive(Serialize)]
struct InstanceRow {
    instance: String,
    status: &'static str,
    detail: String,
}

#[derive(Serialize)]
struct SeedRow {
    label: String,
    address: String,
    ctx: String,
}

#[derive(Serialize)]
struct VersionRow {
    version: i32,
    event_type: String,
    channel: String,
    created_at: String,
    published: bool,
    shown: bool,
}

#[derive(Serialize)]
struct ProofRow {
    at: String,
    version: i32,
    seed: String,
    address: String,
    status: String,
    detail: String,
    sent_by: String,
}

#[derive(Serialize, Default)]
struct PreviewView {
    /// Why there is no preview, when there is none.
    unavailable: Option<String>,
    from: String,
    to: String,
    subject: String,
    text: String,
    has_html: bool,
    /// The frame's source: the shown version's HTML part for the selected seed.
    frame_src: String,
}

#[derive(Serialize)]
struct EditorView {
    name: String,
    exists: bool,
    channel: String,
    latest_version: i32,
    published_version: Option<i32>,
    /// The version the editor shows; 0 for a template not stored yet.
    shown_version: i32,
    draft: Draft,
    error: Option<ErrorView>,
    notice: Option<String>,
    /// Whether a publication was pushed to execution instances (the table is shown, even if empty).
    pushed: bool,
    results: Vec<InstanceRow>,
    failed: usize,
    seeds: Vec<SeedRow>,
    seeds_json: String,
    selected_seed: String,
    preview: PreviewView,
    versions: Vec<VersionRow>,
    diff_from: i32,
    diff_to: i32,
    proofs: Vec<ProofRow>,
    /// Whether this instance can send proofs (it has delivery channels).
    can_send: bool,
}

/// What an editor answer shows beside the template itself.
#[derive(Default)]
pub(super) struct Extras {
    pub status: Option<StatusCode>,
    /// The version to show (the latest when `None`).
    pub version: Option<i32>,
    /// What the operator sent, shown instead of the stored version (after a refused save).
    pub draft: Option<Draft>,
    pub error: Option<ErrorView>,
    pub notice: Option<String>,
    /// The per-instance outcome of a publication pushed by a control instance.
    pub results: Option<Vec<InstanceResult>>,
    /// The seed to preview (the first when `None`).
    pub seed: Option<String>,
}

/// The editor of template `name`.
pub(super) async fn editor(
    console: &Console,
    user: &Signed,
    name: &str,
    extras: Extras,
) -> Response {
    match editor_view(console, name, extras).await {
        Ok((status, view)) => render(
            &console.pages,
            status,
            "template.html",
            Some(frame(console, user)),
            &view,
        ),
        Err(answer) => answer,
    }
}

async fn editor_view(
    console: &Console,
    name: &str,
    extras: Extras,
) -> Result<(StatusCode, EditorView), Response> {
    let unavailable =
        |e: &dyn std::fmt::Display| refuse(StatusCode::SERVICE_UNAVAILABLE, &e.to_string());
    let store = &console.ctx.store;
    let template: Option<template::Model> = store
        .get_template(name)
        .await
        .map_err(|e| unavailable(&e))?;
    let versions = if template.is_some() {
        store
            .template_versions_of(name, VERSIONS_LISTED)
            .await
            .map_err(|e| unavailable(&e))?
    } else {
        Vec::new()
    };
    let wanted = extras
        .version
        .or_else(|| template.as_ref().map(|t| t.latest_version));
    let shown = match wanted {
        Some(number) => match versions.iter().find(|v| v.version == number) {
            Some(v) => Some(v.clone()),
            None => store
                .get_template_version(name, number)
                .await
                .map_err(|e| unavailable(&e))?,
        },
        None => None,
    };
    if extras.version.is_some() && shown.is_none() {
        return Err(refuse(
            StatusCode::NOT_FOUND,
            &format!(
                "version: template `{name}` has no version {}",
                extras.version.unwrap_or_default()
            ),
        ));
    }
    let seeds = store
        .template_seeds(name)
        .await
        .map_err(|e| unavailable(&e))?;
    let selected = extras
        .seed
        .filter(|label| seeds.iter().any(|s| &s.label == label))
        .or_else(|| seeds.first().map(|s| s.label.clone()))
        .unwrap_or_default();
    let preview = match &shown {
        Some(version) => preview_of(console, name, version, &seeds, &selected).await,
        None => PreviewView {
            unavailable: Some("Save a first version to preview it.".to_owned()),
            ..PreviewView::default()
        },
    };
    let proofs = store
        .template_proofs(name, PROOFS_LISTED)
        .await
        .map_err(|e| unavailable(&e))?;
    let published = template.as_ref().and_then(|t| t.published_version);
    let shown_version = shown.as_ref().map_or(0, |v| v.version);
    let draft = extras
        .draft
        .or_else(|| shown.as_ref().map(Draft::of))
        .unwrap_or_else(|| Draft {
            channel: mc_plugin_api::Channel::Email.as_str().to_owned(),
            ..Draft::default()
        });
    let (pushed, results, failed) = match extras.results {
        Some(results) => {
            let failed = results.iter().filter(|r| r.outcome.failed()).count();
            let rows = results
                .into_iter()
                .map(|r| InstanceRow {
                    status: r.outcome.as_str(),
                    detail: match r.outcome {
                        crate::control::publish::InstanceOutcome::Published { version } => version
                            .map(|v| format!("its version {v}"))
                            .unwrap_or_default(),
                        crate::control::publish::InstanceOutcome::Failed(error) => error,
                        _ => String::new(),
                    },
                    instance: r.instance,
                })
                .collect();
            (true, rows, failed)
        }
        None => (false, Vec::new(), 0),
    };
    let status = extras.status.unwrap_or(StatusCode::OK);
    let view = EditorView {
        name: name.to_owned(),
        exists: template.is_some(),
        channel: draft.channel.clone(),
        latest_version: template.as_ref().map_or(0, |t| t.latest_version),
        published_version: published,
        shown_version,
        error: extras.error,
        notice: extras.notice,
        pushed,
        results,
        failed,
        // Serialized from the views, so that each seed reads label, address, ctx; none: empty, so that
        // the field shows its example.
        seeds_json: if seeds.is_empty() {
            String::new()
        } else {
            serde_json::to_string_pretty(&seeds.iter().map(SeedView::from).collect::<Vec<_>>())
                .unwrap_or_default()
        },
        seeds: seeds
            .iter()
            .map(|s| SeedRow {
                label: s.label.clone(),
                address: s.address.clone(),
                ctx: s.ctx.to_string(),
            })
            .collect(),
        selected_seed: selected,
        preview,
        diff_from: versions.get(1).map_or(shown_version, |v| v.version),
        diff_to: versions.first().map_or(shown_version, |v| v.version),
        versions: versions
            .iter()
            .map(|v| VersionRow {
                version: v.version,
                event_type: v.event_type.clone(),
                channel: v.channel.clone(),
                created_at: time(v.created_at),
                published: Some(v.version) == published,
                shown: v.version == shown_version,
            })
            .collect(),
        proofs: proofs
            .into_iter()
            .map(|p| ProofRow {
                at: time(p.created_at),
                version: p.version,
                seed: p.seed_label,
                address: p.address,
                detail: p.error.or(p.message_id).unwrap_or_default(),
                status: p.status,
                sent_by: p.sent_by.unwrap_or_else(|| "API".to_owned()),
            })
            .collect(),
        can_send: console.ctx.trials.sender.is_some(),
        draft,
    };
    Ok((status, view))
}

/// The preview of a stored version for the seed `label` (an empty event when the template has none).
async fn preview_of(
    console: &Console,
    name: &str,
    version: &template_version::Model,
    seeds: &[Seed],
    label: &str,
) -> PreviewView {
    let recipient = if label.is_empty() {
        Recipient::Event(RenderEvent {
            ctx: Value::Object(Map::new()),
            ..RenderEvent::default()
        })
    } else {
        Recipient::Seed(label.to_owned())
    };
    match console
        .ctx
        .trials
        .preview(name, Some(version.version), recipient)
        .await
    {
        Ok(preview) => PreviewView {
            unavailable: None,
            from: preview.rendered.from.unwrap_or_default(),
            to: seeds
                .iter()
                .find(|s| s.label == label)
                .map(|s| s.address.clone())
                .unwrap_or_else(|| NO_SEED.to_owned()),
            subject: preview.rendered.subject.unwrap_or_default(),
            text: preview.rendered.text.unwrap_or_default(),
            has_html: preview.rendered.html.is_some()
                && channel_of(version) == mc_plugin_api::Channel::Email,
            frame_src: format!(
                "/console/templates/{name}/preview?{}",
                crate::urls::encode_query(&[
                    ("version".to_owned(), version.version.to_string()),
                    ("seed".to_owned(), label.to_owned()),
                ])
            ),
        },
        Err(e) => PreviewView {
            unavailable: Some(match e {
                TrialError::Render(e) => format!("The template does not render for this seed: {e}"),
                other => other.to_string(),
            }),
            ..PreviewView::default()
        },
    }
}

/// `GET /console/templates/{name}[?version=N&seed=<label>]`.
pub async fn page(
    State(console): State<ConsoleState>,
    user: Signed,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    if let Err(e) = crate::api::templates::check_name(&name) {
        return refuse(StatusCode::BAD_REQUEST, &e.to_string());
    }
    let pairs = crate::urls::query_pairs(query.as_deref().unwrap_or(""));
    let get = |key: &str| pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
    let version = match get("version").filter(|v| !v.is_empty()) {
        None => None,
        Some(v) => match v.parse::<i32>() {
            Ok(n) if n >= 1 => Some(n),
            _ => {
                return refuse(
                    StatusCode::BAD_REQUEST,
                    &format!("version: `{v}` is not a positive integer"),
                );
            }
        },
    };
    let notice = get("saved").map(|v| match get("published") {
        Some(_) => format!("Version {v} saved and published."),
        None => format!("Version {v} saved."),
    });
    editor(
        &console,
        &user,
        &name,
        Extras {
            version,
            seed: get("seed"),
            notice,
            ..Extras::default()
        },
    )
    .await
}

/// `POST /console/templates/{name}`: stores the editor's parts as a new version (published when the
/// form's `publish` is set, and then pushed to the execution instances of a control instance).
pub async fn save(
    State(console): State<ConsoleState>,
    user: Signed,
    Path(name): Path<String>,
    body: Bytes,
) -> Response {
    let form = match user.change_form(&body) {
        Ok(form) => form,
        Err(refusal) => return refusal.into_response(),
    };
    if let Err(e) = crate::api::templates::check_name(&name) {
        return refuse(StatusCode::BAD_REQUEST, &e.to_string());
    }
    let draft = Draft::from_form(&form);
    let publish = form.get("publish").is_some_and(|v| !v.is_empty());
    let refused = |error: ErrorView, draft: Draft| Extras {
        status: Some(StatusCode::UNPROCESSABLE_ENTITY),
        draft: Some(draft),
        error: Some(error),
        seed: form.get("seed").cloned(),
        ..Extras::default()
    };
    let (version, publish) =
        match crate::api::templates::version_from_object(&draft.api_body(publish)) {
            Ok(parsed) => parsed,
            Err(e) => {
                return editor(&console, &user, &name, refused(ErrorView::api(&e), draft)).await;
            }
        };
    if let Err(e) = crate::templates::check(&version.content(), &console.ctx.trials.limits).await {
        return editor(
            &console,
            &user,
            &name,
            refused(ErrorView::template(&e), draft),
        )
        .await;
    }
    let stored = match console
        .ctx
        .store
        .put_template_version(&name, version, publish)
        .await
    {
        Ok((_, stored, _)) => stored,
        Err(e) => return refuse(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    };
    tracing::info!(template = %name, version = stored.version, publish, login = %user.login, "console: template version saved");
    if publish && let Some(instances) = &console.ctx.instances {
        let results = push_publish(instances, &name, &stored).await;
        return editor(
            &console,
            &user,
            &name,
            Extras {
                version: Some(stored.version),
                notice: Some(format!("Version {} saved and published.", stored.version)),
                results: Some(results),
                seed: form.get("seed").cloned(),
                ..Extras::default()
            },
        )
        .await;
    }
    let mut query = vec![("saved".to_owned(), stored.version.to_string())];
    if publish {
        query.push(("published".to_owned(), "1".to_owned()));
    }
    if let Some(seed) = form.get("seed").filter(|s| !s.is_empty()) {
        query.push(("seed".to_owned(), seed.clone()));
    }
    see_other(
        &format!(
            "/console/templates/{name}?{}",
            crate::urls::encode_query(&query)
        ),
        None,
    )
}
