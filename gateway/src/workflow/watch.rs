//! The ticket watcher: every second, the acknowledged and unrectified tickets are read (off the
//! runtime's threads) and each one past its rectify deadline is handed to the pipeline
//! ([`Control::Overdue`]), which journals the escalation and its alerts like any other. What
//! was handed over is remembered until the journal shows it, so nothing is asked twice.

use std::collections::HashMap;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{WorkflowConfig, rectify_overdue};
use crate::clock::now_ms;
use crate::control::Control;
use crate::model::EpisodeId;
use crate::store::Store;

/// How often the tickets are looked at.
pub const EVERY: Duration = Duration::from_secs(1);

/// Runs until `cancel`.
pub async fn run(
    store: Store,
    config: WorkflowConfig,
    control: mpsc::Sender<Control>,
    cancel: CancellationToken,
) {
    if config.rectify_ms.values().all(|r| *r == 0) {
        return;
    }
    let mut every = tokio::time::interval(EVERY);
    // Episode → the level asked for and not yet seen in the journal.
    let mut asked: HashMap<EpisodeId, u8> = HashMap::new();
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            _ = every.tick() => {}
        }
        let s = store.clone();
        let tickets = match tokio::task::spawn_blocking(move || s.unrectified_tickets()).await {
            Ok(Ok(t)) => t,
            Ok(Err(e)) => {
                tracing::warn!("tickets not read, tried again in a second: {e}");
                continue;
            }
            Err(e) => {
                tracing::error!("ticket watcher task failed: {e}");
                continue;
            }
        };
        let now = now_ms();
        asked.retain(|id, level| {
            tickets
                .iter()
                .any(|t| t.episode == *id && t.escalation < *level)
        });
        for t in &tickets {
            let Some(level) = rectify_overdue(t, &config, now) else {
                continue;
            };
            if asked.get(&t.episode) == Some(&level) {
                continue;
            }
            tracing::info!(
                episode = t.episode,
                level,
                "ticket not rectified by its deadline: escalated"
            );
            if control
                .send(Control::Overdue {
                    id: t.episode,
                    level,
                })
                .await
                .is_err()
            {
                return;
            }
            asked.insert(t.episode, level);
        }
    }
}
