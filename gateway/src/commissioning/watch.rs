//! The tests' shell: finds each open test's answer in the journal ([`outcome`]), tells the
//! installer on their topic and stores the test's times; and sends scheduled self-tests
//! ([`self_test_due`](super::self_test_due)). Off the alarm path: it reads what the journal committed.
//!
//! While tests are open it looks every [`LOOK_EVERY`] (woken at once when one is asked for),
//! so the gateway → installer latency it measures includes at most that much of waiting;
//! with none open it sleeps until woken or until the next schedule round.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;

use firegrid_protocols::DeviceId;
use firegrid_protocols::message::Action;

use super::{CommissioningSection, OpenTest, Outcome, TestKind, installer_topic, outcome};
use crate::broker::{BrokerHandle, Priority};
use crate::clock::now_ms;
use crate::control::Control;
use crate::model::UnixMs;
use crate::store::{Store, StoreError};

/// How often open tests are looked at.
pub const LOOK_EVERY: Duration = Duration::from_millis(50);
/// How often devices are checked for a scheduled self-test.
const SCHEDULE_EVERY: Duration = Duration::from_secs(60);
/// Scheduled self-tests sent per round at most (spreads a fleet's first round).
const SCHEDULE_BATCH: usize = 200;
/// How long the broker has to confirm the installer's message.
const CONFIRM_TIMEOUT: Duration = Duration::from_secs(2);

/// What the test watcher works with.
#[derive(Debug, Clone)]
pub struct Watch {
    /// The store.
    pub store: Store,
    /// The broker link (the installer's topic).
    pub broker: BrokerHandle,
    /// The pipeline (scheduled self-test commands).
    pub control: mpsc::Sender<Control>,
    /// `[commissioning]`.
    pub section: CommissioningSection,
    /// Woken when a test is asked for.
    pub wake: Arc<Notify>,
}

async fn blocking<T: Send + 'static>(
    store: &Store,
    f: impl FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, String> {
    let s = store.clone();
    tokio::task::spawn_blocking(move || f(&s))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())
}

/// Runs until `cancel`.
pub async fn run(w: Watch, cancel: CancellationToken) {
    let mut next_schedule = tokio::time::Instant::now();
    loop {
        let open = match look(&w).await {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!("commissioning tests not checked: {e}");
                0
            }
        };
        if tokio::time::Instant::now() >= next_schedule {
            if let Err(e) = schedule(&w).await {
                tracing::warn!("scheduled self-tests not sent: {e}");
            }
            next_schedule = tokio::time::Instant::now() + SCHEDULE_EVERY;
        }
        let sleep = if open > 0 {
            LOOK_EVERY
        } else {
            next_schedule.saturating_duration_since(tokio::time::Instant::now())
        };
        tokio::select! {
            () = cancel.cancelled() => return,
            () = w.wake.notified() => {}
            () = tokio::time::sleep(sleep) => {}
        }
    }
}

/// Finishes the open tests that have their answer (or timed out); how many remain open.
async fn look(w: &Watch) -> Result<usize, String> {
    let tests = blocking(&w.store, Store::open_tests).await?;
    let mut open = 0;
    for t in tests {
        let (device, since) = (t.device.clone(), t.requested_ms);
        let events = blocking(&w.store, move |s| s.events_for_tests(&device, since)).await?;
        let now = now_ms();
        let Some(o) = outcome(&t, &events, now) else {
            open += 1;
            continue;
        };
        let delivered = match (&o, t.installer.as_deref()) {
            (Outcome::Answered { .. }, Some(user)) => tell_installer(w, &t, user, &o).await,
            _ => None,
        };
        let id = t.id;
        blocking(&w.store, move |s| {
            s.finish_test(id, &o, delivered, now_ms())
        })
        .await?;
        tracing::info!(test = t.id, device = %t.device, kind = t.kind.as_str(), "device test finished");
    }
    Ok(open)
}

/// Publishes a test's result on the installer's topic; when the broker confirmed it.
async fn tell_installer(w: &Watch, t: &OpenTest, user: &str, o: &Outcome) -> Option<UnixMs> {
    let Outcome::Answered {
        result,
        device_ms,
        received_ms,
    } = o
    else {
        return None;
    };
    let id = DeviceId::new(&t.device).ok()?;
    let device = blocking(&w.store, move |s| s.device(&id)).await.ok()??;
    let grid = device.fields.grid_id?;
    let body = json!({
        "test": {
            "id": t.id,
            "device": t.device,
            "kind": t.kind.as_str(),
            "result": result,
            "requested_ms": t.requested_ms,
            "device_ms": device_ms,
            "received_ms": received_ms,
            "device_to_gateway_ms": device_ms.map(|d| i128::from(*received_ms) - i128::from(d)),
        },
        "text": format!(
            "调试测试结果 / test result: {} {} → {result}",
            t.device,
            t.kind.as_str()
        ),
    });
    let topic = installer_topic(grid.as_str(), user);
    match w
        .broker
        .publish_confirmed(
            Priority::Normal,
            topic,
            body.to_string().into_bytes(),
            false,
            CONFIRM_TIMEOUT,
        )
        .await
    {
        Ok(()) => Some(now_ms()),
        Err(e) => {
            tracing::warn!(
                test = t.id,
                "test result not delivered to the installer: {e}"
            );
            None
        }
    }
}

/// Sends the self-test command to devices whose scheduled self-test is due.
async fn schedule(w: &Watch) -> Result<(), String> {
    if w.section.self_test_days.values().all(|d| *d == 0) {
        return Ok(());
    }
    let section = w.section.clone();
    let due = blocking(&w.store, move |s| due_devices(s, &section, now_ms())).await?;
    let timeout = u64::from(w.section.test_timeout_s) * 1000;
    for id in due {
        let now = now_ms();
        let d = id.clone();
        blocking(&w.store, move |s| {
            s.add_test(
                &d,
                TestKind::Scheduled,
                None,
                now,
                now.saturating_add(timeout),
            )
        })
        .await?;
        if w.control
            .send(Control::Command(id, Action::SelfTest))
            .await
            .is_err()
        {
            return Err("the pipeline has stopped".to_owned());
        }
    }
    Ok(())
}

/// The commissioned and in-service devices whose scheduled self-test is due at `now` (at most
/// [`SCHEDULE_BATCH`]). A device asked or registered less than a period ago is not due
/// whatever its last result says, so the registry is read once without events, and the last
/// result is looked up only for the devices that pass that (few, in a fleet on its schedule).
fn due_devices(
    s: &Store,
    section: &CommissioningSection,
    now: UnixMs,
) -> Result<Vec<DeviceId>, StoreError> {
    let asked = s.last_scheduled_tests()?;
    let period = |kind| section.period_ms(kind);
    let candidates = s.self_test_candidates(|id, kind, created_ms| {
        period(kind)
            .is_some_and(|p| super::self_test_due(p, None, asked.get(id).copied(), created_ms, now))
    })?;
    let mut out = Vec::new();
    for (id, kind, created_ms) in candidates {
        let Some(p) = period(kind) else { continue };
        let last = s.last_self_test_ms(&id)?;
        if super::self_test_due(p, last, asked.get(id.as_str()).copied(), created_ms, now) {
            out.push(id);
            if out.len() >= SCHEDULE_BATCH {
                break;
            }
        }
    }
    Ok(out)
}
