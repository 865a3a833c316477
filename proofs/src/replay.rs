//! Trace validation: a log of the running engine's transitions (feature
//! `trace` of `cmwq`: `System::start_trace`, `System::take_trace`) replayed
//! against the spec, event by event. Each event is mapped to the spec
//! action it is (or to nothing, for a stutter: a rescuer attaching, a
//! retry timer's failed creation); the action must be enabled in the spec
//! state, and after applying it the spec must agree with what the event
//! says happened (where the item went, which item started). Each event
//! must also be recorded in a section of a step that makes it (the engine
//! marks where each pool section begins, `Event::Step`). The replay stops
//! at the first event the spec or the step does not allow, and says why.
//!
//! The spec's exploration bounds (budgets) do not apply to a replay: they
//! are refilled before every action. An item's instance counters are
//! restarted whenever it is neither pending nor running, so that long runs
//! fit the spec's small counters.

use crate::spec::{Action, Behaviour, Config, Pending, State, Worker, WqSpec, RESCUER};
use cmwq::machine::trace::{Event, StepId};
use std::collections::BTreeMap;

impl Config {
    /// The spec of a traced system: `cpus` CPUs (no high-priority pools),
    /// pools of at most `max_workers` live workers, its workqueues and
    /// items (each with its workqueue and what it does when it runs), and
    /// whether every creation after a pool's first worker fails. Retiring
    /// and the blocking monitor allowed, sleeps and hogs (a system that
    /// does not watch its workers records neither); the exploration budgets
    /// play no part in a replay.
    pub fn traced(
        cpus: usize,
        max_workers: usize,
        wqs: Vec<WqSpec>,
        items: Vec<(usize, Behaviour)>,
        creation_fails: bool,
    ) -> Config {
        Config {
            cpus,
            unbound_target: None,
            wqs,
            items,
            max_workers: u8::try_from(max_workers).unwrap_or(u8::MAX),
            creation_fails,
            mayday_at_creation_start: false,
            creation_may_hang: false,
            retire: true,
            queues: 0,
            cancels: 0,
            flushes: 0,
            destroy: false,
            hotplug: false,
            colors: 16,
            detect: true,
            hog: true,
            mistake: None,
        }
    }
}

/// A replay in progress.
pub struct Replay {
    config: Config,
    state: State,
    /// Engine item key → spec item.
    items: BTreeMap<usize, usize>,
    /// Engine workqueue id → spec workqueue.
    wqs: BTreeMap<usize, usize>,
    /// Per pool: engine worker ids in the spec's numbering.
    workers: Vec<Vec<usize>>,
    /// Attached rescuers: (pool, engine worker id) → spec workqueue.
    rescuers: BTreeMap<(usize, usize), usize>,
    /// The worker managing each pool.
    managing: Vec<Option<usize>>,
    /// Lists the spec's last mayday added the pool to that the engine has
    /// not reported yet: (pool, workqueue).
    unreported: Vec<(usize, usize)>,
    /// The step each pool's current section runs (from its last
    /// [`Event::Step`]); every other event must be one it makes.
    sections: Vec<Option<StepId>>,
    /// A manager whose failed creation took an item in the spec already:
    /// its next start or deferral is checked, not applied.
    quiet: Option<(usize, usize)>,
    /// Events replayed.
    pub replayed: usize,
}

impl Replay {
    /// A replay of a system of `config.cpus` CPUs (no high-priority pools)
    /// whose workqueues have the engine ids `wqs` (in `config.wqs` order)
    /// and whose items have the keys `items` (in `config.items` order),
    /// traced from before anything ran.
    pub fn new(config: Config, wqs: &[usize], items: &[usize]) -> Self {
        let state = config.initial();
        let pools = config.cpus + 1;
        Replay {
            items: items.iter().enumerate().map(|(i, &key)| (key, i)).collect(),
            wqs: wqs.iter().enumerate().map(|(n, &id)| (id, n)).collect(),
            workers: vec![vec![0]; pools],
            rescuers: BTreeMap::new(),
            managing: vec![None; pools],
            sections: vec![None; pools],
            quiet: None,
            unreported: Vec::new(),
            replayed: 0,
            config,
            state,
        }
    }

    /// Replays a whole trace of a system that went quiet at its end; the
    /// error names the first event the spec does not allow, or the work
    /// the spec has left.
    pub fn check(config: Config, wqs: &[usize], items: &[usize], events: &[Event]) -> Result<usize, String> {
        let mut replay = Replay::new(config, wqs, items);
        for (n, event) in events.iter().enumerate() {
            replay.step(event).map_err(|why| format!("event #{n} {event:?}: {why}"))?;
        }
        replay.finished().map_err(|why| format!("at the end of {} events: {why}", events.len()))?;
        Ok(replay.replayed)
    }

    /// The spec state reached.
    pub fn state(&self) -> &State {
        &self.state
    }

    fn item(&self, key: usize) -> Result<usize, String> {
        self.items.get(&key).copied().ok_or_else(|| format!("unknown item {key:#x}"))
    }

    fn worker(&self, pool: usize, id: usize) -> Result<u8, String> {
        if self.rescuers.contains_key(&(pool, id)) {
            return Ok(RESCUER);
        }
        let workers = self.workers.get(pool).ok_or_else(|| format!("untraced pool {pool}"))?;
        let n = workers.iter().position(|&w| w == id).ok_or_else(|| format!("unknown worker {id} of pool {pool}"))?;
        Ok(n as u8)
    }

    /// Applies `action` if the spec allows it now.
    fn act(&mut self, action: Action) -> Result<(), String> {
        let s = &mut self.state;
        (s.queues, s.cancels) = (200, 200);
        let mut enabled = Vec::new();
        self.config.enabled(&self.state, &mut enabled);
        if !enabled.contains(&action) {
            return Err(format!("the spec does not allow {action:?} (it allows {enabled:?})"));
        }
        self.config.apply(&mut self.state, action);
        Ok(())
    }

    /// Replays one event.
    pub fn step(&mut self, event: &Event) -> Result<(), String> {
        self.replayed += 1;
        if let Event::Step { pool, step } = *event {
            let section = self.sections.get_mut(pool).ok_or_else(|| format!("untraced pool {pool}"))?;
            *section = Some(step);
            return Ok(());
        }
        if let Some(pool) = event.pool() {
            let section = self.sections.get(pool).copied().flatten();
            if !section.is_some_and(|step| step.records(event)) {
                return Err(format!("recorded in a section of step {section:?}, which does not make it"));
            }
        }
        // A failed creation's take is reported by the very next event.
        let quiet = self.quiet.take();
        let quiet_for = |pool: usize, worker: usize| quiet == Some((pool, worker));
        let small = |n: usize| n as u8;
        match *event {
            Event::Queued { item, wq, pool, active } => {
                let i = self.item(item)?;
                if self.wqs.get(&wq) != Some(&self.config.items[i].0) {
                    return Err(format!("item {i} was queued on workqueue {wq}, not its own"));
                }
                // The engine chose the pool; the spec's choice for the CPU
                // of that pool must agree (non-reentrancy decides alike).
                let cpu = if pool < self.config.cpus { pool } else { 0 };
                let was = self.state.items[i].pending;
                expect(was == Pending::No, || format!("item {i} was inserted again while pending at {was:?}"))?;
                self.act(Action::Queue { item: small(i), cpu: small(cpu) })?;
                let want = if active { Pending::Active(small(pool)) } else { Pending::Inactive(small(pool)) };
                let got = self.state.items[i].pending;
                expect(got == want, || format!("the spec has item {i} at {got:?}"))?;
            }
            Event::Cancelled { item, pool } => {
                let i = self.item(item)?;
                let was = self.state.items[i].pending;
                let on = matches!(was, Pending::Active(p) | Pending::Inactive(p) if usize::from(p) == pool);
                expect(on, || format!("the spec has item {i} at {was:?}"))?;
                self.act(Action::Cancel { item: small(i), sync: false })?;
                self.restart(i);
            }
            Event::Started { pool, worker, item, scheduled } => {
                let i = self.item(item)?;
                let w = self.worker(pool, worker)?;
                if !quiet_for(pool, worker) {
                    let action = match (w == RESCUER, scheduled) {
                        (true, true) => Action::RescueScheduled { wq: small(self.rescuers[&(pool, worker)]) },
                        (true, false) => Action::Rescue { wq: small(self.rescuers[&(pool, worker)]) },
                        (false, true) => Action::StartScheduled { pool: small(pool), worker: w },
                        (false, false) => Action::Start { pool: small(pool), worker: w },
                    };
                    self.act(action)?;
                }
                let got = self.state.items[i].running;
                expect(got == Some((small(pool), w)), || format!("the spec runs item {i} on {got:?}"))?;
            }
            Event::Deferred { pool, worker, item } => {
                let i = self.item(item)?;
                let w = self.worker(pool, worker)?;
                if !quiet_for(pool, worker) {
                    let action = match self.rescuers.get(&(pool, worker)) {
                        Some(&wq) => Action::RescueDefer { wq: small(wq) },
                        None => Action::Defer { pool: small(pool), worker: w },
                    };
                    self.act(action)?;
                }
                let listed = self.state.pools[pool].worklist.contains(&small(i));
                expect(!listed, || format!("the spec left item {i} on the worklist"))?;
            }
            Event::Blocked { pool, worker } => {
                let action = match self.rescuers.get(&(pool, worker)) {
                    Some(&wq) => Action::RescueBlock { wq: small(wq) },
                    None => Action::Block { pool: small(pool), worker: self.worker(pool, worker)? },
                };
                self.act(action)?;
            }
            Event::Unblocked { pool, worker } => {
                // A rescuer's blocking section is invisible to the spec.
                if !self.rescuers.contains_key(&(pool, worker)) {
                    self.act(Action::Unblock { pool: small(pool), worker: self.worker(pool, worker)? })?;
                }
            }
            // The monitor's report (C10): a worker seen asleep counted out, one
            // seen running counted in again.
            Event::SeenAsleep { pool, worker } => {
                self.act(Action::Detect { pool: small(pool), worker: self.worker(pool, worker)? })?;
            }
            Event::SeenRunning { pool, worker } => {
                self.act(Action::Undetect { pool: small(pool), worker: self.worker(pool, worker)? })?;
            }
            // A CPU hog (C11): counted out as CPU-intensive until its item ends.
            Event::SeenHogging { pool, worker } => {
                self.act(Action::Hog { pool: small(pool), worker: self.worker(pool, worker)? })?;
            }
            Event::Finished { pool, worker, item } => {
                let i = self.item(item)?;
                let action = match self.rescuers.get(&(pool, worker)) {
                    Some(&wq) => Action::RescueDone { wq: small(wq) },
                    None => Action::Finish { pool: small(pool), worker: self.worker(pool, worker)? },
                };
                let w = self.worker(pool, worker)?;
                let runs = self.state.items[i].running == Some((small(pool), w));
                expect(runs, || format!("the spec does not run item {i} on worker {w} of pool {pool}"))?;
                self.act(action)?;
                self.restart(i);
            }
            Event::Manage { pool, worker } => {
                self.act(Action::Manage { pool: small(pool), worker: self.worker(pool, worker)? })?;
                self.managing[pool] = Some(worker);
            }
            Event::Created { pool, worker } => {
                let slots = self.workers[pool].len();
                expect(slots < usize::from(RESCUER) - 1, || {
                    format!("more than {slots} workers at once: beyond the spec's worker numbers")
                })?;
                self.act(Action::Create { pool: small(pool) })?;
                self.managing[pool] = None;
                self.workers[pool].push(worker);
            }
            Event::CreateFailed { pool, manager: true, at_limit: false } => {
                let manager = self.managing[pool].take().ok_or("a creation failed without a manager")?;
                let w = usize::from(self.worker(pool, manager)?);
                let before = (self.state.pools[pool].worklist.clone(), self.state.pools[pool].workers[w]);
                self.act(Action::CreateFails { pool: small(pool) })?;
                // The spec's manager took the first item itself: the
                // engine reports that take next.
                let after = (&self.state.pools[pool].worklist, self.state.pools[pool].workers[w]);
                if after.0 != &before.0 || after.1 != before.1 && after.1 != Worker::Idle {
                    self.quiet = Some((pool, manager));
                }
            }
            // At the pool's limit the engine's worker needs no spare (S2),
            // and a retry timer's failure changes nothing the spec sees.
            Event::CreateFailed { .. } | Event::Step { .. } => {}
            Event::Maydays { pool, ref sent } => {
                // One event per list the engine's firing added the pool to;
                // the spec's mayday adds it to all of them at once, at the
                // first.
                for id in sent {
                    let wq = *self.wqs.get(id).ok_or_else(|| format!("unknown workqueue {id}"))?;
                    if let Some(n) = self.unreported.iter().position(|&x| x == (pool, wq)) {
                        self.unreported.remove(n);
                        continue;
                    }
                    // R6: listed already (and not by this firing) means the
                    // engine put it on the list twice.
                    let listed = self.state.maydays[wq].contains(&small(pool));
                    expect(!listed, || format!("pool {pool} is on workqueue {wq}'s mayday list already"))?;
                    let before = self.state.maydays.clone();
                    self.act(Action::Mayday { pool: small(pool) })?;
                    let added = (0..before.len()).filter(|&x| self.state.maydays[x] != before[x]);
                    let added: Vec<(usize, usize)> = added.filter(|&x| x != wq).map(|x| (pool, x)).collect();
                    self.unreported.retain(|&(p, _)| p != pool);
                    self.unreported.extend(added);
                    let listed = self.state.maydays[wq].contains(&small(pool));
                    expect(listed, || format!("the spec did not call workqueue {wq}"))?;
                }
            }
            Event::RescuerPop { wq, pool } => {
                let n = *self.wqs.get(&wq).ok_or_else(|| format!("unknown workqueue {wq}"))?;
                self.act(Action::RescuerAttach { wq: small(n) })?;
                let at = self.state.rescuers[n].as_ref().map(|r| usize::from(r.pool));
                expect(at == Some(pool), || format!("the spec's rescuer took pool {at:?}"))?;
            }
            Event::RescuerAttach { wq, pool, worker } => {
                let n = *self.wqs.get(&wq).ok_or_else(|| format!("unknown workqueue {wq}"))?;
                self.rescuers.insert((pool, worker), n);
            }
            Event::RescuerDetach { wq, pool } => {
                let n = *self.wqs.get(&wq).ok_or_else(|| format!("unknown workqueue {wq}"))?;
                self.rescuers.retain(|&(p, _), &mut x| !(p == pool && x == n));
                self.act(Action::RescuerDetach { wq: small(n) })?;
            }
            Event::CpuDown { cpu: 0 } => {
                self.state.hotplug_left = 2;
                self.act(Action::CpuDown)?;
            }
            Event::CpuUp { cpu: 0 } => {
                self.state.hotplug_left = 1;
                self.act(Action::CpuUp)?;
            }
            Event::CpuDown { .. } | Event::CpuUp { .. } => return Err("the spec hotplugs CPU 0 only".into()),
            Event::Retired { pool, worker } => {
                let w = self.worker(pool, worker)?;
                self.act(Action::Retire { pool: small(pool), worker: w })?;
                // The spec's retired worker leaves; the later ones move up.
                if w != RESCUER {
                    self.workers[pool].remove(usize::from(w));
                }
            }
        }
        Ok(())
    }

    /// Restarts the instance numbering of every item that is neither
    /// pending nor running and that no running item waits for (nothing else
    /// refers to its instances in a replay).
    fn restart(&mut self, _finished: usize) {
        let s = &self.state;
        let quiet = |i: usize| s.items[i].pending == Pending::No && s.items[i].running.is_none();
        let awaited = |i: usize| {
            (0..s.items.len()).any(|j| self.config.items[j].1.awaited() == Some(i) && s.items[j].running.is_some())
        };
        let restart: Vec<usize> =
            (0..s.items.len()).filter(|&i| quiet(i) && !awaited(i) && s.items[i].cancelling == 0).collect();
        for i in restart {
            let item = &mut self.state.items[i];
            (item.queued, item.done, item.started, item.cancelled, item.run_instance) = (0, 0, 0, 0, 0);
        }
        for wq in 0..self.config.wqs.len() {
            if (0..self.state.items.len()).filter(|&j| self.config.items[j].0 == wq).all(|j| quiet_at(&self.state)(&j))
            {
                self.state.started_order[wq].clear();
                self.state.queued_order[wq].clear();
            }
        }
    }

    /// Where the replay stopped with work left: every item that was queued
    /// has run or was cancelled, and nothing runs (call at the end of a
    /// trace taken after the system went quiet).
    pub fn finished(&self) -> Result<(), String> {
        let busy: Vec<usize> = (0..self.state.items.len())
            .filter(|&i| self.state.items[i].pending != Pending::No || self.state.items[i].running.is_some())
            .collect();
        expect(busy.is_empty(), || format!("the spec still has items {busy:?} pending or running"))?;
        let unreported = &self.unreported;
        expect(unreported.is_empty(), || format!("the spec's maydays {unreported:?} (pool, workqueue) were never sent"))
    }
}

fn quiet_at(s: &State) -> impl Fn(&usize) -> bool + '_ {
    move |&i| s.items[i].pending == Pending::No && s.items[i].running.is_none()
}

fn expect(holds: bool, why: impl FnOnce() -> String) -> Result<(), String> {
    if holds {
        Ok(())
    } else {
        Err(why())
    }
}
