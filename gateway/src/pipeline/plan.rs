//! The pipeline's pure core: from a batch of classified messages, what the journal already
//! holds and the time, to a [`Plan`] — journal ops, alerts, acks, readings, refusals.
//!
//! No store, no tokio, no clock: the shell ([`Pipeline`](super::Pipeline)) reads what a batch
//! needs from the store **before** planning (in one batched read, [`Lookups`]), passes `now`
//! in, and does what the plan says afterwards. Tests drive the [`Planner`] with explicit time.
//!
//! The [`Planner`] owns the [`Engine`] and what alerts are built from: the registry's view
//! of each device ([`Known`]), the area tree (for escalation paths), and every episode the
//! engine holds as its alerts describe it (the opening alert, its peak kept current), so that
//! an `ended` or `escalated` alert never needs a store read. Planning changes the engine; if
//! the shell then fails to journal a plan that [changes episodes](Plan::changes_episodes), it
//! builds a new planner from the journal (the shell's `rebuild`): what the journal does not
//! hold never lives on in memory, and the device's resend opens the episode again.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use firegrid_protocols::codec::Encoding;
use firegrid_protocols::message::{Message, Seq, Status};
use firegrid_protocols::{DeviceId, GridId};

use crate::commissioning::{Audience, audience};
use crate::engine::{Engine, Input, Output};
use crate::ingest::Refusal;
use crate::model::{Category, DERIVED_EPISODE_IDS, DeviceState, Episode, EpisodeId, UnixMs};
use crate::notify::Outgoing;
use crate::notify::alert::{Alert, AlertKind};
use crate::store::{
    Device, JournalOp, NewEvent, NewNotification, NotificationKind, NotifyChannel, Sample,
    WireEncoding,
};
use crate::tsdb::Tags;

/// A message as [`ingest::classify`](crate::ingest::classify) left it: from a device, or
/// refused (with the device, when the topic named one).
pub type Classified = Result<(DeviceId, Message), (Option<DeviceId>, Refusal)>;

/// The deepest area hierarchy an escalation climbs (guards against a cycle in the tree).
const MAX_AREA_DEPTH: usize = 16;

/// What the pipeline needs of the device registry, cached: 24 bytes per device (its
/// tags are shared, see [`Planner`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Known {
    /// Its life-cycle state: only commissioned and in-service devices are taken.
    pub state: DeviceState,
    /// How to encode what is sent to it (acks, config, commands).
    pub encoding: Encoding,
    /// The sequence number of its latest status (not the registry's: the planner's own, kept
    /// across registry changes): a status seen again (it is retained, and redelivered when
    /// the gateway reconnects) is not counted twice.
    pub last_status: Option<Seq>,
    /// Its readings' tags in the time-series database. The planner holds each distinct set
    /// once (devices of one site, circuit and grid cell share theirs).
    pub tags: Arc<Tags>,
}

impl Known {
    /// The registry's device, as the pipeline sees it.
    pub fn of(d: &Device) -> Self {
        Self {
            state: d.fields.state,
            encoding: match d.fields.encoding {
                WireEncoding::Json => Encoding::Json,
                WireEncoding::Binary => Encoding::Binary,
            },
            tags: Arc::new(Tags {
                site: d.fields.site_id,
                circuit: d.fields.circuit_id,
                grid: d.fields.grid_id.as_ref().map(ToString::to_string),
            }),
            last_status: None,
        }
    }
}

/// How many derivations of an event's episode id ([`derived_episode_id`]) are tried, in
/// order, before the engine's own next id is taken.
const EPISODE_ID_ATTEMPTS: u8 = 3;

/// The id of the episode that the event `seq` of `device` opens, the `attempt`-th derivation
/// (the next is taken when the journal or the engine holds one already): FNV-1a as for alert
/// ids ([`alert_id`](crate::notify::alert::alert_id)), placed in
/// [`DERIVED_EPISODE_IDS`]..2^53. Stable across builds: do not change it.
pub fn derived_episode_id(device: &DeviceId, seq: Seq, attempt: u8) -> EpisodeId {
    const SPAN: EpisodeId = (1 << 53) - DERIVED_EPISODE_IDS;
    let h = crate::notify::alert::alert_id(&[
        b"episode",
        device.as_str().as_bytes(),
        &seq.to_be_bytes(),
        &[attempt],
    ]);
    DERIVED_EPISODE_IDS + h % SPAN
}

/// Every id the event `seq` of `device` may open an episode under, in the order tried.
fn episode_id_candidates(device: &DeviceId, seq: Seq) -> impl Iterator<Item = EpisodeId> + '_ {
    (0..EPISODE_ID_ATTEMPTS).map(move |a| derived_episode_id(device, seq, a))
}

/// What the journal already holds of a batch, read in one go before planning.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lookups {
    /// The batch's events already journaled, by (device, sequence number): resends.
    pub journaled: HashSet<(DeviceId, Seq)>,
    /// The derived episode ids of the batch's events ([`Lookups::episode_ids`]) that the
    /// journal holds already.
    pub taken_episodes: HashSet<EpisodeId>,
}

impl Lookups {
    /// The (device, sequence number) of every event in `batch`: what to look up.
    pub fn wanted(batch: &[Classified]) -> Vec<(DeviceId, Seq)> {
        batch
            .iter()
            .filter_map(|c| match c {
                Ok((device, Message::Event(e))) => Some((device.clone(), e.seq)),
                _ => None,
            })
            .collect()
    }

    /// Every episode id the `wanted` events may open an episode under: whether the journal
    /// holds them is looked up too.
    pub fn episode_ids(wanted: &[(DeviceId, Seq)]) -> Vec<EpisodeId> {
        wanted
            .iter()
            .flat_map(|(device, seq)| episode_id_candidates(device, *seq))
            .collect()
    }
}

/// A message the plan refuses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// Its index in the batch.
    pub index: usize,
    /// The device its topic named, if any (an unknown one goes to the pending list).
    pub device: Option<DeviceId>,
    /// Why.
    pub refusal: Refusal,
}

/// What to do for one batch (or tick, or API change), in this order: offer the readings,
/// journal the ops in **one** transaction, and only once that has succeeded hand the alerts to
/// the notifiers and acknowledge the events.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    /// The journal ops: new events, the engine's decisions, then one notification per alert.
    pub journal: Vec<JournalOp>,
    /// The alerts, one per [`JournalOp::Notify`] at the end of `journal`, in the same order;
    /// their `id` and `alert_id` are the notification's id, known once journaled (the
    /// [`early`](Outgoing::early) ones go out before, under the derived `alert_id`).
    pub alerts: Vec<Outgoing>,
    /// The events to acknowledge end to end, per device (new ones and resends alike).
    pub acks: BTreeMap<DeviceId, Vec<Seq>>,
    /// Readings for the readings store and the time-series database.
    pub samples: Vec<Sample>,
    /// Messages refused, with why.
    pub refusals: Vec<Refused>,
    /// The categories of the episodes opened (for the counters).
    pub opened: Vec<Category>,
    /// Telemetry the devices say they dropped from a full outbox (their statuses'
    /// `dropped_telemetry`, each status counted once).
    pub dropped_telemetry: u64,
    /// Each device's latest status in the batch (last seen, heartbeat, online/offline), one
    /// per device: for the roster, stored off the alarm path ([`crate::commissioning`]).
    pub statuses: BTreeMap<DeviceId, crate::store::StatusUpdate>,
}

impl Plan {
    /// Whether the plan changes episodes: if it cannot be journaled, the engine must be rebuilt
    /// from the journal.
    pub fn changes_episodes(&self) -> bool {
        self.journal
            .iter()
            .any(|op| matches!(op, JournalOp::Engine { .. }))
    }
}

/// The pipeline's decisions. See the [pipeline](crate::pipeline): its shell reads, this decides.
#[derive(Debug)]
pub struct Planner {
    engine: Engine,
    known: HashMap<DeviceId, Known>,
    /// Every episode the engine holds, as its alerts describe it.
    episodes: HashMap<EpisodeId, Alert>,
    /// Every area and the area above it (`None` for the top).
    areas: HashMap<GridId, Option<GridId>>,
    /// Webhook URLs every alert also goes to.
    webhooks: Vec<String>,
    /// The episodes the plan being made opened by an event, with the event's sequence number:
    /// their `opened` alerts' ids derive from it.
    openings: HashMap<EpisodeId, Seq>,
    /// The held episodes whose condition has ended (still held while they escalate).
    ended: HashSet<EpisodeId>,
    /// Every distinct set of tags a known device has, held once (a device's [`Known`] points
    /// at its set); a set no device has any more is dropped.
    tags: HashSet<Arc<Tags>>,
}

impl Planner {
    /// A planner over an engine already loaded with the registry and the open episodes
    /// (`open`: the journal's rows of the episodes the engine holds), what it knows of each
    /// registered device ([`Known::of`]) and the area tree (each area and its parent).
    pub fn new(
        engine: Engine,
        known: HashMap<DeviceId, Known>,
        open: impl IntoIterator<Item = Episode>,
        areas: HashMap<GridId, Option<GridId>>,
    ) -> Self {
        let held: Vec<Episode> = open.into_iter().filter(|e| engine.holds(e.id)).collect();
        let ended = held
            .iter()
            .filter(|e| e.ended_ms.is_some())
            .map(|e| e.id)
            .collect();
        let episodes = held.iter().map(|e| (e.id, alert_of(e))).collect();
        let mut planner = Self {
            engine,
            known: HashMap::with_capacity(known.len()),
            episodes,
            areas,
            webhooks: Vec::new(),
            openings: HashMap::new(),
            ended,
            tags: HashSet::new(),
        };
        for (id, k) in known {
            let k = planner.interned(k);
            planner.known.insert(id, k);
        }
        planner
    }

    /// `k` with its tags replaced by the planner's copy of the same set (made the planner's
    /// if it is new).
    fn interned(&mut self, mut k: Known) -> Known {
        match self.tags.get(&k.tags) {
            Some(shared) => k.tags = Arc::clone(shared),
            None => {
                self.tags.insert(Arc::clone(&k.tags));
            }
        }
        k
    }

    /// Drops the planner's copy of `tags` when no device has them any more.
    fn release(&mut self, tags: Arc<Tags>) {
        // Held by the set and by `tags` alone: no device points at them.
        if Arc::strong_count(&tags) <= 2 {
            self.tags.remove(&tags);
        }
    }

    /// A device put in service after commissioning: its episodes still open (test alarms so
    /// far, for the installer) are announced to the workers now, as `opened` alerts — a hazard
    /// still there when the installer leaves is the grid cell's.
    pub fn announce_in_service(&mut self, device: &DeviceId, now: UnixMs) -> Plan {
        let mut plan = Plan::default();
        if self.audience_of(device.as_str()) != Audience::Workers {
            return plan;
        }
        let mut open: Vec<Alert> = self
            .episodes
            .iter()
            .filter(|(id, a)| a.device == device.as_str() && !self.ended.contains(id))
            .map(|(_, a)| Alert {
                sent_ms: now,
                ..a.clone()
            })
            .collect();
        open.sort_by_key(|a| (a.started_ms, a.episode));
        let mut notify = Vec::new();
        for alert in open {
            self.queue_alert(alert, now, &mut plan, &mut notify);
        }
        plan.journal.extend(notify);
        plan
    }

    /// Every alert also goes to these webhooks.
    pub fn set_webhooks(&mut self, urls: Vec<String>) {
        self.webhooks = urls;
    }

    /// The webhooks every alert also goes to.
    pub fn webhooks(&self) -> &[String] {
        &self.webhooks
    }

    /// Replaces the area tree (each area and its parent).
    pub fn set_areas(&mut self, areas: HashMap<GridId, Option<GridId>>) {
        self.areas = areas;
    }

    /// Whether the area tree has this area.
    pub fn knows_area(&self, area: &GridId) -> bool {
        self.areas.contains_key(area)
    }

    /// The engine (read only: it changes through plans).
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// What the pipeline knows of a device.
    pub fn known(&self, device: &DeviceId) -> Option<&Known> {
        self.known.get(device)
    }

    /// Records the registry's current view of a device (`None`: deleted).
    pub fn set_known(&mut self, id: &DeviceId, device: Option<&Device>) {
        let old = match device {
            Some(d) => {
                let last_status = self.known.get(id).and_then(|k| k.last_status);
                let k = self.interned(Known {
                    last_status,
                    ..Known::of(d)
                });
                self.known.insert(id.clone(), k)
            }
            None => self.known.remove(id),
        };
        if let Some(old) = old {
            self.release(old.tags);
        }
    }

    /// When to plan a [`tick`](Self::tick) at the latest.
    pub fn next_deadline(&self) -> Option<UnixMs> {
        self.engine.next_deadline()
    }

    /// Plans a batch of messages received at `now`, given what the journal already holds of
    /// it.
    pub fn plan(&mut self, batch: Vec<Classified>, lookups: &Lookups, now: UnixMs) -> Plan {
        let mut plan = Plan::default();
        let mut outputs = Vec::new();
        let mut taken: HashSet<(DeviceId, Seq)> = HashSet::new();
        for (index, c) in batch.into_iter().enumerate() {
            if let Err((device, refusal)) =
                self.take(c, lookups, &mut taken, now, &mut plan, &mut outputs)
            {
                plan.refusals.push(Refused {
                    index,
                    device,
                    refusal,
                });
            }
        }
        self.finish(outputs, now, &mut plan);
        plan
    }

    /// Plans what time alone decides at `now`: offline devices, alarms held long enough,
    /// escalations.
    pub fn tick(&mut self, now: UnixMs) -> Plan {
        self.input(Input::Tick, now)
    }

    /// Plans an engine input from the API (an acknowledgement, a device changed or removed).
    pub fn input(&mut self, input: Input, now: UnixMs) -> Plan {
        let mut plan = Plan::default();
        let forgets = matches!(input, Input::Acknowledged(_) | Input::Remove(_));
        let outputs = self.engine.handle(input, now);
        if forgets {
            self.forget_finished();
        }
        self.finish(outputs, now, &mut plan);
        plan
    }

    /// Takes one message into the plan.
    fn take(
        &mut self,
        c: Classified,
        lookups: &Lookups,
        taken: &mut HashSet<(DeviceId, Seq)>,
        now: UnixMs,
        plan: &mut Plan,
        outputs: &mut Vec<Output>,
    ) -> Result<(), (Option<DeviceId>, Refusal)> {
        let (device, msg) = c?;
        match self.known.get(&device).map(|k| k.state) {
            Some(DeviceState::Commissioned | DeviceState::InService) => {}
            Some(DeviceState::Decommissioned) => {
                return Err((Some(device), Refusal::Decommissioned));
            }
            Some(DeviceState::Registered) => {
                return Err((Some(device), Refusal::NotCommissioned));
            }
            // Unknown: listed as pending.
            None => return Err((Some(device), Refusal::UnknownDevice)),
        }
        see(plan, &device, &msg, now);
        match msg {
            Message::Telemetry(t) => {
                plan.samples
                    .push(Sample::from_telemetry(device.clone(), &t, now));
                outputs.extend(self.engine.handle(
                    Input::Telemetry {
                        device,
                        readings: t.readings.iter().copied().collect(),
                    },
                    now,
                ));
            }
            Message::Event(e) => {
                // Acknowledged again even when it is a resend: its first ack may have been lost.
                plan.acks.entry(device.clone()).or_default().push(e.seq);
                let key = (device, e.seq);
                if lookups.journaled.contains(&key) || !taken.insert(key.clone()) {
                    return Err((Some(key.0), Refusal::Duplicate));
                }
                let (device, _) = key;
                let open_as = episode_id_candidates(&device, e.seq)
                    .find(|id| !lookups.taken_episodes.contains(id) && !self.engine.holds(*id));
                let out = self.engine.handle(
                    Input::Event {
                        device: device.clone(),
                        kind: e.kind.clone(),
                        open_as,
                    },
                    now,
                );
                for o in &out {
                    if let Output::Opened { id, .. } = o {
                        self.openings.insert(*id, e.seq);
                    }
                }
                outputs.extend(out);
                plan.journal.push(JournalOp::Event(NewEvent {
                    device,
                    event: e,
                    received_ms: now,
                }));
            }
            Message::Status(Status::Online(h)) => {
                if let Some(k) = self.known.get_mut(&device)
                    && k.last_status.is_none_or(|last| h.seq > last)
                {
                    k.last_status = Some(h.seq);
                    plan.dropped_telemetry += u64::from(h.dropped_telemetry);
                }
                outputs.extend(self.engine.handle(Input::Online(device), now));
            }
            Message::Status(Status::Offline) => {
                outputs.extend(self.engine.handle(Input::Offline(device), now));
            }
            // classify only passes uplink messages.
            Message::Config(_) | Message::Command(_) | Message::Ack(_) => {}
        }
        Ok(())
    }

    /// Turns the engine's outputs into journal ops and alerts (one notification per alert and
    /// channel), keeping the episodes' descriptions current.
    fn finish(&mut self, mut outputs: Vec<Output>, now: UnixMs, plan: &mut Plan) {
        // A commissioning test's episode never escalates.
        outputs.retain(|o| match o {
            Output::Escalated { id, .. } => self
                .episodes
                .get(id)
                .is_none_or(|a| self.audience_of(&a.device) == Audience::Workers),
            _ => true,
        });
        if outputs.is_empty() {
            return;
        }
        let mut notify = Vec::new();
        for o in &outputs {
            if let Output::Opened { key, .. } = o {
                plan.opened.push(key.category);
            }
            let Some(alert) = self.alert_for(o, now) else {
                continue;
            };
            self.queue_alert(alert, now, plan, &mut notify);
        }
        // Episodes first: a notification refers to its episode.
        plan.journal.extend(JournalOp::from_outputs(outputs, now));
        plan.journal.extend(notify);
        self.openings.clear();
        self.forget_finished();
    }

    /// Plans the escalation of an acknowledged, unrectified ticket to `level` at `now`
    /// ([`crate::workflow`]): the episode's escalation and its `escalated` alerts (reason
    /// `rectify_overdue`), described from the journal's row (the engine may no longer hold it).
    pub fn overdue(&mut self, episode: &Episode, level: u8, now: UnixMs) -> Plan {
        let mut plan = Plan::default();
        if level <= episode.escalation
            || self.audience_of(episode.key.device.as_str()) == Audience::Installer
        {
            return plan;
        }
        let first = alert_of(episode);
        let alert = Alert {
            what: AlertKind::Escalated,
            level,
            area: self.area_at(&first.area, level),
            sent_ms: now,
            reason: Some(crate::notify::alert::EscalationReason::RectifyOverdue),
            ..first
        };
        let mut notify = Vec::new();
        self.queue_alert(alert, now, &mut plan, &mut notify);
        plan.journal.push(JournalOp::Engine {
            output: Output::Escalated {
                id: episode.id,
                level,
            },
            at_ms: now,
        });
        plan.journal.extend(notify);
        plan
    }

    /// One notification per channel of `alert` (MQTT, each webhook), into `notify` and the
    /// plan's alerts.
    fn queue_alert(
        &self,
        mut alert: Alert,
        now: UnixMs,
        plan: &mut Plan,
        notify: &mut Vec<JournalOp>,
    ) {
        {
            // A commissioned device's alert is its installer's (the people fan-out finds
            // them): not on the area's topic, not to the webhooks.
            alert.test = self.audience_of(&alert.device) == Audience::Installer;
            let (topic, webhooks) = if alert.test {
                (
                    format!("firegrid/v1/commissioning/{}", alert.device),
                    &[][..],
                )
            } else {
                (alert.topic(), self.webhooks.as_slice())
            };
            let targets = std::iter::once((NotifyChannel::Mqtt, topic)).chain(
                webhooks
                    .iter()
                    .map(|url| (NotifyChannel::Webhook, url.clone())),
            );
            // An episode a device's event opened under its derived id: the same id again
            // after a crash before the commit, so its MQTT alert goes out before the commit.
            let early = alert.what == AlertKind::Opened
                && alert.episode >= DERIVED_EPISODE_IDS
                && self.openings.contains_key(&alert.episode);
            for (channel, target) in targets {
                let mut alert = alert.clone();
                alert.alert_id = self.alert_id(&alert, channel, &target);
                notify.push(JournalOp::Notify(NewNotification {
                    id: i64::try_from(alert.alert_id).ok(),
                    episode_id: alert.episode,
                    kind: match alert.what {
                        AlertKind::Opened => NotificationKind::Opened,
                        AlertKind::Escalated => NotificationKind::Escalated,
                        AlertKind::Ended => NotificationKind::Ended,
                    },
                    level: alert.level,
                    channel,
                    target: target.clone(),
                    payload: serde_json::to_value(&alert).unwrap_or_default(),
                    next_attempt_ms: now,
                }));
                plan.alerts.push(Outgoing {
                    early: early && channel == NotifyChannel::Mqtt,
                    id: 0,
                    channel,
                    target,
                    alert,
                    attempts: 0,
                });
            }
        }
    }

    /// The alert's id ([`alert_id`](crate::notify::alert::alert_id)) on one channel: an
    /// `opened` alert's from the event that opened the episode (device, sequence number), or
    /// from the device, category, channel and start of an episode time or telemetry opened;
    /// a later alert's from its episode, kind and level.
    fn alert_id(&self, alert: &Alert, channel: NotifyChannel, target: &str) -> u64 {
        use crate::notify::alert::alert_id;
        let channel_name: &[u8] = match channel {
            NotifyChannel::Mqtt => b"mqtt",
            NotifyChannel::Webhook => b"webhook",
            NotifyChannel::Sse => b"sse",
        };
        let ch = alert.channel.map_or([0xfe], |c| [c]);
        match (alert.what, self.openings.get(&alert.episode)) {
            (AlertKind::Opened, Some(seq)) => alert_id(&[
                b"opened",
                alert.device.as_bytes(),
                &seq.to_be_bytes(),
                channel_name,
                target.as_bytes(),
            ]),
            (AlertKind::Opened, None) => alert_id(&[
                b"opened-at",
                alert.device.as_bytes(),
                alert.category.as_str().as_bytes(),
                &ch,
                &alert.started_ms.to_be_bytes(),
                channel_name,
                target.as_bytes(),
            ]),
            (AlertKind::Escalated | AlertKind::Ended, _) => alert_id(&[
                if alert.what == AlertKind::Ended {
                    b"ended"
                } else {
                    b"escalated"
                },
                &alert.episode.to_be_bytes(),
                &[alert.level],
                channel_name,
                target.as_bytes(),
            ]),
        }
    }

    /// The alert an engine output calls for (none for a new peak), updating the episode's
    /// description.
    fn alert_for(&mut self, o: &Output, now: UnixMs) -> Option<Alert> {
        let (id, what, level) = match o {
            Output::Opened {
                id,
                key,
                grid,
                source,
                level,
                detail,
            } => {
                let alert = Alert {
                    alert_id: 0,
                    episode: *id,
                    what: AlertKind::Opened,
                    category: key.category,
                    device: key.device.to_string(),
                    channel: key.channel,
                    area: grid.clone(),
                    level: 0,
                    source: *source,
                    started_ms: now,
                    quantity: level.map(|l| l.quantity),
                    value: level.map(|l| l.value),
                    threshold: level.map(|l| l.threshold),
                    detail: detail.map(str::to_owned),
                    sent_ms: now,
                    reason: None,
                    test: false,
                };
                self.episodes.insert(*id, alert.clone());
                return Some(alert);
            }
            Output::Peak { id, level } => {
                if let Some(a) = self.episodes.get_mut(id) {
                    a.quantity = Some(level.quantity);
                    a.value = Some(level.value);
                    a.threshold = Some(level.threshold);
                }
                return None;
            }
            Output::Escalated { id, level } => (*id, AlertKind::Escalated, *level),
            Output::Ended { id } => {
                self.ended.insert(*id);
                (*id, AlertKind::Ended, 0)
            }
        };
        let Some(first) = self.episodes.get(&id) else {
            tracing::warn!(
                episode = id,
                "no description of the episode: {what:?} alert not sent"
            );
            return None;
        };
        Some(Alert {
            what,
            level,
            area: self.area_at(&first.area, level),
            sent_ms: now,
            reason: None,
            ..first.clone()
        })
    }

    /// Who a device's alerts are for ([`audience`]): its installer while it is commissioned.
    pub fn audience_of(&self, device: &str) -> Audience {
        DeviceId::new(device)
            .ok()
            .and_then(|d| self.known.get(&d))
            .map_or(Audience::Workers, |k| audience(k.state))
    }

    /// The area `level` steps above `grid` (the top of the hierarchy when it has fewer levels).
    fn area_at(&self, grid: &GridId, level: u8) -> GridId {
        let mut area = grid;
        for _ in 0..usize::from(level).min(MAX_AREA_DEPTH) {
            match self.areas.get(area) {
                Some(Some(parent)) => area = parent,
                _ => break,
            }
        }
        area.clone()
    }

    /// Drops the descriptions of episodes the engine no longer holds.
    fn forget_finished(&mut self) {
        let engine = &self.engine;
        self.episodes.retain(|id, _| engine.holds(*id));
        self.ended.retain(|id| engine.holds(*id));
    }
}

/// Notes in the plan's statuses that `device` was heard from at `now`, with what its status
/// message says.
fn see(plan: &mut Plan, device: &DeviceId, msg: &Message, now: UnixMs) {
    let s = plan
        .statuses
        .entry(device.clone())
        .or_insert_with(|| crate::store::StatusUpdate {
            device: device.clone(),
            seen_ms: now,
            online: None,
            heartbeat: None,
        });
    match msg {
        Message::Status(Status::Online(h)) => {
            s.online = Some(true);
            s.heartbeat = Some(crate::store::HeartbeatFields {
                firmware: h.firmware.as_str().to_owned(),
                signal_dbm: h.signal_dbm,
                battery_mv: h.battery_mv,
                config_version: h.config_version,
            });
        }
        Message::Status(Status::Offline) => s.online = Some(false),
        _ => {}
    }
}

/// An episode's alert as the journal describes it (its opening, its peak so far).
fn alert_of(e: &Episode) -> Alert {
    Alert {
        alert_id: 0,
        episode: e.id,
        what: AlertKind::Opened,
        category: e.key.category,
        device: e.key.device.to_string(),
        channel: e.key.channel,
        area: e.grid.clone(),
        level: 0,
        source: e.source,
        started_ms: e.started_ms,
        quantity: e.peak.map(|l| l.quantity),
        value: e.peak.map(|l| l.value),
        threshold: e.peak.map(|l| l.threshold),
        detail: e.detail.clone(),
        sent_ms: e.started_ms,
        reason: None,
        test: false,
    }
}

#[cfg(test)]
mod tests;
