//! `archiving`: on the control instance, pulls the finished events and delivery logs of every execution
//! instance into the archive.
//!
//! For each `[[execution_instances]]` entry, one after the other: read the stored cursor, ask the
//! instance for the page after it (`GET /api/v1/archive/events?after=CURSOR&limit=N`, through the
//! host's `instances.request`), and hand the page to `archive.store`, which inserts what the archive
//! does not have yet and moves the cursor in one transaction. A page read twice therefore changes
//! nothing, and a crash between the two steps only means the page is read again. An instance that fails
//! is recorded (`archive.recordError`: `/admin/workflows` and `/metrics` show it) and the run goes on
//! with the next one, so one instance being down delays only its own archive.
//!
//! Settings (`[workflows.archiving]`): `page_size` (events per page, default 500, at most 1000) and
//! `max_pages` (pages per instance per run, default 20; the run asks to be run again at once when an
//! instance had more, so instances take turns instead of one starving the others).

// A plugin reaches the host only through mc-plugin-api; the `unsafe` of the boundary is there (lints are
// not reported in `declare_plugin!`'s expansion, which is mc-plugin-api's code).
#![forbid(unsafe_code)]

use mc_plugin_api::services::{
    GetArchiveCursor, ListInstances, RecordArchiveError, RequestInstance, StoreArchivePage,
};
use mc_plugin_api::{Host, RunContext, RunReport, Workflow, WorkflowError, declare_plugin};
use serde::Deserialize;

const DEFAULT_PAGE_SIZE: u64 = 500;
const MAX_PAGE_SIZE: u64 = 1000;
const DEFAULT_MAX_PAGES: u64 = 20;

pub struct Archiving {
    page_size: u64,
    max_pages: u64,
}

/// How archiving one instance went in this run.
enum InstanceOutcome {
    /// Archived `inserted` new events; `more` when the instance had more pages than this run reads.
    Done {
        inserted: u64,
        more: bool,
    },
    Failed(String),
}

/// The `[workflows.archiving]` keys this workflow reads.
#[derive(Deserialize)]
#[serde(default)]
struct Settings {
    page_size: u64,
    max_pages: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            page_size: DEFAULT_PAGE_SIZE,
            max_pages: DEFAULT_MAX_PAGES,
        }
    }
}

impl Workflow for Archiving {
    fn create(settings: &serde_json::Value) -> Result<Self, WorkflowError> {
        let Settings {
            page_size,
            max_pages,
        } = mc_plugin_api::settings(settings)?;
        if page_size == 0 {
            return Err(WorkflowError::setting("page_size", "must be at least 1"));
        }
        if page_size > MAX_PAGE_SIZE {
            return Err(WorkflowError::setting(
                "page_size",
                format!("must be at most {MAX_PAGE_SIZE}, not {page_size}"),
            ));
        }
        if max_pages == 0 {
            return Err(WorkflowError::setting("max_pages", "must be at least 1"));
        }
        Ok(Archiving {
            page_size,
            max_pages,
        })
    }

    async fn run(&self, ctx: RunContext) -> Result<RunReport, WorkflowError> {
        let instances = ctx.host.request(&ListInstances {}).await?.instances;
        if instances.is_empty() {
            return Ok(RunReport::processed(0)
                .with_detail("no [[execution_instances]] configured: nothing to archive"));
        }
        let mut archived = 0;
        let mut more_work = false;
        let mut summary = Vec::with_capacity(instances.len());
        for instance in &instances {
            if ctx.cancel_requested() {
                more_work = true;
                break;
            }
            match self.archive_instance(&ctx.host, &instance.name).await {
                InstanceOutcome::Done { inserted, more } => {
                    archived += inserted;
                    more_work |= more;
                    summary.push(format!("{}: +{inserted}", instance.name));
                }
                InstanceOutcome::Failed(error) => {
                    let record = RecordArchiveError {
                        instance: instance.name.clone(),
                        error: error.clone(),
                    };
                    ctx.host.request(&record).await?;
                    summary.push(format!("{}: failed ({error})", instance.name));
                }
            }
        }
        Ok(RunReport::processed(archived)
            .with_more_work(more_work)
            .with_detail(summary.join("; ")))
    }
}

impl Archiving {
    /// Pulls up to `max_pages` pages from `instance`.
    async fn archive_instance(&self, host: &Host, instance: &str) -> InstanceOutcome {
        let cursor = GetArchiveCursor {
            instance: instance.to_owned(),
        };
        let mut after = match host.request(&cursor).await {
            Ok(answer) => answer.cursor,
            Err(e) => return InstanceOutcome::Failed(e.to_string()),
        };
        let mut inserted = 0;
        for _ in 0..self.max_pages {
            if host.cancel_requested() {
                return InstanceOutcome::Done {
                    inserted,
                    more: true,
                };
            }
            let page = match self.read_page(host, instance, after.as_deref()).await {
                Ok(page) => page,
                Err(error) => return InstanceOutcome::Failed(error),
            };
            let caught_up = !page.more;
            let store = StoreArchivePage {
                instance: instance.to_owned(),
                after: after.clone(),
                events: page.events,
                next_cursor: page.next_cursor.clone(),
                caught_up,
            };
            match host.request(&store).await {
                Ok(stored) => inserted += stored.inserted,
                Err(e) => return InstanceOutcome::Failed(format!("storing a page: {e}")),
            }
            after = Some(page.next_cursor);
            if caught_up {
                return InstanceOutcome::Done {
                    inserted,
                    more: false,
                };
            }
        }
        InstanceOutcome::Done {
            inserted,
            more: true,
        }
    }

    async fn read_page(
        &self,
        host: &Host,
        instance: &str,
        after: Option<&str>,
    ) -> Result<Page, String> {
        let request = RequestInstance {
            instance: instance.to_owned(),
            method: "GET".to_owned(),
            path: format!(
                "/api/v1/archive/events?after={}&limit={}",
                after.unwrap_or("0.0"),
                self.page_size
            ),
            body: None,
        };
        let answer = host.request(&request).await.map_err(|e| e.to_string())?;
        if answer.status != 200 {
            let message = answer
                .body
                .pointer("/error/message")
                .and_then(|m| m.as_str())
                .unwrap_or("no error message");
            return Err(format!(
                "the archive feed answered {}: {message}",
                answer.status
            ));
        }
        Page::parse(answer.body)
    }
}

/// One page of the feed.
struct Page {
    events: Vec<serde_json::Value>,
    next_cursor: String,
    more: bool,
}

impl Page {
    fn parse(mut body: serde_json::Value) -> Result<Page, String> {
        let events = match body.get_mut("events").map(serde_json::Value::take) {
            Some(serde_json::Value::Array(events)) => events,
            _ => return Err("the archive feed's answer has no `events` array".to_owned()),
        };
        let next_cursor = body
            .get("nextCursor")
            .and_then(serde_json::Value::as_str)
            .ok_or("the archive feed's answer has no `nextCursor`")?
            .to_owned();
        let more = body
            .get("more")
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(false);
        Ok(Page {
            events,
            next_cursor,
            more,
        })
    }
}

declare_plugin! {
    name: "archiving",
    version: env!("CARGO_PKG_VERSION"),
    description: "Archives finished events of the execution instances on the control instance",
    workflow: Archiving,
}
