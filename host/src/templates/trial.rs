//! Trying a template before it is published: a preview renders a version (or content not stored yet)
//! for a seed or an inline event under delivery's limits; a proof renders a version for a seed and
//! sends it now through the channel's sender, recording it in `template_proofs` (see `proofs`). The
//! API and the console both call these, so they answer the same.

use mc_plugin_api::Channel;

use super::proofs::{NewProof, ProofStatus, Seed};
use super::{RenderEvent, RenderLimits, Rendered, TemplateContent, TemplateError, render_once};
use crate::db::entities::{template, template_proof, template_version};
use crate::delivery::{ProofError, ProofSender, SendOutcome};
use crate::store::{Store, StoreError};

/// Most proofs of one template listed.
pub const PROOFS_LISTED: u64 = 20;

/// What previews and proofs work with.
#[derive(Clone)]
pub struct Trials {
    pub store: Store,
    /// The delivery engine's channels; `None` on an instance that delivers nothing (control-only).
    pub sender: Option<ProofSender>,
    /// Delivery's render limits (`[templates]`).
    pub limits: RenderLimits,
}

/// What a preview renders for.
#[derive(Clone, Debug)]
pub enum Recipient {
    /// The seed of this label.
    Seed(String),
    /// An event given inline.
    Event(RenderEvent),
}

/// A rendered preview.
#[derive(Debug)]
pub struct Preview {
    pub version: i32,
    /// The channel the version is for.
    pub channel: Channel,
    /// The seed rendered for, when it was one.
    pub seed: Option<Seed>,
    pub rendered: Rendered,
}

#[derive(Debug, thiserror::Error)]
pub enum TrialError {
    #[error("no template `{0}`")]
    UnknownTemplate(String),
    #[error("template `{name}` has no version {version}")]
    UnknownVersion { name: String, version: i32 },
    #[error("template `{name}` has no seed labelled `{label}`")]
    UnknownSeed { name: String, label: String },
    #[error("the template does not render: {0}")]
    Render(#[from] TemplateError),
    #[error("the proof was not sent: {0}")]
    NotSent(#[from] ProofError),
    #[error(
        "the proof was not sent: no channel is configured on this instance (it delivers nothing)"
    )]
    NoDelivery,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Trials {
    /// Template `name` and its version `wanted` (the latest when `None`).
    pub async fn version(
        &self,
        name: &str,
        wanted: Option<i32>,
    ) -> Result<(template::Model, template_version::Model), TrialError> {
        let template = self
            .store
            .get_template(name)
            .await?
            .ok_or_else(|| TrialError::UnknownTemplate(name.to_owned()))?;
        let number = wanted.unwrap_or(template.latest_version);
        let version = self
            .store
            .get_template_version(name, number)
            .await?
            .ok_or_else(|| TrialError::UnknownVersion {
                name: name.to_owned(),
                version: number,
            })?;
        Ok((template, version))
    }

    /// The seed of `label` of template `name`.
    pub async fn seed(&self, name: &str, label: &str) -> Result<Seed, TrialError> {
        self.store
            .template_seeds(name)
            .await?
            .into_iter()
            .find(|s| s.label == label)
            .ok_or_else(|| TrialError::UnknownSeed {
                name: name.to_owned(),
                label: label.to_owned(),
            })
    }

    /// Renders version `wanted` (the latest when `None`) of template `name` for `recipient`.
    pub async fn preview(
        &self,
        name: &str,
        wanted: Option<i32>,
        recipient: Recipient,
    ) -> Result<Preview, TrialError> {
        let (_, version) = self.version(name, wanted).await?;
        let channel = channel_of(&version);
        let mut preview = self
            .preview_content(name, &TemplateContent::from(&version), channel, recipient)
            .await?;
        preview.version = version.version;
        Ok(preview)
    }

    /// Renders `content` (not stored yet: the console's editor) of template `name` for `recipient`.
    /// The returned `version` is 0.
    pub async fn preview_content(
        &self,
        name: &str,
        content: &TemplateContent,
        channel: Channel,
        recipient: Recipient,
    ) -> Result<Preview, TrialError> {
        let (event, seed) = match recipient {
            Recipient::Seed(label) => {
                let seed = self.seed(name, &label).await?;
                (seed.event(channel), Some(seed))
            }
            Recipient::Event(event) => (event, None),
        };
        let rendered = render_once(content, event, &self.limits).await?;
        Ok(Preview {
            version: 0,
            channel,
            seed,
            rendered,
        })
    }

    /// Renders version `wanted` of template `name` for the seed `label`, sends it now and records the
    /// proof with the channel's verdict (a refusal is recorded as `failed`, not retried).
    pub async fn proof(
        &self,
        name: &str,
        wanted: Option<i32>,
        label: &str,
        sent_by: Option<String>,
    ) -> Result<template_proof::Model, TrialError> {
        let sender = self.sender.as_ref().ok_or(TrialError::NoDelivery)?;
        let preview = self
            .preview(name, wanted, Recipient::Seed(label.to_owned()))
            .await?;
        let (version, channel) = (preview.version, preview.channel);
        let seed = preview.seed.ok_or_else(|| TrialError::UnknownSeed {
            name: name.to_owned(),
            label: label.to_owned(),
        })?;
        let outcome = sender
            .send(channel, &seed.address, &preview.rendered)
            .await?;
        let (status, message_id, error) = match outcome {
            SendOutcome::Sent { message_id } => (ProofStatus::Sent, message_id, None),
            SendOutcome::Permanent(e) | SendOutcome::Transient(e) => {
                (ProofStatus::Failed, None, Some(e))
            }
        };
        tracing::info!(
            template = name,
            version,
            seed = label,
            status = status.as_str(),
            "template proof"
        );
        Ok(self
            .store
            .insert_template_proof(NewProof {
                template_name: name.to_owned(),
                version,
                channel,
                seed_label: seed.label,
                address: seed.address,
                status,
                message_id,
                error,
                sent_by,
            })
            .await?)
    }
}

/// A stored version's channel (anything but `sms` is email, as delivery reads it).
pub fn channel_of(version: &template_version::Model) -> Channel {
    version.channel.parse().unwrap_or(Channel::Email)
}
