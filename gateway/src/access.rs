//! Who may do what: people's [`Role`]s. The route × role matrix is the API's policy table
//! (`api::access`), the users and tokens are in the store (`store::users`); docs/security.md
//! explains both.

pub mod cli;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// What a person may do: see docs/security.md for the route × role matrix.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Everything, including people and tokens.
    Admin,
    /// The monitoring centre: watches alarms, moves tickets, sends commands, keeps the worker
    /// list.
    Operator,
    /// Acts on the alarms of their grid cell: moves tickets, sends commands.
    GridWorker,
    /// Commissions sites, rooms, circuits and devices; never acknowledges tickets.
    Installer,
    /// Utility staff: read everything in their area, keep sites' supply trees (circuits).
    Utility,
    /// Reads only.
    Viewer,
}

impl Role {
    /// Every role, in the order of the docs' matrix.
    pub const ALL: [Self; 6] = [
        Self::Admin,
        Self::Operator,
        Self::GridWorker,
        Self::Installer,
        Self::Utility,
        Self::Viewer,
    ];

    /// Its name in the API, the CLI and the database.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Operator => "operator",
            Self::GridWorker => "grid_worker",
            Self::Installer => "installer",
            Self::Utility => "utility",
            Self::Viewer => "viewer",
        }
    }

    /// Whether a user of this role may be scoped to the whole city (no area).
    pub const fn may_be_city_wide(self) -> bool {
        matches!(self, Self::Admin | Self::Operator)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A role name that is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role {0:?}: roles are admin, operator, grid_worker, installer, utility, viewer")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;
    fn from_str(s: &str) -> Result<Self, UnknownRole> {
        Self::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| UnknownRole(s.chars().take(64).collect()))
    }
}
