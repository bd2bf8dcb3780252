//! The built-in profile's tables in `docs/modbus.md` match the code: every address the page
//! lists exists in the profile with the meaning, conversion and access the page states, the
//! page lists them all, and the state-code table is the profile's.

use firegrid_protocols::channel::{ChannelState, FaultCause};
use firegrid_protocols::regmap::{Meaning, RegisterKind, TYPICAL_RCM_TEMP};

fn page() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/modbus.md"))
        .expect("docs/modbus.md is in the repository")
}

/// Parses "`0x0021`" or "`0x0021`–`0x0024`" into an inclusive address range.
fn addresses(cell: &str) -> (u16, u16) {
    let parse = |s: &str| {
        let s = s.trim().trim_matches('`');
        u16::from_str_radix(s.trim_start_matches("0x"), 16).unwrap_or_else(|e| panic!("{s}: {e}"))
    };
    match cell.split_once('–') {
        Some((a, b)) => (parse(a), parse(b)),
        None => (parse(cell), parse(cell)),
    }
}

/// The meaning a "Meaning" cell names for the register `offset` places into its range: e.g.
/// "temperature, ch 1–4" at offset 2 is the temperature of channel 3.
fn meaning(cell: &str, offset: u16) -> Meaning {
    let (what, channels) = match cell.split_once(", ch ") {
        Some((what, chs)) => (what, Some(chs)),
        None => (cell, None),
    };
    let ch = || {
        let first = channels
            .and_then(|c| c.split('–').next())
            .and_then(|c| c.trim().parse::<u16>().ok())
            .unwrap_or_else(|| panic!("a channel in {cell:?}"));
        u8::try_from(first + offset).expect("a channel number")
    };
    match what {
        "residual current" => Meaning::ResidualCurrent(ch()),
        "temperature" => Meaning::Temperature(ch()),
        "state code" => Meaning::StateCode(ch()),
        "residual alarm set-point" => Meaning::ResidualSetPoint(ch()),
        "temperature alarm set-point" => Meaning::TemperatureSetPoint(ch()),
        "alarm delay" => Meaning::AlarmDelay,
        "report period" => Meaning::ReportPeriod,
        "heartbeat period" => Meaning::HeartbeatPeriod,
        "channel-enable bitmap (bit *n* = channel *n*)" => Meaning::ChannelEnable,
        "buzzer enable (0/1)" => Meaning::BuzzerEnable,
        "relay (trip) enable (0/1)" => Meaning::RelayEnable,
        other => panic!("docs/modbus.md names a meaning the test does not know: {other:?}"),
    }
}

/// What a "Raw → canonical" cell says a raw word becomes.
fn convert(cell: &str, raw: u16) -> i32 {
    let raw = i32::from(raw);
    match cell.split(" (").next().expect("a cell") {
        "raw" => raw,
        "raw ÷ 10" => (raw + 5).div_euclid(10),
        "raw − 500" => raw - 500,
        other => panic!("docs/modbus.md names a conversion the test does not know: {other:?}"),
    }
}

#[test]
fn the_register_table_matches_the_builtin_profile() {
    let page = page();
    let mut listed = Vec::new();
    for row in page.lines().filter(|l| l.starts_with("| `0x")) {
        let cells: Vec<_> = row.split('|').map(str::trim).collect();
        let (first, last) = addresses(cells[1]);
        let writable = match cells[5] {
            "R" => false,
            "R/W" => true,
            other => panic!("access {other:?} in {row}"),
        };
        for address in first..=last {
            let reg = TYPICAL_RCM_TEMP
                .at(RegisterKind::Holding, address)
                .unwrap_or_else(|| {
                    panic!("docs/modbus.md lists 0x{address:04x}, the profile has no such register")
                });
            assert_eq!(reg.writable, writable, "access of 0x{address:04x}");
            assert_eq!(
                reg.meaning,
                meaning(cells[2], address - first),
                "meaning of 0x{address:04x}"
            );
            for raw in [0u16, 1, 4, 5, 499, 500, 501, 750, 4123, 4125, 9999] {
                assert_eq!(
                    reg.decode(&[raw]),
                    Ok(convert(cells[3], raw)),
                    "0x{address:04x} with raw {raw}: the page says {:?}",
                    cells[3]
                );
            }
            listed.push(address);
        }
    }
    let mut in_code: Vec<_> = TYPICAL_RCM_TEMP
        .registers
        .iter()
        .map(|r| r.address)
        .collect();
    in_code.sort_unstable();
    listed.sort_unstable();
    assert_eq!(
        listed, in_code,
        "docs/modbus.md and the profile list different registers"
    );
}

/// What a state-code cell says: `None` for "—" (refused as unknown).
fn state(cell: &str) -> Option<ChannelState> {
    let cause = || match cell.split('`').nth(1) {
        Some("lead_open") => FaultCause::LeadOpen,
        Some("lead_short") => FaultCause::LeadShort,
        other => panic!("a fault cause in {cell:?}: {other:?}"),
    };
    match cell {
        "—" => None,
        "normal" => Some(ChannelState::Normal),
        c if c.starts_with("alarm") => Some(ChannelState::Alarm),
        c if c.starts_with("fault") => Some(ChannelState::Fault(cause())),
        other => panic!("a state the test does not know: {other:?}"),
    }
}

#[test]
fn the_state_code_table_matches_the_builtin_profile() {
    let page = page();
    let start = page.find("| Code |").expect("the state-code table");
    let mut rows = 0;
    for row in page[start..]
        .lines()
        .skip(2)
        .take_while(|l| l.starts_with('|'))
    {
        let cells: Vec<_> = row.split('|').map(str::trim).collect();
        let code: u16 = cells[1].parse().unwrap_or_else(|e| panic!("{row}: {e}"));
        // Channel 0 measures residual current, channels 1–4 temperature.
        for (channel, cell) in [(0u8, cells[2]), (1, cells[3]), (4, cells[3])] {
            assert_eq!(
                TYPICAL_RCM_TEMP.channel_state(channel, code).ok(),
                state(cell),
                "code {code} on channel {channel}: the page says {cell:?}"
            );
        }
        rows += 1;
    }
    assert_eq!(rows, 7, "codes 0–6");
    // "any other code is refused as unknown for that kind of channel".
    for code in [7, 8, 100, u16::MAX] {
        for channel in [0, 1] {
            assert!(
                TYPICAL_RCM_TEMP.channel_state(channel, code).is_err(),
                "code {code} on channel {channel}"
            );
        }
    }
}
