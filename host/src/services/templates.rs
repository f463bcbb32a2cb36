//! Template services: which published template an event is linked to.

use mc_plugin_api::services::{FindPublishedTemplate, PublishedTemplate, TemplateRecord};

use super::{HostServices, ServiceError, stored};

impl HostServices {
    /// `templates.findPublished`.
    pub(super) async fn find_published_template(
        &self,
        request: FindPublishedTemplate,
    ) -> Result<PublishedTemplate, ServiceError> {
        let found = self
            .store
            .find_published_template(&request.event_type, request.channel)
            .await?;
        let template = match found {
            None => None,
            Some(v) => Some(TemplateRecord {
                channel: stored(&v.channel)?,
                name: v.template_name,
                version: v.version,
                event_type: v.event_type,
                from: v.from_address,
                subject: v.subject,
                text: v.text_body,
                html: v.html_body,
            }),
        };
        Ok(PublishedTemplate { template })
    }
}
