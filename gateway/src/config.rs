//! The gateway's configuration: one TOML file, every key documented with its default.
//!
//! Unknown keys are refused (a typo must not silently fall back to a default), and every error
//! names the file, the line and the column. `firegrid print-default-config` prints
//! [`DEFAULT_CONFIG`], which is also what an empty file means.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use firegrid_protocols::thresholds::{
    ALARM_DELAY_MAX_S, Limits, RESIDUAL_SETPOINT_MAX_MA, RESIDUAL_SETPOINT_MIN_MA,
    TEMP_SETPOINT_MAX_DC, TEMP_SETPOINT_MIN_DC,
};

use crate::engine::EngineConfig;

/// The default configuration, with every key and its meaning. Parsing it gives
/// [`Config::default`].
pub const DEFAULT_CONFIG: &str = r#"# firegrid gateway configuration. Every key is optional; these are the defaults.

# Where the store (SQLite journal, registry, readings) lives.
data_dir = "firegrid-data"

[broker]
# "managed": firegrid starts Mosquitto (Debian's mosquitto package) and supervises it, writing
# its configuration, password file and ACL from the registry: each device logs in with its own
# credential and may use only its own topics (docs/security.md).
# "external": connect to a broker you run (Mosquitto, EMQX) as a client.
mode = "managed"
# Client id of the gateway's connections (a persistent session is kept under it); its links
# use it and it with -alarms, -out and -urgent appended. Keep a "." in it: device ids never
# have one, so no device can take the gateway's ids.
client_id = "firegrid.gateway"
# Consume through a shared subscription ($share/GROUP/...) when several gateways share a broker.
shared_group = ""

[broker.managed]
# Where Mosquitto listens (MQTT 5 and 3.1.1 on one port). Devices on the network need an
# address they can reach, e.g. "0.0.0.0:1883"; every client must log in either way.
listen = "127.0.0.1:1883"
# A TLS listener too, e.g. "0.0.0.0:8883", with a PEM certificate chain and key; "" for none.
listen_tls = ""
tls_cert_file = ""
tls_key_file = ""
# The mosquitto binary: a path, or a name looked up in PATH and /usr/sbin.
mosquitto = "mosquitto"
# Limits that keep one client from exhausting the broker. The largest packet (bytes) must not
# exceed what the gateway's own client accepts (8192): a larger uplink is refused by the broker.
max_packet_bytes = 8192
# Messages queued for one client (e.g. the gateway while it restarts) before more are dropped.
max_queued_messages = 100000
# QoS 1 messages in flight to one client.
max_inflight_messages = 100
# A persistent session not resumed for this long is removed, hours.
session_expiry_h = 168
# Connections per listener (0: no limit).
max_connections = 0
# The longest keep-alive a client may ask for, s.
max_keepalive_s = 900
# Mosquitto's nice value (-20 to 19, lower runs first; 0: the gateway's own). Every alarm
# crosses the broker twice: on a busy machine it runs ahead of the gateway's telemetry and
# storage work (docs/decisions/0026). Below 0 needs root, CAP_SYS_NICE or an RLIMIT_NICE
# allowing it (systemd: LimitNICE=-5); without it the broker runs at the gateway's own and the
# gateway says so at start.
nice = -5

[broker.external]
# The broker's host and port.
host = "127.0.0.1"
port = 1883
# TLS to the broker, trusting the CA certificates in this PEM file.
tls = false
tls_ca_file = ""
# Environment variables holding the gateway's username and password (never the values).
username_env = ""
password_env = ""
# If set, firegrid writes the broker's password file and ACL here (Mosquitto's formats, the
# same rules as the managed broker) and runs reload_command after every change, e.g.
# ["systemctl", "reload", "mosquitto"]. The gateway then logs in as its client ids with the
# password of password_env. Mosquitto needs "use_username_as_clientid true" (docs/security.md).
password_file = ""
acl_file = ""
reload_command = []
# The files' permission bits: Mosquitto (often its own user) must be able to read them, e.g.
# through their group. Never world-readable.
file_mode = "0640"

[api]
# The HTTP API and live views. Every /api/v1 route needs `Authorization: Bearer TOKEN`; make
# users and tokens with `firegrid user add NAME --role ROLE [--area AREA]` (docs/security.md).
listen = "127.0.0.1:8080"
# Who may read /metrics: "auto" (anyone when `listen` is a loopback address, else a token of
# any role), "open" (anyone who reaches the port), "token" (a token of any role).
metrics = "auto"
# HTTPS: a PEM certificate chain and its key (both, or neither for plain HTTP on loopback or
# behind a TLS-terminating proxy).
tls_cert_file = ""
tls_key_file = ""

[engine]
# A device is offline after this many heartbeat intervals without any message.
offline_factor = 3
# After a device's last will, how long it has to come back before it is reported offline, s.
offline_grace_s = 10
# A gateway-detected alarm ends after its value stayed below the hysteresis this long, s.
clear_hold_s = 30
# Unacknowledged tickets go up the area hierarchy after these times from their start, s
# (community, street, district).
escalation_s = [120, 600, 1800]

[limits]
# Set-point ranges accepted for devices (GB 14287; see docs/protocol.md).
residual_min_ma = 20
residual_max_ma = 1000
temp_min_dc = 550
temp_max_dc = 1400
alarm_delay_max_s = 30

[store]
# How long raw readings are kept before only hourly rollups remain, days (a day's readings go
# together, once the whole day is past it).
readings_retention_days = 30
# What is kept of readings locally: "raw" (every reading, and hourly rollups), or "rollups"
# (hourly rollups only; needs [tsdb] on, which then has the raw readings: the history API
# answers from the rollups, by the hour, and says so).
local_readings = "raw"
# Devices that published without being registered are listed (GET /api/v1/pending) up to this
# many; further invented ids are only counted (firegrid_pending_devices_dropped_total).
pending_devices_max = 10000
# Free space on the data directory's disk: below disk_low_mb a warning (logged, in /healthz);
# below disk_full_mb a system alarm (/healthz 503, published retained on
# firegrid/v1/system/disk), before SQLite runs out of room. MiB.
disk_low_mb = 1024
disk_full_mb = 64

[tsdb]
# Readings also go to a time-series database through the InfluxDB v2 write API (InfluxDB 2/3,
# VictoriaMetrics), via a disk spool: an outage of the database loses nothing (docs/tsdb.md).
# Off unless enabled with a url.
enabled = false
# Base URL; /api/v2/write is appended. e.g. "http://127.0.0.1:8086"
url = ""
org = ""
bucket = "firegrid"
# The API token: the name of an environment variable holding it, or a file holding it (one of
# them; never the token itself, which is never logged).
token_env = ""
token_file = ""
# Readings per POST at most; a smaller batch goes once its oldest reading waited
# flush_interval_ms.
batch_size = 5000
flush_interval_ms = 1000
# Timeout of every request, and the longest backoff between retries (a server's Retry-After
# is honoured), ms.
timeout_ms = 10000
retry_max_ms = 30000
# gzip request bodies.
gzip = true
# The spool (data_dir/tsdb-spool) holds at most this many bytes; past it the oldest readings
# are dropped and counted (firegrid_tsdb_spool_dropped_readings_total, /healthz).
spool_max_bytes = 1073741824
# When spooled readings are forced to disk: "always" (each hand-over), "interval" (every
# fsync_interval_ms), "never" (the OS decides; survives a gateway crash, not a power loss).
fsync = "interval"
fsync_interval_ms = 1000

# Webhooks: every alert is also POSTed (JSON, at least once, retried with backoff until
# delivered or the ticket is acknowledged) to each of these, e.g. an SMS or IM gateway. Header
# X-Firegrid-Timestamp = Unix ms of the attempt; the request is signed: X-Firegrid-Signature =
# "sha256=" + hex HMAC-SHA256 of "{timestamp}.{body}" under the secret read from `secret_env`
# (receivers refuse timestamps more than 5 min old). Redirects are not followed. Loopback,
# private and link-local addresses are refused, also when a name resolves to one, unless
# `allow_private = true`.
# [[webhooks]]
# url = "https://sms-gateway.example/firegrid"
# secret_env = "FIREGRID_WEBHOOK_SECRET"
# allow_private = false

[people]
# Alerts to people (docs/alerts.md): each alert also goes to every worker of the area it is
# sent to (the grid cell's, then at each escalation level that area's), on their own channels:
# their mqtt_topic, their webhook_url (webhook_format "json", "dingtalk" or "wecom" group
# robot), and an SMS to their phone through sms_url. Retried with backoff until delivered or
# the ticket is acknowledged; never on the alarm path.
# The base of the episode link in every person alert ({public_url}/episodes/{id}); "": none.
public_url = ""
# An SMS gateway: POST {"phone","text","alert"}, timestamped and signed like [[webhooks]]; "": none.
sms_url = ""
# The variable holding the secret that signs "json" webhooks and the SMS gateway's requests.
secret_env = ""
# Whether workers' webhooks and the SMS gateway may be on loopback/private addresses.
allow_private = false
# The categories whose openings are also sent by SMS to the site's landlord or owner
# (owner_phone), e.g. ["alarm", "smoke"]; needs sms_url.
owner_sms = []
# The same for the room's tenant (rooms' tenant_name, tenant_phone), e.g. ["smoke"].
tenant_sms = []

[people.templates]
# Editable texts (docs/alerts.md): what to do first per category, e.g.
# first_action = { alarm = "立即断开该回路电源，到场检查线路。" }, and the whole message per
# alert kind with {placeholders} ({recipient}, {category}, {address}, {room}, {measured},
# {first_action}, {link}...). Empty: the built-in Chinese-then-English text.
first_action = {}
opened = ""
escalated = ""
ended = ""

[people.templates.en]
# The same in English (placeholders render in English): sent after the Chinese text, a blank
# line between; a Chinese first action without an English one stands for both.
first_action = {}
opened = ""
escalated = ""
ended = ""

[modbus]
# Legacy monitors polled over Modbus TCP or RTU (docs/modbus.md). None by default.
# Profile files (TOML) loaded beside the built-in "typical-rcm-4t".
profiles = []
# Deadline of one request, reply included, ms. A timeout forces a reconnect.
timeout_ms = 1000
# Failed polls in a row before a device is reported offline.
offline_after = 3
# How often an answering device sends an online heartbeat, s.
heartbeat_s = 60
# A Modbus TCP endpoint: a monitor, or a serial-to-Ethernet converter with monitors behind it.
# [[modbus.tcp]]
# address = "192.168.1.50:502"
# devices = [{ id = "hz-0100", slave = 1, profile = "typical-rcm-4t", interval_ms = 5000 }]
# An RS-485 line polled as Modbus RTU (8N1); requests are serialised, 3.5-character gaps kept.
# [[modbus.rtu]]
# path = "/dev/ttyUSB0"
# baud = 9600
# devices = [{ id = "hz-0101", slave = 2 }]

[tickets]
# The hazard workflow (docs/alerts.md). Acknowledge within: per category, an unacknowledged
# ticket goes one level up the area hierarchy after this long from its start, and again each
# time as long again, s (absent or 0: [engine] escalation_s), e.g. { smoke = 60, alarm = 180 }.
acknowledge_s = {}
# Rectify within: after acknowledgement, a ticket not rectified within
# this long goes one level up the area hierarchy, and again each time as long again, s per
# category (0 or absent: no deadline).
rectify_s = { alarm = 259200, fault = 604800, smoke = 86400 }
# "verified" needs the episode ended and every reading of its channel below the set-point by
# this margin for this long; otherwise an operator overrides with a reason (audited).
verify_margin_pct = 20
verify_hold_s = 600

[commissioning]
# Commissioning tests and records, scheduled self-tests (docs/commissioning.md). Every this
# many days per device kind the gateway sends a device its self-test command (0 or absent:
# never); the results are kept as the device's events, and a device without one for the
# period and a day is listed by GET /api/v1/self-tests/overdue.
self_test_days = { electrical_fire_monitor = 30, smoke_alarm = 30 }
# A test the installer asks for that gets no answer within this long is recorded as timed out, s.
test_timeout_s = 120
[evidence]
# Notes and photos on tickets (docs/alerts.md): photos are kept in data_dir/evidence, checked
# by their content (JPEG or PNG only), at most this many bytes each (larger: 413, counted).
max_photo_bytes = 5242880

[alarm_path]
# The alarm path's thread (the links that carry events in and alerts out, and the pipeline)
# runs in the real-time scheduling class, SCHED_FIFO at this priority (1-99), so that under
# load an alarm takes a CPU ahead of telemetry and storage (docs/decisions/0022). Needs root,
# CAP_SYS_NICE or an RLIMIT_RTPRIO of at least this (systemd: LimitRTPRIO=1); without it the
# thread runs in the ordinary class and the gateway says so at start. 0: the ordinary class.
realtime_priority = 1

[uplink.gb26875]
# Report alarms, faults and readings to a city remote fire-monitoring centre over
# GB/T 26875.3-2011 (docs/gb26875.md). Off unless enabled.
enabled = false
# The centre's TCP address, host:port.
address = ""
# The 6-byte addresses of the centre and of this gateway (the transmission device), as numbers
# (the centre assigns them).
centre_address = 0
own_address = 0
# The protocol variant: "standard", "user-version-0", "version-u16-be", "sum-or-xor", "strict".
profile = "standard"
# Time tags are local time: the zone, minutes east of UTC (China Standard Time: 480).
utc_offset_min = 480
# Send/confirm: a frame not confirmed within confirm_timeout_ms is sent again, `tries` times in
# all (GB/T 26875.3 §6.5: at most 10 s, 3 times); then the link is reported faulty and
# reconnected, and the frame is sent again from the journal.
confirm_timeout_ms = 10000
tries = 3
# A keep-alive (command 2, empty ADU) after this long without traffic, s.
heartbeat_s = 30
# Readings go as type-3 analog values this often, s (0: never).
analog_interval_s = 60
# Connecting to the centre: timeout, and the longest wait between attempts, ms.
connect_timeout_ms = 5000
reconnect_max_ms = 30000

[uplink.gb26875.mapping]
# The facility system firegrid reports as: type 1 (fire alarm system), address 1.
system_type = 1
system_address = 1
# Component addresses are device number × 256 + point (0 the device, 1 + n its channel n).
# Device numbers are assigned in order of first report and kept (data_dir/uplink.db); give a
# device a number the centre already knows here, e.g. { "hz-0042" = 17 }.
devices = {}
"#;

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where the store lives.
    pub data_dir: PathBuf,
    /// The MQTT broker.
    pub broker: crate::broker::settings::BrokerConfig,
    /// The HTTP API.
    pub api: ApiConfig,
    /// The alarm engine.
    pub engine: EngineSection,
    /// Set-point ranges.
    pub limits: LimitsSection,
    /// The store.
    pub store: StoreSection,
    /// Where alerts are also POSTed.
    pub webhooks: Vec<WebhookConfig>,
    /// Alerts to the workers of each alert's area.
    pub people: PeopleSection,
    /// The time-series database writer.
    pub tsdb: crate::tsdb::TsdbConfig,
    /// Legacy monitors polled over Modbus.
    pub modbus: crate::modbus::ModbusConfig,
    /// Reports to a remote fire-monitoring centre (GB/T 26875.3).
    pub uplink: crate::uplink::config::UplinkSection,
    /// The hazard workflow.
    pub tickets: TicketsSection,
    /// Commissioning tests and scheduled self-tests.
    pub commissioning: crate::commissioning::CommissioningSection,
    /// Notes and photo evidence on tickets.
    pub evidence: EvidenceSection,
    /// The alarm path's thread.
    pub alarm_path: AlarmPathSection,
}

/// `[alarm_path]`: how the alarm path's thread is scheduled ([`crate::alarm_path`]).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlarmPathSection {
    /// `SCHED_FIFO` priority of the alarm path's thread (1–99), when the operating system
    /// allows it (root, `CAP_SYS_NICE`, or `RLIMIT_RTPRIO`); 0: the ordinary class. Default 1,
    /// the lowest real-time priority: ahead of every ordinary thread, behind the kernel's own.
    pub realtime_priority: u8,
}

impl Default for AlarmPathSection {
    fn default() -> Self {
        Self {
            realtime_priority: 1,
        }
    }
}

/// `[tickets]`: the hazard workflow's deadlines and verification ([`crate::workflow`]).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TicketsSection {
    /// Per category, how long a ticket may stay unacknowledged before it goes one level up
    /// (then again each time as long again), s; absent or 0: `[engine] escalation_s`.
    pub acknowledge_s: std::collections::BTreeMap<String, u64>,
    /// Per category (`alarm`, `smoke`, `fault`, `offline`, `battery_low`, `tamper`), how long
    /// after acknowledgement a ticket has to be rectified, s; 0 or absent: no deadline.
    pub rectify_s: std::collections::BTreeMap<String, u64>,
    /// How far below the set-point readings must stay for `verified`, percent.
    pub verify_margin_pct: u8,
    /// For how long, s.
    pub verify_hold_s: u64,
}

impl Default for TicketsSection {
    fn default() -> Self {
        let d = crate::workflow::WorkflowConfig::default();
        Self {
            acknowledge_s: std::collections::BTreeMap::new(),
            rectify_s: d
                .rectify_ms
                .iter()
                .map(|(c, ms)| (c.as_str().to_owned(), ms / 1000))
                .collect(),
            verify_margin_pct: d.verify_margin_pct,
            verify_hold_s: d.verify_hold_ms / 1000,
        }
    }
}

impl TicketsSection {
    /// The workflow's settings (checked by [`Config::load`]).
    pub fn workflow(&self) -> crate::workflow::WorkflowConfig {
        crate::workflow::WorkflowConfig {
            rectify_ms: self
                .rectify_s
                .iter()
                .filter_map(|(c, s)| {
                    let c = crate::model::Category::ALL
                        .into_iter()
                        .find(|k| k.as_str() == c)?;
                    Some((c, s.saturating_mul(1000)))
                })
                .collect(),
            verify_margin_pct: self.verify_margin_pct,
            verify_hold_ms: self.verify_hold_s.saturating_mul(1000),
            acknowledge_ms: self.acknowledge_ms(),
        }
    }

    /// The acknowledge deadlines in engine units, per category.
    pub fn acknowledge_ms(&self) -> std::collections::BTreeMap<crate::model::Category, u64> {
        self.acknowledge_s
            .iter()
            .filter_map(|(c, s)| {
                let c = crate::model::Category::ALL
                    .into_iter()
                    .find(|k| k.as_str() == c)?;
                Some((c, s.saturating_mul(1000)))
            })
            .collect()
    }

    fn check(&self) -> Result<(), String> {
        for (key, map) in [
            ("acknowledge_s", &self.acknowledge_s),
            ("rectify_s", &self.rectify_s),
        ] {
            for c in map.keys() {
                if !crate::model::Category::ALL.iter().any(|k| k.as_str() == c) {
                    return Err(format!(
                        "[tickets] {key}: {c:?} is not a category (alarm, fault, offline, \
                         battery_low, smoke, tamper)"
                    ));
                }
            }
        }
        if self.verify_margin_pct > 100 {
            return Err("[tickets] verify_margin_pct is a percentage (0-100)".into());
        }
        Ok(())
    }
}

/// `[evidence]`: photo evidence on tickets ([`crate::evidence`]).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EvidenceSection {
    /// The largest photo accepted, bytes.
    pub max_photo_bytes: u64,
}

impl Default for EvidenceSection {
    fn default() -> Self {
        Self {
            max_photo_bytes: crate::evidence::DEFAULT_MAX_PHOTO_BYTES,
        }
    }
}

impl EvidenceSection {
    /// Where photos are kept: `{data_dir}/evidence`.
    pub fn dir(&self, data_dir: &std::path::Path) -> crate::evidence::files::EvidenceDir {
        crate::evidence::files::EvidenceDir::new(data_dir.join("evidence"), self.max_photo_bytes)
    }
}

/// `[[webhooks]]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// The URL alerts are POSTed to (`http://` or `https://`).
    pub url: String,
    /// Environment variable holding the signing secret; empty: unsigned.
    #[serde(default)]
    pub secret_env: String,
    /// Whether it may reach loopback, private and link-local addresses (default: no).
    #[serde(default)]
    pub allow_private: bool,
}

impl WebhookConfig {
    /// The addresses it may reach.
    pub fn address_policy(&self) -> crate::notify::webhook::address::AddressPolicy {
        use crate::notify::webhook::address::AddressPolicy;
        if self.allow_private {
            AddressPolicy::AllowPrivate
        } else {
            AddressPolicy::PublicOnly
        }
    }
}

/// `[people]`: alerts to the workers of each alert's area ([`crate::notify::people`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PeopleSection {
    /// The base of episode links; empty: none.
    pub public_url: String,
    /// The SMS gateway's URL; empty: no SMS.
    pub sms_url: String,
    /// Environment variable holding the signing secret; empty: unsigned.
    pub secret_env: String,
    /// Whether workers' webhooks and the SMS gateway may reach loopback and private addresses.
    pub allow_private: bool,
    /// The categories whose openings also go by SMS to the site's landlord or owner.
    pub owner_sms: Vec<String>,
    /// The categories whose openings also go by SMS to the room's tenant.
    pub tenant_sms: Vec<String>,
    /// Editable texts: the first action per category, the message per alert kind.
    pub templates: TemplatesSection,
}

/// `[people.templates]` ([`crate::notify::template`]): the Chinese texts, and the English ones
/// in `[people.templates.en]`; empty strings keep the built-in texts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TemplatesSection {
    /// Per category, what to do first.
    pub first_action: std::collections::BTreeMap<String, String>,
    /// The message of an opening.
    pub opened: String,
    /// The message of an escalation.
    pub escalated: String,
    /// The message of an end.
    pub ended: String,
    /// The same in English.
    pub en: TextsSection,
}

/// One language's texts: `[people.templates.en]`, and the Chinese ones beside it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TextsSection {
    /// Per category, what to do first.
    pub first_action: std::collections::BTreeMap<String, String>,
    /// The message of an opening.
    pub opened: String,
    /// The message of an escalation.
    pub escalated: String,
    /// The message of an end.
    pub ended: String,
}

impl TemplatesSection {
    /// The fan-out's templates.
    pub fn templates(&self) -> crate::notify::template::Templates {
        crate::notify::template::Templates {
            zh_cn: self.zh_cn().texts(),
            en: self.en.texts(),
        }
    }

    /// The Chinese texts, as a section of their own.
    fn zh_cn(&self) -> TextsSection {
        TextsSection {
            first_action: self.first_action.clone(),
            opened: self.opened.clone(),
            escalated: self.escalated.clone(),
            ended: self.ended.clone(),
        }
    }

    fn check(&self) -> Result<(), String> {
        self.zh_cn().check("[people.templates]")?;
        self.en.check("[people.templates.en]")
    }
}

impl TextsSection {
    fn texts(&self) -> crate::notify::template::Texts {
        use crate::notify::alert::AlertKind;
        crate::notify::template::Texts {
            first_action: self
                .first_action
                .iter()
                .filter(|(_, t)| !t.trim().is_empty())
                .filter_map(|(c, t)| {
                    let c = crate::model::Category::ALL
                        .into_iter()
                        .find(|k| k.as_str() == c)?;
                    Some((c, t.clone()))
                })
                .collect(),
            text: [
                (AlertKind::Opened, &self.opened),
                (AlertKind::Escalated, &self.escalated),
                (AlertKind::Ended, &self.ended),
            ]
            .into_iter()
            .filter(|(_, t)| !t.trim().is_empty())
            .map(|(k, t)| (k, t.clone()))
            .collect(),
        }
    }

    fn check(&self, section: &str) -> Result<(), String> {
        for (c, t) in &self.first_action {
            if !crate::model::Category::ALL.iter().any(|k| k.as_str() == c) {
                return Err(format!(
                    "{section} first_action: {c:?} is not a category (alarm, fault, \
                     offline, battery_low, smoke, tamper)"
                ));
            }
            if t.chars().count() > 500 {
                return Err(format!(
                    "{section} first_action.{c} is longer than 500 characters"
                ));
            }
        }
        for (key, t) in [
            ("opened", &self.opened),
            ("escalated", &self.escalated),
            ("ended", &self.ended),
        ] {
            crate::notify::template::check(t).map_err(|e| format!("{section} {key}: {e}"))?;
        }
        Ok(())
    }
}

impl PeopleSection {
    /// The addresses workers' webhooks and the SMS gateway may reach.
    pub fn address_policy(&self) -> crate::notify::webhook::address::AddressPolicy {
        use crate::notify::webhook::address::AddressPolicy;
        if self.allow_private {
            AddressPolicy::AllowPrivate
        } else {
            AddressPolicy::PublicOnly
        }
    }

    /// The fan-out's settings.
    pub fn settings(&self) -> crate::notify::people::PeopleSettings {
        crate::notify::people::PeopleSettings {
            public_url: self.public_url.clone(),
            sms_url: self.sms_url.clone(),
            owner_categories: self
                .owner_sms
                .iter()
                .filter_map(|c| {
                    crate::model::Category::ALL
                        .into_iter()
                        .find(|k| k.as_str() == c)
                })
                .collect(),
            tenant_categories: self
                .tenant_sms
                .iter()
                .filter_map(|c| {
                    crate::model::Category::ALL
                        .into_iter()
                        .find(|k| k.as_str() == c)
                })
                .collect(),
            templates: self.templates.templates(),
        }
    }

    fn check(&self) -> Result<(), String> {
        use crate::notify::webhook::redact_url;
        self.templates.check()?;
        for (key, list) in [
            ("owner_sms", &self.owner_sms),
            ("tenant_sms", &self.tenant_sms),
        ] {
            for c in list {
                if !crate::model::Category::ALL.iter().any(|k| k.as_str() == c) {
                    return Err(format!(
                        "[people] {key}: {c:?} is not a category (alarm, fault, offline, \
                         battery_low, smoke, tamper)"
                    ));
                }
            }
        }
        for (key, url) in [("public_url", &self.public_url), ("sms_url", &self.sms_url)] {
            if url.is_empty() {
                continue;
            }
            reqwest::Url::parse(url)
                .ok()
                .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
                .ok_or_else(|| {
                    format!(
                        "[people] {key} {} must be an http:// or https:// URL with a host",
                        redact_url(url)
                    )
                })?;
        }
        Ok(())
    }
}

/// `[api]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    /// Listen address of the HTTP API.
    pub listen: SocketAddr,
    /// Who may read `/metrics`.
    pub metrics: MetricsAccess,
    /// PEM certificate chain: with `tls_key_file`, the API speaks HTTPS only.
    pub tls_cert_file: PathBuf,
    /// PEM private key.
    pub tls_key_file: PathBuf,
}

impl ApiConfig {
    /// The TLS files, if TLS is on.
    #[must_use]
    pub fn tls(&self) -> Option<(&Path, &Path)> {
        (!self.tls_cert_file.as_os_str().is_empty())
            .then_some((self.tls_cert_file.as_path(), self.tls_key_file.as_path()))
    }
}

/// Who may read `/metrics` (`[api] metrics`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricsAccess {
    /// Anyone when the API listens on a loopback address, else a token.
    #[default]
    Auto,
    /// Anyone who reaches the port.
    Open,
    /// A token of any role.
    Token,
}

impl ApiConfig {
    /// Whether `/metrics` answers without a token.
    pub fn metrics_open(&self) -> bool {
        match self.metrics {
            MetricsAccess::Auto => self.listen.ip().is_loopback(),
            MetricsAccess::Open => true,
            MetricsAccess::Token => false,
        }
    }
}

/// `[engine]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EngineSection {
    /// Heartbeat intervals without news before offline.
    pub offline_factor: u32,
    /// Grace after a last will, s.
    pub offline_grace_s: u64,
    /// Hold below the hysteresis before a gateway-detected alarm ends, s.
    pub clear_hold_s: u64,
    /// Escalation times from an episode's start, s.
    pub escalation_s: Vec<u64>,
}

/// `[limits]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsSection {
    /// Lowest residual-current set-point, mA.
    pub residual_min_ma: u16,
    /// Highest residual-current set-point, mA.
    pub residual_max_ma: u16,
    /// Lowest temperature set-point, deci-°C.
    pub temp_min_dc: i16,
    /// Highest temperature set-point, deci-°C.
    pub temp_max_dc: i16,
    /// Longest alarm delay, s.
    pub alarm_delay_max_s: u16,
}

/// `[store]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreSection {
    /// Raw readings retention, days.
    pub readings_retention_days: u32,
    /// The pending-device list (devices that published unregistered) holds at most this many;
    /// further invented ids are only counted.
    pub pending_devices_max: usize,
    /// Free space on the data directory's disk below which a warning is raised, MiB.
    pub disk_low_mb: u64,
    /// Free space below which the disk counts as full (a system alarm, `/healthz` 503), MiB.
    pub disk_full_mb: u64,
    /// What is kept of readings locally.
    pub local_readings: LocalReadings,
}

/// `[store] local_readings`: what the readings file keeps.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LocalReadings {
    /// Every reading and the hourly rollups.
    #[default]
    Raw,
    /// The hourly rollups only (the raw readings go to the TSDB).
    Rollups,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("firegrid-data"),
            broker: crate::broker::settings::BrokerConfig::default(),
            api: ApiConfig::default(),
            engine: EngineSection::default(),
            limits: LimitsSection::default(),
            store: StoreSection::default(),
            webhooks: Vec::new(),
            people: PeopleSection::default(),
            tsdb: crate::tsdb::TsdbConfig::default(),
            modbus: crate::modbus::ModbusConfig::default(),
            uplink: crate::uplink::config::UplinkSection::default(),
            tickets: TicketsSection::default(),
            commissioning: crate::commissioning::CommissioningSection::default(),
            evidence: EvidenceSection::default(),
            alarm_path: AlarmPathSection::default(),
        }
    }
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            metrics: MetricsAccess::Auto,
            tls_cert_file: PathBuf::new(),
            tls_key_file: PathBuf::new(),
        }
    }
}

impl Default for EngineSection {
    fn default() -> Self {
        let e = EngineConfig::default();
        Self {
            offline_factor: e.offline_factor,
            offline_grace_s: e.offline_grace_ms / 1000,
            clear_hold_s: e.clear_hold_ms / 1000,
            escalation_s: e.escalation_ms.iter().map(|ms| ms / 1000).collect(),
        }
    }
}

impl Default for LimitsSection {
    fn default() -> Self {
        Self {
            residual_min_ma: RESIDUAL_SETPOINT_MIN_MA,
            residual_max_ma: RESIDUAL_SETPOINT_MAX_MA,
            temp_min_dc: TEMP_SETPOINT_MIN_DC,
            temp_max_dc: TEMP_SETPOINT_MAX_DC,
            alarm_delay_max_s: ALARM_DELAY_MAX_S,
        }
    }
}

impl Default for StoreSection {
    fn default() -> Self {
        Self {
            readings_retention_days: 30,
            pending_devices_max: 10_000,
            disk_low_mb: 1024,
            disk_full_mb: 64,
            local_readings: LocalReadings::Raw,
        }
    }
}

/// Why a configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The TOML is malformed, has an unknown key, or a value of the wrong type.
    #[error("{path}:{line}:{column}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// The values parse but do not make sense together.
    #[error("{path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

impl Config {
    /// Reads and checks a configuration file.
    ///
    /// # Errors
    /// [`ConfigError`] with the file, line and column.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses and checks configuration text; `path` is only used in errors.
    ///
    /// # Errors
    /// [`ConfigError`] with the line and column.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let config: Self = toml::from_str(text).map_err(|e| {
            let (line, column) = e
                .span()
                .map(|span| line_column(text, span.start))
                .unwrap_or((1, 1));
            ConfigError::Parse {
                path: path.to_owned(),
                line,
                column,
                message: e.message().to_owned(),
            }
        })?;
        config.check().map_err(|message| ConfigError::Invalid {
            path: path.to_owned(),
            message,
        })?;
        Ok(config)
    }

    fn check(&self) -> Result<(), String> {
        let l = &self.limits;
        if l.residual_min_ma > l.residual_max_ma || l.temp_min_dc > l.temp_max_dc {
            return Err("[limits]: a minimum is above its maximum".into());
        }
        // The limits may narrow the GB ranges, never widen them.
        let (rmin, rmax) = (RESIDUAL_SETPOINT_MIN_MA, RESIDUAL_SETPOINT_MAX_MA);
        if l.residual_min_ma < rmin || l.residual_max_ma > rmax {
            return Err(format!(
                "[limits] residual_min_ma..residual_max_ma = {}..{} mA is outside {rmin}..{rmax} \
                 mA, the residual-current set-point range of GB 14287.2",
                l.residual_min_ma, l.residual_max_ma
            ));
        }
        let (tmin, tmax) = (TEMP_SETPOINT_MIN_DC, TEMP_SETPOINT_MAX_DC);
        if l.temp_min_dc < tmin || l.temp_max_dc > tmax {
            return Err(format!(
                "[limits] temp_min_dc..temp_max_dc = {}..{} (0.1 °C) is outside {tmin}..{tmax} \
                 (55–140 °C), the temperature set-point range of GB 14287.3",
                l.temp_min_dc, l.temp_max_dc
            ));
        }
        if l.alarm_delay_max_s > ALARM_DELAY_MAX_S {
            return Err(format!(
                "[limits] alarm_delay_max_s = {} s is above {ALARM_DELAY_MAX_S} s: a detector \
                 must alarm within 30 s of the value reaching the set-point (GB 31252 §4.3.1)",
                l.alarm_delay_max_s
            ));
        }
        if self.store.disk_full_mb > self.store.disk_low_mb {
            return Err("[store] disk_full_mb must not be above disk_low_mb".into());
        }
        if self.alarm_path.realtime_priority > 99 {
            return Err("[alarm_path] realtime_priority is 0 (off) or 1-99".into());
        }
        if self.engine.offline_factor == 0 {
            return Err("[engine] offline_factor must be at least 1".into());
        }
        if self.engine.escalation_s.windows(2).any(|w| w[0] >= w[1]) {
            return Err("[engine] escalation_s must increase (e.g. [120, 600, 1800])".into());
        }
        for w in &self.webhooks {
            check_webhook(w)?;
        }
        self.people.check()?;
        self.tickets.check()?;
        self.commissioning.validate()?;
        if !(1024..=64 * 1024 * 1024).contains(&self.evidence.max_photo_bytes) {
            return Err("[evidence] max_photo_bytes is between 1024 and 67108864".into());
        }
        self.modbus.check()?;
        self.broker.check()?;
        if self.api.tls_cert_file.as_os_str().is_empty()
            != self.api.tls_key_file.as_os_str().is_empty()
        {
            return Err("[api] tls_cert_file and tls_key_file go together (PEM files)".into());
        }
        self.tsdb.check()?;
        if self.store.local_readings == LocalReadings::Rollups && !self.tsdb.is_active() {
            return Err(
                "[store] local_readings = \"rollups\" needs [tsdb] on: raw readings \
                        would be kept nowhere"
                    .into(),
            );
        }
        self.uplink.gb26875.check()?;
        Ok(())
    }

    /// The engine settings in engine units.
    pub fn engine_config(&self) -> EngineConfig {
        let e = &self.engine;
        EngineConfig {
            offline_factor: e.offline_factor,
            offline_grace_ms: e.offline_grace_s.saturating_mul(1000),
            clear_hold_ms: e.clear_hold_s.saturating_mul(1000),
            escalation_ms: e
                .escalation_s
                .iter()
                .map(|s| s.saturating_mul(1000))
                .collect(),
            acknowledge_ms: self.tickets.acknowledge_ms(),
        }
    }

    /// The free-space marks of the data directory's disk.
    pub fn disk_limits(&self) -> crate::disk::DiskLimits {
        crate::disk::DiskLimits {
            low_bytes: self.store.disk_low_mb.saturating_mul(1 << 20),
            full_bytes: self.store.disk_full_mb.saturating_mul(1 << 20),
        }
    }

    /// The set-point ranges.
    pub fn limits(&self) -> Limits {
        let l = &self.limits;
        Limits {
            residual_min_ma: l.residual_min_ma,
            residual_max_ma: l.residual_max_ma,
            temp_min_dc: l.temp_min_dc,
            temp_max_dc: l.temp_max_dc,
            alarm_delay_max_s: l.alarm_delay_max_s,
        }
    }
}

/// 1-based line and column of a byte offset.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// A `[[webhooks]]` entry: an http(s) URL with a host, and, if its host is an IP literal, one
/// its address policy allows (a name is checked each time it is resolved). Errors show the URL
/// redacted (its path may hold a token).
fn check_webhook(w: &WebhookConfig) -> Result<(), String> {
    use crate::notify::webhook::{address, redact_url};
    let url = reqwest::Url::parse(&w.url)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
        .ok_or_else(|| {
            format!(
                "[[webhooks]] url {} must be an http:// or https:// URL with a host",
                redact_url(&w.url)
            )
        })?;
    address::url_allowed(&url, w.address_policy())
        .map_err(|r| format!("[[webhooks]] url {}: {r}", redact_url(&w.url)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("firegrid.toml"))
    }

    #[test]
    fn the_default_text_is_the_default() {
        assert_eq!(parse(DEFAULT_CONFIG).unwrap(), Config::default());
        assert_eq!(parse("").unwrap(), Config::default());
        assert_eq!(Config::default().engine_config(), EngineConfig::default());
        assert_eq!(Config::default().limits(), Limits::GB);
    }

    #[test]
    fn metrics_access_follows_the_listen_address_unless_set() {
        let c = parse("").unwrap();
        assert!(c.api.metrics_open(), "loopback: open");
        let c = parse("[api]\nlisten = \"0.0.0.0:8080\"\n").unwrap();
        assert!(!c.api.metrics_open(), "any address: a token");
        let c = parse("[api]\nlisten = \"0.0.0.0:8080\"\nmetrics = \"open\"\n").unwrap();
        assert!(c.api.metrics_open());
        let c = parse("[api]\nmetrics = \"token\"\n").unwrap();
        assert!(!c.api.metrics_open());
        let err = parse("[api]\nmetrics = \"public\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("firegrid.toml:2:11: "), "{err}");
        assert!(err.contains("`auto`, `open`"), "{err}");
    }

    proptest::proptest! {
        /// Whatever text is in the file, parsing answers (a configuration or an error with a
        /// line) and never panics; a valid `[api]` section round-trips its values.
        #[test]
        fn any_text_parses_or_is_refused_without_panic(text in "(\\PC|\n){0,200}") {
            let _ = parse(&text);
        }

        #[test]
        fn api_sections_parse_to_their_values(
            port in 0u16..,
            loopback in proptest::bool::ANY,
            metrics in proptest::sample::select(vec!["auto", "open", "token"]),
            junk in "[a-z_]{0,8}",
        ) {
            let host = if loopback { "127.0.0.1" } else { "0.0.0.0" };
            let text = format!("[api]\nlisten = \"{host}:{port}\"\nmetrics = \"{metrics}\"\n");
            let c = parse(&text).expect("a valid [api] section");
            proptest::prop_assert_eq!(c.api.listen.port(), port);
            let open = match metrics { "open" => true, "token" => false, _ => loopback };
            proptest::prop_assert_eq!(c.api.metrics_open(), open);
            // A key that is not one is refused, naming its line.
            let text = format!("[api]\nlisten = \"{host}:{port}\"\nx{junk} = 1\n");
            let err = parse(&text).expect_err("an unknown key").to_string();
            proptest::prop_assert!(err.starts_with("firegrid.toml:3:1: "), "{}", err);
        }
    }

    #[test]
    fn unknown_keys_are_refused_with_their_line() {
        let err =
            parse("data_dir = \"x\"\n[broker]\nmode = \"embedded\"\nlisten_addr = \"1.2.3.4:1\"\n")
                .unwrap_err()
                .to_string();
        assert!(
            err.starts_with("firegrid.toml:4:1: unknown field `listen_addr`"),
            "{err}"
        );
    }

    #[test]
    fn wrong_types_and_values_point_at_the_line() {
        let err = parse("[api]\nlisten = \"nowhere\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("firegrid.toml:2:10: "), "{err}");
        let err = parse("[broker]\nmode = \"cloud\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("firegrid.toml:2:8: unknown variant `cloud`"),
            "{err}"
        );
        let err = parse("[broker.managed]\nnice = -21\n")
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "firegrid.toml: [broker.managed] nice -21 must be -20..=19 (lower runs first)"
        );
        let err = parse("[engine]\nescalation_s = [600, 120]\n")
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "firegrid.toml: [engine] escalation_s must increase (e.g. [120, 600, 1800])"
        );
    }

    #[test]
    fn limits_wider_than_the_gb_ranges_are_refused_with_the_gb_text() {
        for (text, says) in [
            ("[limits]\nresidual_max_ma = 5000\n", "outside 20..1000 mA"),
            ("[limits]\nresidual_min_ma = 10\n", "GB 14287.2"),
            (
                "[limits]\ntemp_max_dc = 1500\n",
                "(55–140 °C), the temperature set-point range of GB 14287.3",
            ),
            ("[limits]\ntemp_min_dc = 400\n", "GB 14287.3"),
            (
                "[limits]\nalarm_delay_max_s = 60\n",
                "within 30 s of the value reaching the set-point",
            ),
        ] {
            let err = parse(text).expect_err(text).to_string();
            assert!(err.contains(says), "{text}: {err}");
            assert!(
                err.contains("firegrid.toml"),
                "{text}: names the file: {err}"
            );
        }
        // Narrower than the GB ranges is fine.
        let c =
            parse("[limits]\nresidual_min_ma = 100\nresidual_max_ma = 500\ntemp_max_dc = 1000\n")
                .expect("narrower limits");
        assert_eq!(c.limits.residual_max_ma, 500);
    }

    #[test]
    fn webhooks_are_checked() {
        let c =
            parse("[[webhooks]]\nurl = \"https://sms.example/a\"\nsecret_env = \"S\"\n").unwrap();
        assert_eq!(c.webhooks[0].url, "https://sms.example/a");
        let err = parse("[[webhooks]]\nurl = \"ftp://x/t0ken\"\n")
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "firegrid.toml: [[webhooks]] url ftp://x/… must be an http:// or https:// URL with \
             a host"
        );
        assert!(!c.webhooks[0].allow_private);
        // Loopback, private, link-local literals only when allowed; a name is checked later.
        for url in [
            "http://127.0.0.1:8080/t0ken",
            "http://[::ffff:10.0.0.1]/",
            "http://169.254.169.254/",
        ] {
            let err = parse(&format!("[[webhooks]]\nurl = \"{url}\"\n"))
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("refused for webhooks") && !err.contains("t0ken"),
                "{err}"
            );
            let ok = parse(&format!(
                "[[webhooks]]\nurl = \"{url}\"\nallow_private = true\n"
            ))
            .unwrap();
            assert!(ok.webhooks[0].allow_private);
        }
        parse("[[webhooks]]\nurl = \"http://localhost/x\"\n").unwrap();
        let err = parse("[[webhooks]]\nurl = \"http://x\"\nsecret = \"inline\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("firegrid.toml:3:1: unknown field `secret`"),
            "{err}"
        );
    }

    #[test]
    fn rollups_only_needs_the_tsdb() {
        assert_eq!(Config::default().store.local_readings, LocalReadings::Raw);
        let err = parse("[store]\nlocal_readings = \"rollups\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("needs [tsdb] on"), "{err}");
        let c = parse(
            "[store]\nlocal_readings = \"rollups\"\n[tsdb]\nenabled = true\n\
             url = \"http://127.0.0.1:8086\"\ntoken_env = \"T\"\n",
        )
        .unwrap();
        assert_eq!(c.store.local_readings, LocalReadings::Rollups);
        assert!(parse("[store]\nlocal_readings = \"some\"\n").is_err());
    }

    #[test]
    fn the_tsdb_section_is_checked() {
        let c =
            parse("[tsdb]\nenabled = true\nurl = \"http://127.0.0.1:8086\"\ntoken_env = \"T\"\n")
                .unwrap();
        assert!(c.tsdb.is_active());
        assert!(!Config::default().tsdb.is_active());
        let err = parse("[tsdb]\nenabled = true\nurl = \"http://x\"\nbatch_size = 0\n")
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "firegrid.toml: [tsdb] batch_size must be 1–100000 readings"
        );
        let err = parse("[tsdb]\ntoken = \"inline\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("firegrid.toml:2:1: unknown field `token`"),
            "{err}"
        );
        let err = parse("[tsdb]\nfsync = \"sometimes\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("firegrid.toml:2:9: unknown variant `sometimes`"),
            "{err}"
        );
    }

    #[test]
    fn modbus_buses_are_checked_naming_the_key() {
        let c = parse(
            "[[modbus.tcp]]\naddress = \"127.0.0.1:502\"\ndevices = [{ id = \"hz-1\", slave = 3 }]\n",
        )
        .unwrap();
        assert_eq!(c.modbus.tcp[0].devices[0].profile, "typical-rcm-4t");
        assert_eq!(c.modbus.tcp[0].devices[0].interval_ms, 5000);
        let err =
            parse("[[modbus.rtu]]\npath = \"/dev/x\"\ndevices = [{ id = \"hz-1\", slave = 0 }]\n")
                .unwrap_err()
                .to_string();
        assert_eq!(
            err,
            "firegrid.toml: [[modbus.rtu]] devices: \"hz-1\" slave 0 is not 1-247"
        );
        let err = parse("[[modbus.tcp]]\naddress = \"h:1\"\ndevices = [{ id = \"hz-1\", slave = 1, profile = \"acme\" }]\n")
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "firegrid.toml: [modbus] device \"hz-1\": no profile \"acme\" (loaded: typical-rcm-4t)"
        );
        let err = parse("[modbus]\nprofiles = [\"/nonexistent/acme.toml\"]\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("firegrid.toml: [modbus] profiles: Modbus profile /nonexistent/acme.toml: cannot read: "),
            "{err}"
        );
        let err = parse("[modbus]\ntimeout = 5\n").unwrap_err().to_string();
        assert!(
            err.starts_with("firegrid.toml:2:1: unknown field `timeout`"),
            "{err}"
        );
    }

    #[test]
    fn a_missing_file_says_which() {
        let err = Config::load(Path::new("/nonexistent/firegrid.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("cannot read /nonexistent/firegrid.toml: "),
            "{err}"
        );
    }
}
