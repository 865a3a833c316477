//! Pool-workqueues: one workqueue's state on one pool (kernel
//! `pool_workqueue`): `max_active` with its FIFO inactive list, and the
//! per-colour in-flight counts that `flush_workqueue` waits on.
//!
//! The rules live in the pure machine (`machine::pwq`); this is the driver
//! side: it keeps the machine under the pool lock, moves activated items
//! onto the worklist, and reports completed flushes and emptied
//! workqueues. All of it is pool-locked: it lives in
//! [`crate::pool::PoolLocked::pwqs`].

use crate::machine::pool::WqId;
use crate::machine::pwq::{Color, Colored, Inserted};
use crate::platform::Platform;
use crate::shared::{Entry, PoolLocked, Work};

impl<P: Platform> Entry<P> {
    fn new(wq: WqId, colored: Colored<Work<P>>) -> Self {
        Entry { work: colored.item, wq, color: colored.color }
    }
}

impl<P: Platform> PoolLocked<P> {
    /// Queues `work` on `wq`'s pool-workqueue (machine rule 19):
    /// active onto the worklist, waking a worker if nobody runs, or onto
    /// the inactive list. Returns the work back if `wq` has no
    /// pool-workqueue here any more (destroyed).
    pub(crate) fn pwq_insert(&mut self, wq: WqId, work: Work<P>) -> Result<(), Work<P>> {
        let Some(pwq) = self.pwqs.get_mut(&wq) else {
            return Err(work);
        };
        let item = work.key();
        let inserted = pwq.machine.insert(work);
        let active = matches!(inserted, Inserted::Active(_));
        self.tracer.record(|pool| crate::trace::Event::Queued { item, wq, pool, active });
        if let Inserted::Active(colored) = inserted {
            self.state.worklist.push_back(Entry::new(wq, colored));
            self.kick();
        }
        Ok(())
    }

    /// An instance of `wq` with `color` left this pool (finished, or was
    /// cancelled); `active` says whether it held an active slot (machine rule 20).
    ///
    /// Items activated here wake nobody: a worker completing an item
    /// reaches them through `keep_working` (or another runner does). Other
    /// callers (cancel, the rescuer when it leaves) kick the pool.
    pub(crate) fn pwq_dec_nr_in_flight(&mut self, wq: WqId, color: Color, active: bool) {
        let Some(pwq) = self.pwqs.get_mut(&wq) else {
            debug_assert!(false, "an item left a pool-workqueue that does not exist");
            return;
        };
        let left = pwq.machine.leave(color, active);
        pwq.wq.instance_left();
        if left.flush_complete {
            pwq.wq.flush.pwq_flushed();
        }
        self.poke_trustee();
        self.pwq_activate(wq);
    }

    /// Moves inactive items to the worklist, oldest first, while the
    /// pool-workqueue is under `max_active` (machine rule 21). Wakes nobody (see
    /// `pwq_dec_nr_in_flight`); returns whether anything moved.
    pub(crate) fn pwq_activate(&mut self, wq: WqId) -> bool {
        let Some(pwq) = self.pwqs.get_mut(&wq) else { return false };
        let mut moved = false;
        while let Some(colored) = pwq.machine.activate_next() {
            self.state.worklist.push_back(Entry::new(wq, colored));
            moved = true;
        }
        moved
    }

    /// Takes `wq`'s inactive instance of item `key` off this pool, if any.
    pub(crate) fn pwq_remove_inactive(&mut self, key: usize) -> Option<Entry<P>> {
        self.pwqs.iter_mut().find_map(|(&wq, pwq)| {
            pwq.machine.remove_inactive(|work| work.key() == key).map(|colored| Entry::new(wq, colored))
        })
    }
}
