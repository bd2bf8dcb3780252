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

use crate::metrics::{header, series};

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

    /// Appends the series (nothing while the uplink is off).
    pub fn render(&self, out: &mut String) {
        if !self.enabled.load(Ordering::Relaxed) {
            return;
        }
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let flag = |a: &AtomicBool| u8::from(a.load(Ordering::Relaxed));
        header(
            out,
            "uplink_connected",
            "Connected to the GB/T 26875.3 centre.",
            "gauge",
        );
        series(out, "uplink_connected", &[], flag(&self.connected));
        header(
            out,
            "uplink_link_fault",
            "The link to the centre is faulty (frames unconfirmed after every try, or no connection).",
            "gauge",
        );
        series(out, "uplink_link_fault", &[], flag(&self.link_fault));
        header(
            out,
            "uplink_link_faults_total",
            "Times the link to the centre became faulty.",
            "counter",
        );
        series(
            out,
            "uplink_link_faults_total",
            &[],
            load(&self.link_faults),
        );
        header(
            out,
            "uplink_frames_total",
            "Frames to the centre: sent, confirmed, retransmitted, denied.",
            "counter",
        );
        for (what, c) in [
            ("sent", &self.sent),
            ("confirmed", &self.confirmed),
            ("retransmitted", &self.retransmitted),
            ("denied", &self.denied),
        ] {
            series(out, "uplink_frames_total", &[("what", what)], load(c));
        }
        header(
            out,
            "uplink_refused_total",
            "Frames from the centre refused, by reason.",
            "counter",
        );
        for (reason, n) in self
            .refused
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            series(out, "uplink_refused_total", &[("reason", reason)], n);
        }
        header(
            out,
            "uplink_unconfirmed_frames",
            "Journaled frames the centre has not confirmed yet.",
            "gauge",
        );
        series(
            out,
            "uplink_unconfirmed_frames",
            &[],
            self.unconfirmed.load(Ordering::Relaxed),
        );
        header(
            out,
            "uplink_clock_offset_ms",
            "The centre's clock minus the gateway's at the last clock sync, ms.",
            "gauge",
        );
        series(
            out,
            "uplink_clock_offset_ms",
            &[],
            self.clock_offset_ms.load(Ordering::Relaxed),
        );
        header(
            out,
            "uplink_duty_checks_total",
            "Duty checks (查岗) from the centre.",
            "counter",
        );
        series(
            out,
            "uplink_duty_checks_total",
            &[],
            load(&self.duty_checks),
        );
    }
}
