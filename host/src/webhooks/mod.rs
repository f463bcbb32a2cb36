//! The host's side of webhooks (SPEC "Webhooks"): secrets (`secret`), Standard Webhooks signatures
//! (`signature`), the destination check (`destination`) and the HTTP sender with its pool, timeout and
//! per-endpoint cap (`sender`). The `webhookDelivery` workflow drives them through host services
//! (`crate::services::webhooks`); the state lives in the store (`crate::store` webhooks).

pub mod destination;
pub mod secret;
pub mod sender;
pub mod signature;

pub use sender::{SendOutcome, WebhookSender};
