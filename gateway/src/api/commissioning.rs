//! Commissioning, device events, the roster and overdue self-tests in the API
//! ([`crate::commissioning`], docs/commissioning.md). Every route is area-scoped: a device
//! outside the caller's subtree is a 403, `?area=` must lie in it.
//!
//! | Route | What |
//! | --- | --- |
//! | `GET /api/v1/devices/{id}/events?kind=&before=&limit=` | the device's journaled events, newest first |
//! | `POST /api/v1/devices/{id}/tests` `{"kind":"self_test"\|"button"}` | ask a commissioned device for a test (202); the caller becomes its installer |
//! | `GET /api/v1/devices/{id}/tests` | its tests since it was commissioned, with times and latencies |
//! | `GET /api/v1/device-tests/{id}` | one test |
//! | `POST /api/v1/devices/{id}/commissioning-record` | issue the signed record (201: the record file) |
//! | `GET /api/v1/devices/{id}/commissioning-records` | the records issued for it |
//! | `GET /api/v1/commissioning-records/{id}` | a record file, as issued (download) |
//! | `GET /api/v1/commissioning/key` | the gateway's record-signing public key |
//! | `GET /api/v1/roster?area=&state=&kind=` | devices with status, battery, signal, firmware, config in force vs wanted, last self-test |
//! | `GET /api/v1/self-tests/overdue?area=` | devices whose scheduled self-test result is overdue |

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use firegrid_protocols::DeviceId;

use super::access::{Caller, check_area};
use super::device_config::ConfigBody;
use super::error::{ApiError, Json, PathId, Query, Subject, query_area, query_ms};
use super::registry::limit;
use super::{ApiState, now_ms, tell_pipeline};
use crate::commissioning::record::{self, Binding, Record, RecordDevice, TestEntry};
use crate::commissioning::{TestKind, overdue};
use crate::control::Control;
use crate::model::{DeviceKind, DeviceState, UnixMs};
use crate::store::{Device, DeviceFields, DeviceFilter, DeviceTest, RosterStatus, Store};

/// The device `id` if it lies in the caller's scope (404 unknown, 403 outside).
pub(crate) fn scoped_device(s: &Store, caller: &Caller, id: &DeviceId) -> Result<Device, ApiError> {
    s.get_scoped::<DeviceFields>(id, caller.scope())
        .map_err(|e| ApiError::from_store(e, &Subject::new("device", id)))?
        .ok_or_else(|| ApiError::not_found(format!("no device {id}")))
}

async fn run<T: Send + 'static>(
    state: &ApiState,
    f: impl FnOnce(&Store) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let store = state.store.clone();
    tokio::task::spawn_blocking(move || f(&store))
        .await
        .map_err(|e| ApiError::internal("a store task failed", &e))?
}

fn store_err(e: crate::store::StoreError) -> ApiError {
    ApiError::from_store(e, &Subject::NONE)
}

// ---- events -----------------------------------------------------------------------------------

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(super) struct EventQuery {
    kind: Option<String>,
    before: Option<UnixMs>,
    limit: Option<u32>,
}

/// `GET /devices/{id}/events`.
pub(super) async fn events(
    State(state): State<ApiState>,
    caller: Caller,
    id: PathId,
    Query(q): Query<EventQuery>,
) -> Result<Response, ApiError> {
    let id = id.device()?;
    let limit = match limit(q.limit)? {
        0 => 100,
        n => n,
    };
    if let Some(k) = &q.kind
        && (k.is_empty() || k.len() > 32 || !k.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'))
    {
        return Err(ApiError::bad_request(format!(
            "kind {k:?}: an event kind is lower-case letters and _, e.g. self_test, config_applied"
        )));
    }
    let before = query_ms("before", q.before)?;
    let found = run(&state, move |s| {
        scoped_device(s, &caller, &id)?;
        s.events_of(&id, q.kind.as_deref(), before, limit)
            .map_err(store_err)
    })
    .await?;
    Ok(Json(found).into_response())
}

// ---- tests ------------------------------------------------------------------------------------

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct TestBody {
    kind: TestKind,
}

/// A test as the API shows it: its times and the latencies they give.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct TestView {
    #[serde(flatten)]
    test: DeviceTest,
    device_to_gateway_ms: Option<i64>,
    gateway_to_installer_ms: Option<i64>,
    total_ms: Option<i64>,
}

impl From<DeviceTest> for TestView {
    fn from(test: DeviceTest) -> Self {
        let (a, b, c) = record::latencies(
            test.requested_ms,
            test.device_ms,
            test.received_ms,
            test.delivered_ms,
        );
        Self {
            test,
            device_to_gateway_ms: a,
            gateway_to_installer_ms: b,
            total_ms: c,
        }
    }
}

/// `POST /devices/{id}/tests`: the caller asks a commissioned device for a test and becomes
/// its installer; the self-test command is sent now, the button is the installer's to press.
pub(super) async fn ask_test(
    State(state): State<ApiState>,
    caller: Caller,
    id: PathId,
    Json(body): Json<TestBody>,
) -> Result<Response, ApiError> {
    let id = id.device()?;
    let test = request_test(&state, caller, id, body.kind).await?;
    let location = format!("/api/v1/device-tests/{}", test.id);
    Ok((
        StatusCode::ACCEPTED,
        [(header::LOCATION, location)],
        Json(TestView::from(test)),
    )
        .into_response())
}

/// `caller` asks device `id` for a test of `kind` (the API's and the installer page's way).
///
/// # Errors
/// 409 not commissioned or not bound to a cell, 403/404 as for the device, 422 `scheduled`.
pub(crate) async fn request_test(
    state: &ApiState,
    caller: Caller,
    id: DeviceId,
    kind: TestKind,
) -> Result<DeviceTest, ApiError> {
    let body = TestBody { kind };
    if body.kind == TestKind::Scheduled {
        return Err(ApiError::unprocessable(
            "kind: self_test or button (scheduled tests are the gateway's)",
        ));
    }
    let timeout = u64::from(state.commissioning.section.test_timeout_s) * 1000;
    let (c, d) = (caller.clone(), id.clone());
    let test = run(state, move |s| {
        let device = scoped_device(s, &c, &d)?;
        if device.fields.state != DeviceState::Commissioned {
            return Err(ApiError::conflict(format!(
                "device {d} is not commissioned: tests are run while a device is commissioned \
                 (POST /api/v1/devices/{d}/state {{\"to\":\"commissioned\"}}); a device in \
                 service takes the self-test command (POST /api/v1/devices/{d}/commands)"
            )));
        }
        if device.fields.grid_id.is_none() {
            return Err(ApiError::conflict(format!(
                "device {d} is bound to no grid cell: bind it first (the installer's topic is \
                 under its cell)"
            )));
        }
        let now = now_ms();
        s.set_installer(&d, c.user(), now).map_err(store_err)?;
        let tid = s
            .add_test(
                &d,
                body.kind,
                Some(c.user()),
                now,
                now.saturating_add(timeout),
            )
            .map_err(store_err)?;
        s.audit(
            c.user(),
            "device.test",
            &format!("device/{d}"),
            &serde_json::json!({ "test": tid, "kind": body.kind }),
            now,
        )
        .map_err(store_err)?;
        s.device_test(tid)
            .map_err(store_err)?
            .ok_or_else(|| ApiError::not_found(format!("no test {tid}")))
    })
    .await?;
    if body.kind == TestKind::SelfTest {
        tell_pipeline(
            state,
            Control::Command(id, firegrid_protocols::message::Action::SelfTest),
        )
        .await?;
    }
    state.commissioning.wake.notify_one();
    Ok(test)
}

/// `GET /devices/{id}/tests`: since the device was last put in `commissioned`.
pub(super) async fn tests(
    State(state): State<ApiState>,
    caller: Caller,
    id: PathId,
) -> Result<Response, ApiError> {
    let id = id.device()?;
    let found = run(&state, move |s| {
        scoped_device(s, &caller, &id)?;
        let since = s
            .installer_of(id.as_str())
            .map_err(store_err)?
            .map_or(0, |(_, since)| since);
        s.tests_of(id.as_str(), since).map_err(store_err)
    })
    .await?;
    let views: Vec<TestView> = found.into_iter().map(TestView::from).collect();
    Ok(Json(views).into_response())
}

/// `GET /device-tests/{id}`.
pub(super) async fn test(
    State(state): State<ApiState>,
    caller: Caller,
    id: PathId,
) -> Result<Response, ApiError> {
    let tid = id.number("test")?;
    let found = run(&state, move |s| {
        let t = s
            .device_test(tid)
            .map_err(store_err)?
            .ok_or_else(|| ApiError::not_found(format!("no test {tid}")))?;
        let d = super::error::device_id("device", &t.device)?;
        scoped_device(s, &caller, &d)?;
        Ok(t)
    })
    .await?;
    Ok(Json(TestView::from(found)).into_response())
}

// ---- records ----------------------------------------------------------------------------------

/// `POST /devices/{id}/commissioning-record`: the signed record of the device's
/// commissioning so far (201, the record file; `Location` its download).
pub(super) async fn issue_record(
    State(state): State<ApiState>,
    caller: Caller,
    id: PathId,
) -> Result<Response, ApiError> {
    let id = id.device()?;
    let (rid, file) = issue(&state, caller, id).await?;
    Ok((
        StatusCode::CREATED,
        [
            (
                header::LOCATION,
                format!("/api/v1/commissioning-records/{rid}"),
            ),
            (header::CONTENT_TYPE, "application/json".to_owned()),
        ],
        file,
    )
        .into_response())
}

/// Issues the signed record of device `id`'s commissioning as `caller`: its id and file.
///
/// # Errors
/// 409 not commissioned or in service, no installer, no answered test; 503 no key.
pub(crate) async fn issue(
    state: &ApiState,
    caller: Caller,
    id: DeviceId,
) -> Result<(i64, Vec<u8>), ApiError> {
    let key = state
        .commissioning
        .key
        .clone()
        .ok_or_else(|| ApiError::unavailable("the gateway has no record-signing key"))?;
    run(state, move |s| {
        let device = scoped_device(s, &caller, &id)?;
        if !matches!(
            device.fields.state,
            DeviceState::Commissioned | DeviceState::InService
        ) {
            return Err(ApiError::conflict(format!(
                "device {id} is neither commissioned nor in service: nothing to certify"
            )));
        }
        let (installer, since) =
            s.installer_of(id.as_str())
                .map_err(store_err)?
                .ok_or_else(|| {
                    ApiError::conflict(format!(
                        "device {id} has no installer: put it in commissioned and run a test first"
                    ))
                })?;
        let tests: Vec<TestEntry> = s
            .tests_of(id.as_str(), since)
            .map_err(store_err)?
            .into_iter()
            .filter(|t| t.kind != "scheduled" && t.finished_ms.is_some())
            .map(entry)
            .collect();
        if !tests.iter().any(|t| t.result != "timed_out") {
            return Err(ApiError::conflict(format!(
                "device {id} has no answered test since it was commissioned: run one \
                 (POST /api/v1/devices/{id}/tests) and wait for its result"
            )));
        }
        let place = s.place_of(&id).map_err(store_err)?;
        let status = s
            .roster_statuses(std::slice::from_ref(&id))
            .map_err(store_err)?
            .remove(id.as_str())
            .and_then(|r| r.status);
        let f = &device.fields;
        let issued_ms = now_ms();
        let device_view = RecordDevice {
            id: id.to_string(),
            kind: kind_name(f.kind).to_owned(),
            firmware: status.as_ref().and_then(|s| s.firmware.clone()),
            signal_dbm: status.as_ref().and_then(|s| s.signal_dbm),
            battery_mv: status.as_ref().and_then(|s| s.battery_mv),
            config_in_force: status.as_ref().and_then(|s| s.config_version),
            config_wanted: i64::from(f.config.version),
            config: serde_json::to_value(ConfigBody::from(&f.config)).unwrap_or_default(),
        };
        let binding = Binding {
            site_id: f.site_id,
            site: place.site,
            address: place.address,
            room_id: f.room_id,
            room: place.room,
            circuit_id: f.circuit_id,
            circuit: place.circuit,
            grid_id: f.grid_id.as_ref().map(ToString::to_string),
        };
        let who = installer.clone();
        s.add_record(&id, &installer, issued_ms, move |rid| {
            record::sign(
                Record {
                    format: record::FORMAT.to_owned(),
                    id: rid,
                    device: device_view,
                    binding,
                    tests,
                    installer: who,
                    issued_ms,
                },
                &key,
            )
            .to_file()
        })
        .map_err(store_err)
    })
    .await
}

const fn kind_name(k: DeviceKind) -> &'static str {
    match k {
        DeviceKind::ElectricalFireMonitor => "electrical_fire_monitor",
        DeviceKind::SmokeAlarm => "smoke_alarm",
        DeviceKind::LegacyModbus => "legacy_modbus",
    }
}

fn entry(t: DeviceTest) -> TestEntry {
    let (a, b, c) = record::latencies(t.requested_ms, t.device_ms, t.received_ms, t.delivered_ms);
    TestEntry {
        id: t.id,
        kind: t.kind,
        result: t.result.unwrap_or_else(|| "timed_out".to_owned()),
        requested_ms: t.requested_ms,
        device_ms: t.device_ms,
        received_ms: t.received_ms,
        delivered_ms: t.delivered_ms,
        device_to_gateway_ms: a,
        gateway_to_installer_ms: b,
        total_ms: c,
    }
}

/// The record file `rid` if its device lies in the caller's scope.
pub(crate) fn record_file(
    s: &Store,
    caller: &Caller,
    rid: i64,
) -> Result<(String, Vec<u8>), ApiError> {
    let (device, file) = s
        .record_file(rid)
        .map_err(store_err)?
        .ok_or_else(|| ApiError::not_found(format!("no commissioning record {rid}")))?;
    let d = super::error::device_id("device", &device)?;
    scoped_device(s, caller, &d)?;
    Ok((device, file))
}

/// `GET /commissioning-records/{id}`: the file as issued (to verify with `firegrid record
/// verify`).
pub(super) async fn get_record(
    State(state): State<ApiState>,
    caller: Caller,
    id: PathId,
) -> Result<Response, ApiError> {
    let rid = id.number("commissioning record")?;
    let (device, file) = run(&state, move |s| record_file(s, &caller, rid)).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/json".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"commissioning-{device}-{rid}.json\""),
            ),
        ],
        file,
    )
        .into_response())
}

/// The record-signing key (`GET /api/v1/commissioning/key`).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct PublicKey {
    /// Always `Ed25519`.
    alg: &'static str,
    /// The public key, base64.
    public_key: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct RecordRef {
    id: i64,
    issued_ms: UnixMs,
    installer: String,
    url: String,
}

/// `GET /devices/{id}/commissioning-records`.
pub(super) async fn list_records(
    State(state): State<ApiState>,
    caller: Caller,
    id: PathId,
) -> Result<Response, ApiError> {
    let id = id.device()?;
    let found = run(&state, move |s| {
        scoped_device(s, &caller, &id)?;
        s.records_of(id.as_str()).map_err(store_err)
    })
    .await?;
    let refs: Vec<RecordRef> = found
        .into_iter()
        .map(|(id, issued_ms, installer)| RecordRef {
            id,
            issued_ms,
            installer,
            url: format!("/api/v1/commissioning-records/{id}"),
        })
        .collect();
    Ok(Json(refs).into_response())
}

/// `GET /commissioning/key`.
pub(super) async fn public_key(State(state): State<ApiState>) -> Result<Response, ApiError> {
    let key = state
        .commissioning
        .public_key()
        .ok_or_else(|| ApiError::unavailable("the gateway has no record-signing key"))?;
    Ok(Json(PublicKey {
        alg: "Ed25519",
        public_key: key,
    })
    .into_response())
}

// ---- roster and overdue self-tests ------------------------------------------------------------

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(super) struct RosterQuery {
    area: Option<String>,
    #[param(inline)]
    state: Option<DeviceState>,
    #[param(inline)]
    kind: Option<DeviceKind>,
    limit: Option<u32>,
    offset: Option<u32>,
}

/// One roster row.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub(crate) struct RosterRow {
    /// The device.
    pub(crate) id: String,
    /// Its kind.
    pub(crate) kind: DeviceKind,
    /// Its life-cycle state.
    pub(crate) state: DeviceState,
    /// Its grid cell.
    pub(crate) grid_id: Option<String>,
    /// Online by its last status (`None`: never heard of).
    pub(crate) online: Option<bool>,
    /// When the gateway last had a message of it.
    pub(crate) last_seen_ms: Option<UnixMs>,
    /// Battery, mV.
    pub(crate) battery_mv: Option<i64>,
    /// Signal, dBm.
    pub(crate) signal_dbm: Option<i64>,
    /// Firmware.
    pub(crate) firmware: Option<String>,
    /// Configuration version in force (the device says).
    pub(crate) config_in_force: Option<i64>,
    /// Configuration version wanted.
    pub(crate) config_wanted: i64,
    /// Whether in force = wanted.
    pub(crate) config_current: bool,
    /// When the last self-test result came.
    pub(crate) last_self_test_ms: Option<UnixMs>,
    /// Its result.
    pub(crate) last_self_test: Option<String>,
}

fn row(d: &Device, r: Option<&RosterStatus>, now: UnixMs) -> RosterRow {
    let s = r.and_then(|r| r.status.as_ref());
    let wanted = i64::from(d.fields.config.version);
    RosterRow {
        id: d.id.to_string(),
        kind: d.fields.kind,
        state: d.fields.state,
        grid_id: d.fields.grid_id.as_ref().map(ToString::to_string),
        online: s.and_then(|s| {
            crate::commissioning::online(
                s.online,
                s.seen_ms,
                d.fields.config.heartbeat_interval_s,
                now,
            )
        }),
        last_seen_ms: s.map(|s| s.seen_ms),
        battery_mv: s.and_then(|s| s.battery_mv),
        signal_dbm: s.and_then(|s| s.signal_dbm),
        firmware: s.and_then(|s| s.firmware.clone()),
        config_in_force: s.and_then(|s| s.config_version),
        config_wanted: wanted,
        config_current: s.and_then(|s| s.config_version) == Some(wanted),
        last_self_test_ms: r.and_then(|r| r.last_self_test.as_ref()).map(|t| t.0),
        last_self_test: r
            .and_then(|r| r.last_self_test.as_ref())
            .map(|t| t.1.clone()),
    }
}

/// The roster of the caller's scope (`?area=` below it), as rows (blocking).
pub(crate) fn roster_rows(
    s: &Store,
    caller: &Caller,
    area: Option<&str>,
    state: Option<DeviceState>,
    kind: Option<DeviceKind>,
    limit: u32,
    offset: u32,
) -> Result<Vec<RosterRow>, ApiError> {
    let area = area.map(|a| query_area("area", a)).transpose()?;
    if let Some(a) = &area {
        check_area(s, caller, &format!("area {a}"), Some(a))?;
    }
    let devices = s
        .list::<DeviceFields>(
            &DeviceFilter {
                state,
                kind,
                site_id: None,
                area_id: area,
                limit,
                offset,
            },
            caller.scope(),
        )
        .map_err(store_err)?;
    let ids: Vec<DeviceId> = devices.iter().map(|d| d.id.clone()).collect();
    let statuses = s.roster_statuses(&ids).map_err(store_err)?;
    Ok(devices
        .iter()
        .map(|d| row(d, statuses.get(d.id.as_str()), now_ms()))
        .collect())
}

/// `GET /roster`.
pub(super) async fn roster(
    State(state): State<ApiState>,
    caller: Caller,
    Query(q): Query<RosterQuery>,
) -> Result<Response, ApiError> {
    let lim = limit(q.limit)?;
    let rows = run(&state, move |s| {
        roster_rows(
            s,
            &caller,
            q.area.as_deref(),
            q.state,
            q.kind,
            lim,
            q.offset.unwrap_or(0),
        )
    })
    .await?;
    Ok(Json(rows).into_response())
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(super) struct OverdueQuery {
    area: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct OverdueRow {
    #[serde(flatten)]
    device: RosterRow,
    period_days: u64,
    due_ms: UnixMs,
}

/// `GET /self-tests/overdue`: commissioned and in-service devices of a kind with a schedule
/// whose last self-test result is older than the period and a day (never tested: counted from
/// registration), most overdue first.
pub(super) async fn overdue_self_tests(
    State(state): State<ApiState>,
    caller: Caller,
    Query(q): Query<OverdueQuery>,
) -> Result<Response, ApiError> {
    let section = state.commissioning.section.clone();
    let now = now_ms();
    let rows = run(&state, move |s| {
        let area = q
            .area
            .as_deref()
            .map(|a| query_area("area", a))
            .transpose()?;
        if let Some(a) = &area {
            check_area(s, &caller, &format!("area {a}"), Some(a))?;
        }
        let mut out = Vec::new();
        for st in [DeviceState::Commissioned, DeviceState::InService] {
            let mut offset = 0;
            loop {
                let page = s
                    .list::<DeviceFields>(
                        &DeviceFilter {
                            state: Some(st),
                            area_id: area.clone(),
                            limit: 1000,
                            offset,
                            ..DeviceFilter::default()
                        },
                        caller.scope(),
                    )
                    .map_err(store_err)?;
                let ids: Vec<DeviceId> = page.iter().map(|d| d.id.clone()).collect();
                let statuses = s.roster_statuses(&ids).map_err(store_err)?;
                for d in &page {
                    let Some(period) = section.period_ms(d.fields.kind) else {
                        continue;
                    };
                    let r = statuses.get(d.id.as_str());
                    let last = r.and_then(|r| r.last_self_test.as_ref()).map(|t| t.0);
                    if overdue(period, last, d.created_ms, now) {
                        out.push(OverdueRow {
                            device: row(d, r, now),
                            period_days: period / 86_400_000,
                            due_ms: last.unwrap_or(d.created_ms).saturating_add(period),
                        });
                    }
                }
                if page.len() < 1000 {
                    break;
                }
                offset += 1000;
            }
        }
        out.sort_by_key(|r| r.due_ms);
        Ok(out)
    })
    .await?;
    Ok(Json(rows).into_response())
}
