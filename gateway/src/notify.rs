//! Notifications to grid workers: alerts from the journal's outbox, at least once, on MQTT,
//! server-sent events and webhooks.

pub mod alert;
pub mod webhook;
