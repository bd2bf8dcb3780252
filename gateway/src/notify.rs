//! Notifications to grid workers: alerts from the journal's outbox, at least once, on MQTT,
//! server-sent events and webhooks; and to the workers of each alert's area on their own
//! channels ([`people`], [`dispatch`]; docs/alerts.md).

pub mod alert;
pub mod dispatch;
pub mod installer;
mod notifier;
pub mod people;
pub mod robot;
pub mod template;
pub mod webhook;

pub use notifier::{EarlyPublishes, Outgoing, publish_early, run as notifier};
