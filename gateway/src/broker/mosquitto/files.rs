//! What Mosquitto is told: its configuration, password file and ACL, as pure functions of the
//! settings and the accounts (no I/O here; [`super::supervisor`] writes them).
//!
//! The rules (docs/security.md):
//! - no anonymous client; a client's id is its username (`use_username_as_clientid`), so no
//!   client can take over another's session, the gateway's included;
//! - a device (username = its id) may publish only `firegrid/v1/dev/{id}/{telemetry,event,status}`
//!   and receive only its own `config`, `cmd` and `ack`;
//! - the gateway's accounts (usernames with a `.`, which no device id has) may do everything
//!   under `firegrid/`;
//! - a person's token account (`token.{id}`) may receive the alert topics of the areas in its
//!   scope (a grid worker's cell, an operator's street), or all of them (an operator of the
//!   whole city), or read everything (an administrator); nobody but the gateway publishes
//!   there.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crate::secret::SecretHash;

/// One MQTT account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// The username, which is also the client id.
    pub username: String,
    /// The password's hash.
    pub hash: SecretHash,
    /// What it may do.
    pub grant: Grant,
}

/// What an account may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grant {
    /// Everything under `firegrid/`: the gateway's own links.
    Gateway,
    /// Its own device topics only (the `pattern` rules; the username is the device id).
    Device,
    /// Read the alerts of an area subtree: `firegrid/v1/alert/{area}` and the workers' topics
    /// `firegrid/v1/people/{area}/#` of every area of it, and the area tree's topics below its
    /// top (`firegrid/v1/area/{path}/#`, `path` the ids from the root down to the subtree's top).
    Alerts {
        /// Every area of the subtree.
        areas: Vec<String>,
        /// The ids from the root to the subtree's top, `/`-separated.
        path: String,
    },
    /// Read every alert topic and the gateway's system state (`firegrid/v1/system/#`).
    AllAlerts,
    /// A city-wide installer: their own test alerts in every grid cell
    /// (`firegrid/v1/people/+/installer/{user}`) and the commissioned devices' alerts
    /// (`firegrid/v1/commissioning/#`), nothing of the devices in service.
    Installer {
        /// The installer's user name (`[A-Za-z0-9._@-]`: no topic wildcard).
        user: String,
    },
    /// Read everything under `firegrid/` (an administrator watching devices and alerts).
    Monitor,
    /// Connect, and nothing else (the gateway's probe of its own broker).
    ConnectOnly,
}

/// Mosquitto's password file: `username:hash` per line, sorted, so that the same accounts
/// always give the same bytes.
#[must_use]
pub fn password_file(accounts: &[Account]) -> String {
    let mut lines: Vec<String> = accounts
        .iter()
        .map(|a| format!("{}:{}\n", a.username, a.hash.as_str()))
        .collect();
    lines.sort_unstable();
    lines.concat()
}

/// The device rules: `%u` is the username, which is the device id.
const DEVICE_PATTERNS: &str = "\
pattern write firegrid/v1/dev/%u/telemetry
pattern write firegrid/v1/dev/%u/event
pattern write firegrid/v1/dev/%u/status
pattern read firegrid/v1/dev/%u/config
pattern read firegrid/v1/dev/%u/cmd
pattern read firegrid/v1/dev/%u/ack
";

/// Mosquitto's ACL file. `pattern` lines apply to every account; a device's own topics are the
/// only ones they open, and the username patterns of the other accounts (they contain a `.`)
/// are never device ids, so the gateway never reads them as one.
#[must_use]
pub fn acl_file(accounts: &[Account]) -> String {
    let mut out = String::from("# Written by firegrid: do not edit (docs/security.md).\n");
    out.push_str(DEVICE_PATTERNS);
    let mut others: Vec<&Account> = accounts
        .iter()
        .filter(|a| a.grant != Grant::Device)
        .collect();
    others.sort_unstable_by(|a, b| a.username.cmp(&b.username));
    for a in others {
        // Infallible: writing to a String.
        let _ = writeln!(out, "\nuser {}", a.username);
        match &a.grant {
            Grant::Gateway => out.push_str("topic readwrite firegrid/#\n"),
            Grant::AllAlerts => out.push_str(
                "topic read firegrid/v1/alert/#\ntopic read firegrid/v1/people/#\n\
                 topic read firegrid/v1/area/#\ntopic read firegrid/v1/system/#\n",
            ),
            Grant::Monitor => out.push_str("topic read firegrid/#\n"),
            Grant::Installer { user } => {
                let _ = writeln!(out, "topic read firegrid/v1/people/+/installer/{user}");
                out.push_str("topic read firegrid/v1/commissioning/#\n");
            }
            Grant::Alerts { areas, path } => {
                for g in areas {
                    let _ = writeln!(out, "topic read firegrid/v1/alert/{g}");
                }
                for g in areas {
                    let _ = writeln!(out, "topic read firegrid/v1/people/{g}/#");
                }
                let _ = writeln!(out, "topic read firegrid/v1/area/{path}/#");
            }
            Grant::Device | Grant::ConnectOnly => {}
        }
    }
    out
}

/// A TLS listener's files (PEM).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate chain.
    pub cert_file: PathBuf,
    /// The private key.
    pub key_file: PathBuf,
}

/// The limits that stop one client from exhausting the broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The largest packet accepted, bytes; a larger one closes that client's connection.
    pub max_packet_bytes: u32,
    /// Messages queued for one offline or slow client before further ones are dropped
    /// (Mosquitto drops silently: events are protected by the end-to-end ack).
    pub max_queued_messages: u32,
    /// Bytes queued for one client at most (0: no byte limit).
    pub max_queued_bytes: u64,
    /// Unacknowledged QoS 1 messages in flight to one client.
    pub max_inflight_messages: u16,
    /// A persistent session not resumed for this long is removed, hours (at least 1).
    pub session_expiry_h: u32,
    /// Connections per listener at most (0: no limit).
    pub max_connections: u32,
    /// The longest keep-alive a client may ask for, s.
    pub max_keepalive_s: u16,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_packet_bytes: 8192,
            max_queued_messages: 100_000,
            max_queued_bytes: 0,
            max_inflight_messages: 100,
            session_expiry_h: 7 * 24,
            max_connections: 0,
            max_keepalive_s: 900,
        }
    }
}

/// Everything the configuration file says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfFile<'a> {
    /// Plain-TCP listener.
    pub listen: SocketAddr,
    /// TLS listener, if any.
    pub listen_tls: Option<(SocketAddr, &'a TlsFiles)>,
    /// The broker's directory: password file, ACL, persistence.
    pub dir: &'a Path,
    /// Limits.
    pub limits: Limits,
}

/// The password file's name in the broker's directory.
pub const PASSWORD_FILE: &str = "passwd";
/// The ACL file's name in the broker's directory.
pub const ACL_FILE: &str = "acl";

/// Mosquitto's configuration file.
#[must_use]
pub fn conf_file(c: &ConfFile<'_>) -> String {
    let l = &c.limits;
    let dir = c.dir.display();
    let mut out = format!(
        "# Written by firegrid at every start: do not edit (docs/security.md).\n\
         per_listener_settings false\n\
         allow_anonymous false\n\
         password_file {dir}/{PASSWORD_FILE}\n\
         acl_file {dir}/{ACL_FILE}\n\
         persistence true\n\
         persistence_location {dir}/\n\
         autosave_interval 60\n\
         persistent_client_expiration {}h\n\
         set_tcp_nodelay true\n\
         max_packet_size {}\n\
         max_queued_messages {}\n\
         max_queued_bytes {}\n\
         max_inflight_messages {}\n\
         max_keepalive {}\n\
         # Started as root, Mosquitto would switch to its own user, which cannot read the data\n\
         # directory; as any other user this line does nothing.\n\
         user root\n\
         log_dest stderr\n\
         log_type error\nlog_type warning\nlog_type notice\nlog_type information\n\
         connection_messages true\n\
         log_timestamp false\n",
        l.session_expiry_h.max(1),
        l.max_packet_bytes,
        l.max_queued_messages,
        l.max_queued_bytes,
        l.max_inflight_messages,
        l.max_keepalive_s,
    );
    let max_connections = if l.max_connections == 0 {
        "-1".to_string()
    } else {
        l.max_connections.to_string()
    };
    let _ = write!(
        out,
        "\nlistener {} {}\nmax_connections {max_connections}\nuse_username_as_clientid true\n",
        c.listen.port(),
        c.listen.ip()
    );
    if let Some((addr, tls)) = c.listen_tls {
        let _ = write!(
            out,
            "\nlistener {} {}\nmax_connections {max_connections}\nuse_username_as_clientid true\n\
             certfile {}\nkeyfile {}\n",
            addr.port(),
            addr.ip(),
            tls.cert_file.display(),
            tls.key_file.display(),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;

    fn account(name: &str, grant: Grant) -> Account {
        let hash = Secret::from_plaintext(name)
            .hash()
            .expect("the OS has randomness");
        Account {
            username: name.into(),
            hash,
            grant,
        }
    }

    #[test]
    fn the_password_file_lists_every_account_sorted() {
        let a = [
            account("hz-2", Grant::Device),
            account("firegrid.gateway", Grant::Gateway),
            account("hz-1", Grant::Device),
        ];
        let f = password_file(&a);
        let names: Vec<&str> = f
            .lines()
            .map(|l| l.split_once(':').expect("user:hash").0)
            .collect();
        assert_eq!(names, ["firegrid.gateway", "hz-1", "hz-2"]);
        assert!(f.lines().all(|l| l.contains(":$6$")));
    }

    #[test]
    fn the_acl_opens_devices_their_own_topics_and_people_their_alerts() {
        let a = [
            account("hz-1", Grant::Device),
            account("firegrid.gateway", Grant::Gateway),
            account(
                "token.w1",
                Grant::Alerts {
                    areas: vec!["g-a".into(), "g-b".into()],
                    path: "d/s/g-a".into(),
                },
            ),
            account("token.op", Grant::AllAlerts),
        ];
        let acl = acl_file(&a);
        assert!(acl.contains("pattern write firegrid/v1/dev/%u/event\n"));
        assert!(acl.contains("pattern read firegrid/v1/dev/%u/ack\n"));
        assert!(!acl.contains("user hz-1"), "devices need no user section");
        assert!(acl.contains("user firegrid.gateway\ntopic readwrite firegrid/#\n"));
        assert!(acl.contains(
            "user token.w1\ntopic read firegrid/v1/alert/g-a\ntopic read firegrid/v1/alert/g-b\n\
             topic read firegrid/v1/people/g-a/#\ntopic read firegrid/v1/people/g-b/#\n\
             topic read firegrid/v1/area/d/s/g-a/#\n"
        ));
        assert!(acl.contains(
            "user token.op\ntopic read firegrid/v1/alert/#\ntopic read firegrid/v1/people/#\n\
             topic read firegrid/v1/area/#\ntopic read firegrid/v1/system/#\n"
        ));
        // No device rule lets anyone write config, cmd, ack or alert topics.
        for l in DEVICE_PATTERNS.lines() {
            assert!(
                l.starts_with("pattern read") || !l.ends_with("config"),
                "{l}"
            );
            assert!(!l.contains("alert"), "{l}");
        }
    }

    #[test]
    fn the_conf_file_refuses_anonymous_clients_and_sets_the_limits() {
        let dir = Path::new("/var/lib/firegrid/mosquitto");
        let tls = TlsFiles {
            cert_file: "/etc/firegrid/cert.pem".into(),
            key_file: "/etc/firegrid/key.pem".into(),
        };
        let c = conf_file(&ConfFile {
            listen: "127.0.0.1:1883".parse().expect("addr"),
            listen_tls: Some(("0.0.0.0:8883".parse().expect("addr"), &tls)),
            dir,
            limits: Limits::default(),
        });
        for line in [
            "allow_anonymous false",
            "use_username_as_clientid true",
            "password_file /var/lib/firegrid/mosquitto/passwd",
            "acl_file /var/lib/firegrid/mosquitto/acl",
            "max_packet_size 8192",
            "persistent_client_expiration 168h",
            "listener 1883 127.0.0.1",
            "listener 8883 0.0.0.0",
            "certfile /etc/firegrid/cert.pem",
        ] {
            assert!(c.lines().any(|l| l == line), "missing {line:?} in\n{c}");
        }
        assert!(!c.contains("allow_anonymous true"));
        // A listener setting before the first listener would open a default one on 1883.
        let first_listener = c.find("\nlistener ").expect("a listener");
        assert!(!c[..first_listener].contains("use_username_as_clientid"));
        assert_eq!(
            c.matches("use_username_as_clientid true").count(),
            2,
            "one per listener"
        );
    }
}
