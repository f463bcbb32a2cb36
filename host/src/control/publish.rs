//! Pushing a template's publication to every execution instance, one after the other: what
//! `POST /api/v1/templates/{name}/publish|unpublish` and the console's publish buttons do on a control
//! instance after publishing locally. An instance that is down does not stop the others; each one's
//! outcome says whether it needs the call again (the calls are idempotent: publishing the same content
//! twice only adds a version there).

use serde_json::{Value, json};

use super::{ExecutionInstances, InstanceError};
use crate::db::entities::template_version;

/// What one execution instance made of the change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InstanceOutcome {
    /// It stored and published the content as its version `version` (when it said which).
    Published { version: Option<i64> },
    /// It withdrew the template.
    Unpublished,
    /// It never had the template: nothing to withdraw there.
    NotPresent,
    /// It refused, or could not be reached: the reason.
    Failed(String),
}

impl InstanceOutcome {
    /// The `status` of the answer's per-instance entry.
    pub const fn as_str(&self) -> &'static str {
        match self {
            InstanceOutcome::Published { .. } => "published",
            InstanceOutcome::Unpublished => "unpublished",
            InstanceOutcome::NotPresent => "not_present",
            InstanceOutcome::Failed(_) => "failed",
        }
    }

    pub fn failed(&self) -> bool {
        matches!(self, InstanceOutcome::Failed(_))
    }
}

/// One instance's outcome.
#[derive(Clone, Debug)]
pub struct InstanceResult {
    pub instance: String,
    pub outcome: InstanceOutcome,
}

impl InstanceResult {
    /// The entry of the API's `instances` list.
    pub fn to_json(&self) -> Value {
        match &self.outcome {
            InstanceOutcome::Published { version } => json!({
                "instance": self.instance,
                "status": self.outcome.as_str(),
                "version": version,
            }),
            InstanceOutcome::Failed(error) => json!({
                "instance": self.instance,
                "status": self.outcome.as_str(),
                "error": error,
            }),
            _ => json!({ "instance": self.instance, "status": self.outcome.as_str() }),
        }
    }
}

/// Gives every instance `version` of template `name`, published.
pub async fn push_publish(
    instances: &ExecutionInstances,
    name: &str,
    version: &template_version::Model,
) -> Vec<InstanceResult> {
    let content = remote_content(version);
    let path = format!("/api/v1/templates/{name}");
    let mut results = Vec::new();
    for instance in instances.names() {
        let outcome = match instances
            .request(instance, "PUT", &path, Some(&content))
            .await
        {
            Ok(answer) if answer.status == 200 || answer.status == 201 => {
                InstanceOutcome::Published {
                    version: answer
                        .body
                        .pointer("/content/version")
                        .and_then(Value::as_i64),
                }
            }
            Ok(answer) => refused(answer.status, &answer.body),
            Err(e) => unreachable(&e),
        };
        results.push(InstanceResult {
            instance: instance.to_owned(),
            outcome,
        });
    }
    results
}

/// Withdraws template `name` from every instance.
pub async fn push_unpublish(instances: &ExecutionInstances, name: &str) -> Vec<InstanceResult> {
    let path = format!("/api/v1/templates/{name}/unpublish");
    let mut results = Vec::new();
    for instance in instances.names() {
        let outcome = match instances.request(instance, "POST", &path, None).await {
            Ok(answer) if answer.status == 200 => InstanceOutcome::Unpublished,
            Ok(answer) if answer.status == 404 => InstanceOutcome::NotPresent,
            Ok(answer) => refused(answer.status, &answer.body),
            Err(e) => unreachable(&e),
        };
        results.push(InstanceResult {
            instance: instance.to_owned(),
            outcome,
        });
    }
    results
}

fn refused(status: u16, body: &Value) -> InstanceOutcome {
    let message = body
        .pointer("/error/message")
        .and_then(Value::as_str)
        .unwrap_or("no error message");
    InstanceOutcome::Failed(format!("answered {status}: {message}"))
}

fn unreachable(error: &InstanceError) -> InstanceOutcome {
    InstanceOutcome::Failed(error.to_string())
}

/// The body of the `PUT` that gives an execution instance this version.
fn remote_content(version: &template_version::Model) -> Value {
    json!({
        "eventType": version.event_type,
        "channel": version.channel,
        "from": version.from_address,
        "subject": version.subject,
        "text": version.text_body,
        "html": version.html_body,
        "publish": true,
    })
}
