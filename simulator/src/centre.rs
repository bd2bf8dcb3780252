//! `firegrid-sim centre`: a simulated city remote fire-monitoring centre speaking
//! GB/T 26875.3 — for tests and demos of the gateway's uplink.
//!
//! It accepts transmission devices on TCP, confirms their data frames (command 2, answered with
//! command 3 and the same serial number), denies bad frames, and prints every frame decoded as
//! one JSON line on stdout (`"event":"frame"`, with the time it arrived, whether the same
//! serial number and ADU came before — a retransmission, never a new event — and what it
//! answered). It can send duty checks (type 91) and clock syncs (type 90) on a timer, and
//! misbehave on request: leave the first N data frames unconfirmed, deny them, or drop the
//! connection on them.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use firegrid_gateway::uplink::describe::describe;
use firegrid_gateway::uplink::time::tag_of;
use firegrid_protocols::gb26875::adu;
use firegrid_protocols::gb26875::frame::{self, Address, Command, Header, MAX_FRAME};
use firegrid_protocols::gb26875::profile::Profile;
use firegrid_protocols::gb26875::split::{Piece, Splitter};

/// `firegrid-sim centre`.
#[derive(clap::Args, Debug, Clone)]
pub struct CentreArgs {
    /// Where to listen, e.g. 127.0.0.1:9000.
    #[arg(long)]
    pub listen: SocketAddr,
    /// The protocol variant (standard, user-version-0, version-u16-be, sum-or-xor, strict).
    #[arg(long, default_value = "standard")]
    pub profile: String,
    /// The centre's own 6-byte address (in the commands it sends).
    #[arg(long, default_value_t = 0)]
    pub address: u64,
    /// Drop the connection on the first N data frames (no answer).
    #[arg(long, default_value_t = 0)]
    pub drop: u64,
    /// Then deny the next N data frames.
    #[arg(long, default_value_t = 0)]
    pub deny: u64,
    /// Then leave the next N data frames unconfirmed.
    #[arg(long, default_value_t = 0)]
    pub no_confirm: u64,
    /// Send a duty check (type 91) to each device this often, s.
    #[arg(long)]
    pub duty_check_every_s: Option<u64>,
    /// Send a clock sync (type 90) to each device this often, s.
    #[arg(long)]
    pub clock_sync_every_s: Option<u64>,
    /// The centre's clock is this far ahead of the machine's, s (for clock syncs).
    #[arg(long, default_value_t = 0)]
    pub clock_ahead_s: i64,
    /// The zone of time tags, minutes east of UTC.
    #[arg(long, default_value_t = 480)]
    pub utc_offset_min: i32,
}

/// What to do with a data frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// Confirm it.
    Confirm,
    /// Deny it.
    Deny,
    /// Say nothing.
    None,
    /// Close the connection.
    Drop,
}

impl Answer {
    const fn as_str(self) -> &'static str {
        match self {
            Self::Confirm => "confirm",
            Self::Deny => "deny",
            Self::None => "none",
            Self::Drop => "drop",
        }
    }
}

/// The misbehaviour plan and what was seen, shared by all connections.
#[derive(Debug, Default)]
pub struct Plan {
    drop: u64,
    deny: u64,
    no_confirm: u64,
    data_frames: u64,
    seen: HashSet<(u16, Vec<u8>)>,
}

impl Plan {
    /// A plan: the first `drop` data frames dropped, the next `deny` denied, the next
    /// `no_confirm` left unconfirmed, the rest confirmed.
    pub fn new(drop: u64, deny: u64, no_confirm: u64) -> Self {
        Self {
            drop,
            deny,
            no_confirm,
            ..Self::default()
        }
    }

    /// The answer to the next data frame, and whether its serial number and ADU came before.
    pub fn data_frame(&mut self, serial: u16, adu: &[u8]) -> (Answer, bool) {
        self.data_frames += 1;
        let k = self.data_frames;
        let duplicate = !self.seen.insert((serial, adu.to_vec()));
        let answer = if k <= self.drop {
            Answer::Drop
        } else if k <= self.drop + self.deny {
            Answer::Deny
        } else if k <= self.drop + self.deny + self.no_confirm {
            Answer::None
        } else {
            Answer::Confirm
        };
        (answer, duplicate)
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn log(v: &Value) {
    println!("{v}");
}

/// Runs the centre until the process ends.
///
/// # Errors
/// The profile is unknown or the address cannot be bound.
pub async fn run(args: CentreArgs) -> Result<(), String> {
    let profile = Profile::by_name(&args.profile).map_err(|e| e.to_string())?;
    let listener = TcpListener::bind(args.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    log(&json!({"event": "listening", "addr": addr.to_string(), "profile": profile.name}));
    let plan = Arc::new(Mutex::new(Plan::new(args.drop, args.deny, args.no_confirm)));
    let mut conn = 0u64;
    loop {
        let (stream, peer) = listener
            .accept()
            .await
            .map_err(|e| format!("accept: {e}"))?;
        conn += 1;
        log(
            &json!({"event": "connected", "conn": conn, "peer": peer.to_string(), "recv_ms": now_ms()}),
        );
        let (plan, args) = (plan.clone(), args.clone());
        tokio::spawn(async move {
            let why = serve(stream, conn, profile, &args, &plan).await;
            log(&json!({"event": "closed", "conn": conn, "why": why, "recv_ms": now_ms()}));
        });
    }
}

/// One device's connection; returns why it ended.
async fn serve(
    mut stream: TcpStream,
    conn: u64,
    profile: Profile,
    args: &CentreArgs,
    plan: &Mutex<Plan>,
) -> String {
    let mut splitter = Box::new(Splitter::new(profile));
    let mut frame_buf = [0u8; MAX_FRAME];
    let mut buf = vec![0u8; 4096];
    let every = |s: Option<u64>| {
        s.map(|s| {
            let d = Duration::from_secs(s.max(1));
            tokio::time::interval_at(tokio::time::Instant::now() + d, d)
        })
    };
    let mut duty = every(args.duty_check_every_s);
    let mut sync = every(args.clock_sync_every_s);
    // Where the device is (learned from its frames) and the centre's serial numbers.
    let mut device: Option<Address> = None;
    let mut serial = 0u16;
    loop {
        let command: Option<(&str, Vec<u8>)> = tokio::select! {
            r = stream.read(&mut buf) => {
                let n = match r {
                    Ok(0) => return "closed by the device".into(),
                    Ok(n) => n,
                    Err(e) => return format!("read: {e}"),
                };
                let mut data = &buf[..n];
                let mut replies = Vec::new();
                while !data.is_empty() {
                    let k = splitter.push(data);
                    data = &data[k..];
                    while let Some(p) = splitter.next(&mut frame_buf) {
                        match p {
                            Piece::Frame { len } => {
                                match on_frame(&frame_buf[..len], conn, profile, plan, &mut device) {
                                    Some(Some(r)) => replies.push(r),
                                    Some(None) => {}
                                    None => return "dropped on request".into(),
                                }
                            }
                            Piece::Skipped { bytes } => log(&json!({
                                "event": "refused", "conn": conn, "reason": "not_a_frame",
                                "bytes": bytes, "recv_ms": now_ms(),
                            })),
                        }
                    }
                }
                for r in replies {
                    if let Err(e) = stream.write_all(&r).await {
                        return format!("write: {e}");
                    }
                }
                None
            }
            _ = tick(&mut duty) => Some(("duty_check", vec![adu::kind::DUTY_CHECK, 1, 10])),
            _ = tick(&mut sync) => {
                let centre_ms = now_ms().saturating_add_signed(args.clock_ahead_s * 1000);
                let mut a = vec![adu::kind::SYNC_CLOCK, 1];
                a.extend(tag_of(centre_ms, args.utc_offset_min).0);
                Some(("clock_sync", a))
            }
        };
        if let (Some((what, adu)), Some(dest)) = (command, device) {
            let h = Header {
                serial,
                version: profile.version,
                time: tag_of(now_ms(), args.utc_offset_min),
                source: Address::from_u64(args.address),
                destination: dest,
                adu_len: 0,
                command: Command::CONTROL,
            };
            let mut out = [0u8; MAX_FRAME];
            if let Ok(n) = frame::encode(&h, &adu, &profile, &mut out) {
                log(
                    &json!({"event": "sent", "conn": conn, "what": what, "serial": serial, "recv_ms": now_ms()}),
                );
                serial = serial.wrapping_add(1);
                if let Err(e) = stream.write_all(&out[..n]).await {
                    return format!("write: {e}");
                }
            }
        }
    }
}

async fn tick(i: &mut Option<tokio::time::Interval>) {
    match i {
        Some(i) => {
            i.tick().await;
        }
        None => std::future::pending().await,
    }
}

/// Logs a frame and decides the reply: `None` to drop the connection, `Some(None)` to say
/// nothing.
fn on_frame(
    bytes: &[u8],
    conn: u64,
    profile: Profile,
    plan: &Mutex<Plan>,
    device: &mut Option<Address>,
) -> Option<Option<Vec<u8>>> {
    let recv_ms = now_ms();
    let hex = hex::encode(bytes);
    let f = match frame::decode(bytes, &profile) {
        Ok(f) => f,
        Err(e) => {
            log(
                &json!({"event": "refused", "conn": conn, "reason": e.to_string(), "hex": hex, "recv_ms": recv_ms}),
            );
            return Some(e.header().map(|h| reply(h, Command::DENY, profile)));
        }
    };
    let h = f.header;
    *device = Some(h.source);
    let decoded = describe(bytes, &profile).unwrap_or_else(|e| json!({"error": e.to_string()}));
    let (answer, duplicate) = if h.command == Command::SEND {
        plan.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .data_frame(h.serial, f.adu)
    } else {
        // Answers to the centre's own commands, and anything else: logged only.
        (Answer::None, false)
    };
    log(&json!({
        "event": "frame", "conn": conn, "recv_ms": recv_ms, "duplicate": duplicate,
        "answer": answer.as_str(), "hex": hex, "frame": decoded,
    }));
    match answer {
        Answer::Drop => None,
        Answer::None => Some(None),
        Answer::Deny => Some(Some(reply(&h, Command::DENY, profile))),
        Answer::Confirm => Some(Some(reply(&h, Command::CONFIRM, profile))),
    }
}

fn reply(h: &Header, command: Command, profile: Profile) -> Vec<u8> {
    let r = h.reply(command, profile.version, tag_of(now_ms(), 480));
    let mut out = [0u8; MAX_FRAME];
    let n = frame::encode(&r, &[], &profile, &mut out).unwrap_or(0);
    out[..n].to_vec()
}

/// The type-2 objects of a logged frame (for tests reading the centre's log): component
/// address, status, description.
pub fn component_statuses(frame: &Value) -> Vec<(u64, u64, String)> {
    frame["adu"]["objects"]
        .as_array()
        .map(|objects| {
            objects
                .iter()
                .filter(|_| frame["adu"]["type"] == 2)
                .map(|o| {
                    (
                        o["component_address"].as_u64().unwrap_or(0),
                        o["status"].as_u64().unwrap_or(0),
                        o["description"].as_str().unwrap_or("").to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plan_goes_drop_deny_silence_confirm() {
        let mut p = Plan::new(1, 1, 2);
        let answers: Vec<Answer> = (0..6).map(|i| p.data_frame(i, &[2, 1]).0).collect();
        assert_eq!(
            answers,
            [
                Answer::Drop,
                Answer::Deny,
                Answer::None,
                Answer::None,
                Answer::Confirm,
                Answer::Confirm
            ]
        );
        assert!(
            p.data_frame(0, &[2, 1]).1,
            "the same serial and ADU again is a duplicate"
        );
        assert!(!p.data_frame(0, &[2, 2]).1);
    }
}
