//! Timers as explicit events: delayed work, idle-worker culling,
//! worker-creation retries, maydays, CPU-set polls, orphan finalization.
//!
//! The engine never sleeps to wait for time. It arms an event (a closure)
//! with a deadline on the platform clock; something then *delivers* due
//! events: the system's timer thread on the production platform, or the
//! embedder through [`crate::System::run_due_timers`] (a model checker
//! firing a timer at the point it wants to explore, a simulator advancing
//! virtual time). The service knows nothing of what its events do, so it
//! sits below every module that arms one.

use crate::platform::{contain, Condvar, Mutex, Platform};
use core::time::Duration;
use std::collections::BTreeMap;

/// The deadline `delay` after `now`, saturating at `Duration::MAX` (which
/// then means "never"): every timer deadline in the engine is computed
/// here, so no user-supplied delay or interval can overflow.
pub(crate) fn deadline_after(now: Duration, delay: Duration) -> Duration {
    now.saturating_add(delay)
}

/// Something to do at a deadline: engine code. An event that may drop a
/// work item's last reference (user code: the captured state's `Drop`)
/// contains that drop itself; any other panic in an event is an engine bug
/// and reaches [`Platform::engine_thread_panicked`] (see [`fire_all`]).
/// Events dropped unfired, at [`TimerService::stop`], are dropped
/// contained.
pub(crate) type TimerEvent = Box<dyn FnOnce() + Send>;

/// Armed events. T: the timer lock (taken after pool locks, never before;
/// nothing else is locked under it).
struct Timers {
    /// Events by (deadline, id): ordered, so due events pop in order.
    queue: BTreeMap<(Duration, u64), TimerEvent>,
    /// Next timer id.
    next_id: u64,
    /// The service is stopped: events are dropped, not armed.
    stopping: bool,
}

/// The timer service of a system.
pub(crate) struct TimerService<P: Platform> {
    timers: Mutex<P, Timers>,
    /// Wakes the timer thread when an earlier deadline arrives or on stop.
    changed: Condvar<P>,
}

/// What the timer thread should do next ([`TimerService::wait_step`]).
pub(crate) enum Due {
    /// Fire these events (outside the timer lock).
    Fire(Vec<TimerEvent>),
    /// The service stopped.
    Stopped,
}

impl<P: Platform> TimerService<P> {
    pub(crate) fn new() -> Self {
        TimerService {
            timers: Mutex::new(Timers { queue: BTreeMap::new(), next_id: 1, stopping: false }),
            changed: Condvar::new(),
        }
    }

    /// A fresh timer id.
    pub(crate) fn reserve_id(&self) -> u64 {
        let mut timers = self.timers.lock();
        let id = timers.next_id;
        timers.next_id += 1;
        id
    }

    /// Arms `event` at `deadline` under `id`.
    pub(crate) fn arm(&self, deadline: Duration, id: u64, event: TimerEvent) {
        let mut timers = self.timers.lock();
        if timers.stopping {
            return;
        }
        timers.queue.insert((deadline, id), event);
        if timers.queue.first_key_value().is_some_and(|(key, _)| *key == (deadline, id)) {
            self.changed.notify_one();
        }
    }

    /// Arms `event` at `deadline` with a fresh id.
    pub(crate) fn arm_new(&self, deadline: Duration, event: TimerEvent) {
        let id = self.reserve_id();
        self.arm(deadline, id, event);
    }

    /// Drops an armed event, if still there (best effort: a stale firing is
    /// harmless). Dropped outside the timer lock.
    pub(crate) fn cancel(&self, deadline: Duration, id: u64) {
        let removed = self.timers.lock().queue.remove(&(deadline, id));
        drop(removed);
    }

    /// Fires every event due at `now` on the calling thread, which
    /// [`Platform::engine_thread_panicked`] names `thread` if an event
    /// panics; returns how many fired.
    pub(crate) fn run_due(&self, now: Duration, thread: impl FnOnce() -> String) -> usize {
        let due = take_due(&mut self.timers.lock(), now);
        let count = due.len();
        if let Err(payload) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| fire_all(due))) {
            P::engine_thread_panicked(&thread(), payload);
        }
        count
    }

    /// The platform's clock moved (a virtual clock jumped): the timer
    /// thread re-reads it.
    pub(crate) fn clock_changed(&self) {
        let _timers = self.timers.lock();
        self.changed.notify_all();
    }

    /// The earliest armed deadline.
    pub(crate) fn next_deadline(&self) -> Option<Duration> {
        self.timers.lock().queue.first_key_value().map(|((deadline, _), _)| *deadline)
    }

    /// Stops the service and drops every armed event (outside the timer
    /// lock, each contained). Returns how many drops panicked.
    pub(crate) fn stop(&self) -> usize {
        let dropped = {
            let mut timers = self.timers.lock();
            timers.stopping = true;
            self.changed.notify_all();
            core::mem::take(&mut timers.queue)
        };
        dropped.into_values().map(|event| contain(move || drop(event)).is_some()).filter(|&panicked| panicked).count()
    }

    /// The timer thread's wait: blocks until events are due at `platform`'s
    /// clock (re-read after every wakeup), or the service stops.
    pub(crate) fn wait_step(&self, platform: &P) -> Due {
        let mut timers = self.timers.lock();
        loop {
            if timers.stopping {
                return Due::Stopped;
            }
            let now = platform.now();
            match timers.queue.first_key_value().map(|((deadline, _), _)| *deadline) {
                None => timers = self.changed.wait(timers),
                Some(deadline) if deadline > now => timers = self.changed.wait_until(platform, timers, deadline),
                Some(_) => return Due::Fire(take_due(&mut timers, now)),
            }
        }
    }
}

/// Fires `events` in order. Not contained: a panic here is an engine bug
/// (user drops are contained inside the events), so it unwinds to the
/// engine-panic path of the thread delivering the events (the timer
/// thread's, or [`TimerService::run_due`]'s).
pub(crate) fn fire_all(events: Vec<TimerEvent>) {
    for event in events {
        event();
    }
}

fn take_due(timers: &mut Timers, now: Duration) -> Vec<TimerEvent> {
    let mut due = Vec::new();
    while let Some(entry) = timers.queue.first_entry() {
        if entry.key().0 > now {
            break;
        }
        due.push(entry.remove());
    }
    due
}
