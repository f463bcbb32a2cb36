//! Seed addresses and proofs (issue 18): the vocabulary the API, the console and the store share.
//!
//! A template's seeds are test recipients, each with the `ctx` its message is rendered with. A preview
//! renders a version for a seed (or an inline event) under delivery's limits; a proof renders it the
//! same way and sends it at once through the channel's own sender (`crate::delivery::ProofSender`). A
//! proof is recorded in `template_proofs`, never as an event or a delivery-log entry: nothing that
//! reports on events (statistics, monitoring, webhooks, the archive, bounces) can count it.

use serde_json::Value;

use super::RenderEvent;

/// Most seeds one template has.
pub const MAX_SEEDS: usize = 50;
/// Longest seed label, in characters.
pub const MAX_LABEL: usize = 100;

/// One seed address.
#[derive(Clone, Debug, PartialEq)]
pub struct Seed {
    pub label: String,
    /// An email address or a mobile phone number, as the template's channel.
    pub address: String,
    /// A JSON object.
    pub ctx: Value,
}

impl Seed {
    /// The event a preview or proof for this seed renders: its `ctx`, and its address as `email` or
    /// `mobilePhone` as the channel says.
    pub fn event(&self, channel: mc_plugin_api::Channel) -> RenderEvent {
        let (email, mobile_phone) = match channel {
            mc_plugin_api::Channel::Email => (Some(self.address.clone()), None),
            mc_plugin_api::Channel::Sms => (None, Some(self.address.clone())),
        };
        RenderEvent {
            ctx: self.ctx.clone(),
            email,
            mobile_phone,
            language: None,
            external_id: None,
        }
    }
}

/// What became of a proof.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProofStatus {
    /// Accepted by the SMTP relay or the SMS gateway.
    Sent,
    /// Not rendered, refused, or the channel unreachable (no retry: the operator sends again).
    Failed,
}

impl ProofStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            ProofStatus::Sent => "sent",
            ProofStatus::Failed => "failed",
        }
    }
}

/// A proof to record.
#[derive(Clone, Debug)]
pub struct NewProof {
    pub template_name: String,
    pub version: i32,
    pub channel: mc_plugin_api::Channel,
    pub seed_label: String,
    pub address: String,
    pub status: ProofStatus,
    pub message_id: Option<String>,
    pub error: Option<String>,
    /// The console login, when sent from the console.
    pub sent_by: Option<String>,
}

/// Why a list of seeds is refused: the field at fault (`seeds[2].address`) and the reason.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct SeedError {
    pub field: String,
    pub message: String,
}

fn seed_error(field: impl Into<String>, message: impl Into<String>) -> SeedError {
    SeedError {
        field: field.into(),
        message: message.into(),
    }
}

/// The seeds of `value` (a JSON array of `{"label","address","ctx"}`) for a template of `channel`:
/// at most [`MAX_SEEDS`], labels 1 to [`MAX_LABEL`] characters without control characters and unique,
/// addresses valid for the channel, `ctx` an object (absent: `{}`) of at most `max_ctx_bytes` as JSON.
pub fn parse_seeds(
    value: &Value,
    channel: mc_plugin_api::Channel,
    max_ctx_bytes: usize,
) -> Result<Vec<Seed>, SeedError> {
    let Value::Array(items) = value else {
        return Err(seed_error("seeds", "`seeds` must be an array"));
    };
    if items.len() > MAX_SEEDS {
        return Err(seed_error(
            "seeds",
            format!(
                "a template has at most {MAX_SEEDS} seeds, not {}",
                items.len()
            ),
        ));
    }
    let mut seeds: Vec<Seed> = Vec::with_capacity(items.len());
    for (n, item) in items.iter().enumerate() {
        let field = |name: &str| format!("seeds[{n}].{name}");
        let Value::Object(object) = item else {
            return Err(seed_error(
                format!("seeds[{n}]"),
                "a seed must be an object",
            ));
        };
        if let Some(unknown) = object
            .keys()
            .find(|k| !matches!(k.as_str(), "label" | "address" | "ctx"))
        {
            return Err(seed_error(
                field(unknown),
                format!("`{unknown}` is not a seed field (label, address, ctx)"),
            ));
        }
        let text = |name: &str| -> Result<String, SeedError> {
            match object.get(name) {
                Some(Value::String(s)) => Ok(s.trim().to_owned()),
                None | Some(Value::Null) => {
                    Err(seed_error(field(name), format!("`{name}` is required")))
                }
                Some(_) => Err(seed_error(
                    field(name),
                    format!("`{name}` must be a string"),
                )),
            }
        };
        let label = text("label")?;
        let chars = label.chars().count();
        if chars == 0 || chars > MAX_LABEL || label.chars().any(char::is_control) {
            return Err(seed_error(
                field("label"),
                format!("`label` must be 1 to {MAX_LABEL} characters without control characters"),
            ));
        }
        if seeds.iter().any(|s| s.label == label) {
            return Err(seed_error(
                field("label"),
                format!("the label `{label}` is used twice"),
            ));
        }
        let address = text("address")?;
        let valid = match channel {
            mc_plugin_api::Channel::Email => crate::ingest::validate::check_email(&address),
            mc_plugin_api::Channel::Sms => crate::ingest::validate::check_phone(&address),
        };
        if let Err(reason) = valid {
            let what = match channel {
                mc_plugin_api::Channel::Email => "an email address",
                mc_plugin_api::Channel::Sms => "a mobile phone number",
            };
            return Err(seed_error(
                field("address"),
                format!("`{address}` is not {what} (this is an {channel} template): {reason}"),
            ));
        }
        let ctx = match object.get("ctx") {
            None | Some(Value::Null) => Value::Object(serde_json::Map::new()),
            Some(ctx @ Value::Object(_)) => ctx.clone(),
            Some(_) => return Err(seed_error(field("ctx"), "`ctx` must be an object")),
        };
        let size = ctx.to_string().len();
        if size > max_ctx_bytes {
            return Err(seed_error(
                field("ctx"),
                format!(
                    "`ctx` is {size} bytes as JSON; the limit is {max_ctx_bytes} (server.max_ctx_bytes)"
                ),
            ));
        }
        seeds.push(Seed {
            label,
            address,
            ctx,
        });
    }
    Ok(seeds)
}

/// A seed as the API and the console's seed form show it, its fields in this order.
#[derive(serde::Serialize)]
pub struct SeedView<'a> {
    pub label: &'a str,
    pub address: &'a str,
    pub ctx: &'a Value,
}

impl<'a> From<&'a Seed> for SeedView<'a> {
    fn from(s: &'a Seed) -> Self {
        SeedView {
            label: &s.label,
            address: &s.address,
            ctx: &s.ctx,
        }
    }
}

/// The seeds as the API shows them: `[{"label","address","ctx"}]`.
pub fn seeds_json(seeds: &[Seed]) -> Value {
    Value::Array(
        seeds
            .iter()
            .map(|s| serde_json::json!(SeedView::from(s)))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use mc_plugin_api::Channel;
    use serde_json::json;

    use super::*;

    fn refused(value: Value, channel: Channel) -> String {
        parse_seeds(&value, channel, 1000).unwrap_err().field
    }

    #[test]
    fn seeds_are_checked_field_by_field() {
        let good = json!([
            {"label": "Alice", "address": "alice@example.com", "ctx": {"firstName": "Alice"}},
            {"label": "Bob", "address": "bob@example.com"}
        ]);
        let seeds = parse_seeds(&good, Channel::Email, 1000).unwrap();
        assert_eq!(seeds.len(), 2);
        assert_eq!(seeds[1].ctx, json!({}));
        assert_eq!(seeds_json(&seeds)[0]["ctx"]["firstName"], "Alice");

        assert_eq!(refused(json!({}), Channel::Email), "seeds");
        assert_eq!(refused(json!([1]), Channel::Email), "seeds[0]");
        assert_eq!(
            refused(json!([{"label": "", "address": "a@b.co"}]), Channel::Email),
            "seeds[0].label"
        );
        assert_eq!(
            refused(
                json!([{"label": "a", "address": "a@b.co"}, {"label": "a", "address": "c@b.co"}]),
                Channel::Email
            ),
            "seeds[1].label"
        );
        assert_eq!(
            refused(json!([{"label": "a", "address": "nope"}]), Channel::Email),
            "seeds[0].address"
        );
        assert_eq!(
            refused(json!([{"label": "a", "address": "a@b.co"}]), Channel::Sms),
            "seeds[0].address"
        );
        assert!(
            parse_seeds(
                &json!([{"label": "a", "address": "+33 6 12 34 56 78"}]),
                Channel::Sms,
                1000
            )
            .is_ok()
        );
        assert_eq!(
            refused(
                json!([{"label": "a", "address": "a@b.co", "ctx": []}]),
                Channel::Email
            ),
            "seeds[0].ctx"
        );
        assert_eq!(
            refused(
                json!([{"label": "a", "address": "a@b.co", "ctx": {"x": "y".repeat(2000)}}]),
                Channel::Email
            ),
            "seeds[0].ctx"
        );
        assert_eq!(
            refused(
                json!([{"label": "a", "address": "a@b.co", "extra": 1}]),
                Channel::Email
            ),
            "seeds[0].extra"
        );
        let many: Vec<Value> = (0..=MAX_SEEDS)
            .map(|n| json!({"label": format!("s{n}"), "address": "a@b.co"}))
            .collect();
        assert_eq!(refused(Value::Array(many), Channel::Email), "seeds");
    }
}
