//! What the console's browser tests share: two users (an operator and a viewer, their argon2id hashes
//! made once per test process by the real `message-center hash-password`), signing in, the page's text,
//! and posting a form from the page as a forged or scripted form would. Not re-exported at the root:
//! tests `use message_center_tests::console::*`.

use std::sync::OnceLock;

use serde_json::{Value, json};

use crate::browser::{Browser, hash_console_password};
use crate::plugin_dir::PluginDir;
use crate::server::{ServerOptions, TestServer};
use crate::time::secs;

/// The operator of [`users_toml`] and its password.
pub const OPERATOR: (&str, &str) = ("olga", "operator password 1");
/// The viewer of [`users_toml`] and its password.
pub const VIEWER: (&str, &str) = ("vera", "viewer password 2");

/// The PHC string `message-center hash-password` prints for `password`.
fn hash_password(password: &str) -> String {
    let hash = hash_console_password(password);
    assert!(hash.starts_with("$argon2id$v=19$"), "{hash}");
    assert!(!hash.contains(password));
    hash
}

/// `[console]` with the operator and the viewer (hashed once per test process).
pub fn users_toml() -> &'static str {
    static TOML: OnceLock<String> = OnceLock::new();
    TOML.get_or_init(|| {
        format!(
            "[console]\nrefresh = \"500ms\"\n\n\
             [[console.users]]\nlogin = \"{}\"\npassword_hash = \"{}\"\nrole = \"operator\"\n\n\
             [[console.users]]\nlogin = \"{}\"\npassword_hash = \"{}\"\nrole = \"viewer\"\n",
            OPERATOR.0,
            hash_password(OPERATOR.1),
            VIEWER.0,
            hash_password(VIEWER.1),
        )
    })
}

/// `path` on `server`'s admin listener, where the console is.
pub fn url(server: &TestServer, path: &str) -> String {
    format!("http://{}{path}", server.admin_addr())
}

/// Signs in on the sign-in page (the answer may still be loading when this returns).
pub async fn sign_in(browser: &Browser, server: &TestServer, (login, password): (&str, &str)) {
    browser.goto(&url(server, "/console/sign-in")).await;
    browser.fill("#login", login).await;
    browser.fill("#password", password).await;
    browser.click("#sign-in-button").await;
}

/// Waits for the signed-in header and checks it names `login`.
pub async fn assert_signed_in_as(browser: &Browser, login: &str) {
    browser
        .wait_for_css(".user .login", secs(15), "the signed-in header")
        .await;
    let who = browser.text(".user .login").await;
    assert!(
        who.starts_with(login),
        "signed in as `{who}`, expected {login}"
    );
}

/// The page's text.
pub async fn body_text(browser: &Browser) -> String {
    browser
        .script("return document.body.innerText")
        .await
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// A server with [`users_toml`]'s users.
pub fn console_options(plugins: PluginDir) -> ServerOptions {
    ServerOptions::new(plugins).extra_toml(users_toml())
}

/// POSTs a form from the page (as a forged or scripted form would) and returns the status.
pub async fn post_from_page(browser: &Browser, path: &str, body: &str) -> Value {
    browser
        .script_async(&format!(
            "var done = arguments[arguments.length - 1];\
             fetch({path}, {{ method: 'POST', headers: {{ 'Content-Type': 'application/x-www-form-urlencoded' }}, body: {body}, redirect: 'manual' }})\
               .then(function (r) {{ done(r.status); }}, function (e) {{ done('error ' + e); }});",
            path = json!(path),
            body = body,
        ))
        .await
}

/// GETs `path` from the page (the browser's session cookie goes with it, as with a download link) and
/// returns `{status, contentType, disposition, text}`.
pub async fn fetch_from_page(browser: &Browser, path: &str) -> Value {
    browser
        .script_async(&format!(
            "var done = arguments[arguments.length - 1];\
             fetch({path}, {{ redirect: 'manual' }})\
               .then(function (r) {{ return r.text().then(function (t) {{ done({{ status: r.status, \
                 contentType: r.headers.get('content-type'), disposition: r.headers.get('content-disposition'), text: t }}); }}); }},\
                 function (e) {{ done({{ status: 'error ' + e }}); }});",
            path = json!(path),
        ))
        .await
}
