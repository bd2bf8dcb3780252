//! Loading the planner from the store: at start-up, after a failed journal write, and the area
//! tree on a schedule. Blocking reads, run at start-up or on the blocking pool.

use std::collections::HashMap;
use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use firegrid_protocols::GridId;

use super::{Known, Planner};
use crate::engine::{Engine, EngineConfig, Input, OpenEpisode};
use crate::model::{DeviceState, UnixMs};
use crate::store::{AreaFilter, Store, StoreError};

/// How often the area tree (escalation paths) is read again; also read at once when a device
/// names a grid cell the planner does not know.
const AREAS_REFRESH: Duration = Duration::from_secs(30);

/// Devices read from the registry at a time at start-up.
const DEVICE_PAGE: u32 = 10_000;

/// Whether the engine watches a device in this state (commissioned or in service).
fn runs(state: DeviceState) -> bool {
    matches!(state, DeviceState::Commissioned | DeviceState::InService)
}

/// The engine as the journal has it: the registry's devices, then the episodes that were open
/// (or still escalating). Returns the open episodes too.
///
/// # Errors
/// A database error.
pub fn load_engine(
    store: &Store,
    config: EngineConfig,
    now: UnixMs,
) -> Result<(Engine, Vec<OpenEpisode>), StoreError> {
    let mut engine = Engine::new(config, store.max_episode_id()?.saturating_add(1));
    // A page of the registry at a time: a million devices are never all in memory as rows.
    store.device_pages(DEVICE_PAGE, |page| {
        for d in page.iter().filter(|d| runs(d.fields.state)) {
            if let Some(spec) = d.spec() {
                engine.handle(Input::Upsert(spec), now);
            }
        }
    })?;
    let open = store.open_episodes()?;
    for e in &open {
        engine.restore(e.clone(), now);
    }
    Ok((engine, open))
}

/// A planner over `engine`, with the registry's devices, the episodes the engine holds and
/// the area tree, from the store.
pub(super) fn planner_over(engine: Engine, store: &Store) -> Result<Planner, StoreError> {
    let mut known = HashMap::new();
    store.device_pages(DEVICE_PAGE, |page| {
        known.extend(page.iter().map(|d| (d.id.clone(), Known::of(d))));
    })?;
    let mut open = Vec::new();
    for e in store.open_episodes()? {
        if let Some(row) = store.episode(e.id)? {
            open.push(row);
        }
    }
    let areas = area_tree(store)?;
    Ok(Planner::new(engine, known, open, areas))
}

/// Every area and its parent.
fn area_tree(store: &Store) -> Result<HashMap<GridId, Option<GridId>>, StoreError> {
    Ok(store
        .list::<crate::store::AreaFields>(&AreaFilter::default(), None)?
        .into_iter()
        .map(|a| (a.id, a.fields.parent_id))
        .collect())
}

pub(super) async fn read_areas(store: Store) -> Option<HashMap<GridId, Option<GridId>>> {
    match tokio::task::spawn_blocking(move || area_tree(&store)).await {
        Ok(Ok(tree)) => Some(tree),
        Ok(Err(e)) => {
            tracing::warn!("area tree not read (escalations use the last one read): {e}");
            None
        }
        Err(e) => {
            tracing::error!("area tree not read: {e}");
            None
        }
    }
}

/// The area tree, read again every [`AREAS_REFRESH`] by a task of its own (so that the read
/// never delays a batch), until `cancel`.
pub(super) fn watch_areas(
    store: Store,
    cancel: CancellationToken,
) -> watch::Receiver<HashMap<GridId, Option<GridId>>> {
    let (tx, rx) = watch::channel(HashMap::new());
    tokio::spawn(async move {
        let mut every = tokio::time::interval(AREAS_REFRESH);
        // The first tick is now: the pipeline read the tree at start-up already.
        every.tick().await;
        loop {
            tokio::select! {
                () = cancel.cancelled() => break,
                _ = every.tick() => {}
            }
            if let Some(tree) = read_areas(store.clone()).await
                && tx.send(tree).is_err()
            {
                break;
            }
        }
    });
    rx
}
