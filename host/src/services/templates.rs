//! Template services: which published template an event is linked to.

use mc_plugin_api::services::{FindPublishedTemplate, PublishedTemplate, TemplateRecord};

use super::{HostServices, ServiceError};

impl HostServices {
    /// `templates.findPublished`.
    pub(super) async fn find_published_template(
        &self,
        request: FindPublishedTemplate,
    ) -> Result<PublishedTemplate, ServiceError> {
        let found = self
            .store
            .find_published_template(&request.event_type, &request.channel)
            .await?;
        Ok(PublishedTemplate {
            template: found.map(|v| TemplateRecord {
                name: v.template_name,
                version: v.version,
                event_type: v.event_type,
                channel: v.channel,
                from: v.from_address,
                subject: v.subject,
                text: v.text_body,
                html: v.html_body,
            }),
        })
    }
}
