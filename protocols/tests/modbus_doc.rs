//! The built-in profile's table in `docs/modbus.md` matches the code: every address the page
//! lists exists in the profile with the access the page states, and the page lists them all.

use firegrid_protocols::regmap::{RegisterKind, TYPICAL_RCM_TEMP};

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

#[test]
fn the_page_matches_the_builtin_profile() {
    let page = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/modbus.md"))
        .expect("docs/modbus.md is in the repository");
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
