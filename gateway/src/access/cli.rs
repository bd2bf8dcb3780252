//! `firegrid user …`: people and tokens from the command line, on the data directory — also
//! before the gateway's first start (the store is created if it is not there), and while it
//! runs (SQLite lets a second process write; the gateway sees the change at the next request).

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};

use firegrid_protocols::GridId;

use super::Role;
use crate::config::Config;
use crate::store::{Actor, Store};

/// The store's file in the data directory (as the gateway opens it).
const STORE_FILE: &str = "firegrid.db";

/// Where the data directory is: a configuration file's `data_dir`, overridden by `--data-dir`.
#[derive(Debug, Clone, Args)]
pub struct DataDirArgs {
    /// Configuration file (TOML) whose `data_dir` to use.
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// The data directory (overrides the configuration's).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

/// `firegrid user …`.
#[derive(Debug, Clone, Subcommand)]
pub enum UserCmd {
    /// Add a user and print their first API token (shown once).
    Add {
        /// The user name (1-64 of A-Z a-z 0-9 . _ @ -), written to the audit log.
        name: String,
        /// admin, operator, grid_worker, installer, utility or viewer.
        #[arg(long)]
        role: String,
        /// The area whose subtree they see and act in (required but for admin and operator,
        /// who are city-wide without it).
        #[arg(long)]
        area: Option<String>,
        /// Where the data directory is.
        #[command(flatten)]
        dir: DataDirArgs,
    },
    /// Make another token for a user and print it (to rotate: then revoke the old one).
    Token {
        /// The user name.
        name: String,
        /// Where the data directory is.
        #[command(flatten)]
        dir: DataDirArgs,
    },
    /// List users and their tokens (never a secret).
    List {
        /// Where the data directory is.
        #[command(flatten)]
        dir: DataDirArgs,
    },
    /// Revoke a token by its id (the part before the dot).
    Revoke {
        /// The token id.
        token_id: String,
        /// Where the data directory is.
        #[command(flatten)]
        dir: DataDirArgs,
    },
}

/// Why a `firegrid user` command failed: said so a person knows what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CliError {
    /// The configuration could not be read.
    #[error("{0}")]
    Config(#[from] crate::config::ConfigError),
    /// A bad argument.
    #[error("{0}")]
    Usage(String),
    /// The data directory could not be made.
    #[error("cannot create the data directory {path}: {source}: check the path and permissions")]
    DataDir {
        /// Which.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The store refused.
    #[error("{0}")]
    Store(#[from] crate::store::StoreError),
}

fn open(dir: &DataDirArgs) -> Result<Store, CliError> {
    let data_dir = match &dir.data_dir {
        Some(d) => d.clone(),
        None => match &dir.config {
            Some(file) => Config::load(file)?.data_dir,
            None => Config::default().data_dir,
        },
    };
    std::fs::create_dir_all(&data_dir).map_err(|source| CliError::DataDir {
        path: data_dir.clone(),
        source,
    })?;
    let (store, _) = Store::open(data_dir.join(STORE_FILE))?;
    Ok(store)
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Who the command line acts as in the audit log.
const CLI_ACTOR: &str = "cli";

/// Runs a `firegrid user` command; returns what to print.
///
/// # Errors
/// [`CliError`], with what to do.
pub fn run(cmd: &UserCmd) -> Result<String, CliError> {
    match cmd {
        UserCmd::Add {
            name,
            role,
            area,
            dir,
        } => {
            let role: Role = role
                .parse()
                .map_err(|e| CliError::Usage(format!("--role: {e}")))?;
            let area = area
                .as_deref()
                .map(GridId::new)
                .transpose()
                .map_err(|e| CliError::Usage(format!("--area: {e}")))?;
            if area.is_none() && !role.may_be_city_wide() {
                return Err(CliError::Usage(format!(
                    "a {role} needs --area AREA (the grid cell or higher area they work in): \
                     only admin and operator may be city-wide"
                )));
            }
            let store = open(dir)?;
            let (user, token) = store
                .add_user(name, role, area.as_ref(), Actor::new(CLI_ACTOR, now_ms()))
                .map_err(|e| match e {
                    crate::store::StoreError::AlreadyExists { .. } => CliError::Usage(format!(
                        "{e}: make another token for them with `firegrid user token {name}`"
                    )),
                    other => CliError::Store(other),
                })?;
            let mut out = format!(
                "added {} ({}, {})\n",
                user.name,
                user.role,
                scope_text(user.area_id.as_ref())
            );
            out.push_str(&shown(&token.token));
            if let Some(a) = &user.area_id
                && store.area_path(a).is_err()
            {
                out.push_str(&format!(
                    "note: area {a} does not exist yet: {} reaches nothing until it is created\n",
                    user.name
                ));
            }
            Ok(out)
        }
        UserCmd::Token { name, dir } => {
            let store = open(dir)?;
            let token = store.issue_token(name, Actor::new(CLI_ACTOR, now_ms()))?;
            Ok(shown(&token.token))
        }
        UserCmd::List { dir } => {
            let store = open(dir)?;
            let mut out = String::new();
            let tokens = store.tokens(None)?;
            for u in store.users()? {
                out.push_str(&format!(
                    "{} ({}, {})\n",
                    u.name,
                    u.role,
                    scope_text(u.area_id.as_ref())
                ));
                for t in tokens.iter().filter(|t| t.user == u.name) {
                    out.push_str(&format!(
                        "  token {} made {} ms by {}{}\n",
                        t.id,
                        t.created_ms,
                        t.created_by,
                        t.revoked_ms
                            .map(|r| format!(", revoked {r} ms"))
                            .unwrap_or_default()
                    ));
                }
            }
            Ok(out)
        }
        UserCmd::Revoke { token_id, dir } => {
            let store = open(dir)?;
            let t = store.revoke_token(token_id, Actor::new(CLI_ACTOR, now_ms()))?;
            Ok(format!("revoked token {} of {}\n", t.id, t.user))
        }
    }
}

fn scope_text(area: Option<&GridId>) -> String {
    area.map_or_else(|| "the whole city".to_string(), |a| format!("area {a}"))
}

fn shown(token: &crate::secret::Secret) -> String {
    format!(
        "token (shown once; send it as `Authorization: Bearer TOKEN`):\n{}\n",
        token.expose()
    )
}

/// The path of the store in `data_dir` (for tests and tools).
pub fn store_path(data_dir: &Path) -> PathBuf {
    data_dir.join(STORE_FILE)
}
