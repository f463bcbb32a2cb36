//! The control instance's side of the product: the execution instances it archives and publishes
//! templates to ([`instances`], [`publish`]), what it knows about each one's archive ([`monitor`]), and the wire
//! format of the archive feed both sides share ([`feed`]).

pub mod feed;
pub mod instances;
pub mod monitor;
pub mod publish;

pub use instances::{ExecutionInstances, InstanceError, InstanceResponse};
pub use monitor::{ArchiveInstanceView, ArchiveMonitor, ArchiveState};
