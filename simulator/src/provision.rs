//! Registering and commissioning a plan's district in the gateway through its HTTP API, so a
//! demo needs no manual set-up: the district, its streets and grid cells (areas), a grid
//! worker per cell, sites, rooms, circuits, and every device bound to its room, circuit and
//! grid cell with its configuration, in service.
//!
//! Idempotent: what exists already (same area id, same site name in the cell, same room or
//! circuit name in the site, same device id) is reused, so running it twice changes nothing.

use std::collections::HashMap;
use std::time::Duration;

use futures_util::{StreamExt, stream};
use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};

use crate::scenario::{DeviceKind, Plan, Scenario};

/// Requests in flight at once while registering rooms, circuits and devices.
const CONCURRENCY: usize = 8;

/// Why provisioning stopped.
#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    /// The API could not be reached or did not answer in time.
    #[error("{method} {url}: {source}")]
    Http {
        /// The method.
        method: Method,
        /// The URL.
        url: String,
        /// Why.
        source: reqwest::Error,
    },
    /// The API refused a request.
    #[error("{method} {url}: {status}: {body}")]
    Refused {
        /// The method.
        method: Method,
        /// The URL.
        url: String,
        /// Its status.
        status: StatusCode,
        /// Its body (the API's error message).
        body: String,
    },
    /// The API answered something that is not the expected JSON.
    #[error("{url}: unexpected answer: {body}")]
    Unexpected {
        /// The URL.
        url: String,
        /// The body.
        body: String,
    },
}

/// What provisioning did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Provisioned {
    /// Objects created (areas, workers, sites, rooms, circuits, devices).
    pub created: usize,
    /// Objects that existed already.
    pub existing: usize,
    /// Each device's MQTT password (its username is its id): issued at registration, or
    /// issued anew (rotated) for a device that was registered already.
    pub credentials: HashMap<String, String>,
}

/// A small client of the gateway's API, calling it with an API token (provisioning creates
/// areas and workers: an admin's).
#[derive(Clone)]
pub struct Api {
    client: Client,
    base: String,
}

impl std::fmt::Debug for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the token.
        f.debug_struct("Api")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl Api {
    /// A client of the API at `base` (e.g. `http://127.0.0.1:8080`) sending `token` as
    /// `Authorization: Bearer`; every request times out after 30 s.
    ///
    /// # Errors
    /// The HTTP client cannot be built (or the token is not visible ASCII).
    pub fn new(base: &str, token: &str) -> Result<Self, ProvisionError> {
        let url = base.to_owned();
        let mut bearer = reqwest::header::HeaderValue::try_from(format!("Bearer {token}"))
            .map_err(|_| ProvisionError::Unexpected {
                url: url.clone(),
                body: "the API token is not visible ASCII: use the token as it was printed".into(),
            })?;
        bearer.set_sensitive(true);
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(reqwest::header::AUTHORIZATION, bearer);
        Ok(Self {
            client: Client::builder()
                .timeout(Duration::from_secs(30))
                .connect_timeout(Duration::from_secs(5))
                .default_headers(headers)
                .build()
                .map_err(|source| ProvisionError::Http {
                    method: Method::GET,
                    url,
                    source,
                })?,
            base: base.trim_end_matches('/').to_owned(),
        })
    }

    /// Sends a request; `Ok(None)` for 409 Conflict (it exists).
    ///
    /// # Errors
    /// Transport errors and refusals other than 409.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Option<Value>, ProvisionError> {
        let url = format!("{}/api/v1/{path}", self.base);
        let mut request = self.client.request(method.clone(), &url);
        if let Some(b) = body {
            request = request
                .header("content-type", "application/json")
                .body(b.to_string());
        }
        let http = |source| ProvisionError::Http {
            method: method.clone(),
            url: url.clone(),
            source,
        };
        let response = request.send().await.map_err(http)?;
        let status = response.status();
        let text = response.text().await.map_err(http)?;
        if status == StatusCode::CONFLICT {
            return Ok(None);
        }
        if !status.is_success() {
            return Err(ProvisionError::Refused {
                method,
                url,
                status,
                body: text,
            });
        }
        if text.is_empty() {
            return Ok(Some(Value::Null));
        }
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|_| ProvisionError::Unexpected { url, body: text })
    }

    /// `GET`s a JSON array.
    async fn list(&self, path: &str) -> Result<Vec<Value>, ProvisionError> {
        match self.call(Method::GET, path, None).await? {
            Some(Value::Array(items)) => Ok(items),
            other => Err(ProvisionError::Unexpected {
                url: path.to_owned(),
                body: format!("{other:?}"),
            }),
        }
    }

    /// Finds the object named `name` in `existing` (a list read once by the caller), or creates
    /// it; returns its id.
    async fn ensure_named(
        &self,
        path: &str,
        existing: &[Value],
        name: &str,
        body: &Value,
        tally: &mut Provisioned,
    ) -> Result<i64, ProvisionError> {
        if let Some(id) = existing
            .iter()
            .find(|v| v["name"] == name)
            .and_then(|v| v["id"].as_i64())
        {
            tally.existing += 1;
            return Ok(id);
        }
        let created = self.call(Method::POST, path, Some(body)).await?;
        tally.created += 1;
        created
            .as_ref()
            .and_then(|v| v["id"].as_i64())
            .ok_or_else(|| ProvisionError::Unexpected {
                url: path.to_owned(),
                body: format!("{created:?}"),
            })
    }

    async fn ensure(
        &self,
        path: &str,
        body: &Value,
        tally: &mut Provisioned,
    ) -> Result<(), ProvisionError> {
        match self.call(Method::POST, path, Some(body)).await? {
            Some(_) => tally.created += 1,
            None => tally.existing += 1,
        }
        Ok(())
    }
}

/// Registers `plan` (made from `scenario`) in the gateway at `api`. `progress` hears a line
/// per stage.
///
/// # Errors
/// The first request that failed, with the API's reason.
pub async fn provision(
    api: &Api,
    scenario: &Scenario,
    plan: &Plan,
    progress: impl Fn(&str),
) -> Result<Provisioned, ProvisionError> {
    let mut tally = Provisioned::default();
    let district = &scenario.id;
    api.ensure(
        "areas",
        &json!({"id": district, "level": "district", "name": scenario.name}),
        &mut tally,
    )
    .await?;
    for street in &scenario.streets {
        api.ensure(
            "areas",
            &json!({"id": street.id, "level": "street", "name": street.name, "parent_id": district}),
            &mut tally,
        )
        .await?;
        for c in 1..=street.cells {
            let cell = format!("{}-{c}", street.id);
            api.ensure(
                "areas",
                &json!({"id": cell, "level": "grid", "name": format!("{} grid cell {c}", street.name), "parent_id": street.id}),
                &mut tally,
            )
            .await?;
            let worker = format!("Grid worker {cell}");
            // Their own topic (docs/alerts.md): the person alert, with where to go; the cell's
            // alert topic carries the plain alerts.
            api.ensure_named(
                "workers",
                &api.list(&format!("workers?area={cell}")).await?,
                &worker,
                &json!({"name": worker, "area_id": cell, "mqtt_topic": format!("firegrid/v1/people/{cell}/worker")}),
                &mut tally,
            )
            .await?;
        }
    }
    progress("areas and grid workers registered");

    // Sites, one by one (few); then rooms and circuits per site, concurrently.
    let mut sites: HashMap<String, i64> = HashMap::new();
    let mut sites_of_cell: HashMap<String, Vec<Value>> = HashMap::new();
    for d in &plan.devices {
        let key = d.site_key();
        if sites.contains_key(&key) {
            continue;
        }
        let grid = d.grid_id();
        if !sites_of_cell.contains_key(&grid) {
            let listed = api.list(&format!("sites?area={grid}")).await?;
            sites_of_cell.insert(grid.clone(), listed);
        }
        let name = format!("Block {key}");
        let id = api
            .ensure_named(
                "sites",
                sites_of_cell.get(&grid).map_or(&[][..], Vec::as_slice),
                &name,
                &json!({"name": name, "address": format!("No. {} in grid cell {grid}", d.site), "area_id": grid}),
                &mut tally,
            )
            .await?;
        sites.insert(key, id);
    }
    progress(&format!("{} sites registered", sites.len()));

    let rooms_of_sites: Vec<_> = sites
        .iter()
        .map(|(key, site_id)| {
            let rooms: Vec<String> = plan
                .devices
                .iter()
                .filter(|d| d.site_key() == *key && d.kind == DeviceKind::Monitor && !d.feeder)
                .map(|d| d.room.clone())
                .collect();
            let feeder = plan
                .devices
                .iter()
                .find(|d| d.site_key() == *key && d.feeder)
                .map(|d| d.room.clone());
            (*site_id, rooms, feeder)
        })
        .collect();
    /// A site's rooms (and its feeder, room id `None`): (room, room id, circuit id), and what
    /// was created.
    type SiteRooms = (Vec<(String, Option<i64>, i64)>, Provisioned);
    let results: Vec<Result<SiteRooms, ProvisionError>> = stream::iter(rooms_of_sites)
        .map(|(site_id, rooms, feeder)| async move {
            let mut tally = Provisioned::default();
            let mut out = Vec::new();
            let listed_rooms = api.list(&format!("rooms?site={site_id}")).await?;
            let listed_circuits = api.list(&format!("circuits?site={site_id}")).await?;
            // The feeder first: the rooms' circuits are its branches.
            let mut parent = None;
            if let Some(feeder) = feeder {
                let name = format!("Feeder {}", feeder.trim_end_matches("-feeder"));
                let id = api
                    .ensure_named(
                        "circuits",
                        &listed_circuits,
                        &name,
                        &json!({"site_id": site_id, "name": name}),
                        &mut tally,
                    )
                    .await?;
                parent = Some(id);
                out.push((feeder, None, id));
            }
            for room in rooms {
                let room_name = format!("Room {room}");
                let room_id = api
                    .ensure_named(
                        "rooms",
                        &listed_rooms,
                        &room_name,
                        &json!({"site_id": site_id, "name": room_name}),
                        &mut tally,
                    )
                    .await?;
                let circuit_name = format!("Circuit {room}");
                let circuit_id = api
                    .ensure_named(
                        "circuits",
                        &listed_circuits,
                        &circuit_name,
                        &json!({"site_id": site_id, "name": circuit_name, "parent_id": parent}),
                        &mut tally,
                    )
                    .await?;
                out.push((room, Some(room_id), circuit_id));
            }
            Ok((out, tally))
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    let mut rooms: HashMap<String, (Option<i64>, i64)> = HashMap::new();
    for r in results {
        let (list, t) = r?;
        tally.created += t.created;
        tally.existing += t.existing;
        for (room, room_id, circuit_id) in list {
            rooms.insert(room, (room_id, circuit_id));
        }
    }
    progress(&format!("{} rooms and circuits registered", rooms.len()));

    let settings = &plan.settings;
    let bodies: Vec<Value> = plan
        .devices
        .iter()
        .map(|d| {
            let (room_id, circuit_id) = rooms.get(&d.room).copied().unwrap_or_default();
            let site_id = sites.get(&d.site_key()).copied();
            let channels: Vec<Value> = match d.kind {
                DeviceKind::Monitor => std::iter::once(json!({"ch": 0, "residual_ma": settings.residual_ma, "delay_s": settings.alarm_delay_s}))
                    .chain((1..=4).map(|ch| json!({"ch": ch, "temp_dc": settings.temp_dc, "delay_s": settings.alarm_delay_s})))
                    .collect(),
                DeviceKind::SmokeAlarm => Vec::new(),
            };
            json!({
                "id": d.id,
                "kind": d.kind.api_name(),
                "state": "in_service",
                "site_id": site_id,
                "room_id": room_id,
                "circuit_id": (d.kind == DeviceKind::Monitor).then_some(circuit_id),
                "grid_id": d.grid_id(),
                "config": {
                    "report_interval_s": settings.report_interval_s,
                    "heartbeat_interval_s": settings.heartbeat_interval_s,
                    "channels": channels,
                },
            })
        })
        .collect();
    let results: Vec<Result<(String, bool, String), ProvisionError>> = stream::iter(&bodies)
        .map(|body| async move {
            let id = body["id"].as_str().unwrap_or_default().to_owned();
            let (created, answer) = match api.call(Method::POST, "devices", Some(body)).await? {
                Some(v) => (true, v),
                // Registered before: its password was shown then; issue a new one.
                None => {
                    let path = format!("devices/{id}/credentials");
                    let v = api.call(Method::POST, &path, None).await?;
                    (false, v.unwrap_or_default())
                }
            };
            let password = answer["mqtt_password"]
                .as_str()
                .ok_or_else(|| ProvisionError::Unexpected {
                    url: format!("devices/{id}"),
                    body: format!("no mqtt_password in {answer}"),
                })?
                .to_owned();
            Ok((id, created, password))
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    for r in results {
        let (id, created, password) = r?;
        if created {
            tally.created += 1;
        } else {
            tally.existing += 1;
        }
        tally.credentials.insert(id, password);
    }
    progress(&format!("{} devices registered, in service", bodies.len()));
    Ok(tally)
}
