// Shared source of the `reloadProbe` test plugins (reload-probe-v1 and reload-probe-v2), included by each
// crate's src/lib.rs after it defines `PROBE_VERSION` (the plugin version) and `PROBE_NUMBER` (1 or 2).
//
// Each run awaits a host timer for `run_millis` milliseconds (setting, default 300) so that a test can
// reload the plugin while a run is in flight, then reports `PROBE_NUMBER` items processed with the detail
// "reload-probe v<PROBE_NUMBER>", which tells which generation served the run.

/// The `reloadProbe` workflow.
pub struct ReloadProbe {
    run_millis: u64,
}

impl mc_plugin_api::Workflow for ReloadProbe {
    fn create(settings: &serde_json::Value) -> Result<Self, mc_plugin_api::WorkflowError> {
        let run_millis = match settings.get("run_millis") {
            None | Some(serde_json::Value::Null) => 300,
            Some(value) => value.as_u64().ok_or_else(|| {
                mc_plugin_api::WorkflowError::new(format!(
                    "reload-probe: setting `run_millis` must be a non-negative integer, got {value}"
                ))
            })?,
        };
        Ok(ReloadProbe { run_millis })
    }

    async fn run(
        &self,
        ctx: mc_plugin_api::RunContext,
    ) -> Result<mc_plugin_api::RunReport, mc_plugin_api::WorkflowError> {
        ctx.host.info(&format!(
            "reload-probe v{PROBE_NUMBER} run {} started on generation {}",
            ctx.info.run_number, ctx.info.generation
        ));
        ctx.host
            .sleep(std::time::Duration::from_millis(self.run_millis))
            .await;
        ctx.host.info(&format!(
            "reload-probe v{PROBE_NUMBER} run {} finished",
            ctx.info.run_number
        ));
        Ok(mc_plugin_api::RunReport::processed(PROBE_NUMBER)
            .with_detail(format!("reload-probe v{PROBE_NUMBER}")))
    }
}

mc_plugin_api::declare_plugin! {
    name: "reloadProbe",
    version: PROBE_VERSION,
    description: "Test plugin whose runs last run_millis, to reload it while a run is in flight",
    workflow: ReloadProbe,
}
