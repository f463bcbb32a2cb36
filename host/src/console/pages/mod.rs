//! The console's pages, one module each; the templates they render.

pub mod event;
pub mod events;
pub mod instances;
pub mod monitoring;
pub mod quarantine;
pub mod reports;
pub mod template_diff;
pub mod template_editor;
pub mod template_tools;
pub mod templates;
pub mod webhook_actions;
pub mod webhooks;
pub mod workflows;

use axum::response::Response;

use super::response::see_other;
use super::session::Signed;

/// Every page template, embedded in the binary.
const TEMPLATES: [(&str, &str); 17] = [
    ("base.html", include_str!("../templates/base.html")),
    ("sign_in.html", include_str!("../templates/sign_in.html")),
    (
        "first_run.html",
        include_str!("../templates/first_run.html"),
    ),
    (
        "monitoring.html",
        include_str!("../templates/monitoring.html"),
    ),
    ("chart.html", include_str!("../templates/chart.html")),
    (
        "monitoring_live.html",
        include_str!("../templates/monitoring_live.html"),
    ),
    ("events.html", include_str!("../templates/events.html")),
    ("event.html", include_str!("../templates/event.html")),
    (
        "workflows.html",
        include_str!("../templates/workflows.html"),
    ),
    (
        "instances.html",
        include_str!("../templates/instances.html"),
    ),
    (
        "templates.html",
        include_str!("../templates/templates.html"),
    ),
    ("template.html", include_str!("../templates/template.html")),
    (
        "template_diff.html",
        include_str!("../templates/template_diff.html"),
    ),
    ("webhooks.html", include_str!("../templates/webhooks.html")),
    ("webhook.html", include_str!("../templates/webhook.html")),
    (
        "quarantine.html",
        include_str!("../templates/quarantine.html"),
    ),
    ("reports.html", include_str!("../templates/reports.html")),
];

/// The page templates. Their names end in `.html`, so minijinja escapes every value.
pub fn environment() -> minijinja::Environment<'static> {
    let mut env = minijinja::Environment::new();
    for (name, source) in TEMPLATES {
        if let Err(e) = env.add_template(name, source) {
            // The templates are part of the binary: a broken one is a build defect, caught by the
            // unit test below; at run time the page naming it answers 500.
            tracing::error!(template = name, error = %e, "console template does not compile");
        }
    }
    env
}

/// `GET /console` → `/console/`.
pub async fn to_console() -> Response {
    see_other("/console/", None)
}

/// `GET /console/`: the monitoring page, the one an on-call engineer opens first.
pub async fn index(_user: Signed) -> Response {
    see_other("/console/monitoring", None)
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_template_compiles() {
        let env = super::environment();
        for (name, _) in super::TEMPLATES {
            env.get_template(name)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }
}
