//! Adobe Campaign drop-in: existing Message Center clients push events to `POST /nl/jsp/soaprouter.jsp`
//! unchanged. Events are pushed with Adobe's own JavaScript SDK (`@adobe/acc-js-sdk`, run by the machine's
//! Node.js from `tests/support/adobe`) and with the raw SOAP bodies of Adobe's documentation, delivered by
//! the real processing workflows to a real SMTP server (`tests/support/smtp_server.py`), and read back on
//! `GET /api/v1/events/{id}`. Hostile and malformed XML gets a SOAP fault and leaves the server healthy.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use message_center_tests::*;
use serde_json::{Value, json};

/// How long an event may take from push to `sent` (machines running the suite are busy).
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(60);
/// The operator SOAP clients log on as.
const LOGIN: &str = "mc";
/// No `/` in it: Adobe's SDK splits its `login/password` credentials at every `/`.
const PASSWORD: &str = "s3cret-pw";
const ROUTER: &str = "/nl/jsp/soaprouter.jsp";

/// `[adobe]` with one operator.
fn adobe_toml() -> String {
    format!(
        "[adobe]\nenabled = true\naccounts = [{{ login = {}, password = {} }}]\n",
        toml_string(LOGIN),
        toml_string(PASSWORD)
    )
}

/// Adobe's `login/password` session token.
fn session_token() -> String {
    format!("{LOGIN}/{PASSWORD}")
}

/// A server with the processing workflows, its email channel on `smtp`, and the SOAP endpoint on.
fn start_server(
    smtp: &SmtpServer,
    configure: impl FnOnce(ServerOptions) -> ServerOptions,
) -> TestServer {
    let options = ServerOptions::new(PluginDir::new())
        .processing_workflows()
        .email_channel(smtp.port())
        .extra_toml(&adobe_toml());
    TestServer::start(configure(options))
}

/// An SMTP server, and a server delivering to it with the Adobe template of [`put_adobe_template`] for
/// `ORDER_CONFIRMED` published.
async fn delivering_server() -> (SmtpServer, TestServer) {
    let smtp = SmtpServer::start();
    let server = start_server(&smtp, |o| o);
    put_adobe_template(&server, "order-confirmed", "ORDER_CONFIRMED").await;
    (smtp, server)
}

/// An email template for `event_type` written with Adobe's placeholders, as exported from Adobe Campaign.
async fn put_adobe_template(server: &TestServer, name: &str, event_type: &str) {
    let body = json!({
        "eventType": event_type,
        "channel": "email",
        "from": "Shop <shop@example.com>",
        "subject": "Hello <%= rtEvent.ctx.firstName %>",
        "text": "Order <%= rtEvent.ctx.orderId %> for <%= rtEvent.email %>",
        "html": "<p>Order <%= rtEvent.ctx.orderId %> for <%= rtEvent.ctx.firstName %></p>",
    });
    let (status, answer) = server
        .api()
        .request(
            reqwest::Method::PUT,
            &format!("/api/v1/templates/{name}"),
            Some(serde_json::to_vec(&body).expect("JSON")),
            &[],
        )
        .await;
    assert!(
        status == 200 || status == 201,
        "PUT template {name}: {status} {}",
        pretty(&answer)
    );
}

// ---------------------------------------------------------------------------------------------------------
// Adobe's JavaScript SDK
// ---------------------------------------------------------------------------------------------------------

/// `tests/support/adobe/push.js`, after checking that `npm ci` installed the SDK next to it.
fn sdk_script() -> PathBuf {
    let dir = support_file("adobe");
    let sdk = dir.join("node_modules/@adobe/acc-js-sdk/package.json");
    assert!(
        sdk.is_file(),
        "Adobe's JavaScript SDK is not installed ({} is missing): run `npm ci --prefix tests/support/adobe` \
         (.ci/run does) before these tests",
        sdk.display()
    );
    dir.join("push.js")
}

/// Runs the SDK client with `credentials` and `calls` (see push.js); its JSON answer.
fn run_sdk(server: &TestServer, credentials: Value, calls: Value) -> Value {
    let request = json!({
        "endpoint": format!("http://{}", server.api_addr()),
        "credentials": credentials,
        "calls": calls,
    });
    let output = Command::new("node")
        .arg(sdk_script())
        .arg(request.to_string())
        .output()
        .unwrap_or_else(|e| panic!("cannot run node (Node.js 20 is required by these tests): {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "push.js failed ({}): {}\n{stdout}\nserver log:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr),
        server.log_tail(30)
    );
    serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("push.js printed no JSON ({e}): {stdout}"))
}

/// The `plId` of each call, asserting the logon and every call succeeded.
fn plids(answer: &Value) -> Vec<String> {
    assert_eq!(answer["logon"]["ok"], true, "SDK logon: {}", pretty(answer));
    answer["results"]
        .as_array()
        .unwrap_or_else(|| panic!("no results: {answer}"))
        .iter()
        .map(|result| {
            assert_eq!(result["ok"], true, "SDK call failed: {}", pretty(result));
            let id = result["plId"].as_str().unwrap_or_default().to_owned();
            assert!(
                id.parse::<u64>().is_ok_and(|n| n > 0),
                "plId is not a positive 64-bit id: {}",
                pretty(result)
            );
            id
        })
        .collect()
}

/// Waits for event `id` to be `sent`, checks it on `GET /api/v1/events/{id}`, and returns it.
async fn assert_sent(server: &TestServer, id: &str) -> Value {
    let event = server.wait_final(id, DELIVERY_TIMEOUT).await;
    assert_eq!(event["status"], "sent", "event {id}: {}", pretty(&event));
    assert_eq!(
        event["id"], id,
        "GET /api/v1/events/{id} answers the pushed id"
    );
    event
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sdk_pushes_events_with_a_session_token_and_they_are_sent() {
    let (smtp, server) = delivering_server().await;

    let answer = run_sdk(
        &server,
        json!({ "sessionToken": session_token() }),
        json!([
            // The SDK turns this JSON into <rtEvent type=… email=…><ctx firstName=… orderId=…/></rtEvent>.
            { "call": "rtPushEvent", "event": {
                "type": "ORDER_CONFIRMED", "email": "ann@example.com", "wishedChannel": 0,
                "ctx": { "firstName": "Ann", "orderId": "A-1" } } },
            { "call": "rtPushEventXml", "event":
                "<rtEvent type='ORDER_CONFIRMED' email='bob@example.com' externalId='ext-7'>\
                 <ctx><firstName>Bob &amp; Co</firstName><orderId>B-2</orderId></ctx></rtEvent>" },
            // nms:batchEvent: the SDK names the event element after the parameter (<domEvent>).
            { "call": "batchPushEvent", "event": {
                "type": "ORDER_CONFIRMED", "email": "cy@example.com", "ctx": { "firstName": "Cy" } } },
        ]),
    );
    let ids = plids(&answer);
    assert_eq!(ids.len(), 3);

    // PushEvents answers a document with one plId per event, in order.
    let answer = run_sdk(
        &server,
        json!({ "sessionToken": session_token() }),
        json!([{ "call": "rtPushEvents", "event": { "rtEvent": [
            { "type": "ORDER_CONFIRMED", "email": "many1@example.com", "ctx": { "firstName": "M1" } },
            { "type": "ORDER_CONFIRMED", "email": "many2@example.com", "ctx": { "firstName": "M2" } },
        ] } }]),
    );
    let many = &answer["results"][0];
    assert_eq!(many["ok"], true, "SDK pushEvents: {}", pretty(&answer));
    let many_ids: Vec<&str> = many["plIds"]
        .as_array()
        .unwrap_or_else(|| panic!("no plIds: {}", pretty(many)))
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(many_ids.len(), 2, "{}", pretty(many));
    for (id, email) in many_ids
        .iter()
        .zip(["many1@example.com", "many2@example.com"])
    {
        assert_eq!(assert_sent(&server, id).await["email"], email);
    }

    let ann = assert_sent(&server, &ids[0]).await;
    assert_eq!(ann["queue"], "realtime");
    assert_eq!(ann["ctx"], json!({ "firstName": "Ann", "orderId": "A-1" }));
    let bob = assert_sent(&server, &ids[1]).await;
    assert_eq!(bob["externalId"], "ext-7");
    assert_eq!(bob["ctx"]["firstName"], "Bob & Co");
    let cy = assert_sent(&server, &ids[2]).await;
    assert_eq!(cy["queue"], "batch");

    let message = smtp
        .wait_for_message_to("ann@example.com", DELIVERY_TIMEOUT)
        .await;
    assert_eq!(message["subject"], "Hello Ann", "{}", pretty(&message));
    assert!(
        str_field(&message, "text").contains("Order A-1 for ann@example.com"),
        "{}",
        pretty(&message)
    );
    let message = smtp
        .wait_for_message_to("bob@example.com", DELIVERY_TIMEOUT)
        .await;
    assert!(
        str_field(&message, "html").contains("Order B-2 for Bob &amp; Co"),
        "the Adobe placeholder is HTML-escaped like its Jinja equivalent: {}",
        pretty(&message)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sdk_logs_on_with_login_and_password_and_gets_faults_it_understands() {
    let (_smtp, server) = delivering_server().await;

    // xtk:session#Logon issues a session token the following calls present.
    let answer = run_sdk(
        &server,
        json!({ "login": LOGIN, "password": PASSWORD }),
        json!([{ "call": "rtPushEvent", "event": {
            "type": "ORDER_CONFIRMED", "email": "dee@example.com", "ctx": { "firstName": "Dee" } } }]),
    );
    let ids = plids(&answer);
    assert_sent(&server, &ids[0]).await;

    let refused = run_sdk(
        &server,
        json!({ "login": LOGIN, "password": "wrong" }),
        json!([]),
    );
    assert_eq!(refused["logon"]["ok"], false, "{}", pretty(&refused));
    assert!(
        str_field(&refused["logon"], "message").contains("invalid login or password"),
        "{}",
        pretty(&refused)
    );

    let answer = run_sdk(
        &server,
        json!({ "sessionToken": session_token() }),
        json!([
            { "call": "rtPushEvent", "event": { "type": "ORDER_CONFIRMED", "email": "not-an-address" } },
            { "call": "rtPushEvent", "event": { "email": "eve@example.com" } },
        ]),
    );
    let results = answer["results"].as_array().expect("results");
    for (result, field) in results.iter().zip(["`email`", "`type`"]) {
        assert_eq!(result["ok"], false, "{}", pretty(result));
        assert_eq!(result["statusCode"], 500, "{}", pretty(result));
        let message = str_field(result, "message");
        assert!(
            message.contains("<faultcode>SOAP-ENV:Client</faultcode>") && message.contains(field),
            "the fault names {field}: {message}"
        );
    }

    let answer = run_sdk(
        &server,
        json!({ "sessionToken": format!("{LOGIN}/wrong") }),
        json!([{ "call": "rtPushEvent", "event": { "type": "ORDER_CONFIRMED", "email": "eve@example.com" } }]),
    );
    let message = str_field(&answer["results"][0], "message");
    assert!(
        message.contains("`sessiontoken`") && message.contains("invalid login or password"),
        "a refused session token: {message}"
    );
}

// ---------------------------------------------------------------------------------------------------------
// Raw SOAP, as in Adobe's documentation
// ---------------------------------------------------------------------------------------------------------

/// POSTs the XML `body` to `path` with `headers`; the status and the body text.
async fn post_soap(
    server: &TestServer,
    path: &str,
    body: String,
    headers: &[(&str, &str)],
) -> (u16, String) {
    let mut all = vec![("content-type", "text/xml; charset=utf-8")];
    all.extend_from_slice(headers);
    match server.api().post_raw(path, body, &all).await {
        (status, Value::String(text)) => (status, text),
        (status, other) => panic!("POST {path}: {status} with a body that is not XML: {other}"),
    }
}

/// [`post_soap`], asserting a 200 answer; its text.
async fn post_soap_ok(
    server: &TestServer,
    path: &str,
    body: String,
    headers: &[(&str, &str)],
) -> String {
    let (status, answer) = post_soap(server, path, body, headers).await;
    assert_eq!(status, 200, "POST {path} {headers:?}: {answer}");
    answer
}

/// POSTs `body` with its Content-Length over a raw connection, reading the answer while the body is still
/// being written (a write that fails because the server answered and closed is not a failure); the status
/// and the body text.
async fn raw_post(
    server: &TestServer,
    path: &str,
    body: &[u8],
    headers: &[(&str, &str)],
) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let addr = server.api_addr();
    let mut head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: text/xml\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
    let (mut reader, mut writer) = stream.into_split();
    let mut request = head.into_bytes();
    request.extend_from_slice(body);
    let write = tokio::spawn(async move {
        let _ = writer.write_all(&request).await;
        writer
    });
    let mut answer = Vec::new();
    // A reset after the answer ends the read with an error; what arrived before it is kept in `answer`.
    let _ = tokio::time::timeout(secs(15), reader.read_to_end(&mut answer))
        .await
        .unwrap_or_else(|_| panic!("POST {path}: no complete answer in 15 s"));
    write.abort();
    let text = String::from_utf8_lossy(&answer).into_owned();
    let (status_line, rest) = text
        .split_once("\r\n")
        .unwrap_or_else(|| panic!("POST {path}: no HTTP answer in {text:?}"));
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("POST {path}: bad status line {status_line:?}"));
    (status, rest.to_owned())
}

/// The texts of every `<plId …>…</plId>` in a SOAP answer.
fn plids_in(answer: &str) -> Vec<String> {
    answer
        .split("<plId")
        .skip(1)
        .filter_map(|rest| {
            let start = rest.find('>')? + 1;
            let end = rest.find("</plId>")?;
            Some(rest[start..end].to_owned())
        })
        .collect()
}

/// An envelope laid out as in Adobe's documentation: `<urn:{method}>` in namespace `urn:{schema}` with the
/// `<urn:sessiontoken>` and `parameter` (the whole parameter element).
fn documented_envelope(schema: &str, method: &str, token: &str, parameter: &str) -> String {
    format!(
        r#"<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:urn="urn:{schema}">
   <soapenv:Header/>
   <soapenv:Body>
      <urn:{method}>
         <urn:sessiontoken>{token}</urn:sessiontoken>
         {parameter}
      </urn:{method}>
   </soapenv:Body>
</soapenv:Envelope>"#
    )
}

/// Adobe's documented PushEvent request: `<urn:domEvent>` holding an `<rtEvent>` with elements in its ctx.
fn documented_push_event(token: &str, email: &str, first_name: &str) -> String {
    let parameter = format!(
        r#"<urn:domEvent>
            <rtEvent type="ORDER_CONFIRMED" email="{email}" origin="eCommerce" wishedChannel="0" externalId="1242">
               <ctx>
                  <firstName>{first_name}</firstName>
                  <orderId>D-1</orderId>
                  <items><item sku="X1">Shoes</item><item sku="X2">Socks</item></items>
               </ctx>
            </rtEvent>
         </urn:domEvent>"#
    );
    documented_envelope("nms:rtEvent", "PushEvent", token, &parameter)
}

/// Adobe's documented PushEvents request: `<urn:domEventCollection>` holding a collection of events.
fn documented_push_events(token: &str, emails: &[&str]) -> String {
    let events: String = emails
        .iter()
        .map(|email| {
            format!(
                r#"<batchEvent type="ORDER_CONFIRMED" email="{email}" wishedChannel="0"><ctx><firstName>Batch</firstName><orderId>{email}</orderId></ctx></batchEvent>"#
            )
        })
        .collect();
    let parameter =
        format!("<urn:domEventCollection><Events>{events}</Events></urn:domEventCollection>");
    documented_envelope("nms:batchEvent", "PushEvents", token, &parameter)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adobe_documentation_bodies_push_events_that_are_sent() {
    let (smtp, server) = delivering_server().await;

    let answer = post_soap_ok(
        &server,
        ROUTER,
        documented_push_event(&session_token(), "fay@example.com", "Fay"),
        &[("SOAPAction", "nms:rtEvent#PushEvent")],
    )
    .await;
    assert!(
        answer.contains("<PushEventResponse xmlns='urn:nms:rtEvent'")
            && answer.contains("<plId xsi:type='xsd:long'>"),
        "Adobe's answer shape: {answer}"
    );
    let id = plids_in(&answer).pop().expect("a plId");
    let event = assert_sent(&server, &id).await;
    assert_eq!(
        event["ctx"],
        json!({
            "firstName": "Fay",
            "orderId": "D-1",
            "items": { "item": [ { "sku": "X1", "$": "Shoes" }, { "sku": "X2", "$": "Socks" } ] },
        }),
        "elements become keys, repeated elements arrays, attributes are kept"
    );
    assert_eq!(event["externalId"], "1242");

    // PushEvents into the batch queue; the action in the `soapAction` query parameter, as the SDK sends it.
    let emails = ["gil@example.com", "hal@example.com"];
    let answer = post_soap_ok(
        &server,
        &format!("{ROUTER}?soapAction=nms%3AbatchEvent%23PushEvents"),
        documented_push_events(&session_token(), &emails),
        &[],
    )
    .await;
    assert!(
        answer.contains("<PushEventsResponse xmlns='urn:nms:batchEvent'"),
        "{answer}"
    );
    let ids = plids_in(&answer);
    assert_eq!(ids.len(), 2, "one plId per event, in order: {answer}");
    for (id, email) in ids.iter().zip(emails) {
        let event = assert_sent(&server, id).await;
        assert_eq!(event["email"], email);
        assert_eq!(event["queue"], "batch");
    }
    let message = smtp
        .wait_for_message_to("hal@example.com", DELIVERY_TIMEOUT)
        .await;
    assert_eq!(message["subject"], "Hello Batch");

    // The schema document Adobe's SDK reads before calling PushEvent.
    let schema_request = format!(
        r#"<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/"><SOAP-ENV:Body><m:GetEntityIfMoreRecent xmlns:m="urn:xtk:persist"><sessiontoken>{}</sessiontoken><pk>xtk:schema|nms:rtEvent</pk><md5/><mustExist>false</mustExist></m:GetEntityIfMoreRecent></SOAP-ENV:Body></SOAP-ENV:Envelope>"#,
        session_token()
    );
    let answer = post_soap_ok(
        &server,
        ROUTER,
        schema_request,
        &[("SOAPAction", "xtk:persist#GetEntityIfMoreRecent")],
    )
    .await;
    assert!(
        answer.contains("<method name='PushEvent' static='true'>")
            && answer.contains("<param name='plId' type='int64' inout='out'"),
        "{answer}"
    );
}

// ---------------------------------------------------------------------------------------------------------
// Hostile and malformed XML
// ---------------------------------------------------------------------------------------------------------

/// A PushEvent envelope around `event` (the content of `<urn:domEvent>`).
fn push_event_around(event: &str) -> String {
    format!(
        r#"<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:urn="urn:nms:rtEvent"><soapenv:Body><urn:PushEvent><urn:sessiontoken>{}</urn:sessiontoken><urn:domEvent>{event}</urn:domEvent></urn:PushEvent></soapenv:Body></soapenv:Envelope>"#,
        session_token()
    )
}

/// The classic billion-laughs document: ten levels of ten references, 10^9 `lol`s if expanded.
fn billion_laughs() -> String {
    let mut entities = String::from("<!ENTITY lol0 \"lol\">");
    for level in 1..10 {
        let refs = format!("&lol{};", level - 1).repeat(10);
        entities.push_str(&format!("<!ENTITY lol{level} \"{refs}\">"));
    }
    format!(
        "<?xml version=\"1.0\"?><!DOCTYPE lolz [{entities}]>{}",
        push_event_around(
            "<rtEvent type=\"T\" email=\"a@example.com\"><ctx><x>&lol9;</x></ctx></rtEvent>"
        )
    )
}

/// A request that must be refused: what it is, its body, its headers, the expected status and a text the
/// fault must contain.
type Refusal<'a> = (&'a str, String, &'a [(&'a str, &'a str)], u16, &'a str);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_and_malformed_xml_gets_a_fault_and_the_server_stays_healthy() {
    let smtp = SmtpServer::start();
    // The REST API requires a key here: the SOAP endpoint authenticates by session token instead.
    let server = start_server(&smtp, |o| o.api_keys(&["rest-key"]));
    let good_event = r#"<rtEvent type="ORDER_CONFIRMED" email="ivy@example.com"><ctx><firstName>Ivy</firstName></ctx></rtEvent>"#;
    let push = [("SOAPAction", "nms:rtEvent#PushEvent")];
    let ten_megabytes = format!(
        "<rtEvent type=\"T\" email=\"a@example.com\" big=\"{}\"/>",
        "x".repeat(10 * 1024 * 1024)
    );
    let cases: Vec<Refusal> = vec![
        (
            "unclosed tags",
            push_event_around("<rtEvent type=\"T\" email=\"a@example.com\"><ctx>"),
            &push,
            500,
            "malformed XML",
        ),
        (
            "billion laughs",
            billion_laughs(),
            &push,
            500,
            "document type declarations",
        ),
        (
            "external entity",
            format!(
                "<!DOCTYPE x [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]>{}",
                push_event_around(
                    "<rtEvent type=\"T\" email=\"a@example.com\"><ctx><x>&xxe;</x></ctx></rtEvent>"
                )
            ),
            &push,
            500,
            "document type declarations",
        ),
        (
            "undeclared entity",
            push_event_around(
                "<rtEvent type=\"T\" email=\"a@example.com\"><ctx><x>&xxe;</x></ctx></rtEvent>",
            ),
            &push,
            500,
            "xxe;` is refused",
        ),
        (
            "a 10 MB attribute",
            push_event_around(&ten_megabytes),
            &push,
            413,
            "max_body_bytes",
        ),
        (
            "wrong envelope namespace",
            push_event_around(good_event)
                .replace("http://schemas.xmlsoap.org/soap/envelope/", "urn:not-soap"),
            &push,
            500,
            "must be Envelope in namespace",
        ),
        (
            "wrong method namespace",
            push_event_around(good_event).replace("urn:nms:rtEvent", "urn:nms:somethingElse"),
            &push,
            500,
            "urn:nms:somethingElse",
        ),
        (
            "not XML at all",
            r#"{"type":"T"}"#.to_owned(),
            &push,
            500,
            "malformed XML",
        ),
        ("an empty body", String::new(), &push, 500, "no element"),
        (
            "no session token",
            push_event_around(good_event).replace(&session_token(), ""),
            &push,
            500,
            "no session token",
        ),
        (
            "a wrong password",
            push_event_around(good_event).replace(PASSWORD, "guess"),
            &push,
            500,
            "invalid login or password",
        ),
        (
            "an unknown issued token",
            push_event_around(good_event).replace(&session_token(), "___forged"),
            &push,
            500,
            "unknown or has expired",
        ),
        (
            "a missing type",
            push_event_around(r#"<rtEvent email="a@example.com"/>"#),
            &push,
            500,
            "invalid field `type`",
        ),
        (
            "an invalid email",
            push_event_around(r#"<rtEvent type="T" email="a@@example"/>"#),
            &push,
            500,
            "invalid field `email`",
        ),
        (
            "a ctx over max_ctx_bytes",
            push_event_around(&format!(
                "<rtEvent type=\"T\" email=\"a@example.com\"><ctx><x>{}</x></ctx></rtEvent>",
                "y".repeat(70 * 1024)
            )),
            &push,
            500,
            "invalid field `ctx`",
        ),
        (
            "elements nested 100 deep",
            push_event_around(&format!(
                "<rtEvent type=\"T\" email=\"a@example.com\"><ctx>{}{}</ctx></rtEvent>",
                "<n>".repeat(100),
                "</n>".repeat(100)
            )),
            &push,
            500,
            "nested deeper than 64",
        ),
        (
            "an unknown method",
            push_event_around(good_event).replace("PushEvent", "DeleteAll"),
            &[("SOAPAction", "nms:rtEvent#DeleteAll")],
            500,
            "unknown method nms:rtEvent#DeleteAll",
        ),
    ];
    for (what, body, headers, expected_status, expected_text) in cases {
        let started = Instant::now();
        // Over the size limit, the server answers before reading the body and closes the connection, which
        // an HTTP client still sending reports as a failed request: those go over a raw connection.
        let (status, answer) = if body.len() > 1024 * 1024 {
            raw_post(&server, ROUTER, body.as_bytes(), headers).await
        } else {
            post_soap(&server, ROUTER, body, headers).await
        };
        let elapsed = started.elapsed();
        eprintln!("{what}: {status} in {elapsed:?}");
        let shown: String = answer.chars().take(600).collect();
        assert_eq!(status, expected_status, "{what}: {shown}");
        assert!(
            answer.contains("<SOAP-ENV:Fault><faultcode>") && answer.contains("<faultstring"),
            "{what}: a SOAP fault, not {shown}"
        );
        assert!(
            answer.contains(expected_text),
            "{what}: expected `{expected_text}` in {shown}"
        );
        assert!(
            elapsed < Duration::from_secs(5),
            "{what}: answered in {elapsed:?}; hostile XML must be refused at once"
        );
        server.assert_healthy().await;
    }

    // SOAP clients do not speak GET.
    let response = reqwest::get(format!("http://{}{ROUTER}", server.api_addr()))
        .await
        .expect("GET");
    assert_eq!(response.status().as_u16(), 405);

    // And the server still takes a good push, without the REST API key.
    server.assert_healthy().await;
    let answer = post_soap_ok(&server, ROUTER, push_event_around(good_event), &push).await;
    let id = plids_in(&answer).pop().expect("a plId");
    let (status, event) = server
        .get_json_with(
            &format!("/api/v1/events/{id}"),
            &[("authorization", "Bearer rest-key")],
        )
        .await;
    assert_eq!(status, 200, "{}", pretty(&event));
    assert_eq!(event["ctx"]["firstName"], "Ivy");
}

/// Pushes one event to `server`; asserts the endpoint is not there (404 with a fault containing `why`).
async fn assert_no_endpoint(server: &TestServer, why: &str) {
    let (status, answer) = post_soap(
        server,
        ROUTER,
        push_event_around("<rtEvent type=\"T\" email=\"a@example.com\"/>"),
        &[("SOAPAction", "nms:rtEvent#PushEvent")],
    )
    .await;
    assert_eq!(status, 404, "{answer}");
    assert!(
        answer.contains("<SOAP-ENV:Fault>") && answer.contains(why),
        "{answer}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_endpoint_is_off_unless_enabled_and_on_execution_instances_only() {
    let server = TestServer::start(ServerOptions::new(PluginDir::new()));
    assert_no_endpoint(&server, "adobe.enabled").await;

    // Events are pushed to execution instances: a control instance refuses even when it is enabled.
    let control = TestServer::start(
        ServerOptions::new(PluginDir::new())
            .role("control")
            .extra_toml(&adobe_toml()),
    );
    assert_no_endpoint(&control, "execution instance").await;
}

/// A string field of a JSON object, or "".
fn str_field<'a>(value: &'a Value, key: &str) -> &'a str {
    value[key].as_str().unwrap_or("")
}
