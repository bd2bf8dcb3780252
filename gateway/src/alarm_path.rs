//! The alarm path's thread: the broker links that carry events in and alerts out, and the
//! pipeline between them, run on one thread of their own — a single-threaded Tokio runtime —
//! in the real-time scheduling class (`SCHED_FIFO`, low priority) when the operating system
//! allows it.
//!
//! Why: at high load the gateway shares its cores with the broker, the readings writer and
//! whatever else runs on the machine, and an alarm's time through the gateway is then mostly
//! threads waiting for a CPU (docs/performance.md, "Where an alarm waits at 90 % load"). A
//! real-time thread is run as soon as it wakes, ahead of every ordinary one; the rest of the
//! gateway (telemetry's broker link, the readings and journal writers, the API) stays in the
//! ordinary class, so the alarm path takes a CPU first without the readings' work doing so
//! too. The pipeline takes telemetry in batches at most once per millisecond under load
//! (`pipeline.rs`), so that the telemetry it plans costs this thread few wake-ups.
//!
//! Threads this runtime starts for blocking work (the pipeline's journal reads) inherit the
//! class: a read on the alarm path is not left waiting for a CPU either. Nothing on it starts
//! a process (the managed broker is started and restarted from the main runtime).
//!
//! Permission: root, `CAP_SYS_NICE`, or an `RLIMIT_RTPRIO` of at least the priority (systemd:
//! `LimitRTPRIO=1`; docker: `--ulimit rtprio=1`). Without it the thread runs in the ordinary
//! class, says so once at start (a warning with the reason), and
//! `firegrid_alarm_path_realtime` is 0. `[alarm_path] realtime_priority = 0` asks for the
//! ordinary class. A real-time thread that never slept could starve its core; Linux keeps 5 %
//! of every second for the ordinary class (`kernel.sched_rt_runtime_us`), and this one sleeps
//! whenever nothing is waiting.

use std::thread::JoinHandle;

use tokio::runtime::Handle;
use tokio_util::sync::CancellationToken;

/// How the alarm path's thread is scheduled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scheduling {
    /// `SCHED_FIFO` at this priority.
    Realtime(u8),
    /// The ordinary class: not asked for (`None`), or refused (why).
    Normal(Option<String>),
}

/// The alarm path's thread and its runtime. Dropping it stops the runtime: every task still on
/// it is dropped, so the pipeline's task should be awaited first.
#[derive(Debug)]
pub struct AlarmPath {
    handle: Handle,
    scheduling: Scheduling,
    stop: CancellationToken,
    thread: Option<JoinHandle<()>>,
}

impl AlarmPath {
    /// Starts the thread, in the real-time class at `priority` (1–99) if it is not 0 and the
    /// operating system allows it.
    ///
    /// # Errors
    /// The thread or its runtime could not be made.
    pub fn start(priority: u8) -> std::io::Result<Self> {
        let stop = CancellationToken::new();
        let (tx, rx) = std::sync::mpsc::channel();
        let stopped = stop.clone();
        let thread = std::thread::Builder::new()
            .name("alarm-path".into())
            .spawn(move || {
                let scheduling = realtime(priority);
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .thread_name("alarm-path-io")
                    .build();
                match runtime {
                    Ok(rt) => {
                        let _ = tx.send(Ok((rt.handle().clone(), scheduling)));
                        rt.block_on(stopped.cancelled());
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e));
                    }
                }
            })?;
        let (handle, scheduling) = rx
            .recv()
            .map_err(|_| std::io::Error::other("the alarm path's thread ended at start"))??;
        match &scheduling {
            Scheduling::Realtime(p) => {
                tracing::info!(priority = p, "the alarm path runs in the real-time class");
            }
            Scheduling::Normal(Some(why)) => tracing::warn!(
                "the alarm path runs in the ordinary scheduling class ({why}): give the gateway \
                 CAP_SYS_NICE or an RLIMIT_RTPRIO of at least {priority} (systemd: \
                 LimitRTPRIO={priority}) for alarms ahead of every other thread under load"
            ),
            Scheduling::Normal(None) => {}
        }
        Ok(Self {
            handle,
            scheduling,
            stop,
            thread: Some(thread),
        })
    }

    /// Its runtime: spawn the alarm path's tasks here.
    pub fn handle(&self) -> &Handle {
        &self.handle
    }

    /// How its thread is scheduled.
    pub fn scheduling(&self) -> &Scheduling {
        &self.scheduling
    }

    /// Stops the runtime and waits for the thread (blocking: call it off the async threads,
    /// or let [`Drop`] stop it without waiting).
    pub fn join(mut self) {
        self.stop.cancel();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for AlarmPath {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Puts the calling thread in `SCHED_FIFO` at `priority` (0: leaves it as it is).
fn realtime(priority: u8) -> Scheduling {
    use thread_priority::{
        RealtimeThreadSchedulePolicy, ThreadPriority, ThreadPriorityValue, ThreadSchedulePolicy,
        set_thread_priority_and_policy, thread_native_id,
    };
    if priority == 0 {
        return Scheduling::Normal(None);
    }
    let value = match ThreadPriorityValue::try_from(priority) {
        Ok(v) => v,
        Err(e) => return Scheduling::Normal(Some(format!("priority {priority}: {e}"))),
    };
    match set_thread_priority_and_policy(
        thread_native_id(),
        ThreadPriority::Crossplatform(value),
        ThreadSchedulePolicy::Realtime(RealtimeThreadSchedulePolicy::Fifo),
    ) {
        Ok(()) => Scheduling::Realtime(priority),
        Err(thread_priority::Error::OS(code)) => Scheduling::Normal(Some(format!(
            "SCHED_FIFO {priority} refused: {}",
            std::io::Error::from_raw_os_error(code)
        ))),
        Err(e) => Scheduling::Normal(Some(format!("SCHED_FIFO {priority} refused: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use thread_priority::{
        NormalThreadSchedulePolicy, RealtimeThreadSchedulePolicy, ThreadSchedulePolicy,
        thread_schedule_policy,
    };

    /// The policy of the thread a task (and a blocking task) of `path` runs on, and its name.
    async fn observed(path: &AlarmPath) -> (ThreadSchedulePolicy, String, ThreadSchedulePolicy) {
        path.handle()
            .spawn(async {
                let name = std::thread::current().name().unwrap_or("").to_owned();
                let policy = thread_schedule_policy().expect("policy read");
                let blocking = tokio::task::spawn_blocking(thread_schedule_policy)
                    .await
                    .expect("blocking task ran")
                    .expect("policy read");
                (policy, name, blocking)
            })
            .await
            .expect("task ran")
    }

    #[tokio::test]
    async fn tasks_run_on_the_alarm_paths_own_thread_in_the_class_it_reports() {
        let fifo = ThreadSchedulePolicy::Realtime(RealtimeThreadSchedulePolicy::Fifo);
        let other = ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Other);

        let path = AlarmPath::start(1).expect("started");
        let (policy, name, blocking) = observed(&path).await;
        assert_eq!(name, "alarm-path");
        // Root (as in CI) gets the real-time class; elsewhere it is refused, with a reason.
        match path.scheduling() {
            Scheduling::Realtime(1) => {
                assert_eq!(policy, fifo);
                assert_eq!(blocking, fifo, "its blocking threads inherit the class");
            }
            Scheduling::Normal(Some(why)) => {
                assert!(why.contains("SCHED_FIFO 1 refused"), "{why}");
                assert_eq!(policy, other);
            }
            s => panic!("unexpected {s:?}"),
        }
        assert_eq!(
            thread_schedule_policy().expect("policy read"),
            other,
            "the caller's thread is left as it was"
        );
        let handle = path.handle().clone();
        tokio::task::spawn_blocking(move || path.join())
            .await
            .expect("joined");
        assert!(
            handle.spawn(async {}).await.is_err(),
            "nothing runs once it is stopped"
        );

        let ordinary = AlarmPath::start(0).expect("started");
        assert_eq!(ordinary.scheduling(), &Scheduling::Normal(None));
        assert_eq!(observed(&ordinary).await.0, other);
    }

    /// Starts an alarm path at priority 1 and says how it is scheduled, and its thread's policy.
    fn start_and_observe() -> (Scheduling, ThreadSchedulePolicy) {
        let path = AlarmPath::start(1).expect("started");
        let (tx, rx) = std::sync::mpsc::channel();
        path.handle().spawn(async move {
            let _ = tx.send(thread_schedule_policy().expect("policy read"));
        });
        let policy = rx.recv().expect("task ran");
        (path.scheduling().clone(), policy)
    }

    /// What a deployment without the permission sees.
    fn assert_refused((scheduling, policy): (Scheduling, ThreadSchedulePolicy)) {
        match scheduling {
            Scheduling::Normal(Some(why)) => assert!(
                why.contains("SCHED_FIFO 1 refused") && why.contains("not permitted"),
                "{why}"
            ),
            s => panic!("expected a refusal, got {s:?}"),
        }
        assert_eq!(
            policy,
            ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Other)
        );
    }

    #[test]
    fn without_the_permission_it_runs_in_the_ordinary_class_and_says_why() {
        let here = start_and_observe();
        if !matches!(here.0, Scheduling::Realtime(_)) {
            // Not privileged here: this is the deployment without the permission.
            assert_refused(here);
            return;
        }
        // Privileged (root, as in CI): the same in a child of this test binary as `nobody`,
        // with no real-time priority allowed (RLIMIT_RTPRIO 0) and so no capability.
        let exe = std::env::current_exe().expect("test binary");
        let out = std::process::Command::new("sh")
            .args([
                "-c",
                r#"ulimit -r 0 && exec setpriv --reuid=65534 --regid=65534 --clear-groups "$@""#,
                "sh",
            ])
            .arg(exe)
            .args([
                "--exact",
                "alarm_path::tests::refused_in_this_process",
                "--ignored",
            ])
            .output()
            .expect("sh and setpriv (util-linux) run");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("1 passed"),
            "{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    #[test]
    #[ignore = "a helper: run by the test above as a user without the permission"]
    fn refused_in_this_process() {
        assert_refused(start_and_observe());
    }
}
