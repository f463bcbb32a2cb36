//! Creating the templates of `[templates] seed_dir` at start, so that a new installation has working
//! sample templates. A template that already exists is left alone, so edits made through the API win.

use std::path::Path;

use mc_plugin_api::Channel;
use serde::Deserialize;

use super::{NewTemplateVersion, RenderLimits, check};
use crate::store::Store;

/// A seed file: the body of `PUT /api/v1/templates/<name>`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SeedFile {
    event_type: String,
    /// Email when absent, as in `PUT /api/v1/templates/{name}`.
    #[serde(default)]
    channel: Channel,
    from: Option<String>,
    subject: Option<String>,
    text: Option<String>,
    html: Option<String>,
}

/// Seeds every `*.json` of `dir`, each checked as `PUT` checks it (under `limits`); returns the names
/// created. A bad file is logged and skipped.
pub async fn seed(store: &Store, dir: &Path, limits: &RenderLimits) -> Vec<String> {
    let mut files: Vec<_> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect(),
        Err(e) => {
            tracing::error!(dir = %dir.display(), error = %e, "templates.seed_dir cannot be read");
            return Vec::new();
        }
    };
    files.sort();
    let mut created = Vec::new();
    for file in files {
        let Some(name) = file.file_stem().map(|s| s.to_string_lossy().into_owned()) else {
            continue;
        };
        match seed_one(store, &file, &name, limits).await {
            Ok(true) => created.push(name),
            Ok(false) => {}
            Err(reason) => {
                tracing::error!(file = %file.display(), %reason, "seed template skipped")
            }
        }
    }
    if !created.is_empty() {
        tracing::info!(templates = ?created, "sample templates created and published");
    }
    created
}

async fn seed_one(
    store: &Store,
    file: &Path,
    name: &str,
    limits: &RenderLimits,
) -> Result<bool, String> {
    if store
        .get_template(name)
        .await
        .map_err(|e| e.to_string())?
        .is_some()
    {
        return Ok(false);
    }
    let text = std::fs::read_to_string(file).map_err(|e| e.to_string())?;
    let seed: SeedFile = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    let version = NewTemplateVersion {
        event_type: seed.event_type,
        channel: seed.channel,
        from: seed.from,
        subject: seed.subject,
        text: seed.text,
        html: seed.html,
    };
    check(&version.content(), limits)
        .await
        .map_err(|e| e.to_string())?;
    store
        .put_template_version(name, version, true)
        .await
        .map_err(|e| e.to_string())?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::sqlite_store;

    #[tokio::test]
    async fn seeds_new_templates_once_and_skips_bad_files() {
        let (_db, store) = sqlite_store().await;
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("welcome.json"),
            r#"{"eventType":"WELCOME","subject":"Hi {{ ctx.firstName }}","text":"Hello"}"#,
        )
        .unwrap();
        std::fs::write(
            dir.path().join("broken.json"),
            r#"{"eventType":"X","subject":"{% if %}"}"#,
        )
        .unwrap();
        assert_eq!(
            seed(&store, dir.path(), &RenderLimits::default()).await,
            vec!["welcome".to_owned()]
        );
        let published = store
            .find_published_template("WELCOME", mc_plugin_api::Channel::Email)
            .await
            .unwrap();
        assert_eq!(published.map(|v| v.version), Some(1));
        assert!(
            seed(&store, dir.path(), &RenderLimits::default())
                .await
                .is_empty(),
            "existing templates are left alone"
        );
        assert!(store.get_template("broken").await.unwrap().is_none());
    }
}
