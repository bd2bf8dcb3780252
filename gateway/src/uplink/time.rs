//! GB/T 26875.3 time tags ↔ the gateway's clock.
//!
//! A time tag is local civil time without a zone (s, min, h, day, month, year − 2000). The
//! centre and the device agree on a zone out of band: China Standard Time (UTC+8, no daylight
//! saving) unless `utc_offset_min` says otherwise.

use firegrid_protocols::gb26875::frame::TimeTag;

use crate::model::UnixMs;

/// China Standard Time, minutes east of UTC: the default zone of time tags.
pub const CHINA_UTC_OFFSET_MIN: i32 = 480;

/// The time tag of `unix_ms` in the zone `utc_offset_min` (years 2000–2099; outside, the year
/// byte wraps).
pub fn tag_of(unix_ms: UnixMs, utc_offset_min: i32) -> TimeTag {
    let local_s = i64::try_from(unix_ms / 1000)
        .unwrap_or(i64::MAX)
        .saturating_add(i64::from(utc_offset_min) * 60);
    let days = local_s.div_euclid(86_400);
    let secs = local_s.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let byte = |v: i64| u8::try_from(v).unwrap_or(0);
    TimeTag([
        byte(secs % 60),
        byte(secs / 60 % 60),
        byte(secs / 3600),
        byte(d),
        byte(m),
        byte(y.rem_euclid(100)),
    ])
}

/// The instant a valid time tag names, in the zone `utc_offset_min`; `None` for a tag that is
/// not a date (BCD, zeros).
pub fn unix_ms_of(tag: TimeTag, utc_offset_min: i32) -> Option<UnixMs> {
    if !tag.is_valid() {
        return None;
    }
    let days = days_from_civil(
        i64::from(tag.year()),
        i64::from(tag.month()),
        i64::from(tag.day()),
    );
    let local_s = days * 86_400
        + i64::from(tag.hour()) * 3600
        + i64::from(tag.minute()) * 60
        + i64::from(tag.second());
    let utc_s = local_s - i64::from(utc_offset_min) * 60;
    u64::try_from(utc_s).ok().map(|s| s * 1000)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day since 1970-01-01.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_instants() {
        // 2020-08-01 19:18:48 in China = 11:18:48 UTC (F1's event time).
        let ms = 1_596_280_728_000;
        assert_eq!(
            tag_of(ms, CHINA_UTC_OFFSET_MIN),
            TimeTag::new(2020, 8, 1, 19, 18, 48)
        );
        assert_eq!(
            unix_ms_of(TimeTag::new(2020, 8, 1, 19, 18, 48), CHINA_UTC_OFFSET_MIN),
            Some(ms)
        );
        assert_eq!(tag_of(0, 0), TimeTag([0, 0, 0, 1, 1, 70]));
        // A leap day, and the turn of a year in the zone but not in UTC.
        assert_eq!(
            tag_of(1_709_164_800_000, 0),
            TimeTag::new(2024, 2, 29, 0, 0, 0)
        );
        assert_eq!(
            tag_of(1_767_196_800_000, CHINA_UTC_OFFSET_MIN),
            TimeTag::new(2026, 1, 1, 0, 0, 0)
        );
        assert_eq!(unix_ms_of(TimeTag([0; 6]), 0), None);
    }

    #[test]
    fn round_trip_over_the_century() {
        let mut ms: u64 = 946_684_800_000; // 2000-01-01
        while ms < 4_102_444_800_000 {
            let t = tag_of(ms, CHINA_UTC_OFFSET_MIN);
            assert_eq!(unix_ms_of(t, CHINA_UTC_OFFSET_MIN), Some(ms), "{t}");
            ms += 86_400_000 * 7 + 3_599_000;
        }
    }
}
