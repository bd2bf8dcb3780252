use super::*;

const SMALL: &str = r#"
name = "Test district"
seed = 3

[[street]]
id = "a"
name = "A Street"
cells = 2
sites_per_cell = 2
rooms_per_site = 3

[[street]]
id = "b"
name = "B Street"
cells = 1
sites_per_cell = 1
rooms_per_site = 2
smoke_alarms = false

[[incident]]
what = "leakage_creep"
at_s = 60
room = "a-2-1-3"
ma_per_min = 5
max_ma = 400

[[incident]]
what = "smoke"
at_s = 120
room = "a-1-1-1"
for_s = 30

[[incident]]
what = "network_outage"
at_s = 300
street = "b"
for_s = 300

[[incident]]
what = "power_cut"
at_s = 900
street = "*"
for_s = 10
"#;

#[test]
fn a_district_expands_into_rooms_devices_and_schedules() {
    let s = Scenario::parse(SMALL).expect("parses");
    let plan = s.plan();
    // A: 2 × 2 × 3 rooms with a monitor and a smoke alarm each; B: 2 rooms, monitors only.
    assert_eq!(plan.devices.len(), 2 * 2 * 3 * 2 + 2);
    assert_eq!(plan.devices[0].id, "a-1-1-1-m");
    assert_eq!(plan.devices[1].id, "a-1-1-1-s");
    assert_eq!(plan.devices[0].grid_id(), "a-1");
    assert_eq!(plan.devices[0].site_key(), "a-1-1");
    assert!(plan.devices.iter().all(|d| DeviceId::new(&d.id).is_ok()));
    let b = &plan.streets[1];
    assert_eq!(b.devices.len(), 2);
    assert_eq!(b.outages, vec![(300_000, 600_000)]);
    assert!(!b.network_down(299_999));
    assert!(b.network_down(300_000));
    assert!(!b.network_down(600_000));
    assert!(
        plan.streets
            .iter()
            .all(|s| s.power_cuts == vec![(900_000, 910_000)])
    );
    assert_eq!(b.next_change(0), Some(300_000));
    assert_eq!(b.next_change(600_000), Some(900_000));
}

#[test]
fn sensor_incidents_are_compiled_into_the_models() {
    let plan = Scenario::parse(SMALL).expect("parses").plan();
    let creeping = plan.circuit("a-2-1-3-m").expect("monitor");
    let base = creeping.leakage.base_ma;
    assert!((5.0..=40.0).contains(&base), "{base}");
    assert!((creeping.leakage_ma(60_000) - base).abs() < 1e-9);
    // 10 min at 5 mA/min.
    assert!((creeping.leakage_ma(660_000) - (base + 50.0)).abs() < 1e-6);
    assert!((creeping.leakage_ma(100_000_000) - 400.0).abs() < 1e-9);
    // Another circuit is steady.
    let steady = plan.circuit("a-2-1-2-m").expect("monitor");
    assert!((steady.leakage_ma(0) - steady.leakage_ma(100_000_000)).abs() < 1e-9);
    let smoke = plan
        .devices
        .iter()
        .find(|d| d.id == "a-1-1-1-s")
        .and_then(|d| d.models.smoke.clone())
        .expect("smoke alarm");
    assert!(!smoke.present(119_999));
    assert!(smoke.present(120_000));
    assert!(!smoke.present(150_000));
}

#[test]
fn the_same_scenario_gives_the_same_plan() {
    let a = Scenario::parse(SMALL).expect("parses").plan();
    let b = Scenario::parse(SMALL).expect("parses").plan();
    let key = |p: &Plan| {
        p.devices
            .iter()
            .map(|d| {
                (
                    d.id.clone(),
                    d.seed,
                    d.models.circuit.leakage.base_ma.to_bits(),
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(key(&a), key(&b));
}

fn refused(text: &str) -> String {
    Scenario::parse(text).expect_err("refused").to_string()
}

#[test]
fn bad_scenarios_are_refused_with_what_is_expected() {
    let street =
        "[[street]]\nid = \"a\"\nname = \"A\"\ncells = 1\nsites_per_cell = 1\nrooms_per_site = 1\n";
    let head = "name = \"x\"\n";
    assert!(refused(head).contains("street"), "{}", refused(head));
    let e = refused(&format!("{head}{}", street.replace("\"a\"", "\"A/B\"")));
    assert!(e.contains("[a-z0-9]"), "{e}");
    let e = refused(&format!("{head}{street}{street}"));
    assert!(e.contains("twice"), "{e}");
    let e = refused(&format!(
        "{head}{street}\n[[incident]]\nwhat = \"smoke\"\nat_s = 1\nroom = \"a-1-1-2\"\nfor_s = 5\n"
    ));
    assert!(e.contains("incident 1") && e.contains("a-1-1-2"), "{e}");
    let e = refused(&format!(
        "{head}{street}\n[[incident]]\nwhat = \"flood\"\nat_s = 1\n"
    ));
    assert!(e.contains("flood"), "{e}");
    let e = refused(&format!(
        "{head}{street}\n[[incident]]\nwhat = \"smoke\"\nat_s = 1\nroom = \"a-1-1-1\"\nfor_s = 5\ncolour = 1\n"
    ));
    assert!(e.contains("colour"), "{e}");
    let e = refused(&format!(
        "{head}{street}\n[[incident]]\nwhat = \"power_cut\"\nat_s = 1\nstreet = \"zz\"\nfor_s = 5\n"
    ));
    assert!(e.contains("zz"), "{e}");
    let e = refused(&format!(
        "{head}{}",
        street
            .replace("cells = 1", "cells = 999\nsmoke_alarms = true")
            .replace("sites_per_cell = 1", "sites_per_cell = 999")
    ));
    assert!(e.contains("at most"), "{e}");
    let e = refused(&format!(
        "{head}[devices]\nbase_leakage_ma = [50, 10]\n{street}"
    ));
    assert!(e.contains("base_leakage_ma"), "{e}");
    // A TOML error says where.
    let e = refused("name = \n");
    assert!(e.contains("line 1"), "{e}");
}

proptest::proptest! {
    /// Whatever bytes a scenario file holds, parsing answers (never panics), and what it
    /// accepts expands into valid device ids.
    #[test]
    fn parsing_never_panics(text in "\\PC{0,400}") {
        if let Ok(s) = Scenario::parse(&text)
            && s.streets.iter().map(|st| st.cells * st.sites_per_cell * st.rooms_per_site).sum::<u32>() < 1000
        {
            for d in s.plan().devices {
                proptest::prop_assert!(DeviceId::new(&d.id).is_ok());
            }
        }
    }
}

#[test]
fn the_shipped_scenarios_parse() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios");
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).expect("the scenarios directory") {
        let path = entry.expect("an entry").path();
        let text = std::fs::read_to_string(&path).expect("read");
        let s = Scenario::parse(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(!s.plan().devices.is_empty());
        seen += 1;
    }
    assert!(seen > 0, "no scenarios in {dir}");
}

proptest::proptest! {
    /// Any district of valid shape expands into exactly the devices its numbers say, with
    /// valid, unique ids, each street's devices listed with it, and every incident's window
    /// where the file put it.
    #[test]
    fn a_valid_district_expands_exactly(
        streets in proptest::collection::vec((1u32..4, 1u32..4, 1u32..5, proptest::bool::ANY), 1..4),
        outage in (0u64..10_000, 1u64..10_000),
    ) {
        let mut text = String::from("name = \"p\"\n");
        for (i, (cells, sites, rooms, smoke)) in streets.iter().enumerate() {
            text.push_str(&format!(
                "[[street]]\nid = \"s{i}\"\nname = \"S{i}\"\ncells = {cells}\n\
                 sites_per_cell = {sites}\nrooms_per_site = {rooms}\nsmoke_alarms = {smoke}\n"
            ));
        }
        text.push_str(&format!(
            "[[incident]]\nwhat = \"network_outage\"\nat_s = {}\nstreet = \"s0\"\nfor_s = {}\n",
            outage.0, outage.1
        ));
        let plan = Scenario::parse(&text).expect("a valid district").plan();
        let expected: u32 = streets
            .iter()
            .map(|(c, s, r, smoke)| c * s * r * if *smoke { 2 } else { 1 })
            .sum();
        proptest::prop_assert_eq!(plan.devices.len(), expected as usize);
        let ids: std::collections::BTreeSet<&str> =
            plan.devices.iter().map(|d| d.id.as_str()).collect();
        proptest::prop_assert_eq!(ids.len(), plan.devices.len());
        for d in &plan.devices {
            proptest::prop_assert!(DeviceId::new(&d.id).is_ok());
            proptest::prop_assert!(d.id.starts_with(&d.room));
        }
        for st in &plan.streets {
            for &i in &st.devices {
                proptest::prop_assert_eq!(&plan.devices[i].street, &st.id);
            }
        }
        proptest::prop_assert_eq!(
            &plan.streets[0].outages,
            &vec![(outage.0 * 1000, (outage.0 + outage.1) * 1000)]
        );
        proptest::prop_assert!(plan.streets[1..].iter().all(|s| s.outages.is_empty()));
    }
}

#[test]
fn a_feeder_sees_its_rooms_leakage_and_its_own() {
    let text = r#"
name = "Feeders"
seed = 5

[[street]]
id = "f"
name = "F Street"
cells = 1
sites_per_cell = 2
rooms_per_site = 3
smoke_alarms = false
feeders = true

[[incident]]
what = "leakage_creep"
at_s = 0
room = "f-1-2-2"
ma_per_min = 100
max_ma = 200

[[incident]]
what = "leakage_creep"
at_s = 0
room = "f-1-1-feeder"
ma_per_min = 10
"#;
    let plan = Scenario::parse(text).expect("parses").plan();
    let feeders: Vec<&PlannedDevice> = plan.devices.iter().filter(|d| d.feeder).collect();
    assert_eq!(
        feeders.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(),
        ["f-1-1-feeder", "f-1-2-feeder"]
    );
    let at = 10 * 60_000; // 10 min: room 2 of site 2 at its 200 mA cap.
    let rooms = |site: u32| -> f64 {
        (1..=3)
            .map(|r| {
                plan.circuit(&format!("f-1-{site}-{r}-m"))
                    .expect("a room's monitor")
                    .leakage_ma(at)
            })
            .sum()
    };
    let feeder = plan.circuit("f-1-2-feeder").expect("the feeder");
    assert_eq!(feeder.branches.len(), 3);
    assert!(
        (feeder.leakage_ma(at) - (feeder.leakage.ma_at(at) + rooms(2))).abs() < 1e-9,
        "the feeder measures its own and its rooms' leakage"
    );
    assert!(rooms(2) >= 200.0, "the creep is in a room of site 2");
    // The incident on site 1's feeder itself is in its own leakage, not in a room's.
    let f1 = plan.circuit("f-1-1-feeder").expect("the feeder");
    assert!((f1.leakage.ma_at(at) - f1.leakage.ma_at(0) - 100.0).abs() < 1e-6);
    assert!(
        Scenario::parse(&text.replace("feeders = true", "feeders = false"))
            .expect_err("no feeder to name")
            .to_string()
            .contains("f-1-1-feeder")
    );
}
