//! Message templates: Jinja (minijinja) over an event, one template per part of a message.
//!
//! A template version has up to four parts, `from`, `subject`, `text` and `html`, each a Jinja template
//! over the event: `ctx` (the personalisation object), `email`, `mobilePhone`, `language` and
//! `externalId`. The `html` part is HTML-auto-escaped, the others are not. A variable that is absent
//! (an event without `email`, a missing `ctx` key, even a missing nested key) is undefined and renders
//! as an empty string, and so does a JSON `null`.
//!
//! [`check`] is what `PUT /api/v1/templates/{name}` runs: every part compiles and renders against an
//! empty event. [`TemplateCache`] is what delivery uses: versions never change, so each (name, version) is
//! compiled once and kept.
//!
//! Every render runs under [`RenderLimits`] (fuel, output size, time; see `limits.rs`), and the async
//! entry points ([`check`], [`TemplateCache::render_bounded`]) run it off the async workers.
//!
//! Adobe Campaign placeholders (`<%= rtEvent.ctx.firstName %>`) are translated to Jinja when a part is
//! compiled (see `adobe.rs`), so templates imported from Adobe Campaign render unchanged.

mod adobe;
mod cache;
mod limits;
pub mod proofs;
mod render;
pub mod seed;
pub mod trial;

pub use cache::TemplateCache;
pub use limits::{
    DEFAULT_MAX_OUTPUT_BYTES, DEFAULT_MAX_RENDER_FUEL, DEFAULT_RENDER_TIMEOUT, RenderLimits,
};

use mc_plugin_api::Channel;

/// The parts of one template version, as stored.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TemplateContent {
    pub from: Option<String>,
    pub subject: Option<String>,
    pub text: Option<String>,
    pub html: Option<String>,
}

impl From<&crate::db::entities::template_version::Model> for TemplateContent {
    fn from(version: &crate::db::entities::template_version::Model) -> Self {
        TemplateContent {
            from: version.from_address.clone(),
            subject: version.subject.clone(),
            text: version.text_body.clone(),
            html: version.html_body.clone(),
        }
    }
}

/// A new version of a template, as `PUT /api/v1/templates/{name}` stores it (already checked).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NewTemplateVersion {
    pub event_type: String,
    pub channel: Channel,
    pub from: Option<String>,
    pub subject: Option<String>,
    pub text: Option<String>,
    pub html: Option<String>,
}

impl NewTemplateVersion {
    /// Its parts, for [`check`].
    pub fn content(&self) -> TemplateContent {
        TemplateContent {
            from: self.from.clone(),
            subject: self.subject.clone(),
            text: self.text.clone(),
            html: self.html.clone(),
        }
    }
}

/// The event a template is rendered for.
#[derive(Clone, Copy, Debug)]
pub struct RenderInput<'a> {
    /// The personalisation data, `{{ ctx.firstName }}`; normally a JSON object.
    pub ctx: &'a serde_json::Value,
    pub email: Option<&'a str>,
    pub mobile_phone: Option<&'a str>,
    pub language: Option<&'a str>,
    pub external_id: Option<&'a str>,
}

/// An event's variables, owned: what a render on another thread needs.
#[derive(Clone, Debug, Default)]
pub struct RenderEvent {
    pub ctx: serde_json::Value,
    pub email: Option<String>,
    pub mobile_phone: Option<String>,
    pub language: Option<String>,
    pub external_id: Option<String>,
}

impl RenderEvent {
    /// The event as a render borrows it.
    pub fn input(&self) -> RenderInput<'_> {
        RenderInput {
            ctx: &self.ctx,
            email: self.email.as_deref(),
            mobile_phone: self.mobile_phone.as_deref(),
            language: self.language.as_deref(),
            external_id: self.external_id.as_deref(),
        }
    }
}

/// The rendered parts; a part absent from the template is `None`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub from: Option<String>,
    pub subject: Option<String>,
    pub text: Option<String>,
    pub html: Option<String>,
}

/// Why a part does not compile or render: the part (`from`, `subject`, `text` or `html`), the line in it
/// when known, and the reason.
///
/// Displays as `text: line 3: unexpected end of input, expected end of block`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {}{message}", line.map(|line| format!("line {line}: ")).unwrap_or_default())]
pub struct TemplateError {
    pub field: &'static str,
    pub line: Option<usize>,
    pub message: String,
}

impl TemplateError {
    /// The line and the reason, without the part: `line 3: unexpected end of input, …`.
    pub fn detail(&self) -> String {
        match self.line {
            Some(line) => format!("line {line}: {}", self.message),
            None => self.message.clone(),
        }
    }
}

/// Compiles every part, then renders it once against an empty event (`ctx` = `{}`, no addresses), under
/// `limits` and off the async workers: the check a template version passes before it is stored. The
/// first part that fails is reported.
pub async fn check(content: &TemplateContent, limits: &RenderLimits) -> Result<(), TemplateError> {
    let content = content.clone();
    let bounds = *limits;
    limits::off_thread(limits, move |progress| {
        check_now(&content, &bounds, progress)
    })
    .await
}

/// Compiles `content` and renders it once for `event`, under `limits` and off the async workers: what
/// a preview or a proof renders (the content may be a version not stored yet, so it is not cached).
pub async fn render_once(
    content: &TemplateContent,
    event: RenderEvent,
    limits: &RenderLimits,
) -> Result<Rendered, TemplateError> {
    let content = content.clone();
    let bounds = *limits;
    limits::off_thread(limits, move |progress| {
        render::Compiled::new(&content, &bounds).render(&event.input(), progress)
    })
    .await
}

/// [`check`] on the calling thread, without its deadline.
fn check_now(
    content: &TemplateContent,
    limits: &RenderLimits,
    progress: &limits::Progress,
) -> Result<(), TemplateError> {
    let compiled = render::Compiled::new(content, limits);
    compiled
        .render(&RenderEvent::empty().input(), progress)
        .map(drop)
}

impl RenderEvent {
    /// An event with `ctx` = `{}` and no addresses: what [`check`] renders for.
    fn empty() -> Self {
        RenderEvent {
            ctx: serde_json::Value::Object(serde_json::Map::new()),
            ..RenderEvent::default()
        }
    }
}

#[cfg(test)]
mod tests;
