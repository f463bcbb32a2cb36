//! The HTTP side of webhook delivery: one client (pooled connections, `[webhooks] request_timeout` per
//! attempt, redirects never followed, no proxy, the checked resolver), a cap on requests in flight per
//! endpoint, and an answer read only as far as it is worth: the first KiB is kept for the history, the
//! read stops after [`READ_LIMIT`], so a huge, endless or garbage answer costs one attempt and nothing
//! else.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use super::destination::Destinations;
use super::signature;
use crate::config::WebhooksConfig;

/// Bytes of the answer kept for the history.
pub const KEPT_BYTES: usize = 1024;
/// Bytes of the answer read at most; the connection is dropped after that.
pub const READ_LIMIT: usize = 64 * 1024;

/// What one attempt saw.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SendOutcome {
    /// The receiver's status, when it answered.
    pub http_status: Option<u16>,
    /// From sending the request to the end of reading the answer (waiting for the endpoint's cap is
    /// not counted).
    pub duration: Duration,
    /// Why no (complete) answer came: refused destination, connection error, timeout.
    pub error: Option<String>,
    /// The answer's `Retry-After`, when it had a readable one.
    pub retry_after: Option<Duration>,
    /// The first [`KEPT_BYTES`] of the answer's body (lossy UTF-8).
    pub response: Option<String>,
}

/// The webhook HTTP client of this process.
pub struct WebhookSender {
    client: reqwest::Client,
    destinations: Destinations,
    max_per_endpoint: usize,
    per_endpoint: Mutex<HashMap<i64, Arc<Semaphore>>>,
    timeout: Duration,
}

impl WebhookSender {
    pub fn new(config: &WebhooksConfig) -> Result<Self, reqwest::Error> {
        let destinations = Destinations::new(config.allowed_destinations.clone());
        let client = reqwest::Client::builder()
            .timeout(config.request_timeout)
            .connect_timeout(config.request_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(destinations.resolver())
            .user_agent(concat!(
                "message-center-webhooks/",
                env!("CARGO_PKG_VERSION")
            ))
            .build()?;
        Ok(Self {
            client,
            destinations,
            max_per_endpoint: config.max_concurrent_per_endpoint.max(1),
            per_endpoint: Mutex::default(),
            timeout: config.request_timeout,
        })
    }

    fn permits_for(&self, endpoint_id: i64) -> Arc<Semaphore> {
        let mut map = self
            .per_endpoint
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Arc::clone(
            map.entry(endpoint_id)
                .or_insert_with(|| Arc::new(Semaphore::new(self.max_per_endpoint))),
        )
    }

    /// POSTs `body` to `url`, signed under `key` with `id` and the current time, once the endpoint has a
    /// free slot.
    pub async fn send(
        &self,
        endpoint_id: i64,
        url: &str,
        id: &str,
        key: &[u8],
        body: &str,
    ) -> SendOutcome {
        let permits = self.permits_for(endpoint_id);
        // The semaphore is never closed.
        let _permit = permits.acquire_owned().await.ok();
        let started = Instant::now();
        let mut outcome = self.attempt(url, id, key, body).await;
        outcome.duration = started.elapsed();
        outcome
    }

    async fn attempt(&self, url: &str, id: &str, key: &[u8], body: &str) -> SendOutcome {
        let failed = |error: String| SendOutcome {
            error: Some(error),
            ..Default::default()
        };
        let parsed = match url::Url::parse(url) {
            Ok(parsed) => parsed,
            Err(e) => return failed(format!("invalid URL: {e}")),
        };
        if let Err(refused) = self.destinations.check_url(&parsed) {
            return failed(refused.to_string());
        }
        let timestamp = chrono::Utc::now().timestamp();
        let request = self
            .client
            .post(parsed)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("webhook-id", id)
            .header("webhook-timestamp", timestamp.to_string())
            .header(
                "webhook-signature",
                signature::sign(key, id, timestamp, body.as_bytes()),
            )
            .body(body.to_owned());
        let mut response = match request.send().await {
            Ok(response) => response,
            Err(e) => return failed(self.describe(&e)),
        };
        let status = response.status();
        let mut outcome = SendOutcome {
            http_status: Some(status.as_u16()),
            // A refusal says so in the history, not only by its number.
            error: (!status.is_success()).then(|| format!("the endpoint answered {status}")),
            retry_after: response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| parse_retry_after(v, chrono::Utc::now())),
            ..Default::default()
        };
        let mut kept: Vec<u8> = Vec::new();
        let mut read = 0usize;
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    read += chunk.len();
                    if kept.len() < KEPT_BYTES {
                        let room = KEPT_BYTES - kept.len();
                        kept.extend_from_slice(&chunk[..chunk.len().min(room)]);
                    }
                    if read >= READ_LIMIT {
                        break;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    let read_error = format!("reading the answer: {}", self.describe(&e));
                    outcome.error = Some(match outcome.error.take() {
                        Some(first) => format!("{first}; {read_error}"),
                        None => read_error,
                    });
                    break;
                }
            }
        }
        outcome.response = Some(String::from_utf8_lossy(&kept).into_owned());
        outcome
    }

    /// A client error with its causes (the resolver's refusal is a cause of a connect error).
    fn describe(&self, error: &reqwest::Error) -> String {
        if error.is_timeout() {
            return format!("timed out after {:?}", self.timeout);
        }
        let mut text = error.to_string();
        let mut source = std::error::Error::source(error);
        while let Some(cause) = source {
            let cause_text = cause.to_string();
            if !text.contains(&cause_text) {
                text.push_str(": ");
                text.push_str(&cause_text);
            }
            source = cause.source();
        }
        text
    }
}

/// `Retry-After`: a number of seconds or an HTTP date (a date in the past is 0).
pub fn parse_retry_after(value: &str, now: chrono::DateTime<chrono::Utc>) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let wait = at.with_timezone(&chrono::Utc) - now;
    Some(wait.to_std().unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_takes_seconds_and_http_dates() {
        let now = chrono::DateTime::parse_from_rfc3339("2015-10-21T07:27:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }
}
