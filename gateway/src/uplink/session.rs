//! The uplink's session with the centre as a pure core: `handle(input, now) -> outputs` and
//! `next_deadline()`; no sockets, clocks or files (the shell, [`super::shell`], does those).
//!
//! - **Send/confirm** (§6.5): one data frame outstanding at a time, journaled frames first in
//!   journal order, then status, analog values and keep-alives. Not confirmed within the
//!   timeout, or denied: sent again, byte for byte (same serial number), up to `tries` sends;
//!   then the link is faulty ([`Output::LinkFault`]) and the shell reconnects; the frame goes
//!   back to the front of its queue. A journaled frame is only done when confirmed.
//! - **The centre's commands**: clock sync (90, confirmed; the offset is reported, the clock is
//!   not moved), initialise (89), duty check (91), reads of the transmission device (81–88) and
//!   of the facility (61–68), answered from what this session has reported. A bad frame is
//!   answered with a deny when its control unit is readable, and counted.

use std::collections::{BTreeMap, VecDeque};

use firegrid_protocols::gb26875::adu::{self, Adu, Component, Object, Status, System, uitd};
use firegrid_protocols::gb26875::frame::{self, Address, Command, Header, MAX_FRAME, TimeTag};
use firegrid_protocols::gb26875::profile::Profile;
use firegrid_protocols::gb26875::split::{Piece, Splitter};

use super::time::tag_of;
use crate::model::UnixMs;

/// What a session needs to know.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// The protocol variant.
    pub profile: Profile,
    /// This gateway's address.
    pub own: Address,
    /// The centre's address.
    pub centre: Address,
    /// Zone of time tags, minutes east of UTC.
    pub utc_offset_min: i32,
    /// Confirm timeout, ms.
    pub confirm_timeout_ms: u64,
    /// Sends of one frame before the link is faulty.
    pub tries: u32,
    /// Keep-alive after this long without sending, ms.
    pub heartbeat_ms: u64,
    /// The facility system reported.
    pub system: System,
    /// firegrid's version (major, minor), for reads of the software version.
    pub version: (u8, u8),
}

/// A journaled frame: its row in the uplink journal, serial number and bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Journaled {
    /// Its row.
    pub id: i64,
    /// Its serial number.
    pub serial: u16,
    /// The whole frame.
    pub bytes: Vec<u8>,
}

/// What happens to a session.
#[derive(Debug)]
pub enum Input<'a> {
    /// The TCP connection is up.
    Connected,
    /// The TCP connection is gone (or could not be made).
    Disconnected,
    /// A frame of the journal, to send after those before it.
    Journaled(Journaled),
    /// An ADU to send now (status, analog values): not journaled, dropped if the link fails.
    Transient(Vec<u8>),
    /// Bytes read from the connection.
    Bytes(&'a [u8]),
    /// Time passed.
    Tick,
}

/// What the shell must do or record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Write these bytes.
    Send(Vec<u8>),
    /// A journaled frame was confirmed: mark it.
    Confirmed {
        /// Its row.
        id: i64,
        /// Its serial number.
        serial: u16,
    },
    /// A frame went again (after a timeout or a deny).
    Retransmitted {
        /// Its serial number.
        serial: u16,
        /// Which send this is (2, 3, …).
        attempt: u32,
    },
    /// The centre denied our frame.
    Denied {
        /// Its serial number.
        serial: u16,
    },
    /// The link to the centre became faulty (true) or works again (false).
    LinkFault(bool),
    /// Close the connection and connect again.
    Reconnect,
    /// A frame from the centre was refused (reason for the counter).
    Refused(&'static str),
    /// The centre's clock minus ours, ms (clock sync, type 90).
    ClockOffset(i64),
    /// The centre asked whether someone is on duty (type 91).
    DutyCheck {
        /// Minutes to answer.
        timeout_min: u8,
    },
    /// The centre initialised this device (type 89).
    Initialised,
}

#[derive(Debug, Clone)]
struct Outstanding {
    /// Journal row, for journaled frames.
    id: Option<i64>,
    serial: u16,
    bytes: Vec<u8>,
    sends: u32,
    deadline: UnixMs,
}

/// The session. See the [module docs](self).
#[derive(Debug)]
pub struct Session {
    cfg: SessionConfig,
    connected: bool,
    splitter: Box<Splitter>,
    journaled: VecDeque<Journaled>,
    transient: VecDeque<(u16, Vec<u8>)>,
    outstanding: Option<Outstanding>,
    next_serial: u16,
    last_sent_ms: UnixMs,
    /// Since when the link has been faulty.
    link_fault_since: Option<UnixMs>,
    /// What was reported per component (for the centre's reads).
    components: BTreeMap<u32, (Component, Status, [u8; adu::DESCRIPTION_LEN], TimeTag)>,
    analogs: BTreeMap<(u32, u8), (Component, i16, TimeTag)>,
}

impl Session {
    /// A session whose next serial number is `next_serial` (kept across restarts).
    pub fn new(cfg: SessionConfig, next_serial: u16) -> Self {
        Self {
            splitter: Box::new(Splitter::new(cfg.profile)),
            cfg,
            connected: false,
            journaled: VecDeque::new(),
            transient: VecDeque::new(),
            outstanding: None,
            next_serial,
            last_sent_ms: 0,
            link_fault_since: None,
            components: BTreeMap::new(),
            analogs: BTreeMap::new(),
        }
    }

    /// The next serial number (to persist).
    pub fn next_serial(&self) -> u16 {
        self.next_serial
    }

    /// Takes a serial number for a new frame.
    pub fn take_serial(&mut self) -> u16 {
        let s = self.next_serial;
        self.next_serial = s.wrapping_add(1);
        s
    }

    /// A send (command 2) frame of `adu` with `serial`, time-tagged `now`.
    pub fn send_frame(&self, serial: u16, adu: &[u8], now: UnixMs) -> Vec<u8> {
        self.frame(
            Header {
                serial,
                version: self.cfg.profile.version,
                time: tag_of(now, self.cfg.utc_offset_min),
                source: self.cfg.own,
                destination: self.cfg.centre,
                adu_len: 0,
                command: Command::SEND,
            },
            adu,
        )
    }

    fn frame(&self, header: Header, adu: &[u8]) -> Vec<u8> {
        let mut out = [0u8; MAX_FRAME];
        // ADUs are built by this module within 1024 bytes; an oversized one is cut to an empty
        // frame rather than panic (and shows as a keep-alive).
        let n = frame::encode(&header, adu, &self.cfg.profile, &mut out)
            .or_else(|_| frame::encode(&header, &[], &self.cfg.profile, &mut out))
            .unwrap_or(0);
        out[..n].to_vec()
    }

    /// Whether the link is faulty now.
    pub fn link_faulty(&self) -> bool {
        self.link_fault_since.is_some()
    }

    /// Journaled frames not yet confirmed (queued or outstanding).
    pub fn unconfirmed(&self) -> usize {
        self.journaled.len()
            + usize::from(self.outstanding.as_ref().is_some_and(|o| o.id.is_some()))
    }

    /// When [`Input::Tick`] is due next.
    pub fn next_deadline(&self) -> Option<UnixMs> {
        if !self.connected {
            return None;
        }
        match &self.outstanding {
            Some(o) => Some(o.deadline),
            None => Some(self.last_sent_ms.saturating_add(self.cfg.heartbeat_ms)),
        }
    }

    /// Handles one input.
    pub fn handle(&mut self, input: Input<'_>, now: UnixMs) -> Vec<Output> {
        let mut out = Vec::new();
        match input {
            Input::Connected => {
                self.connected = true;
                *self.splitter = Splitter::new(self.cfg.profile);
                self.last_sent_ms = now;
            }
            Input::Disconnected => {
                let was = self.connected;
                self.connected = false;
                self.requeue();
                if was || self.link_fault_since.is_none() {
                    self.fault(now, &mut out);
                }
            }
            Input::Journaled(j) => {
                self.remember(adu_of(&j.bytes), now);
                self.journaled.push_back(j);
            }
            Input::Transient(adu) => {
                self.remember(&adu, now);
                let serial = self.take_serial();
                self.transient.push_back((serial, adu));
            }
            Input::Bytes(mut data) => {
                let mut buf = [0u8; MAX_FRAME];
                while !data.is_empty() {
                    let n = self.splitter.push(data);
                    data = data.get(n..).unwrap_or_default();
                    while let Some(p) = self.splitter.next(&mut buf) {
                        match p {
                            Piece::Frame { len } => {
                                self.received(buf.get(..len).unwrap_or_default(), now, &mut out);
                            }
                            Piece::Skipped { .. } => out.push(Output::Refused("not_a_frame")),
                        }
                    }
                }
            }
            Input::Tick => self.tick(now, &mut out),
        }
        self.pump(now, &mut out);
        out
    }

    /// Puts the outstanding frame back at the front of its queue.
    fn requeue(&mut self) {
        // Transient frames are not kept: status and readings are sent fresh on the next link.
        if let Some(o) = self.outstanding.take()
            && let Some(id) = o.id
        {
            self.journaled.push_front(Journaled {
                id,
                serial: o.serial,
                bytes: o.bytes,
            });
        }
    }

    fn fault(&mut self, now: UnixMs, out: &mut Vec<Output>) {
        if self.link_fault_since.is_none() {
            self.link_fault_since = Some(now);
            out.push(Output::LinkFault(true));
        }
    }

    fn tick(&mut self, now: UnixMs, out: &mut Vec<Output>) {
        if !self.connected {
            return;
        }
        let Some(o) = self.outstanding.as_mut() else {
            if now >= self.last_sent_ms.saturating_add(self.cfg.heartbeat_ms)
                && self.journaled.is_empty()
                && self.transient.is_empty()
            {
                let serial = self.take_serial();
                self.transient.push_back((serial, Vec::new()));
            }
            return;
        };
        if now < o.deadline {
            return;
        }
        self.retry(now, out);
    }

    /// The outstanding frame timed out or was denied: again, or the link is faulty.
    fn retry(&mut self, now: UnixMs, out: &mut Vec<Output>) {
        let Some(o) = self.outstanding.as_mut() else {
            return;
        };
        if o.sends < self.cfg.tries {
            o.sends += 1;
            o.deadline = now.saturating_add(self.cfg.confirm_timeout_ms);
            out.push(Output::Retransmitted {
                serial: o.serial,
                attempt: o.sends,
            });
            out.push(Output::Send(o.bytes.clone()));
            self.last_sent_ms = now;
        } else {
            self.requeue();
            self.fault(now, out);
            self.connected = false;
            out.push(Output::Reconnect);
        }
    }

    /// Sends the next data frame if none is outstanding.
    fn pump(&mut self, now: UnixMs, out: &mut Vec<Output>) {
        if !self.connected || self.outstanding.is_some() {
            return;
        }
        let next = if let Some(j) = self.journaled.pop_front() {
            Outstanding {
                id: Some(j.id),
                serial: j.serial,
                bytes: j.bytes,
                sends: 1,
                deadline: 0,
            }
        } else if let Some((serial, adu)) = self.transient.pop_front() {
            Outstanding {
                id: None,
                serial,
                bytes: self.send_frame(serial, &adu, now),
                sends: 1,
                deadline: 0,
            }
        } else {
            return;
        };
        out.push(Output::Send(next.bytes.clone()));
        self.last_sent_ms = now;
        self.outstanding = Some(Outstanding {
            deadline: now.saturating_add(self.cfg.confirm_timeout_ms),
            ..next
        });
    }

    /// Keeps what a status or analog ADU reports, for the centre's reads.
    fn remember(&mut self, adu: &[u8], _now: UnixMs) {
        let Ok(a) = Adu::parse(adu) else {
            return;
        };
        for o in a.objects() {
            match o {
                Object::ComponentStatus {
                    component,
                    status,
                    description,
                    time,
                    ..
                } => {
                    self.components
                        .insert(component.address, (component, status, description, time));
                }
                Object::AnalogValue {
                    component,
                    analog,
                    value,
                    time,
                    ..
                } => {
                    self.analogs
                        .insert((component.address, analog), (component, value, time));
                }
                _ => {}
            }
        }
    }

    /// The transmission device's status byte now.
    pub fn own_status(&self) -> u8 {
        let mut s = uitd::NORMAL;
        for (_, status, _, _) in self.components.values() {
            if status.has(Status::FIRE) {
                s |= uitd::FIRE;
            }
            if status.has(Status::FAULT) || status.has(Status::POWER_FAULT) {
                s |= uitd::FAULT;
            }
        }
        if self.link_fault_since.is_some() {
            s |= uitd::LINK_FAULT;
        }
        s
    }

    fn received(&mut self, bytes: &[u8], now: UnixMs, out: &mut Vec<Output>) {
        let f = match frame::decode(bytes, &self.cfg.profile) {
            Ok(f) => f,
            Err(e) => {
                out.push(Output::Refused(e.reason()));
                if let Some(h) = e.header() {
                    self.answer(h, Command::DENY, &[], now, out);
                }
                return;
            }
        };
        let h = f.header;
        match h.command {
            Command::CONFIRM => self.confirmed(h.serial, now, out),
            Command::DENY => {
                if self
                    .outstanding
                    .as_ref()
                    .is_some_and(|o| o.serial == h.serial)
                {
                    out.push(Output::Denied { serial: h.serial });
                    self.retry(now, out);
                } else {
                    out.push(Output::Refused("stale_deny"));
                }
            }
            Command::SEND => self.answer(&h, Command::CONFIRM, &[], now, out),
            Command::RESPONSE => out.push(Output::Refused("unexpected_response")),
            Command::CONTROL | Command::REQUEST => {
                let adu = match Adu::parse(f.adu) {
                    Ok(a) => a,
                    Err(_) => {
                        out.push(Output::Refused("bad_adu"));
                        self.answer(&h, Command::DENY, &[], now, out);
                        return;
                    }
                };
                let answer = if h.command == Command::CONTROL {
                    self.control(&adu, now, out)
                        .map(|()| (Command::CONFIRM, Vec::new()))
                } else {
                    self.read(&adu, now).map(|a| (Command::RESPONSE, a))
                };
                match answer {
                    Some((cmd, data)) => self.answer(&h, cmd, &data, now, out),
                    None => {
                        out.push(Output::Refused("unsupported"));
                        self.answer(&h, Command::DENY, &[], now, out);
                    }
                }
            }
            _ => {
                out.push(Output::Refused("unknown_command"));
                self.answer(&h, Command::DENY, &[], now, out);
            }
        }
    }

    fn confirmed(&mut self, serial: u16, now: UnixMs, out: &mut Vec<Output>) {
        if self.outstanding.as_ref().is_none_or(|o| o.serial != serial) {
            out.push(Output::Refused("stale_confirm"));
            return;
        }
        let Some(o) = self.outstanding.take() else {
            return;
        };
        if let Some(id) = o.id {
            out.push(Output::Confirmed { id, serial });
        }
        if let Some(since) = self.link_fault_since.take() {
            out.push(Output::LinkFault(false));
            // Tell the centre: the fault (when it began), then the status now.
            let fault = uitd_status(
                self.own_status() | uitd::LINK_FAULT,
                tag_of(since, self.cfg.utc_offset_min),
            );
            let now_status = uitd_status(self.own_status(), tag_of(now, self.cfg.utc_offset_min));
            for adu in [fault, now_status] {
                let serial = self.take_serial();
                self.transient.push_back((serial, adu));
            }
        }
    }

    /// Answers with the same serial number, addresses swapped.
    fn answer(&self, h: &Header, command: Command, adu: &[u8], now: UnixMs, out: &mut Vec<Output>) {
        let reply = h.reply(
            command,
            self.cfg.profile.version,
            tag_of(now, self.cfg.utc_offset_min),
        );
        out.push(Output::Send(self.frame(reply, adu)));
    }
}

/// A type-21 ADU.
pub fn uitd_status(status: u8, time: TimeTag) -> Vec<u8> {
    let mut buf = [0u8; 16];
    let n = adu::encode(
        adu::kind::UITD_STATUS,
        &[Object::UitdStatus {
            status,
            extra: &[],
            time,
        }],
        &mut buf,
    )
    .unwrap_or(0);
    buf[..n].to_vec()
}

/// The ADU bytes of a whole frame.
fn adu_of(frame_bytes: &[u8]) -> &[u8] {
    frame_bytes
        .get(frame::HEADER_LEN..frame_bytes.len().saturating_sub(3))
        .unwrap_or_default()
}

mod answers;
#[cfg(test)]
mod tests;
