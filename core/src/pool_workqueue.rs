//! Pool-workqueues: one workqueue's state on one pool (kernel
//! `pool_workqueue`): `max_active` with its FIFO inactive list, and the
//! per-colour in-flight counts that `flush_workqueue` waits on.
//!
//! All of it is pool-locked: it lives in [`crate::pool::PoolLocked::pwqs`].

use crate::platform::{Arc, Platform};
use crate::pool::PoolLocked;
use crate::seeded::{seeded, SeededBug};
use crate::work::Work;
use crate::workqueue::{WqId, WqShared};
use std::collections::VecDeque;

/// Number of flush colours (kernel `WORK_NR_COLORS`). At most
/// `NR_COLORS - 1` flushes can be in progress at once, so that the colour
/// new items get is never one still being flushed.
pub(crate) const NR_COLORS: usize = 16;

/// A queued instance of a work item.
pub(crate) struct Entry<P: Platform> {
    /// The item.
    pub(crate) work: Work<P>,
    /// The workqueue it was queued on.
    pub(crate) wq: WqId,
    /// The flush colour it was queued with.
    pub(crate) color: u8,
}

/// One workqueue's state on one pool. L: pool lock.
pub(crate) struct PwqState<P: Platform> {
    /// I: the workqueue.
    pub(crate) wq: Arc<WqShared<P>>,
    /// How many of this workqueue's items may be active on this pool.
    pub(crate) max_active: usize,
    /// Items on the worklist, a worker's scheduled list, or running.
    pub(crate) nr_active: usize,
    /// Items waiting for `nr_active < max_active`, FIFO.
    pub(crate) inactive: VecDeque<Entry<P>>,
    /// Colour given to newly queued items.
    pub(crate) work_color: u8,
    /// Colour being flushed on this pool, if this pool still has items of it.
    pub(crate) flush_color: Option<u8>,
    /// Queued or running items per colour (active and inactive alike).
    pub(crate) nr_in_flight: [usize; NR_COLORS],
}

impl<P: Platform> PwqState<P> {
    pub(crate) fn new(wq: Arc<WqShared<P>>, max_active: usize, work_color: u8) -> Self {
        PwqState {
            wq,
            max_active,
            nr_active: 0,
            inactive: VecDeque::new(),
            work_color,
            flush_color: None,
            nr_in_flight: [0; NR_COLORS],
        }
    }

    /// Nothing queued, inactive or running on this pool.
    pub(crate) fn is_empty(&self) -> bool {
        // Every queued, inactive or running instance is in flight, so the
        // colour counts alone decide; the rest must agree.
        let empty = self.nr_in_flight.iter().all(|&n| n == 0);
        debug_assert!(
            !empty || (self.nr_active == 0 && self.inactive.is_empty()),
            "pool-workqueue has active or inactive items but none in flight"
        );
        empty
    }
}

impl<P: Platform> PoolLocked<P> {
    /// Queues `work` on `wq`'s pool-workqueue: active (onto the worklist,
    /// waking a worker if nobody runs) if under `max_active`, else at the
    /// tail of the inactive list. Returns the work back if `wq` has no
    /// pool-workqueue here any more (destroyed).
    pub(crate) fn pwq_insert(&mut self, wq: WqId, work: Work<P>) -> Result<(), Work<P>> {
        let Some(pwq) = self.pwqs.get_mut(&wq) else {
            return Err(work);
        };
        let color = pwq.work_color;
        pwq.nr_in_flight[usize::from(color)] += 1;
        let entry = Entry { work, wq, color };
        if pwq.nr_active < pwq.max_active {
            pwq.nr_active += 1;
            self.worklist.push_back(entry);
            self.kick();
        } else {
            pwq.inactive.push_back(entry);
        }
        Ok(())
    }

    /// An instance of `wq` with `color` left this pool (finished, or was
    /// cancelled). `active` says whether it counted in `nr_active`: an
    /// inactive item leaving must not free an active slot (the kernel had
    /// exactly that bug until 2010).
    ///
    /// Items activated here wake nobody: a worker completing an item
    /// reaches them through `keep_working` (or another runner does). Other
    /// callers (cancel, the rescuer when it leaves) kick the pool.
    pub(crate) fn pwq_dec_nr_in_flight(&mut self, wq: WqId, color: u8, active: bool) {
        let Some(pwq) = self.pwqs.get_mut(&wq) else {
            debug_assert!(false, "an item left a pool-workqueue that does not exist");
            return;
        };
        if active {
            debug_assert!(pwq.nr_active > 0, "nr_active underflow");
            pwq.nr_active -= 1;
        }
        let slot = &mut pwq.nr_in_flight[usize::from(color)];
        debug_assert!(*slot > 0, "nr_in_flight underflow for colour {color}");
        *slot -= 1;
        pwq.wq.instance_left();
        let skip = seeded(&pwq.wq.system.config, SeededBug::SkipFlushColorDecrement);
        if pwq.flush_color == Some(color) && *slot == 0 && !skip {
            pwq.flush_color = None;
            pwq.wq.flush.pwq_flushed();
        }
        self.poke_trustee();
        if active {
            self.pwq_activate(wq);
        }
    }

    /// Moves inactive items to the worklist, oldest first, while the
    /// pool-workqueue is under `max_active`. Wakes nobody (see
    /// `pwq_dec_nr_in_flight`); returns whether anything moved.
    pub(crate) fn pwq_activate(&mut self, wq: WqId) -> bool {
        let Some(pwq) = self.pwqs.get_mut(&wq) else {
            return false;
        };
        let mut moved = false;
        let lifo = seeded(&pwq.wq.system.config, SeededBug::LifoActivation);
        while pwq.nr_active < pwq.max_active {
            let next = if lifo { pwq.inactive.pop_back() } else { pwq.inactive.pop_front() };
            let Some(entry) = next else { break };
            pwq.nr_active += 1;
            self.worklist.push_back(entry);
            moved = true;
        }
        moved
    }
}
