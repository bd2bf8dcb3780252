//! `[broker]` of the configuration: the managed Mosquitto (default) or an external broker
//! (its keys and defaults are documented in [`crate::config::DEFAULT_CONFIG`]).

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

use super::client::ClientConfig;
use super::mosquitto::{Limits, MANAGED_BROKER_NICE, ManagedConfig, TlsFiles};

/// Managed or external.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BrokerMode {
    /// Mosquitto started and supervised by the gateway.
    Managed,
    /// A broker run by the operator.
    External,
}

/// `[broker]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BrokerConfig {
    /// Managed or external.
    pub mode: BrokerMode,
    /// The gateway connection's client id.
    pub client_id: String,
    /// Shared-subscription group; empty for none.
    pub shared_group: String,
    /// The managed broker.
    pub managed: ManagedSection,
    /// An external broker.
    pub external: ExternalSection,
}

/// `[broker.managed]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ManagedSection {
    /// Plain listener.
    pub listen: SocketAddr,
    /// TLS listener; empty for none.
    pub listen_tls: String,
    /// PEM certificate chain of the TLS listener.
    pub tls_cert_file: PathBuf,
    /// PEM private key of the TLS listener.
    pub tls_key_file: PathBuf,
    /// The mosquitto binary.
    pub mosquitto: PathBuf,
    /// Largest packet, bytes.
    pub max_packet_bytes: u32,
    /// Queued messages per client.
    pub max_queued_messages: u32,
    /// In-flight QoS 1 messages per client.
    pub max_inflight_messages: u16,
    /// Session expiry, hours.
    pub session_expiry_h: u32,
    /// Connections per listener; 0 for no limit.
    pub max_connections: u32,
    /// Longest keep-alive, s.
    pub max_keepalive_s: u16,
    /// Mosquitto's nice value (−20 to 19; 0: the gateway's own).
    pub nice: i8,
}

/// `[broker.external]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExternalSection {
    /// Host.
    pub host: String,
    /// Port.
    pub port: u16,
    /// TLS to the broker.
    pub tls: bool,
    /// CA certificates (PEM) trusted for the broker's certificate.
    pub tls_ca_file: PathBuf,
    /// Environment variable with the username; empty for none.
    pub username_env: String,
    /// Environment variable with the password; empty for none.
    pub password_env: String,
    /// Where to write Mosquitto's password file; empty: firegrid writes none.
    pub password_file: PathBuf,
    /// Where to write Mosquitto's ACL file.
    pub acl_file: PathBuf,
    /// Run after the files changed (program and arguments; no shell).
    pub reload_command: Vec<String>,
    /// The files' permission bits, octal (e.g. "0640": Mosquitto reads them as another user of
    /// their group). Never world-readable.
    pub file_mode: String,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        Self {
            mode: BrokerMode::Managed,
            client_id: "firegrid.gateway".into(),
            shared_group: String::new(),
            managed: ManagedSection::default(),
            external: ExternalSection::default(),
        }
    }
}

impl Default for ManagedSection {
    fn default() -> Self {
        let l = Limits::default();
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 1883)),
            listen_tls: String::new(),
            tls_cert_file: PathBuf::new(),
            tls_key_file: PathBuf::new(),
            mosquitto: PathBuf::from("mosquitto"),
            max_packet_bytes: l.max_packet_bytes,
            max_queued_messages: l.max_queued_messages,
            max_inflight_messages: l.max_inflight_messages,
            session_expiry_h: l.session_expiry_h,
            max_connections: l.max_connections,
            max_keepalive_s: l.max_keepalive_s,
            nice: MANAGED_BROKER_NICE,
        }
    }
}

impl Default for ExternalSection {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".into(),
            port: 1883,
            tls: false,
            tls_ca_file: PathBuf::new(),
            username_env: String::new(),
            password_env: String::new(),
            password_file: PathBuf::new(),
            acl_file: PathBuf::new(),
            reload_command: Vec::new(),
            file_mode: "0640".into(),
        }
    }
}

impl BrokerConfig {
    /// Checks what the types cannot.
    ///
    /// # Errors
    /// What is wrong, naming the key.
    pub fn check(&self) -> Result<(), String> {
        if self.client_id.is_empty() {
            return Err("[broker] client_id must not be empty".into());
        }
        if self.mode == BrokerMode::Managed && !self.client_id.contains('.') {
            return Err(format!(
                "[broker] client_id {:?} must contain a \".\" with the managed broker: device \
                 ids never do, so no device can log in as the gateway (e.g. \"firegrid.gateway\")",
                self.client_id
            ));
        }
        let m = &self.managed;
        let client_max = ClientConfig::new("", 0, "").max_packet_size;
        if m.max_packet_bytes as usize > client_max || m.max_packet_bytes < 1024 {
            return Err(format!(
                "[broker.managed] max_packet_bytes {} must be 1024..={client_max} (what the \
                 gateway's client accepts: a larger uplink must be refused by the broker)",
                m.max_packet_bytes
            ));
        }
        if !(-20..=19).contains(&m.nice) {
            return Err(format!(
                "[broker.managed] nice {} must be -20..=19 (lower runs first)",
                m.nice
            ));
        }
        if !m.listen_tls.is_empty() {
            m.listen_tls.parse::<SocketAddr>().map_err(|_| {
                format!(
                    "[broker.managed] listen_tls {:?} is not an address (e.g. \"0.0.0.0:8883\")",
                    m.listen_tls
                )
            })?;
            if m.tls_cert_file.as_os_str().is_empty() || m.tls_key_file.as_os_str().is_empty() {
                return Err(
                    "[broker.managed] listen_tls needs tls_cert_file and tls_key_file (PEM)".into(),
                );
            }
        }
        let e = &self.external;
        if e.tls && e.tls_ca_file.as_os_str().is_empty() {
            return Err("[broker.external] tls needs tls_ca_file (PEM CA certificates)".into());
        }
        match u32::from_str_radix(e.file_mode.trim_start_matches("0o"), 8) {
            Ok(m) if m & 0o007 == 0 && m & 0o400 != 0 => {}
            _ => {
                return Err(format!(
                    "[broker.external] file_mode {:?} must be octal permission bits the owner \
                     can read and others cannot (e.g. \"0640\" or \"0600\")",
                    e.file_mode
                ));
            }
        }
        if e.password_file.as_os_str().is_empty() != e.acl_file.as_os_str().is_empty() {
            return Err("[broker.external] password_file and acl_file go together".into());
        }
        if !e.password_file.as_os_str().is_empty() && e.password_env.is_empty() {
            return Err(
                "[broker.external] password_file needs password_env: the gateway's own \
                 accounts are written with that password"
                    .into(),
            );
        }
        Ok(())
    }

    /// The managed broker's settings, its files in `dir`.
    #[must_use]
    pub fn managed_config(&self, dir: PathBuf) -> ManagedConfig {
        let m = &self.managed;
        ManagedConfig {
            binary: m.mosquitto.clone(),
            dir,
            listen: m.listen,
            listen_tls: m.listen_tls.parse().ok().map(|a| {
                (
                    a,
                    TlsFiles {
                        cert_file: m.tls_cert_file.clone(),
                        key_file: m.tls_key_file.clone(),
                    },
                )
            }),
            limits: Limits {
                max_packet_bytes: m.max_packet_bytes,
                max_queued_messages: m.max_queued_messages,
                max_queued_bytes: 0,
                max_inflight_messages: m.max_inflight_messages,
                session_expiry_h: m.session_expiry_h,
                max_connections: m.max_connections,
                max_keepalive_s: m.max_keepalive_s,
            },
            nice: m.nice,
        }
    }
}

impl ExternalSection {
    /// The files' permission bits ([`BrokerConfig::check`] made sure they parse).
    #[must_use]
    pub fn file_mode_bits(&self) -> u32 {
        u32::from_str_radix(self.file_mode.trim_start_matches("0o"), 8).unwrap_or(0o600)
    }
}
