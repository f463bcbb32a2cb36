//! A client of a server's public API, whose every answer comes back as a status and a JSON body.

use serde_json::Value;

/// Extra request headers, as (name, value) pairs.
pub type Headers<'a> = &'a [(&'a str, &'a str)];

/// A client of a server's public API listener (`[server] listen`), from [`TestServer::api`](crate::TestServer::api). Every
/// method returns the status and the body parsed as JSON (a non-JSON body comes back as a JSON string, an
/// empty one as `null`); it panics only when the request cannot be sent or the answer read.
#[derive(Clone)]
pub struct ApiClient {
    base: String,
    client: reqwest::Client,
}

impl ApiClient {
    pub(crate) fn new(base: String, client: reqwest::Client) -> Self {
        ApiClient { base, client }
    }

    /// The listener's base URL, `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// A request with an optional body and extra headers. A body is sent with `Content-Type:
    /// application/json` unless `headers` names a content type.
    pub async fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Vec<u8>>,
        headers: Headers<'_>,
    ) -> (u16, Value) {
        let url = format!("{}{}", self.base, path);
        let mut request = self.client.request(method.clone(), &url);
        let has_content_type = headers
            .iter()
            .any(|(name, _)| name.eq_ignore_ascii_case("content-type"));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            if !has_content_type {
                request = request.header("content-type", "application/json");
            }
            request = request.body(body);
        }
        let (status, text) = send(request, &method, &url).await;
        (status, parse_body(&text))
    }

    /// POST of `body` serialised as JSON.
    pub async fn post_json(&self, path: &str, body: &Value, headers: Headers<'_>) -> (u16, Value) {
        self.send_json(reqwest::Method::POST, path, body, headers)
            .await
    }

    /// POST of arbitrary bytes (malformed JSON, invalid UTF-8, oversized bodies).
    pub async fn post_raw(
        &self,
        path: &str,
        body: impl Into<Vec<u8>>,
        headers: Headers<'_>,
    ) -> (u16, Value) {
        self.request(reqwest::Method::POST, path, Some(body.into()), headers)
            .await
    }

    /// GET without extra headers.
    pub async fn get_json(&self, path: &str) -> (u16, Value) {
        self.request(reqwest::Method::GET, path, None, &[]).await
    }

    /// GET with extra headers (e.g. an API key).
    pub async fn get_json_with(&self, path: &str, headers: Headers<'_>) -> (u16, Value) {
        self.request(reqwest::Method::GET, path, None, headers)
            .await
    }

    /// PUT of `body` serialised as JSON.
    pub async fn put_json(&self, path: &str, body: &Value, headers: Headers<'_>) -> (u16, Value) {
        self.send_json(reqwest::Method::PUT, path, body, headers)
            .await
    }

    /// A request whose body is `body` serialised as JSON.
    async fn send_json(
        &self,
        method: reqwest::Method,
        path: &str,
        body: &Value,
        headers: Headers<'_>,
    ) -> (u16, Value) {
        let bytes = serde_json::to_vec(body).expect("a JSON value always serialises");
        self.request(method, path, Some(bytes), headers).await
    }

    /// PUT of arbitrary bytes.
    pub async fn put_raw(
        &self,
        path: &str,
        body: impl Into<Vec<u8>>,
        headers: Headers<'_>,
    ) -> (u16, Value) {
        self.request(reqwest::Method::PUT, path, Some(body.into()), headers)
            .await
    }

    /// DELETE with extra headers.
    pub async fn delete(&self, path: &str, headers: Headers<'_>) -> (u16, Value) {
        self.request(reqwest::Method::DELETE, path, None, headers)
            .await
    }
}

/// Sends `request` (`method url`, for messages); the status and the body text. Panics when the request
/// cannot be sent or the answer read.
pub(crate) async fn send(
    request: reqwest::RequestBuilder,
    method: &reqwest::Method,
    url: &str,
) -> (u16, String) {
    let response = request
        .send()
        .await
        .unwrap_or_else(|e| panic!("{method} {url} failed: {e:?}"));
    let status = response.status().as_u16();
    let text = response
        .text()
        .await
        .unwrap_or_else(|e| panic!("{method} {url}: reading the body failed: {e}"));
    (status, text)
}

/// A body as JSON: `null` if empty, a JSON string if it is not JSON.
pub(crate) fn parse_body(text: &str) -> Value {
    if text.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned()))
    }
}
