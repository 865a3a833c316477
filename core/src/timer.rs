//! Timers as explicit events: delayed work, idle-worker culling,
//! worker-creation retries and maydays.
//!
//! The engine never sleeps to wait for time. It arms a [`TimerEvent`] with
//! a deadline on the platform clock; something then *delivers* due events:
//! the timer thread on the production platform, or the embedder through
//! [`crate::System::run_due_timers`] (a model checker firing a timer at the
//! point it wants to explore, a simulator advancing virtual time).

use crate::delayed;
use crate::hotplug;
use crate::manager;
use crate::platform::{contain, Arc, Condvar, Mutex, Platform};
use crate::pool::Pool;
use crate::rescuer;
use crate::system::SystemShared;
use crate::work::Work;
use crate::workqueue::WqShared;
use core::sync::atomic::Ordering;
use core::time::Duration;
use std::collections::BTreeMap;

/// The deadline `delay` after `now`, saturating at `Duration::MAX` (which
/// then means "never"): every timer deadline in the engine is computed
/// here, so no user-supplied delay or interval can overflow.
pub(crate) fn deadline_after(now: Duration, delay: Duration) -> Duration {
    now.saturating_add(delay)
}

/// Something to do at a deadline.
pub(crate) enum TimerEvent<P: Platform> {
    /// Queue a delayed item (ignored if `timer` is stale).
    Delayed {
        /// The item.
        work: Work<P>,
        /// The id it was armed with.
        timer: u64,
    },
    /// Retire idle workers beyond the policy.
    IdleCull(Arc<Pool<P>>),
    /// Retry creating a worker after a failed spawn.
    CreateRetry(Arc<Pool<P>>),
    /// Call the rescuers if the pool still cannot get a worker.
    Mayday(Arc<Pool<P>>),
    /// Compare the process's CPU set with the online CPUs.
    CpuSetPoll(Arc<SystemShared<P>>, Vec<Arc<Pool<P>>>),
    /// Finalize an orphaned workqueue if it is empty.
    FinalizeOrphan(Arc<WqShared<P>>),
}

impl<P: Platform> TimerEvent<P> {
    /// Carries the event out. A delayed item's event may hold the item's
    /// last reference, whose captured state's `Drop` is user code: a panic
    /// from it is caught and counted ([`crate::System::stray_panics`]).
    fn fire(self, shared: &SystemShared<P>) {
        if contain(move || self.fire_uncontained()).is_some() {
            shared.stray_panics.fetch_add(1, Ordering::AcqRel);
        }
    }

    fn fire_uncontained(self) {
        match self {
            TimerEvent::Delayed { work, timer } => delayed::timer_fired(work, timer),
            TimerEvent::IdleCull(pool) => manager::idle_cull(&pool),
            TimerEvent::CreateRetry(pool) => manager::create_retry(&pool),
            TimerEvent::Mayday(pool) => rescuer::mayday_timeout(&pool),
            TimerEvent::CpuSetPoll(shared, pools) => hotplug::cpu_set_poll(&shared, &pools),
            TimerEvent::FinalizeOrphan(wq) => wq.finalize_orphan(),
        }
    }
}

/// Armed events. T: the timer lock (taken after pool locks, never before;
/// nothing else is locked under it).
struct Timers<P: Platform> {
    /// Events by (deadline, id): ordered, so due events pop in order.
    queue: BTreeMap<(Duration, u64), TimerEvent<P>>,
    /// Next timer id.
    next_id: u64,
    /// The timer thread must exit.
    stopping: bool,
}

/// The timer service of a system.
pub(crate) struct TimerService<P: Platform> {
    timers: Mutex<P, Timers<P>>,
    /// Wakes the timer thread when an earlier deadline arrives or on stop.
    changed: Condvar<P>,
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
    pub(crate) fn arm(&self, deadline: Duration, id: u64, event: TimerEvent<P>) {
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
    pub(crate) fn arm_new(&self, deadline: Duration, event: TimerEvent<P>) {
        let id = self.reserve_id();
        self.arm(deadline, id, event);
    }

    /// Drops an armed event, if still there (best effort: a stale firing is
    /// harmless).
    pub(crate) fn cancel(&self, deadline: Duration, id: u64) {
        let removed = self.timers.lock().queue.remove(&(deadline, id));
        drop(removed);
    }

    /// Removes and returns the events due at `now`.
    fn take_due(&self, now: Duration) -> Vec<TimerEvent<P>> {
        let mut timers = self.timers.lock();
        take_due_locked(&mut timers, now)
    }

    /// Fires every event due at `now`; returns how many fired.
    pub(crate) fn run_due(&self, shared: &SystemShared<P>, now: Duration) -> usize {
        let due = self.take_due(now);
        let count = due.len();
        for event in due {
            event.fire(shared);
        }
        count
    }

    /// The earliest armed deadline.
    pub(crate) fn next_deadline(&self) -> Option<Duration> {
        self.timers.lock().queue.first_key_value().map(|((deadline, _), _)| *deadline)
    }

    /// Stops the service and drops every armed event (outside the timer
    /// lock, each contained: an event may hold an item's last reference).
    pub(crate) fn stop(&self, shared: &SystemShared<P>) {
        let dropped = {
            let mut timers = self.timers.lock();
            timers.stopping = true;
            self.changed.notify_all();
            core::mem::take(&mut timers.queue)
        };
        for (_, event) in dropped {
            if contain(move || drop(event)).is_some() {
                shared.stray_panics.fetch_add(1, Ordering::AcqRel);
            }
        }
    }
}

fn take_due_locked<P: Platform>(timers: &mut Timers<P>, now: Duration) -> Vec<TimerEvent<P>> {
    let mut due = Vec::new();
    while let Some(entry) = timers.queue.first_entry() {
        if entry.key().0 > now {
            break;
        }
        due.push(entry.remove());
    }
    due
}

/// Body of the timer thread: deliver due events until stopped.
pub(crate) fn timer_thread<P: Platform>(shared: Arc<SystemShared<P>>) {
    P::set_thread_context(Some(Arc::new(crate::blocking::EngineThread::of(&shared))));
    let service = &shared.timers;
    let mut timers = service.timers.lock();
    loop {
        if timers.stopping {
            return;
        }
        let now = shared.platform.now();
        let next = timers.queue.first_key_value().map(|((deadline, _), _)| *deadline);
        match next {
            None => timers = service.changed.wait(timers),
            Some(deadline) if deadline > now => {
                timers = service.changed.wait_timeout(timers, deadline.saturating_sub(now))
            }
            Some(_) => {
                let due = take_due_locked(&mut timers, now);
                drop(timers);
                for event in due {
                    event.fire(&shared);
                }
                timers = service.timers.lock();
            }
        }
    }
}
