//! Adobe Campaign compatibility: `POST /nl/jsp/soaprouter.jsp`, the SOAP endpoint Adobe Campaign's
//! Message Center clients push events to, so that moving a client over is a change of URL.
//!
//! A request goes: size limit (`[server] max_body_bytes`) → safe XML parse ([`xml`]) → envelope and
//! called method ([`envelope`]) → session token ([`session`], except for `Logon` itself) → the method:
//! pushing events ([`push_event`]), describing the event schemas ([`schema`]), logging on or off. Every
//! refusal is a SOAP fault ([`fault`]). The REST API key does not apply here: Adobe clients authenticate
//! by session token.

mod ctx;
mod envelope;
mod fault;
mod push_event;
mod schema;
mod session;
#[cfg(test)]
mod tests;
mod xml;

use std::sync::Arc;

use axum::extract::{Request, State};
use hyper::{Method, StatusCode};
use mc_plugin_api::services::Queue;

use self::envelope::{Action, ENCODING_LITERAL_XML, escape, method_response};
use self::fault::SoapFault;
use self::push_event::Count;
use self::session::Sessions;
use self::xml::Element;
use crate::api::ApiContext;
use crate::config::{AdobeConfig, Role};
use crate::http::body::read_request_limited;
use crate::http::response::{HttpResponse, with_type};

/// The route, as metrics and logs name it.
pub const ROUTE: &str = "/nl/jsp/soaprouter.jsp";

/// The SOAP endpoint's state: whether it is on, and the operators and sessions of `[adobe]`.
pub struct AdobeGateway {
    enabled: bool,
    /// Pushing events is the execution role's (SPEC), as Adobe's Message Center execution instances are
    /// the ones clients push to; a control-only instance refuses.
    role: Role,
    sessions: Sessions,
}

impl AdobeGateway {
    pub fn new(config: &AdobeConfig, role: Role) -> Self {
        AdobeGateway {
            enabled: config.enabled,
            role,
            sessions: Sessions::new(config.accounts.clone(), config.session_lifetime),
        }
    }
}

/// Answers one request to [`ROUTE`]: the method's answer, or a SOAP fault.
pub async fn handle(State(ctx): State<Arc<ApiContext>>, request: Request) -> HttpResponse {
    match serve(&ctx, request).await {
        Ok(answer) => with_type(StatusCode::OK, answer, "text/xml; charset=utf-8"),
        Err(fault) => fault.into_response(),
    }
}

async fn serve(ctx: &ApiContext, request: Request) -> Result<String, SoapFault> {
    if !ctx.adobe.enabled {
        return Err(SoapFault {
            status: StatusCode::NOT_FOUND,
            ..SoapFault::client(
                "not_found",
                "the Adobe Campaign SOAP endpoint is disabled (set `adobe.enabled = true`)",
            )
        });
    }
    if !ctx.adobe.role.executes() {
        return Err(SoapFault {
            status: StatusCode::NOT_FOUND,
            ..SoapFault::client(
                "not_found",
                format!(
                    "this is a {} instance: push events to an execution instance",
                    ctx.adobe.role
                ),
            )
        });
    }
    if request.method() != Method::POST {
        return Err(SoapFault {
            status: StatusCode::METHOD_NOT_ALLOWED,
            ..SoapFault::client(
                "method_not_allowed",
                format!(
                    "method {} is not allowed on {ROUTE}: SOAP calls are POST requests",
                    request.method()
                ),
            )
        });
    }
    let declared = declared_action(&request);
    let headers = request.headers().clone();
    let body = read_request_limited(request, ctx.limits.body()).await?;
    let root = xml::parse(&body).map_err(|e| SoapFault::client("malformed_xml", e.to_string()))?;
    let call = envelope::open(root)?;
    let action = envelope::action(declared.as_deref(), &call.method)?;
    if (action.schema.as_str(), action.method.as_str()) == ("xtk:session", "Logon") {
        return logon(ctx, &action, &call.method);
    }
    let token = session::presented_token(&call.method, call.header.as_ref(), &headers)
        .ok_or_else(|| {
            SoapFault::client(
                "unauthorized",
                "invalid field `sessiontoken`: no session token; send `login/password` or a token from xtk:session#Logon in the sessiontoken parameter, the X-Session-Token header or the __sessiontoken cookie",
            )
        })?;
    ctx.adobe.sessions.check(&token)?;
    let method = &call.method;
    match (action.schema.as_str(), action.method.as_str()) {
        ("nms:rtEvent", "PushEvent") => {
            push_event::push(ctx, &action, method, Queue::Realtime, Count::One).await
        }
        ("nms:rtEvent", "PushEvents") => {
            push_event::push(ctx, &action, method, Queue::Realtime, Count::Many).await
        }
        ("nms:batchEvent", "PushEvent") => {
            push_event::push(ctx, &action, method, Queue::Batch, Count::One).await
        }
        ("nms:batchEvent", "PushEvents") => {
            push_event::push(ctx, &action, method, Queue::Batch, Count::Many).await
        }
        ("xtk:persist", "GetEntityIfMoreRecent") => {
            schema::get_entity_if_more_recent(&action, method)
        }
        ("xtk:session", "Logoff") => {
            ctx.adobe.sessions.logoff(&token);
            Ok(method_response(&action, ""))
        }
        _ => Err(SoapFault::client(
            "unknown_method",
            format!(
                "unknown method {action}: this server implements nms:rtEvent#PushEvent(s), nms:batchEvent#PushEvent(s), xtk:persist#GetEntityIfMoreRecent (event schemas) and xtk:session#Logon/Logoff"
            ),
        )),
    }
}

/// The SOAP action the client declared: the `SOAPAction` header, else the `soapAction` query parameter.
fn declared_action(request: &Request) -> Option<String> {
    let header = request
        .headers()
        .get("soapaction")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    header.or_else(|| {
        crate::api::query::pairs(request.uri().query())
            .into_iter()
            .find(|(name, _)| name == "soapAction")
            .map(|(_, value)| value)
    })
}

/// `xtk:session#Logon`: `login` and `password` (or the WSDL's `strLogin`/`strPassword`) → session token,
/// session information and security token, as Adobe answers.
fn logon(ctx: &ApiContext, action: &Action, method: &Element) -> Result<String, SoapFault> {
    let text = |names: [&str; 2]| {
        names
            .iter()
            .find_map(|n| method.child(n))
            .map(|e| e.trimmed_text().to_owned())
            .unwrap_or_default()
    };
    let login = text(["login", "strLogin"]);
    let password = text(["password", "strPassword"]);
    let issued = ctx.adobe.sessions.logon(&login, &password)?;
    Ok(method_response(
        action,
        &format!(
            "<pstrSessionToken xsi:type='xsd:string'>{session}</pstrSessionToken>\
<pSessionInfo xsi:type='ns:Element' SOAP-ENV:encodingStyle='{ENCODING_LITERAL_XML}'><sessionInfo>\
<serverInfo instanceName='message-center' majNumber='8' minNumber='0' servicePack='0' buildNumber='0'/>\
<userInfo login='{login}' loginCS='{login}' homeDir='' locale='en' timezone='UTC'/>\
</sessionInfo></pSessionInfo>\
<pstrSecurityToken xsi:type='xsd:string'>{security}</pstrSecurityToken>",
            session = escape(&issued.session_token),
            security = escape(&issued.security_token),
            login = escape(&issued.login),
        ),
    ))
}
