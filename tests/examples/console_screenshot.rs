//! Makes the README's monitoring screenshot (`docs/images/console-monitoring.png`) from real traffic:
//! a server with the processing workflows and the SMTP test server takes real-time and batch events for
//! a few minutes (some refused by the relay), then the batch workflow stops while 500 events wait, and
//! headless Chromium signs in and photographs the monitoring page.
//!
//! `cargo run -p message-center-tests --example console_screenshot [minutes]` (default 6).

use message_center_tests::*;
use serde_json::{Value, json};

#[tokio::main]
async fn main() {
    let minutes: u64 = std::env::args()
        .nth(1)
        .and_then(|m| m.parse().ok())
        .unwrap_or(6);
    let smtp = SmtpServer::start();
    let server = TestServer::start(
        ServerOptions::new(PluginDir::new())
            .processing_workflows()
            .email_channel(smtp.port())
            .extra_toml(&format!(
                "[monitoring]\nrefresh = \"1s\"\n\n[[console.users]]\nlogin = \"oncall\"\npassword_hash = \"{}\"\nrole = \"viewer\"\n",
                hash_console_password("screenshot password")
            )),
    );
    server
        .put_template(
            "order",
            &json!({
                "eventType": "ORDER",
                "channel": "email",
                "from": "Shop <shop@example.com>",
                "subject": "Order {{ ctx.n }}",
                "text": "Hello, order {{ ctx.n }} is confirmed.",
            }),
        )
        .await;
    let rounds = minutes * 6;
    for round in 0..rounds {
        // Real-time traffic that grows and shrinks, one in ten refused by the relay.
        let count = 5 + (round % 6) * 3;
        for n in 0..count {
            let email = if (round + n) % 10 == 0 {
                format!("reject{round}-{n}@example.com")
            } else {
                format!("buyer{round}-{n}@example.com")
            };
            let (status, _) = server
                .post_json(
                    "/api/v1/events",
                    &json!({ "type": "ORDER", "email": email, "ctx": { "n": n } }),
                    &[],
                )
                .await;
            assert_eq!(status, 201);
        }
        if round == rounds - 9 {
            let (status, _) = server
                .admin_post("/admin/workflows/batchEventsProcessing/stop")
                .await;
            assert_eq!(status, 200);
        }
        // Batch traffic; in the last minute and a half it piles up.
        let batch: Vec<Value> = (0..if round >= rounds - 9 { 100 } else { 40 })
            .map(|n| json!({ "type": "ORDER", "email": format!("batch{round}-{n}@example.com"), "ctx": { "n": n } }))
            .collect();
        let (status, _) = server
            .post_json("/api/v1/events/batch", &json!({ "events": batch }), &[])
            .await;
        assert_eq!(status, 201);
        tokio::time::sleep(secs(10)).await;
    }
    let browser = Browser::start().await;
    browser
        .goto(&format!("http://{}/console/sign-in", server.admin_addr()))
        .await;
    browser.fill("#login", "oncall").await;
    browser.fill("#password", "screenshot password").await;
    browser.click("#sign-in-button").await;
    browser
        .wait_for_css(
            r#"tr[data-indicator="queue_size"][data-queue="batch"]"#,
            secs(15),
            "the monitoring page",
        )
        .await;
    let path = browser.full_page_screenshot("readme_monitoring").await;
    browser.close().await;
    println!("{}", path.display());
}
