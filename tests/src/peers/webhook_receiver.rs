//! [`WebhookReceiver`]: `tests/support/webhook_receiver.py`, an HTTP receiver that verifies every request
//! with the Standard Webhooks reference library and records it, for the webhook tests.

use std::time::Duration;

use serde_json::Value;

use super::{Peer, PeerKind, only, read_json_lines, wait_for_count};

peer_kind! {
    /// `tests/support/webhook_receiver.py` on a loopback port: every POST verified by the `standardwebhooks`
    /// reference library under its endpoint's secret and recorded, answered by its path
    /// (`/<endpoint>/ok|fail/<n>|gone|busy/<secs>|slow/<secs>|huge|garbage|redirect`, see the script).
    /// Dropping it kills the process.
    WebhookReceiver = Webhooks("webhook-receiver", "webhook_receiver.py")
}

/// A Standard Webhooks secret of the test's choosing: `whsec_` and the base64 of 32 bytes made from `seed`.
pub fn test_webhook_secret(seed: u8) -> String {
    use base64::Engine as _;
    let bytes: Vec<u8> = (0..32u8)
        .map(|i| i.wrapping_mul(31).wrapping_add(seed))
        .collect();
    format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    )
}

/// The `[webhooks]` table and `webhookDelivery` workflow of the tests: retries 1 s apart (three of them),
/// the receiver's loopback address allowed, a 2 s request timeout.
pub fn webhooks_toml(allowed: &str, delivery_enabled: bool) -> String {
    format!(
        "[webhooks]\nretry_schedule = [\"1s\", \"1s\", \"1s\"]\nallowed_destinations = [{}]\n\
         request_timeout = \"2s\"\nmax_concurrent_per_endpoint = 4\n\n\
         [workflows.webhookDelivery]\nenabled = {delivery_enabled}\ninterval = \"200ms\"\nbatch_size = 100\n",
        crate::server::toml_string(allowed)
    )
}

impl Peer<Webhooks> {
    /// Starts the receiver with `secret` verifying every endpoint that has no secret of its own.
    pub fn start_with_secret(secret: &str) -> WebhookReceiver {
        Peer::start_with(vec!["--secret".to_owned(), secret.to_owned()])
    }

    /// `http://127.0.0.1:<port>/<endpoint>/<behaviour>`: the URL an endpoint named `endpoint` is given
    /// (the first path segment chooses the secret the receiver verifies with).
    pub fn url(&self, endpoint: &str, behaviour: &str) -> String {
        self.url_on("127.0.0.1", endpoint, behaviour)
    }

    /// [`WebhookReceiver::url`] with another host name (`localhost`, `127.0.0.2`).
    pub fn url_on(&self, host: &str, endpoint: &str, behaviour: &str) -> String {
        format!("http://{host}:{}/{endpoint}/{behaviour}", self.port())
    }

    /// Tells the receiver `endpoint`'s secret (`POST /secrets/<endpoint>`), e.g. one the server generated.
    pub async fn set_secret(&self, endpoint: &str, secret: &str) {
        let url = format!("http://127.0.0.1:{}/secrets/{endpoint}", self.port());
        let response = reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("HTTP client")
            .post(&url)
            .body(secret.to_owned())
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {url}: {e}"));
        assert_eq!(response.status().as_u16(), 204, "POST {url}");
    }

    /// Every request so far, in arrival order: `{"path","endpoint","behaviour","headers","webhookId",
    /// "webhookTimestamp","verified","error","body","raw","attempt","status","at"}` (`raw`: the body in
    /// base64, `at`: Unix seconds of arrival).
    pub fn requests(&self) -> Vec<Value> {
        read_json_lines(&self.peer.out)
    }

    /// The requests to endpoint `endpoint` (the first path segment).
    pub fn requests_to(&self, endpoint: &str) -> Vec<Value> {
        only(self.requests(), |r| r["endpoint"] == endpoint)
    }

    /// The requests the reference library refused, with why.
    pub fn unverified(&self) -> Vec<Value> {
        only(self.requests(), |r| r["verified"] != true)
    }

    /// Polls until endpoint `endpoint` has had at least `n` requests; returns them all.
    pub async fn wait_for_requests_to(
        &self,
        endpoint: &str,
        n: usize,
        timeout: Duration,
    ) -> Vec<Value> {
        let what = format!("requests to webhook endpoint {endpoint}");
        wait_for_count(timeout, n, &what, || self.requests_to(endpoint)).await
    }
}
