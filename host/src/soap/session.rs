//! Session tokens: `xtk:session#Logon`, and checking the token a SOAP call presents.
//!
//! Adobe Campaign accepts two kinds of session token, and existing clients use both: the literal
//! `login/password` of an operator (what Adobe's documentation puts in `<sessiontoken>`), and a token issued
//! by `xtk:session#Logon`. Both are checked here against `[adobe] accounts`. Issued tokens live in memory
//! only: after a restart a client logs on again, which is what Adobe clients do when a session expires.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use hyper::HeaderMap;
use hyper::header::COOKIE;

use super::fault::{FaultCode, SoapFault};
use super::xml::Element;
use crate::admin::constant_time_eq;
use crate::config::AdobeAccount;

/// Most sessions kept at once: Logon from a misbehaving client must not grow memory without bound.
const MAX_SESSIONS: usize = 100_000;
/// Adobe's error code for an expired or unknown session; its clients recognise it and log on again.
const SESSION_EXPIRED_CODE: &str = "XSV-350008";

/// The tokens one Logon answers.
#[derive(Debug, Clone)]
pub struct IssuedSession {
    pub login: String,
    pub session_token: String,
    pub security_token: String,
}

struct Session {
    login: String,
    expires: Instant,
}

/// The configured operators and the sessions issued to them.
pub struct Sessions {
    accounts: Vec<AdobeAccount>,
    lifetime: Duration,
    issued: Mutex<HashMap<String, Session>>,
}

impl Sessions {
    pub fn new(accounts: Vec<AdobeAccount>, lifetime: Duration) -> Self {
        Sessions {
            accounts,
            lifetime,
            issued: Mutex::new(HashMap::new()),
        }
    }

    /// `xtk:session#Logon`: checks the login and password and issues a session token and a security token.
    pub fn logon(&self, login: &str, password: &str) -> Result<IssuedSession, SoapFault> {
        let login = self.account(login, password).ok_or_else(|| {
            SoapFault::client(
                "invalid_credentials",
                "invalid field `login`: invalid login or password",
            )
        })?;
        let session_token = format!("___{}", random_hex()?);
        let security_token = format!("@{}", random_hex()?);
        let now = Instant::now();
        let mut issued = self.issued.lock().unwrap_or_else(PoisonError::into_inner);
        if issued.len() >= MAX_SESSIONS {
            issued.retain(|_, session| session.expires > now);
        }
        if issued.len() >= MAX_SESSIONS {
            return Err(SoapFault {
                code: FaultCode::Server,
                ..SoapFault::client(
                    "too_many_sessions",
                    format!(
                        "{MAX_SESSIONS} sessions are open; reuse a session token instead of logging on for every call"
                    ),
                )
            });
        }
        issued.insert(
            session_token.clone(),
            Session {
                login: login.to_owned(),
                expires: now + self.lifetime,
            },
        );
        Ok(IssuedSession {
            login: login.to_owned(),
            session_token,
            security_token,
        })
    }

    /// `xtk:session#Logoff`: forgets an issued token.
    pub fn logoff(&self, token: &str) {
        self.issued
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(token);
    }

    /// The operator a session token stands for: `login/password` of a configured account, or a token
    /// [`Sessions::logon`] issued that has not expired.
    pub fn check(&self, token: &str) -> Result<String, SoapFault> {
        if let Some((login, password)) = token.split_once('/') {
            return self
                .account(login, password)
                .map(str::to_owned)
                .ok_or_else(|| {
                    SoapFault::client(
                        "invalid_credentials",
                        "invalid field `sessiontoken`: invalid login or password",
                    )
                });
        }
        let mut issued = self.issued.lock().unwrap_or_else(PoisonError::into_inner);
        match issued.get(token) {
            Some(session) if session.expires > Instant::now() => Ok(session.login.clone()),
            found => {
                if found.is_some() {
                    issued.remove(token);
                }
                Err(SoapFault::client(
                    SESSION_EXPIRED_CODE,
                    "invalid field `sessiontoken`: the session token is unknown or has expired; log on again",
                ))
            }
        }
    }

    /// The configured login matching these credentials. Every account is compared, without stopping at the
    /// first match, so that timing says nothing about which logins exist.
    fn account(&self, login: &str, password: &str) -> Option<&str> {
        let mut found = None;
        for account in &self.accounts {
            let matches = constant_time_eq(account.login.as_bytes(), login.as_bytes())
                & constant_time_eq(account.password.as_bytes(), password.as_bytes());
            if matches {
                found = Some(account.login.as_str());
            }
        }
        found
    }
}

/// The session token a call presents: the `sessiontoken` parameter, else the `X-Session-Token` header,
/// else the `__sessiontoken` cookie (HTTP header, or the `<Cookie>` SOAP header Adobe's SDK also writes).
pub fn presented_token(
    method: &Element,
    header: Option<&Element>,
    headers: &HeaderMap,
) -> Option<String> {
    let parameter = method
        .child("sessiontoken")
        .map(|e| e.trimmed_text().to_owned());
    let http_header = headers
        .get("x-session-token")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_owned());
    let http_cookie = headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(session_cookie);
    let soap_cookie = header
        .and_then(|h| h.child("Cookie"))
        .and_then(|c| session_cookie(c.trimmed_text()));
    [parameter, http_header, http_cookie, soap_cookie]
        .into_iter()
        .flatten()
        .find(|token| !token.is_empty())
}

/// The value of `__sessiontoken` in a `Cookie` header value.
fn session_cookie(cookies: &str) -> Option<String> {
    cookies.split(';').find_map(|pair| {
        pair.trim()
            .strip_prefix("__sessiontoken=")
            .map(|v| v.trim().to_owned())
    })
}

/// 32 random bytes in hex, from the operating system.
fn random_hex() -> Result<String, SoapFault> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| SoapFault {
        code: FaultCode::Server,
        ..SoapFault::client(
            "internal",
            format!("no randomness for a session token: {e}"),
        )
    })?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sessions(lifetime: Duration) -> Sessions {
        Sessions::new(
            vec![AdobeAccount {
                login: "mc".to_owned(),
                password: "pa/ss".to_owned(),
            }],
            lifetime,
        )
    }

    #[test]
    fn login_password_tokens_and_issued_tokens_are_accepted() {
        let sessions = sessions(Duration::from_secs(60));
        assert_eq!(sessions.check("mc/pa/ss").expect("login/password"), "mc");
        assert!(sessions.check("mc/wrong").is_err());
        assert!(sessions.check("other/pa/ss").is_err());
        let issued = sessions.logon("mc", "pa/ss").expect("logon");
        assert!(issued.session_token.starts_with("___"));
        assert_eq!(sessions.check(&issued.session_token).expect("issued"), "mc");
        sessions.logoff(&issued.session_token);
        let fault = sessions.check(&issued.session_token).unwrap_err();
        assert_eq!(fault.detail, SESSION_EXPIRED_CODE);
        assert!(sessions.logon("mc", "nope").is_err());
    }

    #[test]
    fn issued_tokens_expire() {
        let sessions = sessions(Duration::from_millis(1));
        let issued = sessions.logon("mc", "pa/ss").expect("logon");
        std::thread::sleep(Duration::from_millis(5));
        assert!(sessions.check(&issued.session_token).is_err());
    }

    #[test]
    fn the_token_is_found_where_clients_put_it() {
        let method =
            crate::soap::xml::parse(b"<m><sessiontoken> mc/x </sessiontoken></m>").expect("xml");
        let mut headers = HeaderMap::new();
        assert_eq!(
            presented_token(&method, None, &headers).as_deref(),
            Some("mc/x")
        );
        let empty = crate::soap::xml::parse(b"<m><sessiontoken/></m>").expect("xml");
        headers.insert(COOKIE, "a=b; __sessiontoken=tok".parse().expect("header"));
        assert_eq!(
            presented_token(&empty, None, &headers).as_deref(),
            Some("tok")
        );
        headers.insert("x-session-token", "hdr".parse().expect("header"));
        assert_eq!(
            presented_token(&empty, None, &headers).as_deref(),
            Some("hdr")
        );
    }
}
