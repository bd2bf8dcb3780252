//! `[uplink.gb26875]`: the centre firegrid reports to, as a GB/T 26875.3 transmission device.
//! Its keys, documented, are in [`crate::config::DEFAULT_CONFIG`].

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use firegrid_protocols::gb26875::profile::Profile;

use super::time::CHINA_UTC_OFFSET_MIN;

/// `[uplink]`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UplinkSection {
    /// The GB/T 26875.3 centre.
    pub gb26875: Gb26875Config,
}

/// `[uplink.gb26875]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Gb26875Config {
    /// On or off.
    pub enabled: bool,
    /// The centre's `host:port`.
    pub address: String,
    /// The centre's 6-byte address.
    pub centre_address: u64,
    /// This gateway's 6-byte address.
    pub own_address: u64,
    /// The profile's name ([`Profile::by_name`]).
    pub profile: String,
    /// The zone of time tags, minutes east of UTC.
    pub utc_offset_min: i32,
    /// Confirm timeout, ms (GB/T 26875.3 §6.5: ≤ 10 s).
    pub confirm_timeout_ms: u64,
    /// Sends of one frame before the link is faulty (§6.5: 3).
    pub tries: u32,
    /// Keep-alive after this long without traffic, s.
    pub heartbeat_s: u64,
    /// Analog values this often, s (0: never).
    pub analog_interval_s: u64,
    /// Connect timeout, ms.
    pub connect_timeout_ms: u64,
    /// Longest wait between connection attempts, ms.
    pub reconnect_max_ms: u64,
    /// How firegrid's devices become the standard's components.
    pub mapping: Mapping,
}

/// `[uplink.gb26875.mapping]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Mapping {
    /// System type of the reports (table 5; 1 fire alarm system).
    pub system_type: u8,
    /// System address.
    pub system_address: u8,
    /// Device numbers given by hand (device id → number, 1–16 777 215).
    pub devices: BTreeMap<String, u32>,
}

impl Default for Gb26875Config {
    fn default() -> Self {
        Self {
            enabled: false,
            address: String::new(),
            centre_address: 0,
            own_address: 0,
            profile: "standard".into(),
            utc_offset_min: CHINA_UTC_OFFSET_MIN,
            confirm_timeout_ms: 10_000,
            tries: 3,
            heartbeat_s: 30,
            analog_interval_s: 60,
            connect_timeout_ms: 5_000,
            reconnect_max_ms: 30_000,
            mapping: Mapping::default(),
        }
    }
}

impl Default for Mapping {
    fn default() -> Self {
        Self {
            system_type: 1,
            system_address: 1,
            devices: BTreeMap::new(),
        }
    }
}

/// The largest device number (24 bits: the component address keeps a byte for the point).
pub const MAX_DEVICE_NUMBER: u32 = 0x00FF_FFFF;

impl Gb26875Config {
    /// The profile.
    ///
    /// # Errors
    /// An unknown name, with the names there are.
    pub fn profile(&self) -> Result<Profile, String> {
        Profile::by_name(&self.profile).map_err(|e| format!("[uplink.gb26875] profile: {e}"))
    }

    /// The confirm timeout.
    pub fn confirm_timeout(&self) -> Duration {
        Duration::from_millis(self.confirm_timeout_ms)
    }

    /// Checks the values.
    ///
    /// # Errors
    /// What is wrong, naming the key.
    pub fn check(&self) -> Result<(), String> {
        self.profile()?;
        if !self.enabled {
            return Ok(());
        }
        if self
            .address
            .rsplit_once(':')
            .is_none_or(|(h, p)| h.is_empty() || p.parse::<u16>().is_err())
        {
            return Err(format!(
                "[uplink.gb26875] address {:?} must be host:port, e.g. \"10.1.2.3:9000\"",
                self.address
            ));
        }
        for (key, v) in [
            ("centre_address", self.centre_address),
            ("own_address", self.own_address),
        ] {
            if v >= 1 << 48 {
                return Err(format!("[uplink.gb26875] {key} {v} does not fit 6 bytes"));
            }
        }
        if !(1..=10_000).contains(&self.confirm_timeout_ms) {
            return Err("[uplink.gb26875] confirm_timeout_ms must be 1–10000 (GB/T 26875.3 §6.5: at most 10 s)".into());
        }
        if !(1..=10).contains(&self.tries) {
            return Err("[uplink.gb26875] tries must be 1–10 (the standard recommends 3)".into());
        }
        if self.heartbeat_s == 0 {
            return Err("[uplink.gb26875] heartbeat_s must be at least 1".into());
        }
        if let Some((d, n)) = self
            .mapping
            .devices
            .iter()
            .find(|(_, n)| **n == 0 || **n > MAX_DEVICE_NUMBER)
        {
            return Err(format!(
                "[uplink.gb26875.mapping] devices: {d:?} = {n}: numbers are 1–{MAX_DEVICE_NUMBER}"
            ));
        }
        let mut seen = std::collections::BTreeSet::new();
        if let Some((d, n)) = self.mapping.devices.iter().find(|(_, n)| !seen.insert(**n)) {
            return Err(format!(
                "[uplink.gb26875.mapping] devices: {d:?} = {n} is given to two devices"
            ));
        }
        Ok(())
    }
}
