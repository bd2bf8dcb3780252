//! A GB/T 26875.3 frame as JSON, for people debugging a centre link
//! (`firegrid gb26875 decode HEX`) and for the simulated centre's log.

use serde_json::{Value, json};

use firegrid_protocols::gb26875::adu::{Adu, AduError, Object, Status, kind_name, uitd};
use firegrid_protocols::gb26875::frame::{self, FrameError, TimeTag};
use firegrid_protocols::gb26875::profile::Profile;

use super::text;

/// Why bytes could not be shown as a frame.
#[derive(Debug, thiserror::Error)]
pub enum DescribeError {
    /// Not hex.
    #[error("not hex: {0} (give the frame's bytes as hex, spaces allowed, e.g. \"40 40 00 00 …\")")]
    Hex(String),
    /// Not a frame (a receiver answers a frame with a readable control unit with a deny).
    #[error("bad frame: {0}")]
    Frame(#[from] FrameError),
    /// The frame is sound, its ADU is not.
    #[error("bad ADU: {0}")]
    Adu(#[from] AduError),
}

/// Parses hex with optional spaces, `:`/`-` separators and a `0x` prefix.
///
/// # Errors
/// [`DescribeError::Hex`].
pub fn parse_hex(s: &str) -> Result<Vec<u8>, DescribeError> {
    let clean: String = s
        .trim()
        .trim_start_matches("0x")
        .chars()
        .filter(|c| !c.is_whitespace() && *c != ':' && *c != '-')
        .collect();
    hex::decode(&clean).map_err(|e| DescribeError::Hex(e.to_string()))
}

/// The frame in `bytes` as JSON.
///
/// # Errors
/// [`DescribeError`]: what is wrong with the frame or its ADU.
pub fn describe(bytes: &[u8], profile: &Profile) -> Result<Value, DescribeError> {
    let f = frame::decode(bytes, profile)?;
    let h = f.header;
    let adu = if f.adu.is_empty() {
        Value::Null
    } else {
        adu_json(&Adu::parse(f.adu)?)
    };
    Ok(json!({
        "serial": h.serial,
        "version": [h.version[0], h.version[1]],
        "time": time(h.time),
        "source": h.source.to_u64(),
        "destination": h.destination.to_u64(),
        "command": h.command.0,
        "command_name": h.command.name(),
        "adu_len": h.adu_len,
        "checksum": format!("0x{:02x}", f.checksum),
        "adu": adu,
    }))
}

/// An ADU as JSON.
pub fn adu_json(a: &Adu<'_>) -> Value {
    let objects: Vec<Value> = a.objects().map(|o| object(&o)).collect();
    json!({
        "type": a.kind,
        "type_name": kind_name(a.kind),
        "count": a.count,
        "objects": objects,
    })
}

fn time(t: TimeTag) -> Value {
    if t.is_valid() {
        Value::String(t.to_string())
    } else {
        Value::String(format!("invalid {}", hex::encode(t.0)))
    }
}

/// The names of a status word's set bits (§8.2.1.1).
pub fn status_bits(s: Status) -> Vec<&'static str> {
    const NAMES: [&str; 14] = [
        "normal",
        "fire",
        "fault",
        "disabled",
        "supervisory",
        "started",
        "feedback",
        "delay",
        "power_fault",
        "backup_power_fault",
        "bus_fault",
        "manual",
        "config_changed",
        "reset",
    ];
    NAMES
        .iter()
        .enumerate()
        .filter(|(i, _)| s.0 & (1 << i) != 0)
        .map(|(_, n)| *n)
        .collect()
}

/// The names of the transmission device's status bits (§8.2.1.8).
pub fn uitd_bits(s: u8) -> Vec<&'static str> {
    [
        (uitd::NORMAL, "normal"),
        (uitd::FIRE, "fire"),
        (uitd::FAULT, "fault"),
        (uitd::MAIN_POWER_FAULT, "main_power_fault"),
        (uitd::BACKUP_POWER_FAULT, "backup_power_fault"),
        (uitd::LINK_FAULT, "link_fault"),
        (uitd::LINE_FAULT, "line_fault"),
    ]
    .into_iter()
    .filter(|(b, _)| s & b != 0)
    .map(|(_, n)| n)
    .collect()
}

fn object(o: &Object<'_>) -> Value {
    match *o {
        Object::SystemStatus {
            system,
            status,
            time: t,
        } => json!({
            "system_type": system.kind, "system_address": system.address,
            "status": status.0, "status_bits": status_bits(status), "time": time(t),
        }),
        Object::ComponentStatus {
            system,
            component,
            status,
            description,
            time: t,
        } => json!({
            "system_type": system.kind, "system_address": system.address,
            "component_type": component.kind, "component_address": component.address,
            "status": status.0, "status_bits": status_bits(status),
            "description": text::decode(&description), "time": time(t),
        }),
        Object::AnalogValue {
            system,
            component,
            analog,
            value,
            time: t,
        } => json!({
            "system_type": system.kind, "system_address": system.address,
            "component_type": component.kind, "component_address": component.address,
            "analog_type": analog, "value": value, "time": time(t),
        }),
        Object::Operation {
            system,
            flags,
            operator,
            time: t,
        } => json!({
            "system_type": system.kind, "system_address": system.address,
            "flags": flags, "operator": operator, "time": time(t),
        }),
        Object::SoftwareVersion {
            system,
            major,
            minor,
        } => json!({
            "system_type": system.kind, "system_address": system.address,
            "major": major, "minor": minor,
        }),
        Object::SystemConfig {
            system,
            description,
        } => json!({
            "system_type": system.kind, "system_address": system.address,
            "description": text::decode(description),
        }),
        Object::ComponentConfig {
            system,
            component,
            description,
        } => json!({
            "system_type": system.kind, "system_address": system.address,
            "component_type": component.kind, "component_address": component.address,
            "description": text::decode(&description),
        }),
        Object::SystemTime { system, time: t } => json!({
            "system_type": system.kind, "system_address": system.address, "time": time(t),
        }),
        Object::UitdStatus {
            status,
            extra,
            time: t,
        } => json!({
            "status": status, "status_bits": uitd_bits(status),
            "extra": hex::encode(extra), "time": time(t),
        }),
        Object::UitdOperation {
            flags,
            operator,
            time: t,
        } => json!({"flags": flags, "operator": operator, "time": time(t)}),
        Object::UitdVersion { major, minor } => json!({"major": major, "minor": minor}),
        Object::UitdConfig { description } => {
            json!({"description": text::decode(description)})
        }
        Object::UitdTime { time: t } | Object::SyncClock { time: t } => json!({"time": time(t)}),
        Object::ReadSystem { system } => {
            json!({"system_type": system.kind, "system_address": system.address})
        }
        Object::ReadComponent { system, address } => json!({
            "system_type": system.kind, "system_address": system.address,
            "component_address": address,
        }),
        Object::ReadOperations {
            system,
            count,
            start,
        } => json!({
            "system_type": system.kind, "system_address": system.address,
            "records": count, "from": time(start),
        }),
        Object::ReadUitdOperations { count, start } => {
            json!({"records": count, "from": time(start)})
        }
        Object::Reserved { byte } => json!({"reserved": byte}),
        Object::DutyCheck { timeout_min } => json!({"timeout_min": timeout_min}),
        Object::Raw { count, bytes } => json!({"raw_count": count, "raw": hex::encode(bytes)}),
        _ => json!({"unknown": true}),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use firegrid_protocols::gb26875::profile::STANDARD;

    /// F1 of protocols/tests/data/gb26875-frames.md (GitHub shootingfans/codec_gb26875_3_2011,
    /// codec/codec_test.go).
    const F1: &str =
        "40 40 00 00 01 01 18 0d 11 16 0a 14 00 00 00 00 00 00 06 05 04 03 02 01 30 00 02
        02 01 01 03 00 d9 00 06 00 02 00 a3 c1 c7 f8 a3 b1 b2 e3 df c8 b2 b8 d7 df c0 c8
        00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 30 12 13 01 08 14 68 23 23";

    #[test]
    fn f1_as_json() {
        let v = describe(&parse_hex(F1).unwrap(), &STANDARD).unwrap();
        assert_eq!(v["serial"], 0);
        assert_eq!(v["command_name"], "send");
        assert_eq!(v["destination"], 0x0102_0304_0506u64);
        assert_eq!(v["time"], "2020-10-22 17:13:24");
        let o = &v["adu"]["objects"][0];
        assert_eq!(v["adu"]["type_name"], "component_status");
        assert_eq!(o["component_address"], 0x0006_00D9);
        assert_eq!(o["status_bits"], json!(["fire"]));
        assert_eq!(o["description"], "Ａ区１层呷哺走廊");
        assert_eq!(o["time"], "2020-08-01 19:18:48");
    }

    #[test]
    fn bad_frames_say_why() {
        let mut bad = parse_hex(F1).unwrap();
        bad[75] = 0x63;
        let e = describe(&bad, &STANDARD).unwrap_err();
        assert!(e.to_string().contains("checksum 0x63"), "{e}");
        assert!(matches!(parse_hex("40 4"), Err(DescribeError::Hex(_))));
    }
}
