//! The turns: one thread's sections at a time, as the engine runs them.

use super::*;

impl PlainSystem {
    /// Queueing (QU1-QU5) by a caller outside the workqueue, or (`chained`)
    /// by one of its own items. `Ok(false)`: the item was pending already.
    pub fn queue(&mut self, item: usize, target: Target, chained: bool) -> Result<bool, Refusal> {
        let wq = self.topo.items[item];
        accepts(self.dying[wq], false, || chained)?;
        let Some(last) = self.items[item].try_claim() else { return Ok(false) };
        let (cpus, unbound) = (self.topo.cpus, self.topo.wqs[wq].unbound);
        let pool_of = |index: usize| if unbound { cpus } else { index };
        let index_of = |p: usize| if unbound { (p == cpus).then_some(0) } else { (p < cpus).then_some(p) };
        let placement = Placement { unbound, cpus, bugs: self.bugs };
        let index = placement.place(
            target,
            |c| !self.pools[c].pool().disassociated(),
            // One thread at a time: the loads read are exact, not hints.
            |c| load(self.pools[c].pool().counts()),
            last.and_then(index_of),
            |i| self.pools[pool_of(i)].runs_for(item, wq),
        );
        let pool = pool_of(index);
        self.mark(pool, StepId::Queue);
        let mut fx = Vec::new();
        let inserted = queue_insert(&mut self.pools[pool], &mut self.items[item], wq, item, pool, &mut fx);
        self.effects(pool, fx);
        match inserted {
            Ok((_, active)) => {
                self.events.push(Event::Queued { item, wq, pool, active });
                Ok(true)
            }
            Err(_) => {
                let _ = self.items[item].release();
                Err(Refusal::Destroyed)
            }
        }
    }

    /// `cancel`: takes a queued instance off its pool and gives PENDING
    /// back. Whether it was pending; `None` if someone else owns PENDING
    /// now (a `cancel_sync`, or, with the seeded bug `ClearPendingAfterRun`,
    /// a worker between its sections): the engine waits and grabs again.
    pub fn cancel(&mut self, item: usize) -> Option<bool> {
        let was_pending = self.grab(item, false)?;
        let _ = self.items[item].release();
        Some(was_pending)
    }

    /// `cancel_sync` up to its wait: PENDING taken for good, then a waiter
    /// until no instance runs ([`PlainSystem::waiter_wakes`] releases it).
    /// `None` if someone else owns PENDING now (as for `cancel`): wait,
    /// then call again.
    pub fn cancel_sync(&mut self, item: usize) -> Option<bool> {
        let was_pending = self.grab(item, true)?;
        if self.items[item].cancel_sync_may_return(self.bug(SeededBug::CancelSyncSkipsWait)) {
            let _ = self.items[item].release();
        } else {
            self.waiters.push(Waiter::CancelSync { item });
        }
        Some(was_pending)
    }

    /// Rule M28, then for a queued item the pool's step (PS3).
    fn grab(&mut self, item: usize, cancelling: bool) -> Option<bool> {
        match self.items[item].grab(cancelling) {
            Grab::Owned { was_pending, .. } => Some(was_pending),
            Grab::Queued(pool) => {
                self.mark(pool, StepId::Cancel);
                let mut fx = Vec::new();
                let (section, state) = (&mut self.pools[pool], &mut self.items[item]);
                let grabbed = cancel_grab_queued(section, state, item, cancelling, |&p| p == pool, &mut fx);
                debug_assert!(grabbed, "turns are atomic: a queued item cannot move meanwhile");
                self.effects(pool, fx);
                self.events.push(Event::Cancelled { item, pool });
                Some(true)
            }
            // Busy is a queuer or timer between sections: turns are atomic.
            Grab::Busy | Grab::Cancelling => None,
        }
    }

    /// `flush_work`: a waiter for the last instance queued (or the running
    /// one), if there is one.
    pub fn flush_work(&mut self, item: usize) {
        if let Some(instance) = self.items[item].flush_target(self.bug(SeededBug::FlushWorkIgnoresRunning)) {
            self.waiters.push(Waiter::Flush { item, instance });
        }
    }

    /// `flush_workqueue`: FW1-FW3, then a waiter (FW5 is a section of its own).
    /// `None` if every flush colour is taken (wait for the oldest flush).
    pub fn flush_wq(&mut self, wq: WqId) -> Option<()> {
        let ticket = self.flush_begin(wq)?;
        self.waiters.push(Waiter::FlushWq { wq, ticket });
        Some(())
    }

    /// Destroy: DS1 (the user's queueing is refused), then the drain's first
    /// flush (DR3) and a waiter.
    pub fn destroy(&mut self, wq: WqId) -> Option<()> {
        self.dying[wq] = true;
        let ticket = self.flush_begin(wq)?;
        self.waiters.push(Waiter::Destroy { wq, ticket });
        Some(())
    }

    fn flush_begin(&mut self, wq: WqId) -> Option<u64> {
        let (tickets, signal) = &mut self.flush[wq];
        let locks = Locks { pools: RefCell::new(&mut self.pools), signal: RefCell::new(signal) };
        flush_begin(tickets, wq, &locks).ok()
    }

    /// FW6 for workqueue `wq`'s head `ticket` if it is complete and not
    /// yet driven (what its flusher does first when it wakes). True if it
    /// ran.
    pub fn drive_flush(&mut self, wq: WqId, ticket: u64) -> bool {
        if self.flush[wq].1.poll(ticket) != FlushWait::Drive {
            return false;
        }
        let (tickets, signal) = &mut self.flush[wq];
        let locks = Locks { pools: RefCell::new(&mut self.pools), signal: RefCell::new(signal) };
        flush_heads_done(tickets, ticket, wq, &locks);
        true
    }

    /// Waiter `n` (when [`PlainSystem::waiter_ready`]) runs: FW6 if its
    /// flush is the complete head; the drain checks every pool (DR4) and
    /// takes the pool-workqueues away (DS2), or flushes again. True if the
    /// caller returned (the waiter is gone); false, changing nothing, if
    /// it is not ready.
    pub fn waiter_wakes(&mut self, n: usize) -> bool {
        if !self.waiter_ready(n) {
            return false;
        }
        match self.waiters[n] {
            Waiter::FlushWq { wq, ticket } | Waiter::Destroy { wq, ticket } => {
                self.drive_flush(wq, ticket);
                if let Waiter::Destroy { .. } = self.waiters[n] {
                    if !self.pools.iter().all(|p| p.pwq_is_empty(wq)) {
                        // Every colour taken by the user's flushes: wake
                        // it again once one of them is done.
                        if let Some(ticket) = self.flush_begin(wq) {
                            self.waiters[n] = Waiter::Destroy { wq, ticket };
                        }
                        return false;
                    }
                    self.pools.iter_mut().for_each(|p| drop(p.remove_pwq_if_empty(wq)));
                }
            }
            Waiter::CancelSync { item } => drop(self.items[item].release()),
            Waiter::Flush { .. } => {}
        }
        self.waiters.remove(n);
        true
    }

    /// A woken idle worker's turn (WP1); `now` for the idle list.
    pub fn wake(&mut self, pool: usize, id: WorkerId, now: Duration) {
        if !self.pools[pool].pool().idle().contains(&id) || !self.pools[pool].take_wakeup(id) {
            return;
        }
        self.pass(pool, id, now);
    }

    /// A new worker's first pass (WP1 without a wakeup, as its thread
    /// starts), unless it already left the idle list.
    pub fn first_pass(&mut self, pool: usize, id: WorkerId, now: Duration) {
        if self.fresh.remove(&(pool, id)) && self.pools[pool].pool().idle().contains(&id) {
            self.pass(pool, id, now);
        }
    }

    fn pass(&mut self, pool: usize, id: WorkerId, now: Duration) {
        self.mark(pool, StepId::Woken);
        let mut fx = Vec::new();
        let pass = self.pools[pool].worker_woken(id, || now, &mut fx);
        self.carry_out(pool, id, pass, fx, now);
    }

    /// The spawn of the worker `new` returned (`ok`: it started): CR2, then
    /// the manager's WP2 (or, for a create-retry, the role given back).
    pub fn spawned(&mut self, pool: usize, new: WorkerId, manager: Option<WorkerId>, ok: bool, now: Duration) {
        self.mark(pool, if manager.is_some() { StepId::Managed } else { StepId::RetryCreated });
        let mut fx = Vec::new();
        let created = self.pools[pool].create_end(new, ok, now, &mut fx);
        self.events.push(match created {
            true => Event::Created { pool, worker: new },
            false => Event::CreateFailed { pool, manager: manager.is_some(), at_limit: false },
        });
        if created {
            self.order[pool].push(new);
            self.fresh.insert((pool, new));
            self.notices.push(Notice::FirstPass { pool, id: new });
        }
        match manager {
            Some(id) => {
                self.managing[pool] = None;
                let pass = self.pools[pool].worker_managed(id, created, || now, &mut fx);
                self.carry_out(pool, id, pass, fx, now);
            }
            None => {
                self.pools[pool].create_retry_done(created, &mut fx);
                self.effects(pool, fx);
            }
        }
    }

    /// A retired worker's thread leaves the pool (told to exit, rule M4).
    pub fn exit(&mut self, pool: usize, id: WorkerId) {
        if self.pools[pool].pool().worker(id).is_some_and(|w| w.die()) && !self.running.contains_key(&(pool, id)) {
            self.pools[pool].worker_exit(id);
        }
    }

    /// The create-retry timer fired (TM1): a creation as manager, if needed.
    pub fn create_retry(&mut self, pool: usize, now: Duration) {
        if self.pools[pool].create_retry_fired() {
            self.create(pool, None, now);
        }
    }

    /// The running item of executor `id` enters a blocking section (PS7).
    /// True if the section counts: call [`PlainSystem::unblock`] when it
    /// ends. False inside another section that counts (nested: nothing to
    /// end) or for an executor that runs nothing.
    pub fn block(&mut self, pool: usize, id: WorkerId) -> bool {
        if !self.running.contains_key(&(pool, id)) {
            return false;
        }
        self.mark(pool, StepId::Block);
        let counts = self.step(pool, |section, fx| section.worker_blocked(id, fx));
        if counts {
            self.events.push(Event::Blocked { pool, worker: id });
        }
        counts
    }

    /// The blocking section that counted ends (PS8); nothing if the
    /// executor is not in one.
    pub fn unblock(&mut self, pool: usize, id: WorkerId) {
        if !self.pools[pool].pool().worker(id).is_some_and(|w| w.sleeping()) {
            return;
        }
        self.mark(pool, StepId::Unblock);
        self.pools[pool].worker_unblocked(id);
        self.events.push(Event::Unblocked { pool, worker: id });
    }

    /// The blocking monitor's report on worker `id` of `pool`, under the
    /// pool lock: seen asleep (PS9, `asleep`) or running (PS10) in run
    /// `run`, which the monitor read earlier, without the lock
    /// (`WorkerState::run`), so it may be out of date. True if the machine
    /// took it (the worker counted out, or in again); a wakeup it sends
    /// comes back as a notice.
    pub fn seen(&mut self, pool: usize, id: WorkerId, run: u64, asleep: bool) -> bool {
        self.mark(pool, StepId::Monitor);
        let took = if asleep {
            self.step(pool, |section, fx| section.worker_seen_asleep(id, run, fx))
        } else {
            self.pools[pool].worker_seen_running(id, run)
        };
        if took {
            self.events.push(match asleep {
                true => Event::SeenAsleep { pool, worker: id },
                false => Event::SeenRunning { pool, worker: id },
            });
        }
        took
    }

    /// The monitor's report that worker `id` of `pool` hogged the CPU in
    /// run `run` (PS11, under the pool lock; the run read earlier, as for
    /// [`PlainSystem::seen`]). True if the machine marked it CPU-intensive
    /// (counted out until its item ends); a wakeup it sends comes back as a
    /// notice.
    pub fn seen_hogging(&mut self, pool: usize, id: WorkerId, run: u64) -> bool {
        self.mark(pool, StepId::Monitor);
        let took = self.step(pool, |section, fx| section.worker_seen_hogging(id, run, fx)).is_some();
        if took {
            self.events.push(Event::SeenHogging { pool, worker: id });
        }
        took
    }

    /// The function executor `id` runs returned: the item's section, then
    /// the pool's (WP4; for a rescuer PS5 and RT2).
    pub fn finish(&mut self, pool: usize, id: WorkerId, now: Duration) {
        let Some(PlainEntry { item, wq, color }) = self.running.remove(&(pool, id)) else { return };
        let late_clear = self.bug(SeededBug::ClearPendingAfterRun);
        let _ = self.items[item].finish(late_clear);
        let rescuer = self.rescuers.iter().position(|r| r.is_some_and(|r| r.id == Some(id) && r.pool == pool));
        self.mark(pool, if rescuer.is_some() { StepId::RescuerFinished } else { StepId::Finished });
        self.events.push(Event::Finished { pool, worker: id, item });
        if let Some(rescuer) = rescuer {
            self.step(pool, |section, fx| section.end(id, item, wq, color, fx));
            return self.rescue_next(rescuer);
        }
        let mut fx = Vec::new();
        let pass = self.pools[pool].worker_finished(id, item, wq, color, || now, &mut fx);
        self.carry_out(pool, id, pass, fx, now);
    }

    /// `pool`'s mayday timer fired (TM2): its rescuers are called.
    pub fn mayday_timer(&mut self, pool: usize) {
        self.mark(pool, StepId::MaydayTimer);
        self.step(pool, |section, fx| section.mayday_fired(fx));
    }

    /// `pool`'s idle-cull timer fired (TM3) at `now`, idle timeout `timeout`.
    pub fn idle_cull(&mut self, pool: usize, now: Duration, timeout: Duration) -> Option<Duration> {
        self.mark(pool, StepId::IdleCull);
        self.step(pool, |section, fx| section.idle_cull_fired(now, timeout, fx))
    }

    /// The trustee of `pool` looks (HP2); it leaves once done.
    pub fn trustee_check(&mut self, pool: usize) {
        self.mark(pool, StepId::Trustee);
        self.trustee[pool] = !self.step(pool, |section, fx| section.trustee_check(fx));
    }

    /// `cpu_down(cpu)` (HP1, the trustee installed) or `cpu_up(cpu)` (HP3,
    /// the trustee released). False, changing nothing, where the engine
    /// refuses: no such CPU, already in that state, or the last online CPU.
    pub fn hotplug(&mut self, cpu: usize, down: bool) -> bool {
        let offline = |c: usize| self.pools[c].pool().disassociated();
        let online = (0..self.topo.cpus).filter(|&c| !offline(c)).count();
        if cpu >= self.topo.cpus || offline(cpu) == down || (down && online == 1) {
            return false;
        }
        self.trustee[cpu] = down;
        if down {
            self.mark(cpu, StepId::CpuDown);
            self.events.push(Event::CpuDown { cpu });
            self.step(cpu, |section, fx| section.cpu_down(fx));
        } else {
            self.mark(cpu, StepId::CpuUp);
            self.events.push(Event::CpuUp { cpu });
            self.step(cpu, |section, fx| section.cpu_up(fx));
        }
        true
    }

    /// `wq`'s rescuer takes the next pool off its list (rule M17).
    pub fn rescuer_pop(&mut self, wq: WqId) {
        if self.rescuers[wq].is_some() {
            return;
        }
        if let RescuerStep::Rescue(pool) = self.maydays[wq].next_step() {
            self.rescuers[wq] = Some(Rescuing { pool, id: None, taken: 0 });
            self.events.push(Event::RescuerPop { wq, pool });
        }
    }

    /// The rescuer attaches to the pool it took (RT1) and rescues (RT2).
    pub fn rescuer_attach(&mut self, wq: WqId, now: Duration) {
        let Some(Rescuing { pool, id: None, .. }) = self.rescuers[wq] else { return };
        self.mark(pool, StepId::RescuerAttach);
        let id = self.pools[pool].rescuer_attach(now);
        self.rescuers[wq] = Some(Rescuing { pool, id: Some(id), taken: 0 });
        self.events.push(Event::RescuerAttach { wq, pool, worker: id });
        self.rescue_next(wq);
    }

    /// RT2 (one item, or RT3: it leaves).
    fn rescue_next(&mut self, wq: WqId) {
        let Some(Rescuing { pool, id: Some(id), mut taken }) = self.rescuers[wq] else { return };
        let batch = self.topo.rescuer_batch;
        let next = self.step(pool, |section, fx| section.rescuer_next(id, wq, &mut taken, batch, fx));
        match next {
            Rescue::Run { entry, scheduled } => {
                self.rescuers[wq] = Some(Rescuing { pool, id: Some(id), taken });
                self.run(pool, id, entry, scheduled);
            }
            Rescue::Detached => {
                self.rescuers[wq] = None;
                self.events.push(Event::RescuerDetach { wq, pool });
                if !self.maydays[wq].is_empty() {
                    self.notices.push(Notice::Rescuer { wq });
                }
            }
        }
    }

    /// What a worker's pass ended in, as `worker.rs` carries it out.
    fn carry_out(&mut self, pool: usize, id: WorkerId, pass: Pass<PlainEntry>, fx: Vec<Effect>, now: Duration) {
        self.effects(pool, fx);
        match pass {
            Pass::Run { entry, scheduled } => self.run(pool, id, entry, scheduled),
            Pass::Manage => self.create(pool, Some(id), now),
            // A wakeup that came during the pass: the idle loop takes it
            // at once (another WP1).
            Pass::Idle if self.pools[pool].pool().worker(id).is_some_and(|w| w.woken()) => {
                self.notices.push(Notice::Wake { pool, id });
            }
            Pass::Idle => {}
            Pass::Exit => self.pools[pool].worker_exit(id),
        }
    }

    /// CR1 by a manager (or a create-retry): at the limit CR3 (and the
    /// manager's WP2) at once; else the spawn is the runtime's.
    fn create(&mut self, pool: usize, manager: Option<WorkerId>, now: Duration) {
        match self.pools[pool].create_begin(self.topo.max_workers, now) {
            Creating::Spawn(new) => {
                if let Some(worker) = manager {
                    self.managing[pool] = Some((worker, new));
                    self.events.push(Event::Manage { pool, worker });
                }
                self.notices.push(Notice::Spawn { pool, new, manager });
            }
            Creating::AtLimit => {
                let Some(id) = manager else {
                    return self.step(pool, |section, fx| section.create_retry_done(false, fx));
                };
                let mut fx = Vec::new();
                self.events.push(Event::CreateFailed { pool, manager: true, at_limit: true });
                self.pools[pool].create_at_limit(&mut fx);
                let pass = self.pools[pool].worker_managed(id, false, || now, &mut fx);
                self.carry_out(pool, id, pass, fx, now);
            }
        }
    }

    /// Runs a step on `pool`'s section and carries out its effects (the
    /// engine's `PoolLocked::step`).
    fn step<R>(&mut self, pool: usize, step: impl FnOnce(&mut PoolSection<PlainEntry>, &mut Vec<Effect>) -> R) -> R {
        let mut fx = Vec::new();
        let result = step(&mut self.pools[pool], &mut fx);
        self.effects(pool, fx);
        result
    }

    /// A section of `pool` running `step` begins (a trace marker).
    fn mark(&mut self, pool: usize, step: StepId) {
        self.events.push(Event::Step { pool, step });
    }

    /// The item's own section before its function runs.
    fn run(&mut self, pool: usize, id: WorkerId, entry: PlainEntry, scheduled: bool) {
        let late_clear = self.bug(SeededBug::ClearPendingAfterRun);
        self.items[entry.item].start(late_clear);
        self.running.insert((pool, id), entry);
        self.events.push(Event::Started { pool, worker: id, item: entry.item, scheduled });
        self.notices.push(Notice::Runs { pool, id, entry });
    }

    /// Carries out a pool step's effects as `pool_workqueue.rs` does; what
    /// needs a runtime becomes a notice.
    fn effects(&mut self, pool: usize, fx: Vec<Effect>) {
        for effect in fx {
            match effect {
                Effect::Wake(id) => self.notices.push(Notice::Wake { pool, id }),
                Effect::ArmIdleTimer => self.notices.push(Notice::ArmIdle { pool }),
                Effect::ArmCreateRetry => self.notices.push(Notice::ArmRetry { pool }),
                Effect::ArmMayday { first } => self.notices.push(Notice::ArmMayday { pool, first }),
                Effect::Mayday(wq) | Effect::MaydayAgain(wq) => {
                    if self.maydays[wq].send(pool, |&p| p == pool) {
                        self.events.push(Event::Maydays { pool, sent: vec![wq] });
                        self.notices.push(Notice::Rescuer { wq });
                    }
                }
                Effect::FlushColorDone(wq) => drop(self.flush[wq].1.pwq_flushed()),
                Effect::Retire(worker) => {
                    self.events.push(Event::Retired { pool, worker });
                    self.notices.push(Notice::Exit { pool, id: worker });
                }
                Effect::Deferred { worker, item } => self.events.push(Event::Deferred { pool, worker, item }),
                Effect::InstanceLeft(_) | Effect::PoolChanged => {}
            }
        }
    }
}
