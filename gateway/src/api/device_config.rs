//! A device's configuration as the API shows and takes it: the protocol's config shape, checked
//! against the configured set-point ranges.

use serde::{Deserialize, Serialize};

use firegrid_protocols::channel::{MAX_CHANNELS, Quantity};
use firegrid_protocols::message::{ChannelConfig, Config, ConfigError};
use firegrid_protocols::thresholds::{
    ALARM_DELAY_DEFAULT_S, HEARTBEAT_INTERVAL_DEFAULT_S, Limits, REPORT_INTERVAL_DEFAULT_S,
    Threshold,
};

use super::error::ApiError;
use super::resource::ApiResult;

/// A device's configuration in the protocol's JSON shape (docs/protocol.md#config), as the API
/// shows and takes it. In a request, `version` is optional: when given, it must be the version
/// in force (the change is based on it); the gateway assigns the next one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ConfigBody {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) version: Option<u32>,
    #[serde(default)]
    report_interval_s: Option<u32>,
    #[serde(default)]
    heartbeat_interval_s: Option<u32>,
    #[serde(default)]
    buzzer: Option<bool>,
    #[serde(default)]
    relay_trip: Option<bool>,
    channels: Vec<ChannelBody>,
}

/// One channel of a [`ConfigBody`]: exactly one of `residual_ma` and `temp_dc`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ChannelBody {
    ch: u8,
    #[serde(default)]
    enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    residual_ma: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    temp_dc: Option<i64>,
    #[serde(default)]
    delay_s: Option<u16>,
}

impl From<&Config> for ConfigBody {
    fn from(c: &Config) -> Self {
        Self {
            version: Some(c.version),
            report_interval_s: Some(c.report_interval_s),
            heartbeat_interval_s: Some(c.heartbeat_interval_s),
            buzzer: Some(c.buzzer),
            relay_trip: Some(c.relay_trip),
            channels: c
                .channels
                .iter()
                .map(|ch| {
                    let (residual_ma, temp_dc) = match ch.threshold {
                        Threshold::ResidualMa(v) => (Some(i64::from(v)), None),
                        Threshold::TempDc(v) => (None, Some(i64::from(v))),
                    };
                    ChannelBody {
                        ch: ch.channel,
                        enabled: Some(ch.enabled),
                        residual_ma,
                        temp_dc,
                        delay_s: Some(ch.delay_s),
                    }
                })
                .collect(),
        }
    }
}

impl ConfigBody {
    /// The configuration with this version, checked against `limits` (422 with the GB text).
    pub(crate) fn to_config(&self, version: u32, limits: &Limits) -> ApiResult<Config> {
        let invalid = |e: &dyn std::fmt::Display| {
            ApiError::unprocessable(format!("invalid device configuration: {e}"))
        };
        if self.channels.len() > MAX_CHANNELS {
            return Err(invalid(&format_args!(
                "{} channels given, at most {MAX_CHANNELS}",
                self.channels.len()
            )));
        }
        let mut config = Config {
            version,
            report_interval_s: self.report_interval_s.unwrap_or(REPORT_INTERVAL_DEFAULT_S),
            heartbeat_interval_s: self
                .heartbeat_interval_s
                .unwrap_or(HEARTBEAT_INTERVAL_DEFAULT_S),
            buzzer: self.buzzer.unwrap_or(true),
            relay_trip: self.relay_trip.unwrap_or(false),
            channels: Default::default(),
        };
        for c in &self.channels {
            let (quantity, value) = match (c.residual_ma, c.temp_dc) {
                (Some(v), None) => (Quantity::ResidualCurrent, v),
                (None, Some(v)) => (Quantity::Temperature, v),
                _ => {
                    return Err(invalid(&format_args!(
                        "channel {}: give exactly one of residual_ma (mA) or temp_dc (deci-°C)",
                        c.ch
                    )));
                }
            };
            let value = i32::try_from(value).unwrap_or(if value < 0 { i32::MIN } else { i32::MAX });
            let threshold = Threshold::new(quantity, value, limits).map_err(|error| {
                invalid(&ConfigError::Threshold {
                    channel: c.ch,
                    error,
                })
            })?;
            let channel = ChannelConfig {
                channel: c.ch,
                enabled: c.enabled.unwrap_or(true),
                threshold,
                delay_s: c.delay_s.unwrap_or(ALARM_DELAY_DEFAULT_S),
            };
            if config.channels.push(channel).is_err() {
                return Err(invalid(&format_args!("at most {MAX_CHANNELS} channels")));
            }
        }
        config.validate(limits).map_err(|e| invalid(&e))?;
        Ok(config)
    }
}

/// The configuration of a device registered without one: version 1, default intervals, no
/// channels (the device's own set-points stay in force until channels are set).
pub(super) fn default_config() -> Config {
    Config {
        version: 1,
        report_interval_s: REPORT_INTERVAL_DEFAULT_S,
        heartbeat_interval_s: HEARTBEAT_INTERVAL_DEFAULT_S,
        buzzer: true,
        relay_trip: false,
        channels: Default::default(),
    }
}
