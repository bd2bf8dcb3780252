//! One reading of one channel as it travels to the time-series database, and its compact binary
//! form in the spool.
//!
//! The binary form (all integers little-endian):
//!
//! ```text
//! version u8 (= 1) | ts_ns i64 | channel u8 | present u8 (bit 0 residual_ma, 1 temp_dc,
//! 2 voltage_dv, 3 current_ma, 4 site, 5 circuit) | residual_ma u32? | temp_dc i16? |
//! voltage_dv u16? | current_ma u32? | site i64? | circuit i64? | device: len u8, bytes |
//! grid: len u8, bytes (0: none)
//! ```
//!
//! [`Point::decode`] is total: any bytes give a point or `None`, never a panic.

use firegrid_protocols::message::Reading;

use crate::store::Sample;

/// The format version written first in every encoded point.
pub const POINT_VERSION: u8 = 1;

/// Where a device is, as the registry knew it when its readings were taken in: the tags of
/// its points.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Tags {
    /// The site (building) it is installed at.
    pub site: Option<i64>,
    /// The circuit it watches.
    pub circuit: Option<i64>,
    /// The grid cell whose workers get its alerts.
    pub grid: Option<String>,
}

/// One reading of one channel, with its tags and its time fixed at the source, so that a
/// retried write writes the very same point (idempotent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Point {
    /// The device id (1–32 of `[A-Za-z0-9_-]`).
    pub device: String,
    /// The channel, 0–15.
    pub channel: u8,
    /// When the reading was taken, ns since the Unix epoch (the sample's `ts_ms` × 10⁶).
    pub ts_ns: i64,
    /// Residual (leakage) current, mA.
    pub residual_ma: Option<u32>,
    /// Temperature, deci-°C.
    pub temp_dc: Option<i16>,
    /// Line voltage, deci-volts.
    pub voltage_dv: Option<u16>,
    /// Load current, mA.
    pub current_ma: Option<u32>,
    /// Where the device is.
    pub tags: Tags,
}

impl Point {
    /// Appends the points of one telemetry sample to `out`: one per channel that reported a
    /// value.
    pub fn from_sample(sample: &Sample, tags: &Tags, out: &mut Vec<Self>) {
        let ts_ns = i64::try_from(sample.ts_ms)
            .unwrap_or(i64::MAX)
            .saturating_mul(1_000_000);
        out.extend(
            sample
                .readings
                .iter()
                .filter(|r| has_value(r))
                .map(|r| Self {
                    device: sample.device.to_string(),
                    channel: r.channel,
                    ts_ns,
                    residual_ma: r.residual_ma,
                    temp_dc: r.temp_dc,
                    voltage_dv: r.voltage_dv,
                    current_ma: r.current_ma,
                    tags: tags.clone(),
                }),
        );
    }

    /// Appends the binary form to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let t = &self.tags;
        let present = u8::from(self.residual_ma.is_some())
            | u8::from(self.temp_dc.is_some()) << 1
            | u8::from(self.voltage_dv.is_some()) << 2
            | u8::from(self.current_ma.is_some()) << 3
            | u8::from(t.site.is_some()) << 4
            | u8::from(t.circuit.is_some()) << 5;
        out.push(POINT_VERSION);
        out.extend_from_slice(&self.ts_ns.to_le_bytes());
        out.push(self.channel);
        out.push(present);
        if let Some(v) = self.residual_ma {
            out.extend_from_slice(&v.to_le_bytes());
        }
        if let Some(v) = self.temp_dc {
            out.extend_from_slice(&v.to_le_bytes());
        }
        if let Some(v) = self.voltage_dv {
            out.extend_from_slice(&v.to_le_bytes());
        }
        if let Some(v) = self.current_ma {
            out.extend_from_slice(&v.to_le_bytes());
        }
        if let Some(v) = t.site {
            out.extend_from_slice(&v.to_le_bytes());
        }
        if let Some(v) = t.circuit {
            out.extend_from_slice(&v.to_le_bytes());
        }
        put_str(out, &self.device);
        put_str(out, t.grid.as_deref().unwrap_or(""));
    }

    /// The point in `bytes` (exactly: trailing bytes are refused), or `None`.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let mut r = Reader(bytes);
        if r.u8()? != POINT_VERSION {
            return None;
        }
        let ts_ns = i64::from_le_bytes(r.array()?);
        let channel = r.u8()?;
        let present = r.u8()?;
        if present & 0xc0 != 0 {
            return None;
        }
        let bit = |n: u8| present & (1 << n) != 0;
        let residual_ma = bit(0).then(|| r.array().map(u32::from_le_bytes));
        let residual_ma = residual_ma.map_or(Some(None), |v| v.map(Some))?;
        let temp_dc = bit(1).then(|| r.array().map(i16::from_le_bytes));
        let temp_dc = temp_dc.map_or(Some(None), |v| v.map(Some))?;
        let voltage_dv = bit(2).then(|| r.array().map(u16::from_le_bytes));
        let voltage_dv = voltage_dv.map_or(Some(None), |v| v.map(Some))?;
        let current_ma = bit(3).then(|| r.array().map(u32::from_le_bytes));
        let current_ma = current_ma.map_or(Some(None), |v| v.map(Some))?;
        let site = bit(4).then(|| r.array().map(i64::from_le_bytes));
        let site = site.map_or(Some(None), |v| v.map(Some))?;
        let circuit = bit(5).then(|| r.array().map(i64::from_le_bytes));
        let circuit = circuit.map_or(Some(None), |v| v.map(Some))?;
        let device = r.str()?;
        let grid = r.str()?;
        if !r.0.is_empty() || device.is_empty() {
            return None;
        }
        Some(Self {
            device,
            channel,
            ts_ns,
            residual_ma,
            temp_dc,
            voltage_dv,
            current_ma,
            tags: Tags {
                site,
                circuit,
                grid: (!grid.is_empty()).then_some(grid),
            },
        })
    }

    /// Whether it carries any value (a line needs at least one field).
    pub fn has_value(&self) -> bool {
        self.residual_ma.is_some()
            || self.temp_dc.is_some()
            || self.voltage_dv.is_some()
            || self.current_ma.is_some()
    }
}

fn has_value(r: &Reading) -> bool {
    r.residual_ma.is_some()
        || r.temp_dc.is_some()
        || r.voltage_dv.is_some()
        || r.current_ma.is_some()
}

/// Writes a string of at most 255 bytes (longer ones are cut at a character boundary; device
/// ids and grid ids are far shorter).
fn put_str(out: &mut Vec<u8>, s: &str) {
    let mut end = s.len().min(255);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    out.push(u8::try_from(end).unwrap_or(u8::MAX));
    out.extend_from_slice(&s.as_bytes()[..end]);
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn u8(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }

    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, rest) = self.0.split_first_chunk::<N>()?;
        self.0 = rest;
        Some(*head)
    }

    fn str(&mut self) -> Option<String> {
        let len = usize::from(self.u8()?);
        let bytes = self.0.get(..len)?;
        self.0 = &self.0[len..];
        String::from_utf8(bytes.to_vec()).ok()
    }
}
