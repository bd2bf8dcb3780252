//! The route table: every `/api/v1` route, the roles that may call it, and its handler — the
//! API's access policy in one place. The router is built from it ([`super::router`]), the
//! access layer of each route is made from its line, the docs' matrix is rendered from it
//! ([`matrix`]), and the test that every route refuses a request without a token walks it.
//! A new route is one line here.

use axum::extract::DefaultBodyLimit;
use axum::http::Method;
use axum::routing::{MethodRouter, delete, get, post, put};

use super::access::{Roles, Rule};
use super::resource::{create, delete as remove, get as one, list, update};
use super::{
    ApiState, channels as ch, circuits as ci, commissioning as k, credentials as c, devices as d,
    episodes as e, evidence as ev, hazards as z, history as h, live, registry as r, reports as rp,
    users as u,
};
use crate::access::Role::{Admin, GridWorker, Installer, Operator, Utility};
use crate::store::{AreaFields, CircuitFields, DeviceFields, RoomFields, SiteFields, WorkerFields};

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

/// One `/api/v1` route: its rule (method, path, roles) and its handler.
#[derive(Debug)]
pub(crate) struct Route {
    pub(crate) rule: Rule,
    pub(crate) handler: MethodRouter<ApiState>,
}

fn route(
    method: Method,
    path: &'static str,
    roles: Roles,
    handler: MethodRouter<ApiState>,
) -> Route {
    Route {
        rule: Rule {
            method,
            path,
            roles,
        },
        handler,
    }
}

/// Every `/api/v1` route with who may call it.
#[rustfmt::skip]
pub(crate) fn routes() -> Vec<Route> {
    use Method as M;
    vec![
        route(M::GET, "/api/v1/me", READ, get(u::me)),
        route(M::GET, "/api/v1/users", ADMIN, get(u::list_users)),
        route(M::POST, "/api/v1/users", ADMIN, post(u::add_user)),
        route(M::POST, "/api/v1/users/{name}/tokens", ADMIN, post(u::issue_token)),
        route(M::GET, "/api/v1/tokens", ADMIN, get(u::list_tokens)),
        route(M::DELETE, "/api/v1/tokens/{id}", ADMIN, delete(u::revoke_token)),
        route(M::GET, "/api/v1/areas", READ, get(list::<AreaFields>)),
        route(M::POST, "/api/v1/areas", ADMIN, post(create::<AreaFields>)),
        route(M::GET, "/api/v1/areas/{id}", READ, get(one::<AreaFields>)),
        route(M::PUT, "/api/v1/areas/{id}", ADMIN, put(update::<AreaFields>)),
        route(M::DELETE, "/api/v1/areas/{id}", ADMIN, delete(remove::<AreaFields>)),
        route(M::GET, "/api/v1/areas/{id}/path", READ, get(r::area_path)),
        route(M::GET, "/api/v1/workers", READ, get(list::<WorkerFields>)),
        route(M::POST, "/api/v1/workers", STAFF, post(create::<WorkerFields>)),
        route(M::GET, "/api/v1/workers/{id}", READ, get(one::<WorkerFields>)),
        route(M::PUT, "/api/v1/workers/{id}", STAFF, put(update::<WorkerFields>)),
        route(M::DELETE, "/api/v1/workers/{id}", STAFF, delete(remove::<WorkerFields>)),
        route(M::GET, "/api/v1/sites", READ, get(list::<SiteFields>)),
        route(M::POST, "/api/v1/sites", INSTALL, post(create::<SiteFields>)),
        route(M::GET, "/api/v1/sites/{id}", READ, get(one::<SiteFields>)),
        route(M::PUT, "/api/v1/sites/{id}", INSTALL, put(update::<SiteFields>)),
        route(M::DELETE, "/api/v1/sites/{id}", INSTALL, delete(remove::<SiteFields>)),
        route(M::GET, "/api/v1/rooms", READ, get(list::<RoomFields>)),
        route(M::POST, "/api/v1/rooms", INSTALL, post(create::<RoomFields>)),
        route(M::GET, "/api/v1/rooms/{id}", READ, get(one::<RoomFields>)),
        route(M::PUT, "/api/v1/rooms/{id}", INSTALL, put(update::<RoomFields>)),
        route(M::DELETE, "/api/v1/rooms/{id}", INSTALL, delete(remove::<RoomFields>)),
        route(M::GET, "/api/v1/circuits", READ, get(list::<CircuitFields>)),
        route(M::POST, "/api/v1/circuits", CIRCUITS, post(create::<CircuitFields>)),
        route(M::GET, "/api/v1/circuits/{id}", READ, get(one::<CircuitFields>)),
        route(M::PUT, "/api/v1/circuits/{id}", CIRCUITS, put(update::<CircuitFields>)),
        route(M::DELETE, "/api/v1/circuits/{id}", CIRCUITS, delete(remove::<CircuitFields>)),
        route(M::GET, "/api/v1/circuits/{id}/history", READ, get(h::circuit_history)),
        route(M::GET, "/api/v1/circuits/{id}/leak-trace", READ, get(ci::leak_trace)),
        route(M::GET, "/api/v1/circuit-ranking", READ, get(ci::ranking)),
        route(M::GET, "/api/v1/devices", READ, get(list::<DeviceFields>)),
        route(M::POST, "/api/v1/devices", INSTALL, post(d::create_device)),
        route(M::POST, "/api/v1/device-imports", INSTALL, post(d::import_devices)),
        route(M::GET, "/api/v1/devices/{id}", READ, get(one::<DeviceFields>)),
        route(M::PUT, "/api/v1/devices/{id}", INSTALL, put(update::<DeviceFields>)),
        route(M::DELETE, "/api/v1/devices/{id}", INSTALL, delete(remove::<DeviceFields>)),
        route(M::POST, "/api/v1/devices/{id}/credentials", INSTALL, post(c::rotate)),
        route(M::DELETE, "/api/v1/devices/{id}/credentials", INSTALL, delete(c::revoke)),
        route(M::PUT, "/api/v1/devices/{id}/config", INSTALL, put(d::set_device_config)),
        route(M::POST, "/api/v1/devices/{id}/state", INSTALL, post(d::set_device_state)),
        route(M::POST, "/api/v1/devices/{id}/commands", COMMAND, post(d::device_command)),
        route(M::GET, "/api/v1/devices/{id}/history", READ, get(h::device_history)),
        route(M::GET, "/api/v1/pending", PENDING, get(r::list_pending)),
        route(M::DELETE, "/api/v1/pending/{id}", INSTALL, delete(r::forget_pending)),
        route(M::GET, "/api/v1/episodes", READ, get(e::list_episodes)),
        route(M::GET, "/api/v1/episodes/{id}", READ, get(e::get_episode)),
        route(M::POST, "/api/v1/episodes/{id}/ticket", RESPOND, post(e::move_ticket)),
        route(M::PUT, "/api/v1/episodes/{id}/assignee", RESPOND, put(e::assign)),
        route(M::GET, "/api/v1/hazards", READ, get(z::hazards)),
        // Evidence on tickets (notes, photos): api/evidence.rs.
        route(M::POST, "/api/v1/episodes/{id}/evidence", RESPOND, post(ev::add).layer(DefaultBodyLimit::disable())),
        route(M::GET, "/api/v1/episodes/{id}/evidence", READ, get(ev::list)),
        route(M::GET, "/api/v1/evidence/{id}/photo", READ, get(ev::photo)),
        route(M::GET, "/api/v1/audit", STAFF, get(e::audit_log)),
        route(M::GET, "/api/v1/live", READ, get(live::live)),
        // Utility and reports (issue 14 item 4): channel binding, key areas, the reports.
        route(M::GET, "/api/v1/devices/{id}/channels", READ, get(ch::channels)),
        route(M::PUT, "/api/v1/devices/{id}/channels/{ch}/circuit", CIRCUITS, put(ch::bind)),
        route(M::PUT, "/api/v1/areas/{id}/key", ADMIN, put(rp::flag_key_area)),
        route(M::DELETE, "/api/v1/areas/{id}/key", ADMIN, delete(rp::unflag_key_area)),
        route(M::GET, "/api/v1/key-areas", READ, get(rp::key_areas)),
        route(M::GET, "/api/v1/reports/{name}", READ, get(rp::report)),
        // Commissioning, device events, the roster, overdue self-tests (api/commissioning.rs).
        route(M::GET, "/api/v1/devices/{id}/events", READ, get(k::events)),
        route(M::POST, "/api/v1/devices/{id}/tests", INSTALL, post(k::ask_test)),
        route(M::GET, "/api/v1/devices/{id}/tests", READ, get(k::tests)),
        route(M::GET, "/api/v1/device-tests/{id}", READ, get(k::test)),
        route(M::POST, "/api/v1/devices/{id}/commissioning-record", INSTALL, post(k::issue_record)),
        route(M::GET, "/api/v1/devices/{id}/commissioning-records", READ, get(k::list_records)),
        route(M::GET, "/api/v1/commissioning-records/{id}", READ, get(k::get_record)),
        route(M::GET, "/api/v1/commissioning/key", READ, get(k::public_key)),
        route(M::GET, "/api/v1/roster", READ, get(k::roster)),
        route(M::GET, "/api/v1/self-tests/overdue", READ, get(k::overdue_self_tests)),
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
