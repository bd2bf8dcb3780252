//! Bringing the broker side up from `[broker]`: the managed Mosquitto (or the account files of
//! an external one), then the gateway's client logged in to it.

use std::path::Path;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::client::{Broker, BrokerError, BrokerHandle, ClientConfig, Credentials, Uplink};
use super::mosquitto::{
    Account, AccountSource, AccountsChanged, AccountsError, BrokerStats, ExternalAccounts, Grant,
    ManagedBroker, ManagedError,
};
use super::settings::{BrokerConfig, BrokerMode};
use crate::secret::{Secret, SecretError};

/// The broker side, up.
#[derive(Debug)]
pub struct Connected {
    /// The gateway's client.
    pub broker: BrokerHandle,
    /// What it receives.
    pub incoming: Uplink,
    /// The managed broker, if this gateway runs one.
    pub managed: Option<ManagedBroker>,
    /// Where devices connect (`host:port`).
    pub device_addr: String,
}

/// Why the broker side did not come up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SetupError {
    /// The managed broker did not start.
    #[error("managed broker: {0}")]
    Managed(#[from] ManagedError),
    /// The external broker's account files could not be written.
    #[error("external broker's accounts: {0}")]
    Accounts(#[from] AccountsError),
    /// The gateway's password could not be hashed.
    #[error("{0}")]
    Secret(#[from] SecretError),
    /// A credential named in the configuration is not set.
    #[error("[broker.external] {key} names the environment variable {var}, which is not set")]
    MissingEnv {
        /// The key.
        key: &'static str,
        /// The variable.
        var: String,
    },
    /// The client could not be set up.
    #[error("{0}")]
    Client(#[from] BrokerError),
    /// TLS to the external broker could not be set up.
    #[error("[broker.external] tls: {0}")]
    Tls(#[from] crate::tls::TlsError),
}

/// Starts the managed broker (or writes an external one's accounts) with the accounts of
/// `source`, then connects the gateway's client, its alarms and urgent links on `alarm_path`
/// (the alarm path's runtime) when given. `changed` is what the rest of the gateway tells when
/// accounts change.
///
/// # Errors
/// [`SetupError`].
#[allow(clippy::too_many_arguments)]
pub async fn connect(
    config: &BrokerConfig,
    data_dir: &Path,
    source: Arc<dyn AccountSource>,
    changed: AccountsChanged,
    stats: Arc<BrokerStats>,
    cancel: &CancellationToken,
    tasks: &TaskTracker,
    alarm_path: Option<&tokio::runtime::Handle>,
) -> Result<Connected, SetupError> {
    let (client, managed, device_addr) = match config.mode {
        BrokerMode::Managed => {
            let users = ClientConfig::new("", 0, &config.client_id).link_client_ids();
            let managed = ManagedBroker::start(
                config.managed_config(data_dir.join("mosquitto")),
                source,
                &users,
                changed,
                stats,
                cancel.child_token(),
                tasks,
            )
            .await?;
            let addr = managed.client_addr();
            let mut client =
                ClientConfig::new(addr.ip().to_string(), addr.port(), &config.client_id);
            client.credentials = Some(Credentials {
                username: None,
                password: managed.secret().expose().to_owned(),
            });
            let device_addr = managed.device_addr().to_string();
            (client, Some(managed), device_addr)
        }
        BrokerMode::External => {
            let e = &config.external;
            let env = |key: &'static str, var: &str| -> Result<Option<String>, SetupError> {
                if var.is_empty() {
                    return Ok(None);
                }
                std::env::var(var)
                    .map(Some)
                    .map_err(|_| SetupError::MissingEnv {
                        key,
                        var: var.to_owned(),
                    })
            };
            let username = env("username_env", &e.username_env)?;
            let password = env("password_env", &e.password_env)?;
            let mut client = ClientConfig::new(&e.host, e.port, &config.client_id);
            if e.tls {
                client.tls = Some(crate::tls::client_config(&e.tls_ca_file)?);
            }
            if e.password_file.as_os_str().is_empty() {
                client.credentials = password
                    .or(username.as_ref().map(|_| String::new()))
                    .map(|password| Credentials { username, password });
            } else {
                // Checked by BrokerConfig::check: password_file needs password_env.
                let password = password.unwrap_or_default();
                let hash = Secret::from_plaintext(password.clone()).hash()?;
                let own = client
                    .link_client_ids()
                    .into_iter()
                    .map(|username| Account {
                        username,
                        hash: hash.clone(),
                        grant: Grant::Gateway,
                    })
                    .collect();
                ExternalAccounts {
                    password_file: e.password_file.clone(),
                    acl_file: e.acl_file.clone(),
                    reload_command: e.reload_command.clone(),
                    mode: e.file_mode_bits(),
                }
                .start(source, own, changed, cancel.child_token(), tasks)?;
                client.credentials = Some(Credentials {
                    username: None,
                    password,
                });
            }
            (client, None, format!("{}:{}", e.host, e.port))
        }
    };
    let mut client = client;
    if !config.shared_group.is_empty() {
        client.share_group = Some(config.shared_group.clone());
    }
    client.alarm_path = alarm_path.cloned();
    let (broker, incoming) = Broker::connect(client, cancel.child_token())?;
    Ok(Connected {
        broker,
        incoming,
        managed,
        device_addr,
    })
}
