//! The closed label sets of the gateway's own series: the enums a caller passes, each with the
//! label value it is exposed under.

use firegrid_protocols::DeviceTopic;

/// The uplink message kinds counted at ingest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IngestKind {
    /// `telemetry`.
    Telemetry,
    /// `event`.
    Event,
    /// `status`.
    Status,
}

impl IngestKind {
    /// Every kind, in the order of the series.
    pub(crate) const ALL: [Self; 3] = [Self::Telemetry, Self::Event, Self::Status];

    /// The kind of an uplink topic (`None` for the downlink topics).
    pub const fn of(topic: DeviceTopic) -> Option<Self> {
        match topic {
            DeviceTopic::Telemetry => Some(Self::Telemetry),
            DeviceTopic::Event => Some(Self::Event),
            DeviceTopic::Status => Some(Self::Status),
            DeviceTopic::Config | DeviceTopic::Cmd | DeviceTopic::Ack => None,
        }
    }

    /// The `kind` label's value.
    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            Self::Telemetry => "telemetry",
            Self::Event => "event",
            Self::Status => "status",
        }
    }
}

/// How an alert went out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AlertChannel {
    /// Published on MQTT.
    Mqtt,
    /// POSTed to a webhook.
    Webhook,
    /// Pushed to server-sent-event clients.
    Sse,
}

impl AlertChannel {
    /// Every channel, in the order of the series.
    pub(crate) const ALL: [Self; 3] = [Self::Mqtt, Self::Webhook, Self::Sse];

    /// The `channel` label's value.
    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            Self::Mqtt => "mqtt",
            Self::Webhook => "webhook",
            Self::Sse => "sse",
        }
    }
}

/// What became of one delivery attempt of an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AlertResult {
    /// Delivered.
    Ok,
    /// Failed; it will be tried again.
    Retry,
    /// Not tried again: a webhook whose episode a person has acknowledged.
    Stopped,
}

impl AlertResult {
    /// Every result, in the order of the series.
    pub(crate) const ALL: [Self; 3] = [Self::Ok, Self::Retry, Self::Stopped];

    /// The `result` label's value.
    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Retry => "retry",
            Self::Stopped => "stopped",
        }
    }
}

/// The pipeline's queues whose depth is a gauge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Queue {
    /// Messages from the broker waiting for ingest.
    Ingest,
    /// Op lists waiting for the journal writer.
    Journal,
    /// Telemetry samples waiting for the readings writer.
    Readings,
    /// Alerts waiting to be sent.
    Notify,
}

impl Queue {
    /// Every queue, in the order of the series.
    pub(crate) const ALL: [Self; 4] = [Self::Ingest, Self::Journal, Self::Readings, Self::Notify];

    /// The `queue` label's value.
    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            Self::Ingest => "ingest",
            Self::Journal => "journal",
            Self::Readings => "readings",
            Self::Notify => "notify",
        }
    }
}

/// Why the API refused a request: no token, a bad token, a role, a scope; the web UI's CSRF
/// check, a failed login, the login rate limit.
pub const API_REFUSALS: [&str; 7] = [
    "no_token",
    "bad_token",
    "role",
    "scope",
    "csrf",
    "login",
    "login_rate",
];
