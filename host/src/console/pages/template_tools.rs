//! The editor's actions on one template (`template_editor.rs` renders the page): the live check the script
//! posts as the operator types, the preview frame, proofs, the seed list, publish and unpublish. Every
//! POST is an operator's and carries the session's CSRF token; a viewer sees stored versions only, so
//! the preview frame also answers a GET for a stored version.

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::{Value, json};

use super::super::ConsoleState;
use super::super::response::{Refusal, json as json_answer, message, refuse};
use super::super::session::Signed;
use super::template_editor::{Draft, ErrorView, Extras, NO_SEED, editor};
use crate::control::publish::{push_publish, push_unpublish};
use crate::templates::Rendered;
use crate::templates::proofs::{ProofStatus, parse_seeds};
use crate::templates::trial::{Preview, Recipient, TrialError};
use crate::templates::{RenderEvent, TemplateError};

/// What a check or preview of the editor's draft renders for: the form's `seed`, else an empty event.
fn recipient(form: &std::collections::HashMap<String, String>) -> Recipient {
    match form.get("seed").filter(|s| !s.is_empty()) {
        Some(label) => Recipient::Seed(label.clone()),
        None => Recipient::Event(RenderEvent {
            ctx: Value::Object(serde_json::Map::new()),
            ..RenderEvent::default()
        }),
    }
}

/// Renders the editor's draft of template `name` as the form holds it.
async fn render_draft(
    console: &super::super::Console,
    name: &str,
    form: &std::collections::HashMap<String, String>,
) -> Result<Preview, Value> {
    let draft = Draft::from_form(form);
    let (version, _) =
        crate::api::templates::version_from_object(&draft.api_body(false)).map_err(|e| {
            let error = ErrorView::api(&e);
            json!({ "ok": false, "field": error.field, "line": Value::Null, "message": error.text })
        })?;
    console
        .ctx
        .trials
        .preview_content(name, &version.content(), version.channel, recipient(form))
        .await
        .map_err(|e| match e {
            TrialError::Render(e) => template_error(&e),
            other => json!({ "ok": false, "field": "seed", "line": Value::Null, "message": other.to_string() }),
        })
}

fn template_error(e: &TemplateError) -> Value {
    json!({ "ok": false, "field": e.field, "line": e.line, "message": e.to_string() })
}

/// `POST /console/templates/{name}/check`: the draft compiled and rendered for the form's seed, as
/// JSON: `{"ok":true,"preview":{"from","to","subject","text","html"}}` (html: whether there is one), or
/// `{"ok":false,"field","line","message"}`.
pub async fn check(
    State(console): State<ConsoleState>,
    user: Signed,
    Path(name): Path<String>,
    body: Bytes,
) -> Response {
    let form = match user.change_form(&body) {
        Ok(form) => form,
        Err(refusal) => return refusal.into_response(),
    };
    match render_draft(&console, &name, &form).await {
        Ok(preview) => {
            let to = preview
                .seed
                .as_ref()
                .map_or_else(|| NO_SEED.to_owned(), |s| s.address.clone());
            let Rendered {
                from,
                subject,
                text,
                html,
            } = preview.rendered;
            json_answer(
                StatusCode::OK,
                &json!({
                    "ok": true,
                    "preview": {
                        "from": from.unwrap_or_default(),
                        "to": to,
                        "subject": subject.unwrap_or_default(),
                        "text": text.unwrap_or_default(),
                        "html": html.is_some(),
                    },
                }),
            )
        }
        Err(error) => json_answer(StatusCode::OK, &error),
    }
}

/// The HTML part for the sandboxed frame (a short note when there is none).
fn frame(result: Result<Option<String>, String>) -> Response {
    match result {
        Ok(Some(html)) => message(html),
        Ok(None) => message("<p>This version has no HTML part.</p>".to_owned()),
        Err(why) => message(format!(
            "<p>No preview: {}</p>",
            minijinja::HtmlEscape(&why)
        )),
    }
}

/// `GET /console/templates/{name}/preview?version=N&seed=<label>`: a stored version's HTML part.
pub async fn preview_stored(
    State(console): State<ConsoleState>,
    _user: Signed,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let pairs = crate::urls::query_pairs(query.as_deref().unwrap_or(""));
    let get = |key: &str| pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
    let version = match get("version").map(|v| v.parse::<i32>()) {
        Some(Ok(n)) if n >= 1 => Some(n),
        None => None,
        Some(_) => return refuse(StatusCode::BAD_REQUEST, "version: not a positive integer"),
    };
    let form: std::collections::HashMap<String, String> = get("seed")
        .map(|s| ("seed".to_owned(), s))
        .into_iter()
        .collect();
    let result = console
        .ctx
        .trials
        .preview(&name, version, recipient(&form))
        .await;
    frame(result.map(|p| p.rendered.html).map_err(|e| e.to_string()))
}

/// `POST /console/templates/{name}/preview`: the editor's draft's HTML part (the form targets the frame).
pub async fn preview_draft(
    State(console): State<ConsoleState>,
    user: Signed,
    Path(name): Path<String>,
    body: Bytes,
) -> Response {
    let form = match user.change_form(&body) {
        Ok(form) => form,
        Err(refusal) => return refusal.into_response(),
    };
    let result = render_draft(&console, &name, &form).await;
    frame(result.map(|p| p.rendered.html).map_err(|e| {
        e["message"]
            .as_str()
            .unwrap_or("the draft does not render")
            .to_owned()
    }))
}

/// The form's `version` (the latest when absent or empty).
fn form_version(form: &std::collections::HashMap<String, String>) -> Result<Option<i32>, Refusal> {
    match form.get("version").filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => match v.parse::<i32>() {
            Ok(n) if n >= 1 => Ok(Some(n)),
            _ => Err(Refusal::bad_request(format!(
                "version: `{v}` is not a positive integer"
            ))),
        },
    }
}

/// `POST /console/templates/{name}/proof` (`version`, `seed`): sends the proof now; the page says how
/// it went.
pub async fn proof(
    State(console): State<ConsoleState>,
    user: Signed,
    Path(name): Path<String>,
    body: Bytes,
) -> Response {
    let form = match user.change_form(&body) {
        Ok(form) => form,
        Err(refusal) => return refusal.into_response(),
    };
    let version = match form_version(&form) {
        Ok(version) => version,
        Err(refusal) => return refusal.into_response(),
    };
    let label = form.get("seed").cloned().unwrap_or_default();
    let (status, notice) = match console
        .ctx
        .trials
        .proof(&name, version, &label, Some(user.login.clone()))
        .await
    {
        Ok(proof) if proof.status == ProofStatus::Sent.as_str() => (
            StatusCode::OK,
            format!(
                "Proof of version {} sent to {} ({}).",
                proof.version, proof.address, proof.seed_label
            ),
        ),
        Ok(proof) => (
            StatusCode::BAD_GATEWAY,
            format!(
                "Proof of version {} to {} failed: {}",
                proof.version,
                proof.address,
                proof.error.unwrap_or_default()
            ),
        ),
        Err(TrialError::UnknownTemplate(_)) => {
            return refuse(StatusCode::NOT_FOUND, &format!("no template `{name}`"));
        }
        Err(e) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("No proof sent: {e}"),
        ),
    };
    editor(
        &console,
        &user,
        &name,
        Extras {
            status: Some(status),
            version,
            notice: Some(notice),
            seed: Some(label),
            ..Extras::default()
        },
    )
    .await
}

/// `POST /console/templates/{name}/seeds` (`seeds`: the JSON list): replaces the seeds, checked as
/// `PUT /api/v1/templates/{name}/seeds` checks them.
pub async fn seeds(
    State(console): State<ConsoleState>,
    user: Signed,
    Path(name): Path<String>,
    body: Bytes,
) -> Response {
    let form = match user.change_form(&body) {
        Ok(form) => form,
        Err(refusal) => return refusal.into_response(),
    };
    let template = match console.ctx.store.get_template(&name).await {
        Ok(Some(template)) => template,
        Ok(None) => return refuse(StatusCode::NOT_FOUND, &format!("no template `{name}`")),
        Err(e) => return refuse(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    };
    // An emptied field is an empty list.
    let text = form
        .get("seeds")
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| "[]".to_owned());
    let refused = |message: String| Extras {
        status: Some(StatusCode::UNPROCESSABLE_ENTITY),
        notice: Some(format!("Seeds not saved: {message}")),
        ..Extras::default()
    };
    let value: Value = match serde_json::from_str(&text) {
        Ok(value) => value,
        Err(e) => {
            return editor(
                &console,
                &user,
                &name,
                refused(format!("seeds: not JSON: {e}")),
            )
            .await;
        }
    };
    let channel = template.channel.parse().unwrap_or_default();
    let seeds = match parse_seeds(&value, channel, console.ctx.max_ctx_bytes) {
        Ok(seeds) => seeds,
        Err(e) => return editor(&console, &user, &name, refused(e.to_string())).await,
    };
    if let Err(e) = console
        .ctx
        .store
        .replace_template_seeds(&name, &seeds)
        .await
    {
        return refuse(StatusCode::SERVICE_UNAVAILABLE, &e.to_string());
    }
    tracing::info!(template = %name, seeds = seeds.len(), login = %user.login, "console: template seeds saved");
    editor(
        &console,
        &user,
        &name,
        Extras {
            notice: Some(match seeds.len() {
                1 => "1 seed saved.".to_owned(),
                n => format!("{n} seeds saved."),
            }),
            ..Extras::default()
        },
    )
    .await
}

/// `POST /console/templates/{name}/publish` (`version`): publishes it here and, on a control instance,
/// on every execution instance; the page lists each instance's outcome.
pub async fn publish(
    State(console): State<ConsoleState>,
    user: Signed,
    Path(name): Path<String>,
    body: Bytes,
) -> Response {
    let form = match user.change_form(&body) {
        Ok(form) => form,
        Err(refusal) => return refusal.into_response(),
    };
    let wanted = match form_version(&form) {
        Ok(version) => version,
        Err(refusal) => return refusal.into_response(),
    };
    let (_, version) = match console.ctx.trials.version(&name, wanted).await {
        Ok(found) => found,
        Err(e) => return refuse(StatusCode::NOT_FOUND, &e.to_string()),
    };
    match console
        .ctx
        .store
        .set_published_version(&name, Some(version.version))
        .await
    {
        Ok(Some(_)) => {}
        Ok(None) => return refuse(StatusCode::NOT_FOUND, &format!("no template `{name}`")),
        Err(e) => return refuse(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    }
    tracing::info!(template = %name, version = version.version, login = %user.login, "console: template published");
    let results = match &console.ctx.instances {
        Some(instances) => Some(push_publish(instances, &name, &version).await),
        None => None,
    };
    let failed = results
        .as_ref()
        .map_or(0, |r| r.iter().filter(|r| r.outcome.failed()).count());
    editor(
        &console,
        &user,
        &name,
        Extras {
            status: Some(if failed == 0 {
                StatusCode::OK
            } else {
                StatusCode::BAD_GATEWAY
            }),
            version: Some(version.version),
            notice: Some(match failed {
                0 => format!("Version {} published.", version.version),
                n => format!(
                    "Version {} published here; {n} execution instance(s) failed: publish again once they are back.",
                    version.version
                ),
            }),
            results,
            ..Extras::default()
        },
    )
    .await
}

/// `POST /console/templates/{name}/unpublish`: withdraws it here and from every execution instance.
pub async fn unpublish(
    State(console): State<ConsoleState>,
    user: Signed,
    Path(name): Path<String>,
    body: Bytes,
) -> Response {
    if let Err(refusal) = user.change_form(&body) {
        return refusal.into_response();
    }
    match console.ctx.store.set_published_version(&name, None).await {
        Ok(Some(_)) => {}
        Ok(None) => return refuse(StatusCode::NOT_FOUND, &format!("no template `{name}`")),
        Err(e) => return refuse(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    }
    tracing::info!(template = %name, login = %user.login, "console: template unpublished");
    let results = match &console.ctx.instances {
        Some(instances) => Some(push_unpublish(instances, &name).await),
        None => None,
    };
    let failed = results
        .as_ref()
        .map_or(0, |r| r.iter().filter(|r| r.outcome.failed()).count());
    editor(
        &console,
        &user,
        &name,
        Extras {
            status: Some(if failed == 0 {
                StatusCode::OK
            } else {
                StatusCode::BAD_GATEWAY
            }),
            notice: Some(
                "Template unpublished: no event links to it until a version is published."
                    .to_owned(),
            ),
            results,
            ..Extras::default()
        },
    )
    .await
}
