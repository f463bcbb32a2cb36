//! The SOAP endpoint in process, through the API router: faults, the session token (not the API key),
//! and a push that lands in the store.

use axum::body::Body;
use hyper::header::CONTENT_TYPE;
use hyper::{Method, Request, StatusCode};

use super::ROUTE;
use crate::api::tests::{Options, TestApi, test_api};
use crate::config::{AdobeAccount, AdobeConfig, Role};
use crate::http::testing::{Answer, send};
use crate::store::EventFilter;

const LOGIN: &str = "mc";
const PASSWORD: &str = "pa55";

fn adobe() -> AdobeConfig {
    AdobeConfig {
        enabled: true,
        accounts: vec![AdobeAccount {
            login: LOGIN.to_owned(),
            password: PASSWORD.to_owned(),
        }],
        ..AdobeConfig::default()
    }
}

async fn soap_api(role: Role) -> TestApi {
    test_api(Options {
        role,
        adobe: adobe(),
        // The REST API key does not apply to SOAP clients.
        api_keys: vec!["rest-key".to_owned()],
        ..Options::default()
    })
    .await
}

fn push_event(token: &str, email: &str) -> String {
    format!(
        r#"<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:urn="urn:nms:rtEvent">
   <soapenv:Body>
      <urn:PushEvent>
         <urn:sessiontoken>{token}</urn:sessiontoken>
         <urn:domEvent><rtEvent type="ORDER_CONFIRMED" email="{email}"><ctx><orderId>D-1</orderId></ctx></rtEvent></urn:domEvent>
      </urn:PushEvent>
   </soapenv:Body>
</soapenv:Envelope>"#
    )
}

async fn post(api: &TestApi, body: String) -> Answer {
    let request = Request::builder()
        .method(Method::POST)
        .uri(ROUTE)
        .header(CONTENT_TYPE, "text/xml; charset=utf-8")
        .header("SOAPAction", "nms:rtEvent#PushEvent")
        .body(Body::from(body))
        .expect("a request");
    send(&api.router, request).await
}

#[tokio::test]
async fn a_push_with_a_session_token_is_stored() {
    let api = soap_api(Role::Execution).await;
    let answer = post(
        &api,
        push_event(&format!("{LOGIN}/{PASSWORD}"), "soap@example.com"),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert_eq!(answer.headers[CONTENT_TYPE], "text/xml; charset=utf-8");
    answer.assert_text_contains("<PushEventResponse xmlns='urn:nms:rtEvent'");
    let events = api
        .store
        .list_events(&EventFilter {
            limit: 10,
            ..Default::default()
        })
        .await
        .expect("list events");
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].email.as_deref(), Some("soap@example.com"));
}

#[tokio::test]
async fn a_wrong_session_token_is_a_fault() {
    let api = soap_api(Role::Execution).await;
    let answer = post(&api, push_event(&format!("{LOGIN}/wrong"), "x@example.com")).await;
    assert_eq!(answer.status, StatusCode::INTERNAL_SERVER_ERROR);
    answer.assert_text_contains("invalid_credentials");
}

#[tokio::test]
async fn other_methods_are_a_405_fault() {
    let api = soap_api(Role::Execution).await;
    let request = Request::builder()
        .method(Method::GET)
        .uri(ROUTE)
        .body(Body::empty())
        .expect("a request");
    let answer = send(&api.router, request).await;
    assert_eq!(answer.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(answer.headers[CONTENT_TYPE], "text/xml; charset=utf-8");
    answer.assert_text_contains("method GET is not allowed on /nl/jsp/soaprouter.jsp");
}

#[tokio::test]
async fn a_disabled_endpoint_or_a_control_instance_is_a_404_fault() {
    let api = test_api(Options::default()).await;
    let answer = post(&api, push_event("a/b", "x@example.com")).await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    answer.assert_text_contains("adobe.enabled = true");

    let api = soap_api(Role::Control).await;
    let answer = post(
        &api,
        push_event(&format!("{LOGIN}/{PASSWORD}"), "x@example.com"),
    )
    .await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    answer.assert_text_contains("push events to an execution instance");
}

#[tokio::test]
async fn oversize_envelopes_are_413_faults() {
    let api = test_api(Options {
        adobe: adobe(),
        max_body_bytes: 256,
        ..Options::default()
    })
    .await;
    let answer = post(
        &api,
        push_event(&format!("{LOGIN}/{PASSWORD}"), &"x".repeat(400)),
    )
    .await;
    assert_eq!(
        answer.status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "{}",
        answer.text()
    );
    answer.assert_text_contains("SOAP-ENV:Fault");
}
