use super::*;
use firegrid_protocols::thresholds::Threshold;

#[test]
fn areas_check_levels_references_and_uses() {
    let dir = tmp();
    let store = open(&db(&dir));
    tree(&store);

    let f = |parent: Option<&str>, level| AreaFields {
        parent_id: parent.map(gid),
        level,
        name: "x".into(),
    };
    let err = store
        .create(gid("g9"), &f(Some("nope"), AreaLevel::Grid), actor())
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Unknown { what: Noun::Area, id } if id == "nope"),
        "{err}"
    );
    let err = store
        .create(gid("s9"), &f(Some("g1"), AreaLevel::Street), actor())
        .unwrap_err();
    assert!(matches!(err, StoreError::Mismatch(_)), "{err}");
    let err = store
        .create(gid("g1"), &f(Some("c1"), AreaLevel::Grid), actor())
        .unwrap_err();
    assert!(
        matches!(err, StoreError::AlreadyExists { what: "area", .. }),
        "{err}"
    );
    // A community with grid cells below it cannot become a grid cell.
    let err = store
        .update(&gid("c1"), &f(Some("s1"), AreaLevel::Grid), actor())
        .unwrap_err();
    assert!(matches!(err, StoreError::Mismatch(_)), "{err}");
    let err = store
        .update(&gid("d1"), &f(Some("d1"), AreaLevel::District), actor())
        .unwrap_err();
    assert!(matches!(err, StoreError::Mismatch(_)), "{err}");

    let renamed = store
        .update(
            &gid("g2"),
            &AreaFields {
                parent_id: Some(gid("c1")),
                level: AreaLevel::Grid,
                name: "Grid two".into(),
            },
            Actor::new("admin", T0 + 5),
        )
        .unwrap();
    assert_eq!(renamed.fields.name, "Grid two");
    assert_eq!((renamed.created_ms, renamed.updated_ms), (T0, T0 + 5));
    assert_eq!(store.get::<AreaFields>(&gid("g2")).unwrap(), Some(renamed));

    let path: Vec<String> = store
        .area_path(&gid("g1"))
        .unwrap()
        .into_iter()
        .map(|a| a.id.to_string())
        .collect();
    assert_eq!(path, ["g1", "c1", "s1", "d1"]);
    assert!(matches!(
        store.area_path(&gid("zz")),
        Err(StoreError::Unknown {
            what: Noun::Area,
            ..
        })
    ));

    let grids: Vec<String> = store
        .list::<AreaFields>(
            &AreaFilter {
                level: Some(AreaLevel::Grid),
                ..AreaFilter::default()
            },
            None,
        )
        .unwrap()
        .into_iter()
        .map(|a| a.id.to_string())
        .collect();
    assert_eq!(grids, ["g1", "g2"]);
    assert_eq!(
        store
            .list::<AreaFields>(
                &AreaFilter {
                    parent_id: Some(gid("c1")),
                    ..AreaFilter::default()
                },
                None
            )
            .unwrap()
            .len(),
        2
    );

    let err = store.delete::<AreaFields>(&gid("c1"), actor()).unwrap_err();
    assert!(
        matches!(err, StoreError::InUse { by: "areas", .. }),
        "{err}"
    );
    store.delete::<AreaFields>(&gid("g2"), actor()).unwrap();
    assert_eq!(store.get::<AreaFields>(&gid("g2")).unwrap(), None);
    assert!(matches!(
        store.delete::<AreaFields>(&gid("g2"), actor()),
        Err(StoreError::Unknown {
            what: Noun::Area,
            ..
        })
    ));

    // Every change is audited with who made it.
    let log = store
        .audit_log(&AuditFilter {
            subject: Some("area/g2".into()),
            ..AuditFilter::default()
        })
        .unwrap();
    let actions: Vec<(&str, &str)> = log
        .iter()
        .map(|e| (e.action.as_str(), e.who.as_str()))
        .collect();
    assert_eq!(
        actions,
        [
            ("area.delete", "tester"),
            ("area.update", "admin"),
            ("area.create", "tester")
        ]
    );
    assert_eq!(log[1].detail["name"], "Grid two");
}

#[test]
fn workers_sites_rooms_and_circuits() {
    let dir = tmp();
    let store = open(&db(&dir));
    tree(&store);

    // Workers.
    let wf = |area: &str| WorkerFields {
        name: "Li Na".into(),
        area_id: gid(area),
        phone: Some("138".into()),
        mqtt_topic: None,
        webhook_url: Some("http://127.0.0.1:1/hook".into()),
        webhook_format: crate::store::WebhookFormat::Json,
        webhook_secret: None,
    };
    assert!(matches!(
        store.create((), &wf("nope"), actor()),
        Err(StoreError::Unknown {
            what: Noun::Area,
            ..
        })
    ));
    let w = store.create((), &wf("g1"), actor()).unwrap();
    store.create((), &wf("c1"), actor()).unwrap();
    assert_eq!(store.get::<WorkerFields>(&w.id).unwrap(), Some(w.clone()));
    let mut changed = wf("g2");
    changed.phone = None;
    let w2 = store.update(&w.id, &changed, actor()).unwrap();
    assert_eq!(w2.fields, changed);
    let in_g2 = store
        .list::<WorkerFields>(
            &WorkerFilter {
                area_id: Some(gid("g2")),
            },
            None,
        )
        .unwrap();
    assert_eq!(in_g2, [w2]);
    assert!(
        matches!(store.update(&999, &changed, actor()), Err(StoreError::Unknown { what: Noun::Worker, ref id }) if id == "999")
    );
    store.delete::<WorkerFields>(&w.id, actor()).unwrap();
    assert!(matches!(
        store.delete::<WorkerFields>(&w.id, actor()),
        Err(StoreError::Unknown {
            what: Noun::Worker,
            ..
        })
    ));
    assert_eq!(
        store
            .list::<WorkerFields>(&WorkerFilter::default(), None)
            .unwrap()
            .len(),
        1
    );

    // Sites, listed by area subtree.
    let s1 = site(&store, "g1");
    let s2 = site(&store, "g2");
    let ids = |f: SiteFilter| -> Vec<SiteId> {
        store
            .list::<SiteFields>(&f, None)
            .unwrap()
            .into_iter()
            .map(|s| s.id)
            .collect()
    };
    assert_eq!(
        ids(SiteFilter {
            area_id: Some(gid("d1"))
        }),
        [s1.id, s2.id]
    );
    assert_eq!(
        ids(SiteFilter {
            area_id: Some(gid("g2"))
        }),
        [s2.id]
    );
    let mut sf = s2.fields.clone();
    sf.address = "14 Wenyi Rd".into();
    assert_eq!(store.update(&s2.id, &sf, actor()).unwrap().fields, sf);
    assert!(
        matches!(store.update(&999, &sf, actor()), Err(StoreError::Unknown { what: Noun::Site, ref id }) if id == "999")
    );

    // Rooms.
    assert!(matches!(store.create((), &RoomFields {
                site_id: 999,
                name: "1".into(),
                tenant_name: None,
                tenant_phone: None,
            },
            actor()
        ), Err(StoreError::Unknown { what: Noun::Site, ref id }) if id == "999"));
    let room = store
        .create(
            (),
            &RoomFields {
                site_id: s1.id,
                name: "3-302".into(),
                tenant_name: None,
                tenant_phone: None,
            },
            actor(),
        )
        .unwrap();
    assert_eq!(
        store
            .list::<RoomFields>(
                &RoomFilter {
                    site_id: Some(s1.id)
                },
                None
            )
            .unwrap(),
        std::slice::from_ref(&room)
    );
    assert!(
        store
            .list::<RoomFields>(
                &RoomFilter {
                    site_id: Some(s2.id)
                },
                None
            )
            .unwrap()
            .is_empty()
    );

    // Circuits: a supply tree within one site, without loops.
    let c = |parent: Option<CircuitId>, site_id: SiteId, name: &str| CircuitFields {
        site_id,
        parent_id: parent,
        name: name.into(),
    };
    let supply = store
        .create((), &c(None, s1.id, "supply"), actor())
        .unwrap();
    let dbox = store
        .create((), &c(Some(supply.id), s1.id, "box 1"), actor())
        .unwrap();
    let line = store
        .create((), &c(Some(dbox.id), s1.id, "lights"), actor())
        .unwrap();
    let err = store
        .create((), &c(Some(dbox.id), s2.id, "foreign"), actor())
        .unwrap_err();
    assert!(matches!(err, StoreError::Mismatch(_)), "{err}");
    assert!(
        matches!(store.create((), &c(Some(999), s1.id, "x"), actor()), Err(StoreError::Unknown { what: Noun::Circuit, ref id }) if id == "999")
    );
    let err = store
        .update(&supply.id, &c(Some(line.id), s1.id, "supply"), actor())
        .unwrap_err();
    assert!(matches!(err, StoreError::Mismatch(_)), "a loop: {err}");
    assert_eq!(
        store
            .list::<CircuitFields>(
                &CircuitFilter {
                    site_id: Some(s1.id)
                },
                None
            )
            .unwrap()
            .iter()
            .map(|c| c.id)
            .collect::<Vec<_>>(),
        [supply.id, dbox.id, line.id]
    );
    let err = store
        .delete::<CircuitFields>(&dbox.id, actor())
        .unwrap_err();
    assert!(
        matches!(err, StoreError::InUse { by: "circuits", .. }),
        "{err}"
    );
    store.delete::<CircuitFields>(&line.id, actor()).unwrap();
    assert_eq!(store.get::<CircuitFields>(&line.id).unwrap(), None);

    // A site with rooms and circuits stays.
    let err = store.delete::<SiteFields>(&s1.id, actor()).unwrap_err();
    assert!(
        matches!(err, StoreError::InUse { what: "site", .. }),
        "{err}"
    );
    store.delete::<SiteFields>(&s2.id, actor()).unwrap();
    assert_eq!(store.get::<SiteFields>(&s2.id).unwrap(), None);
    store.delete::<RoomFields>(&room.id, actor()).unwrap();
    assert_eq!(store.get::<RoomFields>(&room.id).unwrap(), None);
}

#[test]
fn devices_check_their_references_and_feed_the_engine() {
    let dir = tmp();
    let store = open(&db(&dir));
    tree(&store);
    let s1 = site(&store, "g1");
    let s2 = site(&store, "g2");
    let room_of_s2 = store
        .create(
            (),
            &RoomFields {
                site_id: s2.id,
                name: "1".into(),
                tenant_name: None,
                tenant_phone: None,
            },
            actor(),
        )
        .unwrap();
    let circuit = store
        .create(
            (),
            &CircuitFields {
                site_id: s1.id,
                parent_id: None,
                name: "supply".into(),
            },
            actor(),
        )
        .unwrap();

    let mut f = fields(Some(s1.id), Some("g1"), DeviceState::InService);
    f.room_id = Some(room_of_s2.id);
    let err = store.create(did("x"), &f, actor()).unwrap_err();
    assert!(matches!(err, StoreError::Mismatch(_)), "{err}");
    let mut f = fields(Some(s1.id), Some("c1"), DeviceState::InService);
    let err = store.create(did("x"), &f, actor()).unwrap_err();
    assert!(
        matches!(&err, StoreError::NotAGrid(a) if a == "c1"),
        "{err}"
    );
    f.grid_id = None;
    let err = store.create(did("x"), &f, actor()).unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Incomplete {
                missing: "a grid cell",
                ..
            }
        ),
        "{err}"
    );
    let mut f = fields(None, None, DeviceState::Registered);
    f.config.channels[0].threshold = Threshold::ResidualMa(5);
    let err = store.create(did("x"), &f, actor()).unwrap_err();
    assert!(matches!(err, StoreError::InvalidConfig(_)), "{err}");
    let mut f = fields(None, None, DeviceState::Registered);
    f.circuit_id = Some(circuit.id);
    let err = store.create(did("x"), &f, actor()).unwrap_err();
    assert!(
        matches!(err, StoreError::Mismatch(_)),
        "a circuit needs the site: {err}"
    );

    store
        .record_pending(&did("d-2"), "firegrid/v1/dev/d-2/status", T0)
        .unwrap();
    store
        .record_pending(&did("d-2"), "firegrid/v1/dev/d-2/event", T0 + 7)
        .unwrap();
    let pending = store.list_pending().unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(
        (
            pending[0].messages,
            pending[0].first_seen_ms,
            pending[0].last_seen_ms
        ),
        (2, T0, T0 + 7)
    );
    assert_eq!(pending[0].last_topic, "firegrid/v1/dev/d-2/event");

    let mut in_service = fields(Some(s1.id), Some("g1"), DeviceState::InService);
    in_service.circuit_id = Some(circuit.id);
    let d1 = store.create(did("d-1"), &in_service, actor()).unwrap();
    let d2 = store
        .create(
            did("d-2"),
            &fields(None, None, DeviceState::Registered),
            actor(),
        )
        .unwrap();
    assert!(
        store.list_pending().unwrap().is_empty(),
        "registered: no longer pending"
    );
    store
        .create(
            did("d-3"),
            &fields(Some(s2.id), Some("g2"), DeviceState::Commissioned),
            actor(),
        )
        .unwrap();
    store
        .create(
            did("d-4"),
            &fields(Some(s2.id), Some("g2"), DeviceState::Decommissioned),
            actor(),
        )
        .unwrap();
    assert!(matches!(
        store.create(did("d-1"), &in_service, actor()),
        Err(StoreError::AlreadyExists { what: "device", .. })
    ));

    // Round trip, config included (kept in the protocol's JSON).
    assert_eq!(store.device(&did("d-1")).unwrap(), Some(d1.clone()));
    assert_eq!(store.device(&did("d-2")).unwrap(), Some(d2));
    let config_json: String = raw(store.path())
        .query_row("SELECT config FROM devices WHERE id = 'd-1'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert!(
        config_json.contains(r#""residual_ma":300"#),
        "{config_json}"
    );

    let specs = store.device_specs().unwrap();
    let ids: Vec<&str> = specs.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, ["d-1", "d-3"], "commissioned and in service only");
    assert_eq!(specs[0], d1.spec().unwrap());
    assert_eq!(specs[0].channels.len(), 2);
    assert_eq!(specs[0].heartbeat_interval_s, 60);

    let list = |f: DeviceFilter| -> Vec<String> {
        store
            .devices(&f)
            .unwrap()
            .into_iter()
            .map(|d| d.id.to_string())
            .collect()
    };
    assert_eq!(list(DeviceFilter::default()), ["d-1", "d-2", "d-3", "d-4"]);
    assert_eq!(
        list(DeviceFilter {
            area_id: Some(gid("c1")),
            ..DeviceFilter::default()
        }),
        ["d-1", "d-3", "d-4"]
    );
    assert_eq!(
        list(DeviceFilter {
            state: Some(DeviceState::Registered),
            ..DeviceFilter::default()
        }),
        ["d-2"]
    );
    assert_eq!(
        list(DeviceFilter {
            site_id: Some(s2.id),
            limit: 1,
            offset: 1,
            ..DeviceFilter::default()
        }),
        ["d-4"]
    );

    // Update: a new config version, decommissioned.
    let mut f = d1.fields.clone();
    f.config = config(2);
    f.state = DeviceState::Decommissioned;
    let updated = store
        .update(&did("d-1"), &f, Actor::new("installer", T0 + 9))
        .unwrap();
    assert_eq!(updated.fields.config.version, 2);
    assert_eq!(updated.updated_ms, T0 + 9);
    assert_eq!(store.device_specs().unwrap().len(), 1);
    assert!(matches!(
        store.update(&did("zz"), &f, actor()),
        Err(StoreError::Unknown {
            what: Noun::Device,
            ..
        })
    ));

    // References in use.
    let err = store
        .delete::<CircuitFields>(&circuit.id, actor())
        .unwrap_err();
    assert!(
        matches!(err, StoreError::InUse { by: "devices", .. }),
        "{err}"
    );
    let err = store.delete::<AreaFields>(&gid("g2"), actor()).unwrap_err();
    assert!(matches!(err, StoreError::InUse { .. }), "{err}");
    let err = store
        .update(
            &gid("g2"),
            &AreaFields {
                parent_id: Some(gid("s1")),
                level: AreaLevel::Community,
                name: "x".into(),
            },
            actor(),
        )
        .unwrap_err();
    assert!(matches!(err, StoreError::InUse { .. }), "{err}");

    // A device with a journal is decommissioned, never deleted.
    store.journal_batch(&[new_event("d-1", 1)]).unwrap();
    let err = store
        .delete::<DeviceFields>(&did("d-1"), actor())
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::InUse {
                by: "journal events",
                ..
            }
        ),
        "{err}"
    );
    store.delete::<DeviceFields>(&did("d-2"), actor()).unwrap();
    assert_eq!(store.device(&did("d-2")).unwrap(), None);

    // The audit keeps who changed what, never the credential hash.
    let log = store
        .audit_log(&AuditFilter {
            subject: Some("device/d-1".into()),
            ..AuditFilter::default()
        })
        .unwrap();
    assert_eq!(log[0].who, "installer");
    assert_eq!(log[0].action, "device.update");
    assert!(
        log.iter()
            .all(|e| !e.detail.to_string().contains("hash:abc"))
    );
    assert!(store.forget_pending(&did("d-9")).is_ok_and(|found| !found));
}

/// The pipeline once read only the first page (10 000) of devices at start: the rest were
/// refused as unknown after a restart.
#[test]
fn all_devices_reads_every_page() {
    let dir = tmp();
    let store = open(&db(&dir));
    tree(&store);
    for i in 0..5 {
        store
            .create(
                did(&format!("p-{i}")),
                &fields(None, None, DeviceState::Registered),
                actor(),
            )
            .unwrap();
    }
    for page in [1, 2, 5, 10] {
        let ids: Vec<String> = store
            .all_devices_paged(page)
            .unwrap()
            .into_iter()
            .map(|d| d.id.to_string())
            .collect();
        assert_eq!(ids, ["p-0", "p-1", "p-2", "p-3", "p-4"], "page {page}");
    }
    assert_eq!(store.all_devices().unwrap().len(), 5);
}

#[test]
fn an_import_is_one_transaction_and_every_device_can_be_read_back() {
    let dir = tmp();
    let store = open(&db(&dir));
    tree(&store);
    let site = site(&store, "g1");
    let f = fields(Some(site.id), Some("g1"), DeviceState::InService);
    // More than one page of `devices` (10 000), as the pipeline loads them at start-up.
    let many: Vec<(DeviceId, DeviceFields)> = (0..10_050)
        .map(|i| (did(&format!("m-{i:05}")), f.clone()))
        .collect();
    let created = store.create_devices(&many, actor()).unwrap().unwrap();
    assert_eq!(created.len(), 10_050);
    let all = store.all_devices().unwrap();
    assert_eq!(all.len(), 10_050);
    assert_eq!(all[10_049].id, did("m-10049"));

    // All or nothing: a bad item names its place, and nothing before it is kept.
    let batch = vec![
        (did("n-1"), f.clone()),
        (
            did("n-2"),
            fields(Some(site.id), Some("nope"), DeviceState::InService),
        ),
    ];
    let (i, err) = store.create_devices(&batch, actor()).unwrap().unwrap_err();
    assert_eq!(i, 1);
    assert!(
        matches!(
            err,
            StoreError::Unknown {
                what: Noun::Area,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(store.device(&did("n-1")).unwrap(), None);
    let again = vec![(did("n-3"), f.clone()), (did("m-00001"), f)];
    let (i, err) = store.create_devices(&again, actor()).unwrap().unwrap_err();
    assert_eq!(i, 1);
    assert!(matches!(err, StoreError::AlreadyExists { .. }), "{err}");
    assert_eq!(store.all_devices().unwrap().len(), 10_050);
}

/// The self-test schedule's first look at a fleet: the commissioned and in-service devices
/// only, with their kind and registration time, as far as the caller keeps them; and one
/// device's latest self-test result.
#[test]
fn self_test_candidates_are_the_devices_in_service_the_caller_keeps() {
    let dir = tmp();
    let store = open(&db(&dir));
    tree(&store);
    let s = site(&store, "g1");
    for (id, state) in [
        ("a", DeviceState::Registered),
        ("b", DeviceState::Commissioned),
        ("c", DeviceState::InService),
        ("e", DeviceState::InService),
    ] {
        store
            .create(did(id), &fields(Some(s.id), Some("g1"), state), actor())
            .unwrap();
    }
    let created = store.device(&did("c")).unwrap().unwrap().created_ms;
    let all = store.self_test_candidates(|_, _, _| true).unwrap();
    assert_eq!(
        all,
        ["b", "c", "e"].map(|id| (did(id), DeviceKind::ElectricalFireMonitor, created))
    );
    let kept = store.self_test_candidates(|id, _, _| id != "c").unwrap();
    assert_eq!(
        kept.iter().map(|(id, ..)| id.as_str()).collect::<Vec<_>>(),
        ["b", "e"]
    );

    assert_eq!(store.last_self_test_ms(&did("c")).unwrap(), None);
    let result = |seq: u32, received_ms: u64| {
        JournalOp::Event(NewEvent {
            device: did("c"),
            event: event(
                seq,
                EventKind::SelfTest {
                    result: firegrid_protocols::message::SelfTestResult::Passed,
                },
            ),
            received_ms,
        })
    };
    store
        .journal_batch(&[result(1, T0), result(2, T0 + 500), new_event("c", 3)])
        .unwrap();
    assert_eq!(store.last_self_test_ms(&did("c")).unwrap(), Some(T0 + 500));
    assert_eq!(store.last_self_test_ms(&did("e")).unwrap(), None);
}
