//! The route table: every `/api/v1` route, the roles that may call it, and its handler — the
//! API's access policy in one place. The router is built from it ([`super::router`]), the
//! access layer of each route is made from its line, the docs' matrix is rendered from it
//! ([`matrix`]), the OpenAPI document is built from it ([`super::openapi`]: each line carries
//! its description), and the test that every route refuses a request without a token walks it.
//! A new route is one line here.

use axum::extract::DefaultBodyLimit;
use axum::http::Method;
use axum::routing::{MethodRouter, delete, get, post, put};

use super::access::{Roles, Rule};
use super::openapi::{self as oa, Op, op, op_list};
use super::resource::{
    create, create_op, delete as remove, delete_op, get as one, get_op, list, list_op, update,
    update_op,
};
use super::{
    ApiState, channels as ch, circuits as ci, commissioning as k, credentials as c, devices as d,
    episodes as e, evidence as ev, hazards as z, history as h, live, registry as r, reports as rp,
    users as u,
};
use crate::access::Role::{Admin, GridWorker, Installer, Operator, Utility};
use crate::commissioning::record::Signed;
use crate::store::{
    Area, AreaFields, AuditEntry, ChannelCircuit, CircuitFields, DeviceEvent, DeviceFields,
    Evidence, Hazard, PendingDevice, RoomFields, SiteFields, TokenInfo, User, WorkerFields,
};

/// Everyone (scoped to their area).
const READ: Roles = Roles::ANY;
/// People and the area tree.
const ADMIN: Roles = Roles::ADMIN;
/// Who keeps the worker list: the monitoring centre.
const STAFF: Roles = Roles::of(&[Admin, Operator]);
/// Who commissions sites, rooms and devices.
const INSTALL: Roles = Roles::of(&[Admin, Installer]);
/// Who keeps supply trees.
const CIRCUITS: Roles = Roles::of(&[Admin, Installer, Utility]);
/// Who acts on alarms: tickets.
const RESPOND: Roles = Roles::of(&[Admin, Operator, GridWorker]);
/// Who sends commands to devices (self-test, silence, reset, reboot).
const COMMAND: Roles = Roles::of(&[Admin, Operator, GridWorker, Installer]);
/// Who sees the devices that published without being registered.
const PENDING: Roles = Roles::of(&[Admin, Operator, Installer]);

/// One `/api/v1` route: its rule (method, path, roles), its handler and its description.
#[derive(Debug)]
pub(crate) struct Route {
    pub(crate) rule: Rule,
    pub(crate) handler: MethodRouter<ApiState>,
    pub(crate) doc: Op,
}

fn route(
    method: Method,
    path: &'static str,
    roles: Roles,
    handler: MethodRouter<ApiState>,
    doc: Op,
) -> Route {
    Route {
        rule: Rule {
            method,
            path,
            roles,
        },
        handler,
        doc,
    }
}

/// Every `/api/v1` route with who may call it and what it takes and answers (its description in
/// the OpenAPI document, [`super::openapi`]).
#[rustfmt::skip]
pub(crate) fn routes() -> Vec<Route> {
    use Method as M;
    vec![
        route(M::GET, "/api/v1/openapi.json", READ, get(oa::openapi_json), Op::any("this document: the API described (OpenAPI 3.1)")),
        route(M::GET, "/api/v1/me", READ, get(u::me), op::<u::Me<'_>>("whose token this is")),
        route(M::GET, "/api/v1/users", ADMIN, get(u::list_users), op_list::<User>("people (a city-wide admin)")),
        route(M::POST, "/api/v1/users", ADMIN, post(u::add_user), op::<u::UserAdded>("add a person, with their first token (shown once)").status(201).body::<u::UserBody>()),
        route(M::POST, "/api/v1/users/{name}/tokens", ADMIN, post(u::issue_token), op::<u::TokenShown>("another token for them (shown once)").status(201)),
        route(M::GET, "/api/v1/tokens", ADMIN, get(u::list_tokens), op_list::<TokenInfo>("tokens, newest first, never a secret").query::<u::TokenQuery>()),
        route(M::DELETE, "/api/v1/tokens/{id}", ADMIN, delete(u::revoke_token), op::<TokenInfo>("revoke a token")),
        route(M::GET, "/api/v1/areas", READ, get(list::<AreaFields>), list_op::<AreaFields>()),
        route(M::POST, "/api/v1/areas", ADMIN, post(create::<AreaFields>), create_op::<AreaFields>()),
        route(M::GET, "/api/v1/areas/{id}", READ, get(one::<AreaFields>), get_op::<AreaFields>()),
        route(M::PUT, "/api/v1/areas/{id}", ADMIN, put(update::<AreaFields>), update_op::<AreaFields>()),
        route(M::DELETE, "/api/v1/areas/{id}", ADMIN, delete(remove::<AreaFields>), delete_op::<AreaFields>()),
        route(M::GET, "/api/v1/areas/{id}/path", READ, get(r::area_path), op_list::<Area>("the area and the areas above it (the escalation path)")),
        route(M::GET, "/api/v1/workers", READ, get(list::<WorkerFields>), list_op::<WorkerFields>()),
        route(M::POST, "/api/v1/workers", STAFF, post(create::<WorkerFields>), create_op::<WorkerFields>()),
        route(M::GET, "/api/v1/workers/{id}", READ, get(one::<WorkerFields>), get_op::<WorkerFields>()),
        route(M::PUT, "/api/v1/workers/{id}", STAFF, put(update::<WorkerFields>), update_op::<WorkerFields>()),
        route(M::DELETE, "/api/v1/workers/{id}", STAFF, delete(remove::<WorkerFields>), delete_op::<WorkerFields>()),
        route(M::GET, "/api/v1/sites", READ, get(list::<SiteFields>), list_op::<SiteFields>()),
        route(M::POST, "/api/v1/sites", INSTALL, post(create::<SiteFields>), create_op::<SiteFields>()),
        route(M::GET, "/api/v1/sites/{id}", READ, get(one::<SiteFields>), get_op::<SiteFields>()),
        route(M::PUT, "/api/v1/sites/{id}", INSTALL, put(update::<SiteFields>), update_op::<SiteFields>()),
        route(M::DELETE, "/api/v1/sites/{id}", INSTALL, delete(remove::<SiteFields>), delete_op::<SiteFields>()),
        route(M::GET, "/api/v1/rooms", READ, get(list::<RoomFields>), list_op::<RoomFields>()),
        route(M::POST, "/api/v1/rooms", INSTALL, post(create::<RoomFields>), create_op::<RoomFields>()),
        route(M::GET, "/api/v1/rooms/{id}", READ, get(one::<RoomFields>), get_op::<RoomFields>()),
        route(M::PUT, "/api/v1/rooms/{id}", INSTALL, put(update::<RoomFields>), update_op::<RoomFields>()),
        route(M::DELETE, "/api/v1/rooms/{id}", INSTALL, delete(remove::<RoomFields>), delete_op::<RoomFields>()),
        route(M::GET, "/api/v1/circuits", READ, get(list::<CircuitFields>), list_op::<CircuitFields>()),
        route(M::POST, "/api/v1/circuits", CIRCUITS, post(create::<CircuitFields>), create_op::<CircuitFields>()),
        route(M::GET, "/api/v1/circuits/{id}", READ, get(one::<CircuitFields>), get_op::<CircuitFields>()),
        route(M::PUT, "/api/v1/circuits/{id}", CIRCUITS, put(update::<CircuitFields>), update_op::<CircuitFields>()),
        route(M::DELETE, "/api/v1/circuits/{id}", CIRCUITS, delete(remove::<CircuitFields>), delete_op::<CircuitFields>()),
        route(M::GET, "/api/v1/circuits/{id}/history", READ, get(h::circuit_history), op::<h::History>("readings of every channel of the devices on the circuit").or_csv().query::<h::CircuitHistoryQuery>()),
        route(M::GET, "/api/v1/circuits/{id}/leak-trace", READ, get(ci::leak_trace), op::<ci::LeakTraceView>("where under the circuit the leak most likely sits, with the evidence").errors(&[409]).query::<ci::LeakTraceQuery>()),
        route(M::GET, "/api/v1/circuit-ranking", READ, get(ci::ranking), op::<ci::RankingView>("the area's circuits ranked by residual-current trend (mA/day) or alarm count").or_csv().query::<ci::RankingQuery>()),
        route(M::GET, "/api/v1/devices", READ, get(list::<DeviceFields>), list_op::<DeviceFields>()),
        route(M::POST, "/api/v1/devices", INSTALL, post(d::create_device), op::<d::DeviceRegistered<'_>>("register a device; its MQTT password is shown this once").status(201).body::<d::DeviceCreate>()),
        route(M::POST, "/api/v1/device-imports", INSTALL, post(d::import_devices), op::<d::Imported>("register many devices at once, all or nothing").status(201).body_list::<d::DeviceCreate>()),
        route(M::GET, "/api/v1/devices/{id}", READ, get(one::<DeviceFields>), get_op::<DeviceFields>()),
        route(M::PUT, "/api/v1/devices/{id}", INSTALL, put(update::<DeviceFields>), update_op::<DeviceFields>()),
        route(M::DELETE, "/api/v1/devices/{id}", INSTALL, delete(remove::<DeviceFields>), delete_op::<DeviceFields>()),
        route(M::POST, "/api/v1/devices/{id}/credentials", INSTALL, post(c::rotate), op::<c::Issued>("a new MQTT password for the device (shown once)").status(201).errors(&[422])),
        route(M::DELETE, "/api/v1/devices/{id}/credentials", INSTALL, delete(c::revoke), Op::empty("revoke the device's MQTT password")),
        route(M::PUT, "/api/v1/devices/{id}/config", INSTALL, put(d::set_device_config), op::<d::DeviceView>("set-points and intervals; the version is assigned").body::<d::ConfigBody>()),
        route(M::POST, "/api/v1/devices/{id}/state", INSTALL, post(d::set_device_state), op::<d::DeviceView>("move the device's state (registered, commissioned, in_service, decommissioned)").body::<d::StateBody>()),
        route(M::POST, "/api/v1/devices/{id}/commands", COMMAND, post(d::device_command), op::<d::CommandAccepted>("send the device a command").status(202).body::<d::CommandBody>()),
        route(M::GET, "/api/v1/devices/{id}/history", READ, get(h::device_history), op::<h::History>("the device's readings").or_csv().query::<h::DeviceHistoryQuery>()),
        route(M::GET, "/api/v1/pending", PENDING, get(r::list_pending), op_list::<PendingDevice>("devices that published without being registered, latest first")),
        route(M::DELETE, "/api/v1/pending/{id}", INSTALL, delete(r::forget_pending), Op::empty("forget a pending device")),
        route(M::GET, "/api/v1/episodes", READ, get(e::list_episodes), op_list::<e::EpisodeView>("episodes, newest first").query::<e::EpisodeQuery>()),
        route(M::GET, "/api/v1/episodes/{id}", READ, get(e::get_episode), op::<e::EpisodeWithSteps>("one episode with its ticket steps")),
        route(M::POST, "/api/v1/episodes/{id}/ticket", RESPOND, post(e::move_ticket), op::<e::EpisodeView>("move the ticket forward, as the caller").body::<e::TicketBody>()),
        route(M::PUT, "/api/v1/episodes/{id}/assignee", RESPOND, put(e::assign), op::<e::Assigned>("assign the ticket to a worker of its cell or an area above").body::<e::AssignBody>()),
        route(M::GET, "/api/v1/hazards", READ, get(z::hazards), op_list::<Hazard>("unresolved hazards grouped per site, oldest first").query::<z::HazardQuery>()),
        // Evidence on tickets (notes, photos): api/evidence.rs.
        route(M::POST, "/api/v1/episodes/{id}/evidence", RESPOND, post(ev::add).layer(DefaultBodyLimit::disable()), op::<Evidence>("add a note and/or a photo").status(201).multipart::<ev::EvidenceParts>()),
        route(M::GET, "/api/v1/episodes/{id}/evidence", READ, get(ev::list), op_list::<Evidence>("the ticket's notes and photos")),
        route(M::GET, "/api/v1/evidence/{id}/photo", READ, get(ev::photo), Op::bytes("a photo's bytes", &["image/jpeg", "image/png"])),
        route(M::GET, "/api/v1/audit", STAFF, get(e::audit_log), op_list::<AuditEntry>("the audit log, newest first").query::<e::AuditQuery>()),
        route(M::GET, "/api/v1/live", READ, get(live::live), Op::events("alerts and ticket moves as server-sent events").query::<live::LiveQuery>()),
        // Utility and reports (issue 14 item 4): channel binding, key areas, the reports.
        route(M::GET, "/api/v1/devices/{id}/channels", READ, get(ch::channels), op_list::<ChannelCircuit>("the device's channels and the circuit each is bound to")),
        route(M::PUT, "/api/v1/devices/{id}/channels/{ch}/circuit", CIRCUITS, put(ch::bind), op_list::<ChannelCircuit>("bind a channel to a circuit; answers the device's channels").body::<ch::Binding>()),
        route(M::PUT, "/api/v1/areas/{id}/key", ADMIN, put(rp::flag_key_area), Op::empty("flag an area as a key area")),
        route(M::DELETE, "/api/v1/areas/{id}/key", ADMIN, delete(rp::unflag_key_area), Op::empty("unflag a key area")),
        route(M::GET, "/api/v1/key-areas", READ, get(rp::key_areas), op_list::<rp::KeyAreaView>("the key areas")),
        route(M::GET, "/api/v1/reports/{name}", READ, get(rp::report), op::<rp::Report>("a rectification report: unresolved, repeat-sites, grid-cells or devices").or_csv().query::<rp::ReportQuery>()),
        // Commissioning, device events, the roster, overdue self-tests (api/commissioning.rs).
        route(M::GET, "/api/v1/devices/{id}/events", READ, get(k::events), op_list::<DeviceEvent>("the device's events, newest first").query::<k::EventQuery>()),
        route(M::POST, "/api/v1/devices/{id}/tests", INSTALL, post(k::ask_test), op::<k::TestView>("ask the device for a commissioning test").status(202).body::<k::TestBody>()),
        route(M::GET, "/api/v1/devices/{id}/tests", READ, get(k::tests), op_list::<k::TestView>("the device's commissioning tests")),
        route(M::GET, "/api/v1/device-tests/{id}", READ, get(k::test), op::<k::TestView>("one commissioning test")),
        route(M::POST, "/api/v1/devices/{id}/commissioning-record", INSTALL, post(k::issue_record), op::<Signed>("issue the device's signed commissioning record").status(201)),
        route(M::GET, "/api/v1/devices/{id}/commissioning-records", READ, get(k::list_records), op_list::<k::RecordRef>("the device's commissioning records")),
        route(M::GET, "/api/v1/commissioning-records/{id}", READ, get(k::get_record), op::<Signed>("one signed commissioning record, as issued")),
        route(M::GET, "/api/v1/commissioning/key", READ, get(k::public_key), op::<k::PublicKey>("the gateway's record-signing public key")),
        route(M::GET, "/api/v1/roster", READ, get(k::roster), op_list::<k::RosterRow>("the devices' roster: online, battery, signal, firmware, configuration").query::<k::RosterQuery>()),
        route(M::GET, "/api/v1/self-tests/overdue", READ, get(k::overdue_self_tests), op_list::<k::OverdueRow>("devices whose scheduled self-test is overdue").query::<k::OverdueQuery>()),
    ]
}

/// The route × role matrix as a Markdown table (docs/security.md holds it; a test checks that
/// the two agree).
#[cfg(test)]
pub(crate) fn matrix() -> String {
    use crate::access::Role;
    let mut out = String::from("| Route |");
    for role in Role::ALL {
        out.push_str(&format!(" {role} |"));
    }
    out.push_str("\n| --- |");
    out.push_str(&" :-: |".repeat(Role::ALL.len()));
    out.push('\n');
    for r in routes() {
        out.push_str(&format!("| `{} {}` |", r.rule.method, r.rule.path));
        for role in Role::ALL {
            out.push_str(if r.rule.roles.allows(role) {
                " ✓ |"
            } else {
                " |"
            });
        }
        out.push('\n');
    }
    out
}
