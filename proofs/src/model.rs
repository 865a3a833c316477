//! The spec's transitions: when each action is enabled, and what it does.
//! Rule numbers in comments refer to `SPEC.md`.

use crate::spec::{Action, Behaviour, Config, Pending, Rescuer, State, Waiter, Worker, RESCUER};
use crate::Mistake;

impl Config {
    /// Workers the spec counts as running in pool `p` (the mistake
    /// `BlockedCountsAsRunning` forgets that a blocked worker stops counting,
    /// `UnblockNotCounted` that an unblocked one counts again,
    /// `DetectedCountsAsRunning` that a detected one stops,
    /// `HogCountsAsRunning` that a CPU-intensive one stops).
    fn counted_running(&self, s: &State, p: usize) -> usize {
        let workers = s.pools[p].workers.iter();
        if self.has(Mistake::BlockedCountsAsRunning) {
            workers.filter(|w| matches!(w, Worker::Running { detected: false, hog: false, .. })).count()
        } else if self.has(Mistake::UnblockNotCounted) {
            // Unblock forgot the count: a worker whose item blocked in this
            // run no longer counts once it runs again.
            let counted = |w: &&Worker| matches!(w, Worker::Running { item, blocked: false, detected: false, hog: false } if !s.items[usize::from(*item)].blocked_once);
            workers.filter(counted).count()
        } else if self.has(Mistake::DetectedCountsAsRunning) {
            workers.filter(|w| matches!(w, Worker::Running { blocked: false, hog: false, .. })).count()
        } else if self.has(Mistake::HogCountsAsRunning) {
            workers.filter(|w| matches!(w, Worker::Running { blocked: false, detected: false, .. })).count()
        } else {
            s.running(p)
        }
    }

    /// Whether the rules let another worker of pool `p` start: it is not
    /// managed, or fewer workers than its target count as running.
    fn short_of_runners(&self, s: &State, p: usize) -> bool {
        self.managed_target(s, p).is_none_or(|target| self.counted_running(s, p) < target)
    }

    fn behaviour(&self, i: usize) -> Behaviour {
        self.items[i].1
    }

    /// Whether the running item `i` may leave its blocking section / finish
    /// (its thread runs: a `SleepsFor` item that went to sleep sleeps until
    /// then).
    fn may_proceed(&self, s: &State, i: usize) -> bool {
        match self.behaviour(i).awaited() {
            Some(n) => !s.items[i].blocked_once || s.instance_started(n, s.items[i].waits_for),
            None => true,
        }
    }

    /// The executor running item `i`, if it runs on pool `p`: a worker, or
    /// [`RESCUER`].
    fn runner_on(&self, s: &State, i: usize, p: usize) -> Option<u8> {
        s.items[i].running.filter(|&(q, _)| usize::from(q) == p).map(|(_, w)| w)
    }

    /// Whether worker `w` of pool `p` may take the first item of the
    /// worklist now (S2): it idles with nothing deferred to it, and in a
    /// managed pool fewer than its target count as running (on a CPU's
    /// pool: nobody).
    fn may_take(&self, s: &State, p: usize, w: usize) -> bool {
        let pool = &s.pools[p];
        // S6: a spare idles to replace it, or one is being created, or
        // none can be (creation failed, or the pool is full).
        let spare = s.idle(p) >= 2 || pool.starving || self.full(s, p) || pool.workers.contains(&Worker::Managing);
        spare
            && pool.workers[w] == Worker::Idle
            && pool.scheduled[w].is_empty()
            && !pool.worklist.is_empty()
            && (self.short_of_runners(s, p) || self.has(Mistake::IgnoreConcurrency))
    }

    /// S2 / S5: the first item of pool `p`'s worklist, and whether it runs
    /// already (then taking it defers it to its runner).
    fn first_item(&self, s: &State, p: usize) -> Option<(usize, bool)> {
        let i = usize::from(*s.pools[p].worklist.first()?);
        let running = s.items[i].running.is_some() && !self.has(Mistake::SkipNonReentrancy);
        Some((i, running))
    }

    /// S8: the rescuer of `wq` attached to pool `p` may take another item:
    /// the workqueue has active items there and the pool is short of
    /// runners.
    fn rescue_needed(&self, s: &State, wq: usize, p: usize) -> bool {
        s.active[wq][p] > 0 && self.short_of_runners(s, p)
    }

    /// S8: the first item of `wq` on pool `p`'s worklist, and whether it
    /// runs already.
    fn first_of_wq(&self, s: &State, wq: usize, p: usize) -> Option<(usize, bool)> {
        let i = s.pools[p].worklist.iter().map(|&i| usize::from(i)).find(|&i| self.items[i].0 == wq)?;
        Some((i, s.items[i].running.is_some() && !self.has(Mistake::SkipNonReentrancy)))
    }

    /// Every enabled action.
    pub fn enabled(&self, s: &State, out: &mut Vec<Action>) {
        self.user_actions(s, out);
        for p in 0..s.pools.len() {
            for w in 0..s.pools[p].workers.len() {
                self.worker_actions(s, p, w, out);
            }
            self.manager_actions(s, p, out);
            if self.detect || self.hog {
                self.monitor_actions(s, p, out);
            }
        }
        for wq in 0..self.wqs.len() {
            self.rescuer_actions(s, wq, out);
        }
        for (n, waiter) in s.waiters.iter().enumerate() {
            let drained = waiter.destroy.is_none_or(|wq| self.drained(s, usize::from(wq)));
            let done = drained && waiter.targets.iter().all(|&(i, k)| s.instance_done(usize::from(i), k));
            // A `flush_workqueue`, or a destroy's drain (which flushes):
            // its ticket done; without one, or (a drain) with its ticket
            // done and the workqueue not drained yet, it takes one (a new
            // round of the drain) once a colour is free.
            let (ticket_done, wants_ticket) = match (waiter.flush_wq.or(waiter.destroy), waiter.ticket) {
                (Some(wq), Some(t)) => {
                    let ticket_done = self.ticket_done(s, usize::from(wq), t);
                    (ticket_done, ticket_done && !drained)
                }
                (Some(_), None) => (false, true),
                (None, _) => (true, false),
            };
            if let Some(wq) = waiter.flush_wq.or(waiter.destroy).filter(|_| wants_ticket) {
                if self.ticket_free(s, usize::from(wq)) {
                    out.push(Action::FlushTicket { waiter: n as u8 });
                }
            }
            let done = done && ticket_done;
            let early = self.has(Mistake::EarlyReturn)
                || (waiter.cancel_sync.is_some() && self.has(Mistake::CancelSyncNoWait))
                || (waiter.destroy.is_some() && self.has(Mistake::DestroyNoDrain));
            if done || early {
                out.push(Action::Return { waiter: n as u8 });
            }
        }
    }

    /// S2-S5 for worker `w` of pool `p`.
    fn worker_actions(&self, s: &State, p: usize, w: usize, out: &mut Vec<Action>) {
        let (pool, worker) = (p as u8, w as u8);
        match s.pools[p].workers[w] {
            Worker::Idle if !s.pools[p].scheduled[w].is_empty() => out.push(Action::StartScheduled { pool, worker }),
            Worker::Idle if self.may_take(s, p, w) => match self.first_item(s, p) {
                Some((i, true)) if self.runner_on(s, i, p).is_some_and(|x| usize::from(x) != w) => {
                    out.push(Action::Defer { pool, worker })
                }
                Some((_, false)) => out.push(Action::Start { pool, worker }),
                _ => {}
            },
            Worker::Running { item, blocked: false, .. } => {
                let i = usize::from(item);
                match self.behaviour(i) {
                    Behaviour::SleepsFor(_) if !s.items[i].blocked_once => out.push(Action::Sleep { pool, worker }),
                    Behaviour::SpinsFor(_) if !s.items[i].blocked_once => out.push(Action::Spin { pool, worker }),
                    Behaviour::Blocks | Behaviour::WaitsFor(_) if !s.items[i].blocked_once => {
                        out.push(Action::Block { pool, worker })
                    }
                    // Asleep: it finishes once what it waits for started.
                    _ if self.may_proceed(s, i) => out.push(Action::Finish { pool, worker }),
                    _ => {}
                }
            }
            Worker::Running { item, blocked: true, .. } if self.may_proceed(s, usize::from(item)) => {
                out.push(Action::Unblock { pool, worker })
            }
            _ => {}
        }
    }

    /// C10: the monitor may see worker of pool `p` that counts as running
    /// asleep (the spec does not say when an item's thread sleeps: any
    /// item may, a `SleepsFor` item's wait is the sleep that matters), not
    /// on a pool whose CPU is offline (nobody counts there, machine
    /// `ROGUE`); a detected worker counts again once the monitor sees it
    /// run, which a `SleepsFor` item asleep in its wait does not. A
    /// CPU-intensive worker counts for nobody: it is not detected.
    ///
    /// C11: the monitor may see a worker that counts as running hog the CPU
    /// (any item may: a `SpinsFor` item's busy wait is the hog that
    /// matters), not on a pool whose CPU is offline; it marks the worker
    /// CPU-intensive for the rest of its item.
    fn monitor_actions(&self, s: &State, p: usize, out: &mut Vec<Action>) {
        let pool = p as u8;
        for (w, worker) in s.pools[p].workers.iter().enumerate() {
            let worker_n = w as u8;
            let Worker::Running { item, blocked, detected, hog } = *worker else { continue };
            let online = !s.pools[p].offline;
            if self.detect {
                if !detected && !hog && (!blocked || self.has(Mistake::DetectWhileBlocked)) && online {
                    out.push(Action::Detect { pool, worker: worker_n })
                }
                if detected && (self.may_proceed(s, usize::from(item)) || self.has(Mistake::UndetectWhileAsleep)) {
                    out.push(Action::Undetect { pool, worker: worker_n })
                }
            }
            if self.hog && !blocked && !detected && !hog && online {
                out.push(Action::Hog { pool, worker: worker_n })
            }
        }
    }

    /// S8: a rescuer attaches to the oldest pool on its list, takes items
    /// of its workqueue there while the pool needs it, and detaches.
    fn rescuer_actions(&self, s: &State, wq: usize, out: &mut Vec<Action>) {
        let wq_n = wq as u8;
        let Some(rescuer) = &s.rescuers[wq] else {
            if !s.maydays[wq].is_empty() {
                out.push(Action::RescuerAttach { wq: wq_n });
            }
            return;
        };
        let p = usize::from(rescuer.pool);
        match rescuer.item.map(usize::from) {
            // A rescued item does what it does on a worker: it may block
            // (and chain), and finishes once it may proceed.
            Some(i) if self.behaviour(i) != Behaviour::Plain && !s.items[i].blocked_once => {
                out.push(Action::RescueBlock { wq: wq_n })
            }
            Some(i) if self.may_proceed(s, i) => out.push(Action::RescueDone { wq: wq_n }),
            Some(_) => {}
            None if !rescuer.scheduled.is_empty() => out.push(Action::RescueScheduled { wq: wq_n }),
            None if self.has(Mistake::RescuerLeavesAtOnce) => out.push(Action::RescuerDetach { wq: wq_n }),
            None => {
                let needed = self.rescue_needed(s, wq, p);
                match self.first_of_wq(s, wq, p) {
                    Some((i, true)) if needed && self.runner_on(s, i, p).is_some_and(|x| x != RESCUER) => {
                        out.push(Action::RescueDefer { wq: wq_n })
                    }
                    Some((_, false)) if needed => out.push(Action::Rescue { wq: wq_n }),
                    _ => {}
                }
                // It leaves once the pool may do without it: nothing of its
                // workqueue waits there, a worker runs, or one idles.
                let waiting = self.first_of_wq(s, wq, p).is_some();
                if !(needed && waiting && s.idle(p) == 0) {
                    out.push(Action::RescuerDetach { wq: wq_n });
                }
            }
        }
    }

    fn user_actions(&self, s: &State, out: &mut Vec<Action>) {
        for item in 0..self.items.len() as u8 {
            if s.queues > 0 {
                for cpu in 0..self.cpus as u8 {
                    out.push(Action::Queue { item, cpu });
                }
            }
            if s.cancels > 0 {
                out.push(Action::Cancel { item, sync: false });
                out.push(Action::Cancel { item, sync: true });
            }
            if s.flushes > 0 {
                out.push(Action::FlushWork { item });
            }
        }
        if s.flushes > 0 {
            for wq in 0..self.wqs.len() as u8 {
                out.push(Action::FlushWq { wq });
            }
        }
        if s.destroy_left {
            out.push(Action::Destroy);
        }
        if s.hotplug_left == 2 && self.cpus >= 2 {
            out.push(Action::CpuDown);
        }
        if s.hotplug_left == 1 {
            out.push(Action::CpuUp);
        }
    }

    /// S6, S7: the manager, retiring an idle worker, the mayday timer.
    fn manager_actions(&self, s: &State, p: usize, out: &mut Vec<Action>) {
        let pool = p as u8;
        let short = self.short_of_runners(s, p);
        let workers = &s.pools[p].workers;
        let managing = workers.contains(&Worker::Managing);
        if managing {
            // S6: it creates a worker, or creation fails.
            out.push(if self.creation_fails { Action::CreateFails { pool } } else { Action::Create { pool } });
        }
        // S6: one manager at a time, and only where no other worker idles
        // (the mistake `TwoManagers` checks neither).
        let may_manage = if self.has(Mistake::TwoManagers) { s.idle(p) >= 1 } else { !managing && s.idle(p) == 1 };
        if may_manage && short && !s.pools[p].worklist.is_empty() && !self.full(s, p) {
            for (w, worker) in workers.iter().enumerate() {
                if *worker == Worker::Idle && s.pools[p].scheduled[w].is_empty() {
                    out.push(Action::Manage { pool, worker: w as u8 });
                }
            }
        }
        // Retiring leaves idle spares: two (idle cull), or one once the
        // pool holds nothing (the trustee after a CPU went down).
        let spares = (0..workers.len()).filter(|&w| workers[w] == Worker::Idle && s.pools[p].scheduled[w].is_empty());
        let spares = spares.count();
        let empty = s.pools[p].worklist.is_empty() && workers.iter().all(|w| *w == Worker::Idle);
        let last = usize::from(self.has(Mistake::RetireLastIdle)); // the mistake leaves one fewer
        if self.retire && (spares >= 3 - last || spares >= 2 - last && empty) {
            for (w, worker) in workers.iter().enumerate() {
                if *worker == Worker::Idle && s.pools[p].scheduled[w].is_empty() {
                    out.push(Action::Retire { pool, worker: w as u8 });
                }
            }
        }
        // S7: a pool that needs a worker it cannot have calls the rescuers;
        // under the kernel's rule also one whose creation is in progress.
        let creating = self.mayday_at_creation_start && workers.contains(&Worker::Managing);
        let cannot = s.pools[p].starving || self.full(s, p) || creating;
        if short && s.idle(p) == 0 && cannot && self.mayday_adds(s, p) {
            out.push(Action::Mayday { pool });
        }
    }

    /// The workqueues a mayday from pool `p` calls: those with a rescuer and
    /// an item on the worklist, not listed yet (R6).
    fn mayday_targets(&self, s: &State, p: usize) -> Vec<usize> {
        if self.has(Mistake::RescuerSkipsPool) && p == 0 {
            return vec![];
        }
        (0..self.wqs.len())
            .filter(|&wq| self.wqs[wq].mem_reclaim)
            .filter(|&wq| s.pools[p].worklist.iter().any(|&i| self.items[usize::from(i)].0 == wq))
            .filter(|&wq| {
                // The mistake lists a pool twice (not more: the list would
                // grow without end, and so would the state graph).
                let listed = s.maydays[wq].iter().filter(|&&x| usize::from(x) == p).count();
                listed == 0 || self.has(Mistake::DuplicateMayday) && listed == 1
            })
            .collect()
    }

    fn mayday_adds(&self, s: &State, p: usize) -> bool {
        !self.mayday_targets(s, p).is_empty()
    }

    /// Applies `action` to `s` (which it is enabled in).
    pub fn apply(&self, s: &mut State, action: Action) {
        match action {
            Action::Queue { item, cpu } => {
                // C3: where the pool's target of workers count as running,
                // the queueing leaves every worker of that pool as it was.
                let behind_runner: Vec<_> = (0..s.pools.len())
                    .map(|p| self.at_target(s, p, self.counted_running(s, p)).then(|| s.pools[p].workers.clone()))
                    .collect();
                self.queue(s, usize::from(item), usize::from(cpu));
                let woke =
                    behind_runner.iter().enumerate().any(|(p, w)| w.as_ref().is_some_and(|w| *w != s.pools[p].workers));
                s.woke_behind_runner |= woke;
            }
            Action::Cancel { item, sync } => self.cancel(s, usize::from(item), sync),
            Action::Destroy => self.destroy(s, 0),
            Action::FlushWork { item } => self.flush_work(s, usize::from(item)),
            Action::FlushWq { wq } => self.flush_wq(s, usize::from(wq)),
            Action::Return { waiter } => self.waiter_returns(s, usize::from(waiter)),
            Action::FlushTicket { waiter } => {
                let n = usize::from(waiter);
                let first = s.waiters[n].ticket.is_none();
                if let Some(wq) = s.waiters[n].flush_wq.or(s.waiters[n].destroy) {
                    let ticket = if first && self.has(Mistake::FlushTicketJoinsLast) {
                        s.flush[usize::from(wq)].next - 1
                    } else {
                        self.take_ticket(s, usize::from(wq))
                    };
                    s.waiters[n].ticket = Some(ticket);
                }
            }
            Action::Start { pool, worker } => self.start(s, usize::from(pool), usize::from(worker)),
            Action::Defer { pool, worker: _ } => self.defer(s, usize::from(pool)),
            Action::StartScheduled { pool, worker } => {
                let (p, w) = (usize::from(pool), usize::from(worker));
                let i = usize::from(s.pools[p].scheduled[w].remove(0));
                self.begin(s, i, p, worker);
                if self.has(Mistake::StartScheduledUnclaimed) {
                    s.items[i].running = None;
                }
                s.pools[p].workers[w] = Worker::Running { item: i as u8, blocked: false, detected: false, hog: false };
            }
            Action::Block { pool, worker } => self.set_blocked(s, pool, worker, true),
            Action::Unblock { pool, worker } => self.set_blocked(s, pool, worker, false),
            Action::Sleep { pool, worker } | Action::Spin { pool, worker } => {
                let p = usize::from(pool);
                if let Worker::Running { item, .. } = s.pools[p].workers[usize::from(worker)] {
                    self.wait_for(s, usize::from(item), p);
                }
            }
            Action::Detect { pool, worker } | Action::Undetect { pool, worker } => {
                let slot = &mut s.pools[usize::from(pool)].workers[usize::from(worker)];
                if let Worker::Running { item, blocked, hog, .. } = *slot {
                    let detected = matches!(action, Action::Detect { .. });
                    *slot = Worker::Running { item, blocked, detected, hog };
                }
            }
            Action::Hog { pool, worker } => {
                let slot = &mut s.pools[usize::from(pool)].workers[usize::from(worker)];
                if let Worker::Running { item, blocked, detected, .. } = *slot {
                    *slot = Worker::Running { item, blocked, detected, hog: true };
                }
            }
            Action::Finish { pool, worker } => {
                let p = usize::from(pool);
                if let Worker::Running { item, .. } = s.pools[p].workers[usize::from(worker)] {
                    s.pools[p].workers[usize::from(worker)] = Worker::Idle;
                    self.finish(s, usize::from(item), p);
                }
            }
            Action::Manage { pool, worker } => {
                s.pools[usize::from(pool)].workers[usize::from(worker)] = Worker::Managing;
            }
            Action::Create { pool } => {
                let p = usize::from(pool);
                self.manager_done(s, p);
                s.pools[p].starving = false;
                if !self.has(Mistake::CreateLosesWorker) {
                    s.pools[p].workers.push(Worker::Idle);
                    s.pools[p].scheduled.push(vec![]);
                }
            }
            Action::CreateFails { pool } => {
                // The manager works itself if items still wait and nobody
                // runs (S2, S5); otherwise it goes back to idle.
                let p = usize::from(pool);
                s.pools[p].starving = !self.has(Mistake::CreateFailsNotStarving);
                let w = self.manager_done(s, p);
                if self.may_take(s, p, w) {
                    match self.first_item(s, p) {
                        Some((_, false)) => self.start(s, p, w),
                        Some((i, true)) if self.runner_on(s, i, p).is_some_and(|x| usize::from(x) != w) => {
                            self.defer(s, p)
                        }
                        _ => {}
                    }
                }
            }
            Action::Retire { pool, worker } => self.retire(s, usize::from(pool), usize::from(worker)),
            Action::Mayday { pool } => {
                for wq in self.mayday_targets(s, usize::from(pool)) {
                    s.maydays[wq].push(pool);
                }
            }
            Action::RescuerAttach { wq } => {
                let wq = usize::from(wq);
                let pool = s.maydays[wq].remove(0);
                let pool = if self.has(Mistake::RescuerAttachWrongPool) { self.cpus as u8 } else { pool };
                s.rescuers[wq] = Some(Rescuer { pool, item: None, scheduled: vec![] });
            }
            Action::Rescue { wq } => self.rescue(s, usize::from(wq)),
            Action::RescueDefer { wq } => {
                let p = s.rescuers[usize::from(wq)].as_ref().map_or(0, |r| usize::from(r.pool));
                if let Some((i, _)) = self.first_of_wq(s, usize::from(wq), p) {
                    if self.has(Mistake::RescueDeferToSelf) {
                        s.pools[p].worklist.retain(|&x| usize::from(x) != i);
                        if let Some(rescuer) = s.rescuers[usize::from(wq)].as_mut() {
                            rescuer.scheduled.push(i as u8);
                        }
                    } else {
                        self.defer_item(s, i, p);
                    }
                }
            }
            Action::RescueScheduled { wq } => {
                let wq = usize::from(wq);
                let Some(rescuer) = s.rescuers[wq].as_mut() else { return };
                let (i, p) = (usize::from(rescuer.scheduled.remove(0)), usize::from(rescuer.pool));
                rescuer.item = Some(i as u8);
                self.begin(s, i, p, RESCUER);
                if self.has(Mistake::RescueScheduledUnclaimed) {
                    s.items[i].running = None;
                }
            }
            Action::RescueBlock { wq } => {
                if let Some(r) = &s.rescuers[usize::from(wq)] {
                    let (i, p) = (r.item.map_or(0, usize::from), usize::from(r.pool));
                    self.wait_for(s, i, p);
                    if self.has(Mistake::RescueBlockAbandons) {
                        s.rescuers[usize::from(wq)] = None; // it leaves as if done
                    }
                }
            }
            Action::RescueDone { wq } => {
                let Some(rescuer) = s.rescuers[usize::from(wq)].as_mut() else { return };
                let p = usize::from(rescuer.pool);
                if let Some(i) = rescuer.item.take().map(usize::from) {
                    if self.has(Mistake::RescueDoneKeepsSlot) {
                        s.active[self.items[i].0][p] += 1; // finish's release undone
                    }
                    self.finish(s, i, p);
                }
            }
            Action::RescuerDetach { wq } => {
                let wq = usize::from(wq);
                if let Some(p) = s.rescuers[wq].as_ref().map(|r| usize::from(r.pool)) {
                    // R4: nothing of its workqueue is left waiting where
                    // nobody runs and no worker idles to take it.
                    let stranded =
                        self.first_of_wq(s, wq, p).is_some() && self.rescue_needed(s, wq, p) && s.idle(p) == 0;
                    s.rescuer_stranded |= stranded;
                }
                s.rescuers[wq] = None;
            }
            Action::CpuDown => {
                s.pools[0].offline = true;
                s.hotplug_left = 1;
            }
            Action::CpuUp => {
                s.pools[0].offline = self.has(Mistake::CpuUpLeavesUnmanaged);
                s.hotplug_left = 0;
            }
        }
        for wq in 0..s.flush.len() {
            self.canonical_tickets(s, wq);
        }
    }

    /// S11: `destroy_workqueue(wq)`: refuse the user's queueing from now
    /// on, then drain as the kernel's `drain_workqueue` does: flush the
    /// workqueue (a `flush_workqueue` ticket, `colors.rs`: taken here if a
    /// colour is free, else by [`Action::FlushTicket`] once one is), and
    /// once that ticket is done, return if nothing of the workqueue is
    /// pending or running, else flush again (a new round: `FlushTicket`
    /// with the done ticket replaced). Chained queueing by its own items
    /// still goes in: the drain waits for it. The check follows the
    /// flush, never precedes it: a drain flushes at least once.
    fn destroy(&self, s: &mut State, wq: usize) {
        s.destroy_left = false;
        s.dying[wq] = !self.has(Mistake::DestroyForgetsDying);
        let mut targets = Vec::new();
        for (i, item) in s.items.iter().enumerate().filter(|(i, _)| self.items[*i].0 == wq) {
            if item.pending != Pending::No {
                targets.push((i as u8, item.queued));
            } else if item.running.is_some() {
                targets.push((i as u8, item.run_instance));
            }
        }
        let ticket = self.ticket_free(s, wq).then(|| self.take_ticket(s, wq));
        s.waiters.push(Waiter {
            targets,
            owed: vec![],
            cancel_sync: None,
            destroy: Some(wq as u8),
            flush_wq: None,
            ticket,
        });
    }

    /// Nothing of workqueue `wq` is pending or running.
    fn drained(&self, s: &State, wq: usize) -> bool {
        s.items
            .iter()
            .enumerate()
            .all(|(i, it)| self.items[i].0 != wq || (it.pending == Pending::No && it.running.is_none()))
    }

    /// S1: `queue_on(cpu, item)`. A pending item coalesces (W2); an item
    /// running for its workqueue is queued where it runs (W4); the
    /// pool-workqueue admits it while under `max_active`, else FIFO (Q3).
    fn queue(&self, s: &mut State, i: usize, cpu: usize) {
        self.queue_from(s, i, cpu, false)
    }

    /// S1, by the user (`chained`: false) or by one of the workqueue's own
    /// items.
    fn queue_from(&self, s: &mut State, i: usize, cpu: usize, chained: bool) {
        s.queues -= 1;
        let wq = self.items[i].0;
        if s.dying[wq] && !chained && !self.has(Mistake::AcceptAfterDestroy) {
            return; // refused: the workqueue is being destroyed
        }
        // Q6 judges by the user's destroy having been called (of workqueue
        // 0), not by the mark it should have left.
        if !chained && wq == 0 && self.destroy && !s.destroy_left {
            s.accepted_after_destroy += 1;
        }
        if s.items[i].cancelling > 0 && !self.has(Mistake::CancelSyncLetsQueue) {
            return; // a cancel_sync owns PENDING
        }
        let looks_pending = s.items[i].pending != Pending::No || s.items[i].late_pending;
        if looks_pending && !self.has(Mistake::QueuePendingAdds) {
            // Refused. W3: never while the item runs and is not pending.
            if s.items[i].running.is_some() && s.items[i].pending == Pending::No {
                s.refused_while_running += 1;
            }
            return;
        }
        let running_pool = s.items[i].running.map(|(p, _)| usize::from(p));
        let p = match running_pool {
            Some(q) if !self.has(Mistake::SkipNonReentrancy) => q,
            _ => self.pool_for(wq, cpu),
        };
        let item = &mut s.items[i];
        item.queued += 1;
        if self.wqs[wq].ordered {
            s.queued_order[wq].push(i as u8);
        }
        self.color_insert(s, i, wq, p);
        if s.active[wq][p] < self.max_active(wq) {
            s.active[wq][p] += 1;
            s.items[i].pending = Pending::Active(p as u8);
            s.pools[p].worklist.push(i as u8);
            if self.has(Mistake::QueueWakesIdle) {
                let idle = (0..s.pools[p].workers.len())
                    .find(|&w| s.pools[p].workers[w] == Worker::Idle && s.pools[p].scheduled[w].is_empty());
                if let Some(w) = idle.filter(|_| s.items[usize::from(s.pools[p].worklist[0])].running.is_none()) {
                    self.start(s, p, w);
                }
            }
        } else {
            s.items[i].pending = Pending::Inactive(p as u8);
            s.inactive[wq][p].push(i as u8);
        }
    }

    /// Pool `p` has as many live workers as it may.
    fn full(&self, s: &State, p: usize) -> bool {
        s.pools[p].workers.len() >= usize::from(self.max_workers)
    }

    /// Idle worker `w` of pool `p` retires: it leaves, and the workers
    /// after it move up (their items' runners with them).
    fn retire(&self, s: &mut State, p: usize, w: usize) {
        s.pools[p].workers.remove(w);
        s.pools[p].scheduled.remove(w);
        for item in &mut s.items {
            if let Some((q, x)) = &mut item.running {
                if usize::from(*q) == p && *x != RESCUER && usize::from(*x) > w {
                    *x -= 1;
                }
            }
        }
    }

    /// The manager of pool `p` gives the role back; returns it.
    fn manager_done(&self, s: &mut State, p: usize) -> usize {
        let w = s.pools[p].workers.iter().position(|w| *w == Worker::Managing).unwrap_or(0);
        s.pools[p].workers[w] = Worker::Idle;
        w
    }

    /// S2: worker `w` of pool `p` takes the first item of the worklist.
    fn start(&self, s: &mut State, p: usize, w: usize) {
        if self.at_target(s, p, s.running(p)) {
            s.overlap_start |= 1 << p;
        }
        let i = usize::from(s.pools[p].worklist.remove(0));
        self.begin(s, i, p, w as u8);
        s.pools[p].workers[w] = Worker::Running { item: i as u8, blocked: false, detected: false, hog: false };
    }

    /// S5: the first item of pool `p`'s worklist runs already: it moves to
    /// its runner's scheduled list, to run there next.
    fn defer(&self, s: &mut State, p: usize) {
        if let Some(&i) = s.pools[p].worklist.first() {
            if self.has(Mistake::DeferDrops) {
                s.pools[p].worklist.remove(0);
                return;
            }
            self.defer_item(s, usize::from(i), p);
        }
    }

    fn defer_item(&self, s: &mut State, i: usize, p: usize) {
        let Some(runner) = self.runner_on(s, i, p) else { return };
        s.pools[p].worklist.retain(|&x| usize::from(x) != i);
        if runner == RESCUER {
            let wq = self.items[i].0;
            if let Some(rescuer) = s.rescuers[wq].as_mut() {
                rescuer.scheduled.push(i as u8);
            }
        } else {
            s.pools[p].scheduled[usize::from(runner)].push(i as u8);
        }
    }

    /// An item leaves its queue and starts running on (pool, worker).
    fn begin(&self, s: &mut State, i: usize, p: usize, worker: u8) {
        let wq = self.items[i].0;
        let item = &mut s.items[i];
        item.pending = Pending::No;
        item.running = Some((p as u8, worker));
        item.started += 1;
        item.run_instance = item.queued;
        item.run_color = item.color;
        item.blocked_once = false;
        item.late_pending = self.has(Mistake::LatePendingClear);
        if self.wqs[wq].ordered {
            s.started_order[wq].push(i as u8);
        }
        if self.has(Mistake::FlushWqSkipsRunning) {
            self.color_leave(s, wq, p, s.items[i].color);
        }
    }

    /// Entering or leaving a blocking section; either is the worker's own
    /// step, which ends a detection (C10, machine M33). A CPU-intensive
    /// mark stays until the item ends (C11, machine M9).
    fn set_blocked(&self, s: &mut State, pool: u8, worker: u8, blocked: bool) {
        let slot = &mut s.pools[usize::from(pool)].workers[usize::from(worker)];
        let Worker::Running { item, hog, .. } = *slot else { return };
        *slot = Worker::Running { item, blocked, detected: false, hog };
        if blocked {
            self.wait_for(s, usize::from(item), usize::from(pool));
        }
    }

    /// Item `i`, running on pool `p`, begins the one wait of its run (in a
    /// blocking section or not): a `WaitsFor` or `SleepsFor` item queues
    /// the item it waits for first.
    fn wait_for(&self, s: &mut State, i: usize, p: usize) {
        s.items[i].blocked_once = true;
        if let Some(n) = self.behaviour(i).awaited() {
            s.items[i].waits_for = self.chain(s, n, p);
        }
    }

    /// A `WaitsFor(n)` (`SleepsFor(n)`) item, about to block: queues `n` behind itself (on
    /// its own pool: same workqueue, same CPU) unless it is pending, and
    /// returns the instance of `n` it waits for.
    fn chain(&self, s: &mut State, n: usize, p: usize) -> u8 {
        if s.items[n].pending == Pending::No && s.items[n].cancelling == 0 {
            let cpu = if p < self.cpus { p } else { 0 };
            s.queues += 1; // chained queueing is the item's own, not the user's
            self.queue_from(s, n, cpu, true);
        }
        s.items[n].queued
    }

    /// S3: the running instance of `i` on pool `p` finished; its active slot
    /// goes to the oldest inactive item (Q3, Q4).
    fn finish(&self, s: &mut State, i: usize, p: usize) {
        let wq = self.items[i].0;
        let item = &mut s.items[i];
        item.done |= 1u32 << item.run_instance;
        item.running = None;
        item.late_pending = false;
        let color = item.run_color;
        s.active[wq][p] = s.active[wq][p].saturating_sub(1);
        if !self.has(Mistake::FlushWqSkipsRunning) {
            self.color_leave(s, wq, p, color);
        }
        self.activate(s, wq, p);
    }

    fn activate(&self, s: &mut State, wq: usize, p: usize) {
        while s.active[wq][p] < self.max_active(wq) && !s.inactive[wq][p].is_empty() {
            let next = if self.has(Mistake::LifoActivation) {
                s.inactive[wq][p].pop().unwrap_or(0)
            } else {
                s.inactive[wq][p].remove(0)
            };
            s.active[wq][p] += 1;
            s.items[usize::from(next)].pending = Pending::Active(p as u8);
            s.pools[p].worklist.push(next);
        }
    }

    /// S9: `cancel` takes a pending instance off its queue; `cancel_sync`
    /// then waits for a running instance (W6).
    fn cancel(&self, s: &mut State, i: usize, sync: bool) {
        s.cancels -= 1;
        let wq = self.items[i].0;
        match s.items[i].pending {
            Pending::No if self.has(Mistake::CancelCountsRunning) && s.items[i].running.is_some() => {
                s.items[i].cancelled += 1;
            }
            Pending::No => {}
            Pending::Active(p) => {
                let p = usize::from(p);
                // On the worklist, or deferred to its runner.
                s.pools[p].worklist.retain(|&x| usize::from(x) != i);
                s.pools[p].scheduled.iter_mut().for_each(|list| list.retain(|&x| usize::from(x) != i));
                if let Some(rescuer) = s.rescuers[wq].as_mut() {
                    rescuer.scheduled.retain(|&x| usize::from(x) != i);
                }
                s.active[wq][p] -= 1;
                self.color_leave(s, wq, p, s.items[i].color);
                self.cancelled(s, i);
                self.activate(s, wq, p);
            }
            Pending::Inactive(p) => {
                let p = usize::from(p);
                s.inactive[wq][p].retain(|&x| usize::from(x) != i);
                self.color_leave(s, wq, p, s.items[i].color);
                if self.has(Mistake::CancelInactiveFreesSlot) {
                    s.active[wq][p] = s.active[wq][p].saturating_sub(1);
                    self.activate(s, wq, p);
                }
                self.cancelled(s, i);
            }
        }
        if sync && s.items[i].running.is_some() {
            s.items[i].cancelling += 1;
            let target = (i as u8, s.items[i].run_instance);
            s.waiters.push(Waiter {
                targets: vec![target],
                owed: vec![],
                cancel_sync: Some(i as u8),
                destroy: None,
                flush_wq: None,
                ticket: None,
            });
        }
    }

    fn cancelled(&self, s: &mut State, i: usize) {
        let item = &mut s.items[i];
        item.cancelled += 1;
        item.pending = Pending::No;
        // The cancelled instance is the last one queued: done.
        item.done |= 1u32 << item.queued;
        if self.wqs[self.items[i].0].ordered {
            let order = &mut s.queued_order[self.items[i].0];
            if let Some(pos) = order.iter().rposition(|&x| usize::from(x) == i) {
                order.remove(pos);
            }
        }
    }

    /// S10: `flush_work` waits for the last instance queued, or the running
    /// one (W5).
    fn flush_work(&self, s: &mut State, i: usize) {
        s.flushes -= 1;
        let item = &s.items[i];
        let target =
            if item.pending != Pending::No { Some(item.queued) } else { item.running.map(|_| item.run_instance) };
        if let Some(k) = target {
            // The mistake waits for the running instance even when a later
            // one is pending; what the caller is owed stays `k`.
            let wait = match item.running {
                Some(_) if self.has(Mistake::FlushWorkWaitsForRunning) => item.run_instance,
                _ => k,
            };
            s.waiters.push(Waiter {
                targets: vec![(i as u8, wait)],
                owed: vec![(i as u8, k, k)],
                cancel_sync: None,
                destroy: None,
                flush_wq: None,
                ticket: None,
            });
        }
    }

    /// S10: `flush_workqueue` takes a ticket (`colors.rs`) and waits until
    /// it is done; it is owed every instance of the workqueue queued or
    /// running when it is called, and nothing queued later (Q1, Q2).
    fn flush_wq(&self, s: &mut State, wq: usize) {
        s.flushes -= 1;
        let mut owed = Vec::new();
        for (i, item) in s.items.iter().enumerate().filter(|(i, _)| self.items[*i].0 == wq) {
            if item.running.is_some() || item.pending != Pending::No {
                owed.push((i as u8, 1, item.queued));
            }
        }
        let ticket = self.ticket_free(s, wq).then(|| self.take_ticket(s, wq));
        let waiter =
            Waiter { targets: vec![], owed, cancel_sync: None, destroy: None, flush_wq: Some(wq as u8), ticket };
        s.waiters.push(waiter);
    }

    fn waiter_returns(&self, s: &mut State, n: usize) {
        let waiter = s.waiters.remove(n);
        // Independent of the targets: every instance owed must be done.
        let early = waiter.owed.iter().any(|&(i, a, b)| (a..=b).any(|n| !s.instance_done(usize::from(i), n)));
        let busy = waiter.cancel_sync.is_some_and(|i| {
            let item = &mut s.items[usize::from(i)];
            item.cancelling -= 1;
            item.running.is_some() || item.pending != Pending::No
        });
        let undrained = waiter.destroy.is_some_and(|wq| !self.drained(s, usize::from(wq)));
        if early || busy || undrained {
            s.early_returns += 1;
        }
    }

    /// S8: the attached rescuer takes `wq`'s first item on its pool.
    fn rescue(&self, s: &mut State, wq: usize) {
        let Some(p) = s.rescuers[wq].as_ref().map(|r| usize::from(r.pool)) else { return };
        let Some((i, _)) = self.first_of_wq(s, wq, p) else { return };
        if !self.has(Mistake::RescueLeavesOnWorklist) {
            s.pools[p].worklist.retain(|&x| usize::from(x) != i);
        }
        self.begin(s, i, p, RESCUER);
        if let Some(rescuer) = s.rescuers[wq].as_mut() {
            rescuer.item = Some(i as u8);
        }
    }
}
