//! The plugins the host has loaded, by name, each with its active generation and the workflow instances
//! that generation serves.
//!
//! A reload loads and checks the new library and creates its workflow instances *before* it swaps anything,
//! so a file that fails leaves the old generation running. The swap only changes which generation new runs
//! get; a run in flight keeps an `Arc` of its own generation, which is unloaded when that run ends.

use std::collections::{BTreeMap, HashMap};
use std::hash::Hasher;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::watch;

use super::loader::{LoadOptions, PluginInfo, PluginLibrary, WorkflowInstance, read_plugin_file};
use super::permissions;
use super::scan::FileFilter;
use crate::metrics::Metrics;

/// What the registry needs to know about a configured workflow.
#[derive(Clone, Debug)]
pub struct WorkflowSpec {
    pub plugin: String,
    pub settings: serde_json::Value,
}

/// One loaded generation of a plugin: the library and its workflow instances.
pub struct Generation {
    pub number: u64,
    pub library: Arc<PluginLibrary>,
    instances: HashMap<String, Arc<WorkflowInstance>>,
    /// Workflows this generation could not create, with the plugin's reason.
    failed: HashMap<String, String>,
    retired: watch::Sender<bool>,
}

impl Generation {
    /// A receiver that turns true when this generation is retired.
    pub fn retired(&self) -> watch::Receiver<bool> {
        self.retired.subscribe()
    }
}

/// The instance a run should use, from the plugin's active generation.
#[derive(Clone)]
pub struct ActiveInstance {
    pub instance: Arc<WorkflowInstance>,
    pub generation: Arc<Generation>,
}

/// Outcome of loading one file, as `/admin/plugins/reload` reports it.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub enum ReloadOutcome {
    Loaded,
    Reloaded,
    Unchanged,
    Refused,
    Unloaded,
}

impl ReloadOutcome {
    pub fn as_str(&self) -> &'static str {
        match self {
            ReloadOutcome::Loaded => "loaded",
            ReloadOutcome::Reloaded => "reloaded",
            ReloadOutcome::Unchanged => "unchanged",
            ReloadOutcome::Refused => "refused",
            ReloadOutcome::Unloaded => "unloaded",
        }
    }
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReloadResult {
    pub file: PathBuf,
    pub name: Option<String>,
    pub outcome: ReloadOutcome,
    pub generation: Option<u64>,
    pub previous_generation: Option<u64>,
    pub error: Option<String>,
}

/// One entry of `GET /admin/plugins`.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PluginView {
    pub file: PathBuf,
    pub name: Option<String>,
    pub version: Option<String>,
    pub api_version: Option<String>,
    pub abi_version: Option<u32>,
    pub rustc_version: Option<String>,
    pub description: Option<String>,
    pub generation: Option<u64>,
    pub loaded_at: Option<DateTime<Utc>>,
    pub state: &'static str,
    pub error: Option<String>,
    pub warnings: Vec<String>,
    pub retiring_generations: Vec<u64>,
    pub workflows: Vec<String>,
    /// Workflows the active generation could not create, with the reason.
    pub workflow_errors: BTreeMap<String, String>,
}

struct PluginEntry {
    file: PathBuf,
    fingerprint: u64,
    active: Option<Arc<Generation>>,
    last_generation: u64,
    last_info: PluginInfo,
    error: Option<String>,
    retiring: Vec<(u64, Weak<PluginLibrary>)>,
}

struct RefusedFile {
    error: String,
}

#[derive(Default)]
struct State {
    plugins: BTreeMap<String, PluginEntry>,
    refused: BTreeMap<PathBuf, RefusedFile>,
}

/// The registry. Reloads are serialised; lookups by runners take the state lock only briefly.
pub struct PluginRegistry {
    dir: PathBuf,
    /// `plugins.files`: which libraries of `dir` a scan loads.
    filter: FileFilter,
    options: LoadOptions,
    workflows: BTreeMap<String, WorkflowSpec>,
    metrics: Metrics,
    state: Mutex<State>,
    reload_lock: Mutex<()>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock cannot leave State half-updated in a way that matters more than
    // refusing every later request would; keep serving.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A content hash of the file, to tell "changed" from "unchanged" without trusting timestamps.
fn fingerprint(bytes: &[u8]) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    hasher.write(bytes);
    hasher.finish()
}

impl PluginRegistry {
    pub fn new(
        dir: PathBuf,
        options: LoadOptions,
        workflows: BTreeMap<String, WorkflowSpec>,
        metrics: Metrics,
    ) -> Self {
        PluginRegistry {
            dir,
            filter: FileFilter::all(),
            options,
            workflows,
            metrics,
            state: Mutex::new(State::default()),
            reload_lock: Mutex::new(()),
        }
    }

    /// Loads only these file names of the directory (`plugins.files`); `None` = every library.
    pub fn with_files(mut self, files: Option<&[String]>) -> Self {
        self.filter = match files {
            Some(files) => FileFilter::only(files.iter().map(String::as_str)),
            None => FileFilter::all(),
        };
        self
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The instance a new run of `workflow` should use, or why there is none.
    pub fn instance_for(&self, workflow: &str) -> Result<ActiveInstance, String> {
        let spec = self
            .workflows
            .get(workflow)
            .ok_or_else(|| format!("workflow `{workflow}` is not configured"))?;
        let state = lock(&self.state);
        let Some(entry) = state.plugins.get(&spec.plugin) else {
            return Err(format!(
                "plugin `{}` is not loaded: no library {}in {} declares it{}",
                spec.plugin,
                if self.filter.is_restricted() {
                    "of `plugins.files` "
                } else {
                    ""
                },
                self.dir.display(),
                if state.refused.is_empty() {
                    String::new()
                } else {
                    format!(
                        " ({} file(s) refused, see /admin/plugins)",
                        state.refused.len()
                    )
                }
            ));
        };
        let Some(generation) = &entry.active else {
            return Err(format!(
                "plugin `{}` is not loaded: {}",
                spec.plugin,
                entry.error.as_deref().unwrap_or("unloaded")
            ));
        };
        let instance =
            generation.instances.get(workflow).cloned().ok_or_else(|| {
                match generation.failed.get(workflow) {
                    Some(reason) => format!("generation {}: {reason}", generation.number),
                    None => format!(
                        "plugin `{}` generation {} has no instance of `{workflow}`",
                        spec.plugin, generation.number
                    ),
                }
            })?;
        Ok(ActiveInstance {
            instance,
            generation: Arc::clone(generation),
        })
    }

    fn active_generation(&self, plugin: &str) -> Option<Arc<Generation>> {
        lock(&self.state)
            .plugins
            .get(plugin)
            .and_then(|entry| entry.active.clone())
    }

    /// Rescans the plugin directory: loads new files, reloads changed ones, unloads removed ones.
    pub fn reload_all(&self) -> Vec<ReloadResult> {
        let _serial = lock(&self.reload_lock);
        if let Err(e) = permissions::check_plugin_dir(&self.dir) {
            let message = e.to_string();
            tracing::error!(dir = %self.dir.display(), error = %message, "plugin directory refused");
            return vec![ReloadResult {
                file: self.dir.clone(),
                name: None,
                outcome: ReloadOutcome::Refused,
                generation: None,
                previous_generation: None,
                error: Some(message),
            }];
        }
        let scan = match self.filter.scan(&self.dir) {
            Ok(scan) => scan,
            Err(e) => {
                let message = format!(
                    "{}: cannot list the plugin directory: {e}",
                    self.dir.display()
                );
                tracing::error!(error = %message, "plugin scan failed");
                return vec![ReloadResult {
                    file: self.dir.clone(),
                    name: None,
                    outcome: ReloadOutcome::Refused,
                    generation: None,
                    previous_generation: None,
                    error: Some(message),
                }];
            }
        };
        if scan.skipped > 0 {
            tracing::info!(
                dir = %self.dir.display(),
                skipped = scan.skipped,
                "libraries not listed in plugins.files skipped, unopened"
            );
        }
        for missing in &scan.missing {
            tracing::warn!(
                dir = %self.dir.display(),
                file = %missing,
                "plugins.files lists a library the plugin directory does not hold"
            );
        }
        let files = scan.files;
        let mut results: Vec<ReloadResult> =
            files.iter().map(|file| self.load_file(file)).collect();
        results.extend(self.unload_missing());
        results
    }

    /// Reloads the file of one plugin (by plugin name), or unloads it if the file is gone. `None` when no
    /// plugin of that name was ever loaded.
    pub fn reload_plugin(&self, name: &str) -> Option<ReloadResult> {
        let _serial = lock(&self.reload_lock);
        let file = lock(&self.state)
            .plugins
            .get(name)
            .map(|e| e.file.clone())?;
        if file.exists() {
            Some(self.load_file(&file))
        } else {
            self.unload_missing()
                .into_iter()
                .find(|r| r.name.as_deref() == Some(name))
        }
    }

    /// Loads `file` unless its content is unchanged; on success swaps the new generation in.
    fn load_file(&self, file: &Path) -> ReloadResult {
        let refused = |error: String, name: Option<String>, previous: Option<u64>| ReloadResult {
            file: file.to_owned(),
            name,
            outcome: ReloadOutcome::Refused,
            generation: previous,
            previous_generation: previous,
            error: Some(error),
        };
        let bytes = match read_plugin_file(file) {
            Ok(bytes) => bytes,
            Err(e) => return self.record_refusal(file, refused(e.to_string(), None, None)),
        };
        let fingerprint = fingerprint(&bytes);
        // Which plugin this file served before, if any.
        let (previous_name, previous_generation) = {
            let state = lock(&self.state);
            match state.plugins.iter().find(|(_, e)| e.file == file) {
                Some((name, entry)) => {
                    if entry.fingerprint == fingerprint && entry.active.is_some() {
                        self.metrics
                            .record_reload(name, ReloadOutcome::Unchanged.as_str());
                        return ReloadResult {
                            file: file.to_owned(),
                            name: Some(name.clone()),
                            outcome: ReloadOutcome::Unchanged,
                            generation: entry.active.as_ref().map(|g| g.number),
                            previous_generation: entry.active.as_ref().map(|g| g.number),
                            error: None,
                        };
                    }
                    (Some(name.clone()), entry.active.as_ref().map(|g| g.number))
                }
                None => (None, None),
            }
        };

        // Load and check the new library and create its instances, with no lock held.
        let library = match PluginLibrary::load_bytes(file, &bytes, &self.options) {
            Ok(library) => Arc::new(library),
            Err(e) => {
                return self.record_refusal(
                    file,
                    refused(e.to_string(), previous_name.clone(), previous_generation),
                );
            }
        };
        let name = library.info.name.clone();
        // Generations count per plugin name; a different file may already serve this name.
        let (number, clash) = {
            let state = lock(&self.state);
            match state.plugins.get(&name) {
                Some(entry) if entry.file != file && entry.active.is_some() => {
                    (0, Some(entry.file.clone()))
                }
                Some(entry) => (entry.last_generation + 1, None),
                None => (1, None),
            }
        };
        if let Some(other) = clash {
            let message = format!(
                "{}: declares plugin `{name}`, which {} already provides; remove one of the two files",
                file.display(),
                other.display()
            );
            return self.record_refusal(file, refused(message, Some(name), None));
        }
        let mut instances = HashMap::new();
        let mut failed = HashMap::new();
        for (workflow, spec) in self.workflows.iter().filter(|(_, s)| s.plugin == name) {
            match library.create_workflow(&spec.settings) {
                Ok(instance) => {
                    instances.insert(workflow.clone(), Arc::new(instance));
                }
                Err(e) => {
                    let message = format!(
                        "plugin `{name}` refused the settings of workflow `{workflow}`: {e}"
                    );
                    tracing::error!(file = %file.display(), error = %message, "workflow not created");
                    failed.insert(workflow.clone(), message);
                }
            }
        }
        // A reload must not break a workflow the running generation serves: refuse it instead.
        if let Some(active) = self.active_generation(&name) {
            let broken: Vec<&String> = failed
                .iter()
                .filter(|(workflow, _)| active.instances.contains_key(*workflow))
                .map(|(_, message)| message)
                .collect();
            if !broken.is_empty() {
                let message = format!(
                    "{}: {}",
                    file.display(),
                    broken
                        .iter()
                        .map(|m| m.as_str())
                        .collect::<Vec<_>>()
                        .join("; ")
                );
                return self
                    .record_refusal(file, refused(message, Some(name), previous_generation));
            }
        }
        let (retired_tx, _) = watch::channel(false);
        let generation = Arc::new(Generation {
            number,
            library: Arc::clone(&library),
            instances,
            failed,
            retired: retired_tx,
        });

        // Swap it in.
        let mut state = lock(&self.state);
        state.refused.remove(file);
        // The file used to declare another plugin: that one is gone now.
        if let Some(old_name) = previous_name.as_ref().filter(|n| **n != name)
            && let Some(old) = state.plugins.get_mut(old_name)
        {
            retire(
                old,
                format!("{} now declares plugin `{name}`", file.display()),
            );
        }
        let entry = state
            .plugins
            .entry(name.clone())
            .or_insert_with(|| PluginEntry {
                file: file.to_owned(),
                fingerprint,
                active: None,
                last_generation: 0,
                last_info: library.info.clone(),
                error: None,
                retiring: Vec::new(),
            });
        let previous = entry.active.take();
        if let Some(previous) = &previous {
            let _ = previous.retired.send(true);
            entry
                .retiring
                .push((previous.number, Arc::downgrade(&previous.library)));
        }
        entry.file = file.to_owned();
        entry.fingerprint = fingerprint;
        entry.active = Some(generation);
        entry.last_generation = number;
        entry.last_info = library.info.clone();
        entry.error = None;
        drop(state);

        let outcome = if previous.is_some() {
            ReloadOutcome::Reloaded
        } else {
            ReloadOutcome::Loaded
        };
        tracing::info!(
            plugin = %name,
            version = %library.info.version,
            generation = number,
            file = %file.display(),
            outcome = outcome.as_str(),
            "plugin loaded"
        );
        self.metrics.record_reload(&name, outcome.as_str());
        self.metrics.set_plugin_generation(&name, number);
        ReloadResult {
            file: file.to_owned(),
            name: Some(name),
            outcome,
            generation: Some(number),
            previous_generation: previous.map(|g| g.number),
            error: None,
        }
    }

    /// Notes a refusal: on the plugin entry when an active generation keeps running, else on the file.
    fn record_refusal(&self, file: &Path, result: ReloadResult) -> ReloadResult {
        let message = result.error.clone().unwrap_or_default();
        tracing::error!(file = %file.display(), error = %message, "plugin refused");
        let mut state = lock(&self.state);
        let kept = state
            .plugins
            .values_mut()
            .find(|e| e.file == file && e.active.is_some());
        match kept {
            Some(entry) => {
                entry.error = Some(format!(
                    "reload refused, generation {} keeps running: {message}",
                    entry.last_generation
                ));
            }
            None => {
                state
                    .refused
                    .insert(file.to_owned(), RefusedFile { error: message });
            }
        }
        drop(state);
        self.metrics
            .record_reload(result.name.as_deref().unwrap_or("unknown"), "refused");
        result
    }

    /// Unloads every plugin whose file has disappeared, and forgets refusals of files that are gone.
    fn unload_missing(&self) -> Vec<ReloadResult> {
        let mut state = lock(&self.state);
        state.refused.retain(|file, _| file.exists());
        let mut results = Vec::new();
        for (name, entry) in state.plugins.iter_mut() {
            if entry.active.is_none() || entry.file.exists() {
                continue;
            }
            let previous = entry.active.as_ref().map(|g| g.number);
            retire(
                entry,
                format!(
                    "{} was removed from the plugin directory",
                    entry.file.display()
                ),
            );
            tracing::warn!(plugin = %name, file = %entry.file.display(), "plugin unloaded: file removed");
            self.metrics.record_reload(name, "unloaded");
            self.metrics.set_plugin_generation(name, 0);
            results.push(ReloadResult {
                file: entry.file.clone(),
                name: Some(name.clone()),
                outcome: ReloadOutcome::Unloaded,
                generation: None,
                previous_generation: previous,
                error: entry.error.clone(),
            });
        }
        results
    }

    /// `GET /admin/plugins`.
    pub fn list(&self) -> Vec<PluginView> {
        let mut state = lock(&self.state);
        let mut views = Vec::new();
        for (name, entry) in state.plugins.iter_mut() {
            entry.retiring.retain(|(_, lib)| lib.strong_count() > 0);
            let info = &entry.last_info;
            let warnings = if info.rustc_version != super::loader::host_rustc_version() {
                vec![format!(
                    "built with `{}`, the host with `{}`; the boundary is C-ABI and JSON so this is allowed",
                    info.rustc_version,
                    super::loader::host_rustc_version()
                )]
            } else {
                Vec::new()
            };
            views.push(PluginView {
                file: entry.file.clone(),
                name: Some(name.clone()),
                version: Some(info.version.clone()),
                api_version: Some(info.api_version.clone()),
                abi_version: Some(info.abi_version),
                rustc_version: Some(info.rustc_version.clone()),
                description: Some(info.description.clone()),
                generation: entry.active.as_ref().map(|g| g.number),
                loaded_at: entry.active.as_ref().map(|g| g.library.loaded_at),
                state: if entry.active.is_some() {
                    "loaded"
                } else {
                    "removed"
                },
                error: entry.error.clone(),
                warnings,
                retiring_generations: entry.retiring.iter().map(|(n, _)| *n).collect(),
                workflows: self
                    .workflows
                    .iter()
                    .filter(|(_, s)| s.plugin == *name)
                    .map(|(w, _)| w.clone())
                    .collect(),
                workflow_errors: entry
                    .active
                    .as_ref()
                    .map(|g| {
                        g.failed
                            .iter()
                            .map(|(k, v)| (k.clone(), v.clone()))
                            .collect()
                    })
                    .unwrap_or_default(),
            });
        }
        for (file, refused) in &state.refused {
            views.push(PluginView {
                file: file.clone(),
                name: None,
                version: None,
                api_version: None,
                abi_version: None,
                rustc_version: None,
                description: None,
                generation: None,
                loaded_at: None,
                state: "refused",
                error: Some(refused.error.clone()),
                warnings: Vec::new(),
                retiring_generations: Vec::new(),
                workflows: Vec::new(),
                workflow_errors: BTreeMap::new(),
            });
        }
        views
    }
}

/// Takes the active generation out of service: new runs stop getting it, runs in flight are told to wrap
/// up, and it is unloaded when the last of them ends.
fn retire(entry: &mut PluginEntry, reason: String) {
    if let Some(generation) = entry.active.take() {
        let _ = generation.retired.send(true);
        entry
            .retiring
            .push((generation.number, Arc::downgrade(&generation.library)));
    }
    entry.error = Some(reason);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A registry on a directory of files that are no libraries at all, so every one it opens is refused.
    fn registry_on(
        files: &[&str],
        listed: Option<&[String]>,
    ) -> (tempfile::TempDir, PluginRegistry) {
        let dir = tempfile::tempdir().expect("temp dir");
        let plugins = dir.path().join("plugins");
        std::fs::create_dir(&plugins).expect("mkdir");
        for file in files {
            std::fs::write(plugins.join(file), b"not a library").expect("write");
        }
        let registry = PluginRegistry::new(
            plugins,
            LoadOptions {
                work_dir: dir.path().join("work"),
                require_same_rustc: false,
            },
            BTreeMap::new(),
            Metrics::new(),
        )
        .with_files(listed);
        (dir, registry)
    }

    fn file_names(results: &[ReloadResult]) -> Vec<String> {
        results
            .iter()
            .map(|r| r.file.file_name().unwrap().to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn without_a_list_every_library_is_opened() {
        let (_dir, registry) = registry_on(&["liba.so", "libwrong_abi.so"], None);
        let results = registry.reload_all();
        assert_eq!(file_names(&results), ["liba.so", "libwrong_abi.so"]);
        assert!(results.iter().all(|r| r.outcome == ReloadOutcome::Refused));
        assert_eq!(registry.list().len(), 2);
    }

    #[test]
    fn a_reload_opens_only_the_listed_files() {
        let listed = ["liba.so".to_owned(), "libmissing.so".to_owned()];
        let (_dir, registry) = registry_on(
            &["liba.so", "libwrong_abi.so", "libfault_probe.so"],
            Some(&listed),
        );
        for _ in 0..2 {
            let results = registry.reload_all();
            assert_eq!(file_names(&results), ["liba.so"], "{results:?}");
            let views = registry.list();
            assert_eq!(views.len(), 1, "unlisted files are not even refused");
            assert!(views[0].file.ends_with("liba.so"));
        }
    }
}
