//! One device's readings over one hour, all its channels in one blob: the `channels` column of
//! the readings file's `rollups` table (keyed `(hour_ms, device)`, [`super::readings`]).
//!
//! Per channel with readings, in increasing channel order: the channel number (1 byte), a mask
//! of the quantities present (1 byte, the bits of [`super::packed`]), the channel's reading
//! count, then per quantity present its count, minimum, maximum and sum. Counts are unsigned
//! LEB128, the others zigzag LEB128, each in its shortest form. A five-channel monitor's hour
//! (residual current on channel 0, temperature on 1–4) is about 60 bytes: one row and one
//! upsert per message instead of five rows of twenty columns.
//!
//! The bytes come from our own file, but a damaged or hand-edited file must not panic the
//! gateway: [`Rollup::unpack`] refuses anything that [`Rollup::pack`] would not have written
//! (property-tested below).

use std::collections::BTreeMap;

use firegrid_protocols::channel::{ChannelNo, MAX_CHANNELS};
use firegrid_protocols::message::Reading;

use super::packed::PackError;

/// The quantities in the order of [`Hour::q`], with their bit in the mask.
const BITS: [u8; 4] = [1, 2, 4, 8];

/// One quantity over an interval: how many values, the least, the greatest, their sum.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Acc {
    pub(crate) n: i64,
    pub(crate) min: Option<i64>,
    pub(crate) max: Option<i64>,
    pub(crate) sum: i64,
}

impl Acc {
    pub(crate) fn add(&mut self, v: Option<i64>) {
        if let Some(v) = v {
            self.merge(&Acc {
                n: 1,
                min: Some(v),
                max: Some(v),
                sum: v,
            });
        }
    }

    pub(crate) fn merge(&mut self, o: &Acc) {
        self.n = self.n.saturating_add(o.n);
        self.min = match (self.min, o.min) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.max = match (self.max, o.max) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        self.sum = self.sum.saturating_add(o.sum);
    }
}

/// One channel over an interval: its readings, and per quantity (residual current,
/// temperature, voltage, load current) an [`Acc`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Hour {
    pub(crate) count: i64,
    pub(crate) q: [Acc; 4],
}

impl Hour {
    /// Adds one reading.
    pub(crate) fn add(&mut self, r: &Reading) {
        self.count = self.count.saturating_add(1);
        for (acc, v) in self.q.iter_mut().zip(values(r)) {
            acc.add(v);
        }
    }

    pub(crate) fn merge(&mut self, o: &Hour) {
        self.count = self.count.saturating_add(o.count);
        for (a, b) in self.q.iter_mut().zip(&o.q) {
            a.merge(b);
        }
    }
}

/// A reading's quantities in the order of [`Hour::q`].
pub(crate) fn values(r: &Reading) -> [Option<i64>; 4] {
    [
        r.residual_ma.map(i64::from),
        r.temp_dc.map(i64::from),
        r.voltage_dv.map(i64::from),
        r.current_ma.map(i64::from),
    ]
}

/// One device's hour: per channel with readings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Rollup(pub(crate) BTreeMap<ChannelNo, Hour>);

impl Rollup {
    /// Adds one message's readings.
    pub(crate) fn add(&mut self, readings: &[Reading]) {
        for r in readings {
            self.0.entry(r.channel).or_default().add(r);
        }
    }

    /// Adds another rollup of the same device and hour.
    pub(crate) fn merge(&mut self, o: &Rollup) {
        for (ch, h) in &o.0 {
            self.0.entry(*ch).or_default().merge(h);
        }
    }

    /// The blob.
    pub(crate) fn pack(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.0.len() * 12);
        for (ch, h) in &self.0 {
            let mask =
                h.q.iter()
                    .zip(BITS)
                    .filter(|(a, _)| a.n > 0)
                    .fold(0, |m, (_, bit)| m | bit);
            out.push(*ch);
            out.push(mask);
            uleb(&mut out, h.count);
            for a in h.q.iter().filter(|a| a.n > 0) {
                uleb(&mut out, a.n);
                zigzag(&mut out, a.min.unwrap_or(0));
                zigzag(&mut out, a.max.unwrap_or(0));
                zigzag(&mut out, a.sum);
            }
        }
        out
    }

    /// The rollup of a blob written by [`pack`](Self::pack).
    ///
    /// # Errors
    /// [`PackError`] if the blob is truncated, names a channel beyond `MAX_CHANNELS` or out
    /// of order, a quantity this build does not know or none of a count, or holds a number
    /// not in its shortest form or beyond 64 bits.
    pub(crate) fn unpack(mut bytes: &[u8]) -> Result<Self, PackError> {
        let mut out = BTreeMap::new();
        while let [ch, mask, rest @ ..] = bytes {
            bytes = rest;
            if usize::from(*ch) >= MAX_CHANNELS {
                return Err(PackError("channel out of range"));
            }
            if out.last_key_value().is_some_and(|(last, _)| last >= ch) {
                return Err(PackError("channels out of order"));
            }
            if mask & !BITS.iter().fold(0, |m, b| m | b) != 0 {
                return Err(PackError("unknown quantity"));
            }
            let mut h = Hour {
                count: read_uleb(&mut bytes)?,
                ..Hour::default()
            };
            for (a, bit) in h.q.iter_mut().zip(BITS) {
                if mask & bit == 0 {
                    continue;
                }
                let n = read_uleb(&mut bytes)?;
                if n == 0 {
                    return Err(PackError("a quantity of no values"));
                }
                *a = Acc {
                    n,
                    min: Some(read_zigzag(&mut bytes)?),
                    max: Some(read_zigzag(&mut bytes)?),
                    sum: read_zigzag(&mut bytes)?,
                };
            }
            out.insert(*ch, h);
        }
        if !bytes.is_empty() {
            return Err(PackError("truncated"));
        }
        Ok(Self(out))
    }

    /// The hour of `channel`, if it had readings.
    pub(crate) fn channel(&self, channel: ChannelNo) -> Option<&Hour> {
        self.0.get(&channel)
    }
}

/// A LEB128 number in its shortest form.
fn write_u64(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v & 0x7f) as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Counts are never negative; a negative one (a saturated sum of a damaged file) is written as 0.
fn uleb(out: &mut Vec<u8>, v: i64) {
    write_u64(out, u64::try_from(v).unwrap_or(0));
}

fn zigzag(out: &mut Vec<u8>, v: i64) {
    write_u64(out, ((v << 1) ^ (v >> 63)) as u64);
}

/// A LEB128 number in its shortest form, at most 64 bits.
fn read_u64(bytes: &mut &[u8]) -> Result<u64, PackError> {
    let mut v: u64 = 0;
    for i in 0..10 {
        let (&byte, rest) = bytes.split_first().ok_or(PackError("truncated"))?;
        *bytes = rest;
        let bits = u64::from(byte & 0x7f);
        if i == 9 && bits > 1 {
            return Err(PackError("number beyond 64 bits"));
        }
        v |= bits << (7 * i);
        if byte & 0x80 == 0 {
            if i > 0 && byte == 0 {
                return Err(PackError("number not in its shortest form"));
            }
            return Ok(v);
        }
    }
    Err(PackError("number beyond 64 bits"))
}

fn read_uleb(bytes: &mut &[u8]) -> Result<i64, PackError> {
    i64::try_from(read_u64(bytes)?).map_err(|_| PackError("count beyond 63 bits"))
}

fn read_zigzag(bytes: &mut &[u8]) -> Result<i64, PackError> {
    let z = read_u64(bytes)?;
    Ok(((z >> 1) as i64) ^ -((z & 1) as i64))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn acc() -> impl Strategy<Value = Acc> {
        prop_oneof![
            Just(Acc::default()),
            (1..i64::MAX, any::<i64>(), any::<i64>(), any::<i64>()).prop_map(|(n, a, b, sum)| {
                Acc {
                    n,
                    min: Some(a.min(b)),
                    max: Some(a.max(b)),
                    sum,
                }
            }),
        ]
    }

    fn rollup() -> impl Strategy<Value = Rollup> {
        proptest::collection::btree_map(
            0..MAX_CHANNELS as u8,
            (0..i64::MAX, [acc(), acc(), acc(), acc()]).prop_map(|(count, q)| Hour { count, q }),
            0..6,
        )
        .prop_map(Rollup)
    }

    proptest! {
        #[test]
        fn what_is_packed_unpacks_the_same(r in rollup()) {
            prop_assert_eq!(Rollup::unpack(&r.pack()).unwrap(), r);
        }

        #[test]
        fn any_bytes_unpack_or_are_refused_without_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            if let Ok(r) = Rollup::unpack(&bytes) {
                // What unpacks is exactly what packs back to the same bytes.
                prop_assert_eq!(r.pack(), bytes);
            }
        }

        #[test]
        fn merging_two_hours_is_adding_their_readings_in_one(
            a in proptest::collection::vec((0..3u8, proptest::option::of(any::<u32>()), proptest::option::of(any::<i16>())), 0..20),
            b in proptest::collection::vec((0..3u8, proptest::option::of(any::<u32>()), proptest::option::of(any::<i16>())), 0..20),
        ) {
            let reading = |(channel, residual_ma, temp_dc): (u8, Option<u32>, Option<i16>)| Reading {
                channel,
                residual_ma,
                temp_dc,
                ..Reading::default()
            };
            let (a, b): (Vec<_>, Vec<_>) = (a.into_iter().map(reading).collect(), b.into_iter().map(reading).collect());
            let mut merged = Rollup::default();
            merged.add(&a);
            let mut other = Rollup::default();
            other.add(&b);
            merged.merge(&Rollup::unpack(&other.pack()).unwrap());
            let mut all = Rollup::default();
            all.add(&a);
            all.add(&b);
            prop_assert_eq!(merged, all);
        }
    }

    #[test]
    fn a_monitors_hour_is_small_and_damage_is_refused() {
        let mut r = Rollup::default();
        for minute in 0..60 {
            let mut readings = vec![Reading {
                channel: 0,
                residual_ma: Some(100 + minute),
                ..Reading::default()
            }];
            readings.extend((1..5).map(|channel| Reading {
                channel,
                temp_dc: Some(300 + i16::from(channel) + minute as i16),
                ..Reading::default()
            }));
            r.add(&readings);
        }
        let blob = r.pack();
        assert!(blob.len() <= 64, "{} bytes", blob.len());
        let h = r.channel(0).unwrap();
        assert_eq!(
            (h.count, h.q[0].n, h.q[0].min, h.q[0].max),
            (60, 60, Some(100), Some(159))
        );
        assert_eq!(h.q[0].sum, (100..160).sum::<i64>());
        assert_eq!(r.channel(1).unwrap().q[1].max, Some(360));
        assert!(r.channel(5).is_none());
        assert_eq!(
            Rollup::unpack(&blob[..blob.len() - 1]).unwrap_err(),
            PackError("truncated")
        );
        assert_eq!(
            Rollup::unpack(&[16, 0, 0]).unwrap_err(),
            PackError("channel out of range")
        );
        assert_eq!(
            Rollup::unpack(&[0, 16, 0]).unwrap_err(),
            PackError("unknown quantity")
        );
        assert_eq!(
            Rollup::unpack(&[1, 0, 0, 1, 0, 0]).unwrap_err(),
            PackError("channels out of order")
        );
        assert_eq!(
            Rollup::unpack(&[0, 0, 0x80, 0]).unwrap_err(),
            PackError("number not in its shortest form")
        );
        assert_eq!(
            Rollup::unpack(&[0, 1, 1, 0, 0, 0, 0]).unwrap_err(),
            PackError("a quantity of no values")
        );
        assert_eq!(Rollup::unpack(&[]).unwrap(), Rollup::default());
    }
}
