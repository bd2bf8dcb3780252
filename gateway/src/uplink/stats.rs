//! The uplink's counters for `/metrics` (rendered only when the uplink is on).
//!
//! | Metric | Type | Labels |
//! | --- | --- | --- |
//! | `firegrid_uplink_connected` | gauge | |
//! | `firegrid_uplink_link_fault` | gauge | 1 while the link to the centre is faulty |
//! | `firegrid_uplink_link_faults_total` | counter | |
//! | `firegrid_uplink_frames_total` | counter | `what` = `sent`, `confirmed`, `retransmitted`, `denied` |
//! | `firegrid_uplink_refused_total` | counter | `reason`: the centre's frames refused |
//! | `firegrid_uplink_unconfirmed_frames` | gauge | journaled frames not yet confirmed |
//! | `firegrid_uplink_clock_offset_ms` | gauge | the centre's clock minus ours at the last sync |
//! | `firegrid_uplink_duty_checks_total` | counter | |

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;

use crate::metrics::collect::{self, counter, gauge};

/// The counters.
#[derive(Debug, Default)]
pub struct UplinkStats {
    enabled: AtomicBool,
    connected: AtomicBool,
    link_fault: AtomicBool,
    link_faults: AtomicU64,
    sent: AtomicU64,
    confirmed: AtomicU64,
    retransmitted: AtomicU64,
    denied: AtomicU64,
    refused: Mutex<BTreeMap<&'static str, u64>>,
    unconfirmed: AtomicI64,
    clock_offset_ms: AtomicI64,
    duty_checks: AtomicU64,
}

/// A frame counter.
#[derive(Debug, Clone, Copy)]
pub enum FrameEvent {
    /// Written to the centre.
    Sent,
    /// Confirmed (journaled frames).
    Confirmed,
    /// Sent again.
    Retransmitted,
    /// Denied by the centre.
    Denied,
}

impl UplinkStats {
    /// The uplink is configured (its series are shown).
    pub fn set_enabled(&self) {
        self.enabled.store(true, Ordering::Relaxed);
    }
    /// Connected or not.
    pub fn set_connected(&self, v: bool) {
        self.connected.store(v, Ordering::Relaxed);
    }
    /// The link became faulty or works again.
    pub fn set_link_fault(&self, v: bool) {
        if v && !self.link_fault.swap(true, Ordering::Relaxed) {
            self.link_faults.fetch_add(1, Ordering::Relaxed);
        } else if !v {
            self.link_fault.store(false, Ordering::Relaxed);
        }
    }
    /// Whether the link is faulty.
    pub fn link_fault(&self) -> bool {
        self.link_fault.load(Ordering::Relaxed)
    }
    /// Counts a frame event.
    pub fn frame(&self, e: FrameEvent) {
        let c = match e {
            FrameEvent::Sent => &self.sent,
            FrameEvent::Confirmed => &self.confirmed,
            FrameEvent::Retransmitted => &self.retransmitted,
            FrameEvent::Denied => &self.denied,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }
    /// Counts a refused frame from the centre.
    pub fn refused(&self, reason: &'static str) {
        *self
            .refused
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(reason)
            .or_default() += 1;
    }
    /// Journaled frames not yet confirmed.
    pub fn set_unconfirmed(&self, n: usize) {
        self.unconfirmed
            .store(i64::try_from(n).unwrap_or(i64::MAX), Ordering::Relaxed);
    }
    /// The clock offset at the last sync.
    pub fn set_clock_offset_ms(&self, v: i64) {
        self.clock_offset_ms.store(v, Ordering::Relaxed);
    }
    /// Counts a duty check.
    pub fn duty_check(&self) {
        self.duty_checks.fetch_add(1, Ordering::Relaxed);
    }
}

impl Collector for UplinkStats {
    /// The series (nothing while the uplink is off).
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> std::fmt::Result {
        if !self.enabled.load(Ordering::Relaxed) {
            return Ok(());
        }
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let flag = |a: &AtomicBool| i64::from(a.load(Ordering::Relaxed));
        let e = &mut encoder;
        gauge(
            e,
            "uplink_connected",
            "Connected to the GB/T 26875.3 centre.",
            flag(&self.connected),
        )?;
        gauge(
            e,
            "uplink_link_fault",
            "The link to the centre is faulty (frames unconfirmed after every try, or no connection).",
            flag(&self.link_fault),
        )?;
        counter(
            e,
            "uplink_link_faults_total",
            "Times the link to the centre became faulty.",
            load(&self.link_faults),
        )?;
        collect::counters(
            e,
            "uplink_frames_total",
            "Frames to the centre: sent, confirmed, retransmitted, denied.",
            [
                ("sent", &self.sent),
                ("confirmed", &self.confirmed),
                ("retransmitted", &self.retransmitted),
                ("denied", &self.denied),
            ]
            .map(|(what, c)| ([("what", what)], load(c))),
        )?;
        let refused: Vec<_> = self
            .refused
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(reason, n)| ([("reason", *reason)], *n))
            .collect();
        collect::counters(
            e,
            "uplink_refused_total",
            "Frames from the centre refused, by reason.",
            refused,
        )?;
        gauge(
            e,
            "uplink_unconfirmed_frames",
            "Journaled frames the centre has not confirmed yet.",
            self.unconfirmed.load(Ordering::Relaxed),
        )?;
        gauge(
            e,
            "uplink_clock_offset_ms",
            "The centre's clock minus the gateway's at the last clock sync, ms.",
            self.clock_offset_ms.load(Ordering::Relaxed),
        )?;
        counter(
            e,
            "uplink_duty_checks_total",
            "Duty checks (查岗) from the centre.",
            load(&self.duty_checks),
        )
    }
}
