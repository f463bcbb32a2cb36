//! The SMS channel: a JSON `POST {"to","text","from","eventId"}` to an HTTP gateway. 2xx is sent (the
//! answer's `id` is the message id), 4xx a permanent refusal, 5xx and network errors transient.

use serde_json::json;

use super::outcome::SendOutcome;
use crate::config::SmsChannelConfig;

pub struct SmsChannel {
    client: reqwest::Client,
    url: String,
    api_key: Option<String>,
    from: Option<String>,
}

#[derive(Debug, thiserror::Error)]
#[error("channels.sms: {0}")]
pub struct SmsConfigError(String);

impl SmsChannel {
    pub fn new(config: &SmsChannelConfig) -> Result<Self, SmsConfigError> {
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .pool_max_idle_per_host(config.concurrency.max(1) as usize)
            .build()
            .map_err(|e| SmsConfigError(e.to_string()))?;
        if !(config.gateway_url.starts_with("http://")
            || config.gateway_url.starts_with("https://"))
        {
            return Err(SmsConfigError(format!(
                "gateway_url `{}` must be an http:// or https:// URL",
                config.gateway_url
            )));
        }
        Ok(SmsChannel {
            client,
            url: config.gateway_url.clone(),
            api_key: config.api_key.clone(),
            from: config.from.clone(),
        })
    }

    /// Sends `text` to `to` for event `event_id`, or as a proof (`None`: the body then says
    /// `"proof": true` and has no `eventId`).
    pub async fn send(&self, to: &str, text: &str, event_id: Option<u64>) -> SendOutcome {
        let body = match event_id {
            Some(event_id) => json!({
                "to": to,
                "text": text,
                "from": self.from,
                "eventId": event_id.to_string(),
            }),
            None => json!({ "to": to, "text": text, "from": self.from, "proof": true }),
        };
        let mut request = self.client.post(&self.url).json(&body);
        if let Some(key) = &self.api_key {
            request = request.bearer_auth(key);
        }
        let response = match request.send().await {
            Ok(response) => response,
            Err(e) => return SendOutcome::Transient(format!("gateway unreachable: {e}")),
        };
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        if status.is_success() {
            let message_id = serde_json::from_str::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v.get("id").and_then(|id| id.as_str().map(str::to_owned)));
            SendOutcome::Sent { message_id }
        } else if status.is_client_error() {
            SendOutcome::Permanent(format!("gateway answered {status}: {}", truncate(&body)))
        } else {
            SendOutcome::Transient(format!("gateway answered {status}: {}", truncate(&body)))
        }
    }
}

fn truncate(body: &str) -> &str {
    match body.char_indices().nth(200) {
        Some((end, _)) => &body[..end],
        None => body,
    }
}
