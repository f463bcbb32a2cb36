//! Rendering pages: the frame every signed-in page shares (user, role, CSRF token, navigation) and the
//! formats the pages show (times to the second in UTC, numbers).

use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, NaiveDateTime, SecondsFormat, Utc};
use minijinja::context;
use serde::Serialize;

use super::assets;
use super::response::{html, refuse};
use super::session::Signed;

/// What the layout shows around a signed-in page.
#[derive(Serialize)]
pub struct Frame {
    pub login: String,
    pub role: &'static str,
    pub operator: bool,
    /// The token every form carries.
    pub csrf: String,
    /// A control instance shows its execution instances.
    pub control: bool,
    /// The navigation entry of this page.
    pub active: &'static str,
}

impl Frame {
    pub fn new(user: &Signed, control: bool, active: &'static str) -> Self {
        Frame {
            login: user.login.clone(),
            role: user.role.as_str(),
            operator: user.is_operator(),
            csrf: user.csrf.clone(),
            control,
            active,
        }
    }
}

/// Renders `template` with `frame` and `page`; a template error is a 500 naming it (never a panic).
pub fn render(
    pages: &minijinja::Environment<'static>,
    status: StatusCode,
    template: &str,
    frame: Option<Frame>,
    page: &impl Serialize,
) -> Response {
    let rendered = pages.get_template(template).and_then(|t| {
        t.render(context! {
            frame => frame,
            page => page,
            css => assets::CSS.url(),
            js => assets::JS.url(),
            templates_js => assets::TEMPLATES_JS.url(),
        })
    });
    match rendered {
        Ok(body) => html(status, body),
        Err(e) => {
            tracing::error!(template, error = %e, "console page failed to render");
            refuse(
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!("the page {template} failed to render: {e}"),
            )
        }
    }
}

/// A time as the console shows it: RFC 3339 to the second, UTC.
pub fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// An optional time, `—` when absent.
pub fn time_or_dash(t: Option<DateTime<Utc>>) -> String {
    t.map_or_else(|| "—".to_owned(), time)
}

/// A time typed in the form: RFC 3339, or `YYYY-MM-DDTHH:MM[:SS]` / `YYYY-MM-DD HH:MM[:SS]` taken as UTC.
pub fn parse_time(field: &str, text: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.to_utc());
    }
    for format in [
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(text, format) {
            return Ok(t.and_utc());
        }
    }
    Err(format!(
        "{field}: `{text}` is not a time; write it as 2026-12-02T18:00:00Z (UTC)"
    ))
}

/// A figure with at most two decimals and no trailing zeros (`500`, `20`, `3.25`).
pub fn number(value: f64) -> String {
    let text = format!("{value:.2}");
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(number(500.0), "500");
        assert_eq!(number(20.0), "20");
        assert_eq!(number(3.256), "3.26");
        assert_eq!(number(0.5), "0.5");
        let t = DateTime::parse_from_rfc3339("2026-12-02T18:00:01.123456789Z")
            .unwrap()
            .to_utc();
        assert_eq!(time(t), "2026-12-02T18:00:01Z");
        assert_eq!(time_or_dash(None), "—");
    }
}
