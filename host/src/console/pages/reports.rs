//! `/console/reports/{report}` (control instance): the three reports over the archive, with their
//! period, granularity and filters (`?from=&to=&granularity=&instance=&channel=&type=`), charts and
//! table; `/console/reports/{report}/csv` exports the same table, for the same query string. On an
//! execution instance the page says there is no archive, and the export answers 404.

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde::Serialize;

use super::super::ConsoleState;
use super::super::charts::Chart;
use super::super::reports::{self, ReportForm, ReportKind, Scope, Table};
use super::super::response::{Refusal, csv, refuse, see_other};
use super::super::session::Signed;
use super::super::view::{Frame, render};

/// One entry of the report tabs.
#[derive(Serialize)]
struct Tab {
    slug: &'static str,
    title: &'static str,
}

#[derive(Serialize)]
struct View {
    control: bool,
    slug: &'static str,
    title: &'static str,
    summary: &'static str,
    tabs: Vec<Tab>,
    form: ReportForm,
    granularities: Vec<&'static str>,
    instances: Vec<String>,
    channels: Vec<&'static str>,
    /// The query string of the CSV link (the page's own).
    query: String,
    error: Option<String>,
    table: Option<Table>,
    charts: Vec<Chart>,
}

/// `GET /console/reports` → the first report.
pub async fn index(_user: Signed) -> Response {
    see_other(
        &format!("/console/reports/{}", ReportKind::ServiceLevel.slug()),
        None,
    )
}

fn kind(slug: &str) -> Result<ReportKind, Refusal> {
    ReportKind::from_slug(slug).ok_or_else(|| Refusal {
        status: StatusCode::NOT_FOUND,
        message: format!("no report `{slug}` (service-level, processing-time, history)"),
    })
}

fn scope(query: Option<&str>) -> (ReportForm, Result<Scope, String>) {
    let pairs = crate::urls::query_pairs(query.unwrap_or(""));
    reports::scope::parse(&pairs, Utc::now())
}

/// `GET /console/reports/{report}`.
pub async fn page(
    State(console): State<ConsoleState>,
    user: Signed,
    Path(slug): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let kind = match kind(&slug) {
        Ok(kind) => kind,
        Err(refusal) => return refusal.into_response(),
    };
    let archive = console.ctx.archive.as_ref();
    let (form, parsed) = scope(query.as_deref());
    let (status, error, built) = match (&parsed, archive) {
        (_, None) => (StatusCode::OK, None, None),
        (Err(message), _) => (StatusCode::BAD_REQUEST, Some(message.clone()), None),
        (Ok(scope), Some(_)) => {
            match reports::build(&console.ctx.store, kind, scope, Utc::now()).await {
                Ok(report) => (StatusCode::OK, None, Some(report)),
                Err(e) => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    Some(format!("the report failed: {e}")),
                    None,
                ),
            }
        }
    };
    let (table, charts) = built.map_or((None, Vec::new()), |r| (Some(r.table), r.charts));
    render(
        &console.pages,
        status,
        "reports.html",
        Some(Frame::new(&user, archive.is_some(), "reports")),
        &View {
            control: archive.is_some(),
            slug: kind.slug(),
            title: kind.title(),
            summary: kind.summary(),
            tabs: ReportKind::ALL
                .into_iter()
                .map(|k| Tab {
                    slug: k.slug(),
                    title: k.title(),
                })
                .collect(),
            query: form.query(),
            form,
            granularities: reports::Granularity::ALL.map(|g| g.as_str()).to_vec(),
            instances: archive
                .map(|a| a.instances().into_iter().map(|i| i.instance).collect())
                .unwrap_or_default(),
            channels: mc_plugin_api::Channel::ALL.map(|c| c.as_str()).to_vec(),
            error,
            table,
            charts,
        },
    )
}

/// `GET /console/reports/{report}/csv`: the page's table as CSV, for the same query string.
pub async fn export(
    State(console): State<ConsoleState>,
    _user: Signed,
    Path(slug): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let kind = match kind(&slug) {
        Ok(kind) => kind,
        Err(refusal) => return refusal.into_response(),
    };
    if console.ctx.archive.is_none() {
        return refuse(
            StatusCode::NOT_FOUND,
            "this is not a control instance: it has no archive to report on",
        );
    }
    let (_, parsed) = scope(query.as_deref());
    let scope = match parsed {
        Ok(scope) => scope,
        Err(message) => return refuse(StatusCode::BAD_REQUEST, &message),
    };
    match reports::build(&console.ctx.store, kind, &scope, Utc::now()).await {
        Ok(report) => csv(
            &format!(
                "{}-{}-{}.csv",
                kind.slug(),
                scope.store.from.format("%Y%m%dT%H%M%S"),
                scope.store.to.format("%Y%m%dT%H%M%S")
            ),
            report.table.csv(),
        ),
        Err(e) => refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("the report failed: {e}"),
        ),
    }
}
