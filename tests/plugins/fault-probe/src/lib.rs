//! `faultProbe`: a test plugin that misbehaves on demand, so that the integration tests can check that the
//! host survives every kind of plugin fault. Never shipped in the plugin directory.
//!
//! Settings (the `[workflows.<name>]` table):
//! - `mode`: what every run does — `"ok"` (counts events through the host and reports them), `"error"`
//!   (returns an error), `"panic"` (panics inside the run), `"hang"` (awaits a one-hour host timer: an
//!   asynchronous hang that a deadline can cancel), `"block"` (blocks its thread with `std::thread::sleep`
//!   for `block_secs` seconds, default 3600: a hang no deadline can cancel). Default `"ok"`.
//!   `"claim"` claims up to `batch_size` (default 10) due real-time events through the host, marks them
//!   `not_taken_into_account`, and reports how many it claimed and that work may be left: the way a
//!   processing workflow uses the claim services, without templates or delivery. With
//!   `fail_first_runs = N`, runs 1 to N claim and then fail without settling what they claimed (a run
//!   that loses its database or errors half-way).
//! - `create`: `"panic"` makes `create` panic, `"error"` makes it return an error.

// A plugin reaches the host only through mc-plugin-api; the `unsafe` of the boundary is there (lints are
// not reported in `declare_plugin!`'s expansion, which is mc-plugin-api's code).
#![forbid(unsafe_code)]

use std::time::Duration;

use mc_plugin_api::services::{ClaimEvents, CountEvents, EventChange, Queue, UpdateEvents};
use mc_plugin_api::{RunContext, RunReport, Workflow, WorkflowError};
use serde_json::Value;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Ok,
    Error,
    Panic,
    Hang,
    Block,
    Claim,
}

pub struct FaultProbe {
    mode: Mode,
    block_secs: u64,
    batch_size: u32,
    fail_first_runs: u64,
}

fn string_setting<'a>(settings: &'a Value, key: &str) -> Result<Option<&'a str>, WorkflowError> {
    match settings.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(WorkflowError::new(format!(
            "fault-probe: setting `{key}` must be a string, got {other}"
        ))),
    }
}

/// A non-negative integer setting, `default` when absent or null.
fn u64_setting(settings: &Value, key: &str, default: u64) -> Result<u64, WorkflowError> {
    match settings.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(value) => value.as_u64().ok_or_else(|| {
            WorkflowError::new(format!(
                "fault-probe: setting `{key}` must be a non-negative integer, got {value}"
            ))
        }),
    }
}

impl Workflow for FaultProbe {
    fn create(settings: &Value) -> Result<Self, WorkflowError> {
        match string_setting(settings, "create")? {
            None => {}
            Some("panic") => panic!("fault-probe create panics on purpose"),
            Some("error") => return Err(WorkflowError::new("fault-probe create fails on purpose")),
            Some(other) => {
                return Err(WorkflowError::new(format!(
                    "fault-probe: unknown value {other:?} for setting `create` (expected \"panic\" or \"error\")"
                )));
            }
        }
        let mode = match string_setting(settings, "mode")?.unwrap_or("ok") {
            "ok" => Mode::Ok,
            "error" => Mode::Error,
            "panic" => Mode::Panic,
            "hang" => Mode::Hang,
            "block" => Mode::Block,
            "claim" => Mode::Claim,
            other => {
                return Err(WorkflowError::new(format!(
                    "fault-probe: unknown value {other:?} for setting `mode` \
                     (expected \"ok\", \"error\", \"panic\", \"hang\", \"block\" or \"claim\")"
                )));
            }
        };
        let block_secs = u64_setting(settings, "block_secs", 3600)?;
        let batch_size = settings
            .get("batch_size")
            .and_then(Value::as_u64)
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(10);
        let fail_first_runs = u64_setting(settings, "fail_first_runs", 0)?;
        Ok(FaultProbe {
            fail_first_runs,
            mode,
            block_secs,
            batch_size,
        })
    }

    async fn run(&self, ctx: RunContext) -> Result<RunReport, WorkflowError> {
        match self.mode {
            Mode::Ok => {
                let count = ctx.host.request(&CountEvents::default()).await?;
                Ok(RunReport::processed(count.count).with_detail("fault-probe ok"))
            }
            Mode::Error => Err(WorkflowError::new("fault-probe fails on purpose")),
            Mode::Panic => panic!("fault-probe panics on purpose"),
            Mode::Hang => {
                ctx.host.info("fault-probe hangs on purpose (async)");
                ctx.host.sleep(Duration::from_secs(3600)).await;
                Ok(RunReport::processed(0).with_detail("fault-probe woke up after an hour"))
            }
            Mode::Claim => {
                let claimed = ctx
                    .host
                    .request(&ClaimEvents {
                        queue: Queue::Realtime,
                        limit: self.batch_size,
                        lease_seconds: 60,
                    })
                    .await?
                    .events;
                if ctx.info.run_number <= self.fail_first_runs {
                    return Err(WorkflowError::new(format!(
                        "fault-probe claimed {} events and fails on purpose without settling them",
                        claimed.len()
                    )));
                }
                let changes = claimed
                    .iter()
                    .map(|e| EventChange {
                        id: e.id,
                        status: mc_plugin_api::EventStatus::NotTakenIntoAccount,
                        template_name: None,
                        template_version: None,
                    })
                    .collect();
                let updated = ctx.host.request(&UpdateEvents { changes }).await?.updated;
                if updated != claimed.len() as u64 {
                    return Err(WorkflowError::new(format!(
                        "claimed {} events but could update only {updated}",
                        claimed.len()
                    )));
                }
                Ok(RunReport::processed(claimed.len() as u64)
                    .with_more_work(claimed.len() as u32 == self.batch_size)
                    .with_detail(format!("claimed {}", claimed.len())))
            }
            Mode::Block => {
                ctx.host.info("fault-probe blocks its thread on purpose");
                std::thread::sleep(Duration::from_secs(self.block_secs));
                Ok(RunReport::processed(0).with_detail("fault-probe unblocked"))
            }
        }
    }
}

mc_plugin_api::declare_plugin! {
    name: "faultProbe",
    version: env!("CARGO_PKG_VERSION"),
    description: "Test plugin that errors, panics, hangs or blocks on demand",
    workflow: FaultProbe,
}
