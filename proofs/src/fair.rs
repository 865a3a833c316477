//! Exhaustive exploration of a stateright [`Model`] with shortest safety
//! counterexamples and liveness under weak fairness, on the real (cyclic)
//! state graph.
//!
//! stateright's own checker keeps the *last* counterexample it finds and
//! its `eventually` is unsound on cycles, so this module explores the graph
//! itself:
//!
//! 1. [`explore`]: breadth first from the initial states, each state
//!    hashed and stored once (deduplicated), every transition kept as an
//!    edge labelled with its action and the action's fairness class; a
//!    state limit ([`StateLimitExceeded`]) instead of exhausting memory.
//!    Every `always` property of the model is evaluated on each state as
//!    it is discovered: the first state violating it is at the least
//!    depth (BFS), so the path to it is a shortest counterexample.
//! 2. [`Graph::fair_lasso`]: the liveness obligation "nothing stays
//!    pending forever" ([`Fair::pending`]) under weak fairness of the
//!    classes [`Fair::class`] names. A violation is a lasso: a path from an
//!    initial state to a cycle on which the obligation is pending in every
//!    state and which is weakly fair (every class enabled in every state of
//!    the cycle is taken on it), or a pending state where no fair class is
//!    enabled at all (the system may stop there: a stutter, an empty cycle).
//!
//! The fair-cycle search computes the strongly connected components
//! (Tarjan, iterative: graphs reach millions of states) of the subgraph of
//! pending states. A component *C* holds a weakly fair cycle iff for every
//! class *k* either an edge of class *k* lies inside *C* or some state of
//! *C* has *k* disabled: then the cycle that walks every state and edge of
//! *C* is fair, and otherwise *k* is enabled in every state of *C* and
//! never taken inside it, so no cycle within *C* (nor within any part of
//! it) is fair. (Under weak fairness no iteration is needed: removing the
//! states where the unfair class is enabled removes all of *C*.) Enabled
//! means: some edge of the class leaves the state in the whole graph.
//!
//! What is pending must be a property of the states the cycle stays in:
//! a cycle on which "some item is pending" holds could serve different
//! items in turn. The spec's and the refinement's cycles cannot (instance
//! counters only grow, so no cycle queues, starts or finishes anything),
//! so there "pending in every state of the cycle" is "the same instance
//! never served".

use stateright::{Expectation, Model};
use std::collections::{HashMap, VecDeque};
use std::fmt::Debug;
use std::hash::{BuildHasherDefault, Hash, Hasher};

/// A model with a liveness obligation and fairness classes.
pub trait Fair: Model {
    /// A fairness class: the actions of one actor (a worker, a timer, the
    /// rescuer, a waiter) that weak fairness is assumed for.
    type Class: Copy + Ord + Debug;

    /// The class of `action` taken in `state`; `None` for the environment
    /// (the user may stop at any time: no fairness is assumed for it).
    fn class(&self, state: &Self::State, action: &Self::Action) -> Option<Self::Class>;

    /// Whether an obligation is pending in `state` (something queued not yet
    /// run, a waiter not returned). States the check cannot judge (cut by
    /// an exploration bound) answer false.
    fn pending(&self, state: &Self::State) -> bool;
}

/// The exploration stopped at its state limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StateLimitExceeded {
    pub limit: usize,
}

impl std::fmt::Display for StateLimitExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "more than {} states: raise the limit or shrink the configuration", self.limit)
    }
}

impl std::error::Error for StateLimitExceeded {}

/// How to explore.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Refuse (with [`StateLimitExceeded`]) beyond this many states.
    pub max_states: usize,
    /// Keep every state and compare states on equal hashes (exact, about
    /// the states' size per state); otherwise deduplicate by the 64-bit
    /// hash alone, as stateright and TLC do (a collision, about n²/2⁶⁵ for
    /// n states, would merge two states).
    pub exact: bool,
    /// Stop at the first state that violates an `always` property (the
    /// graph is then partial: states not expanded are not judged for
    /// liveness, see [`Graph::complete`]).
    pub stop_at_violation: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options { max_states: 20_000_000, exact: false, stop_at_violation: false }
    }
}

/// A lasso: a path from an initial state to a cycle. An empty `cycle`
/// means the system may stop where `prefix` ends (no fair step is
/// enabled there).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lasso<A> {
    /// Which initial state the prefix starts from (its position in
    /// `init_states`).
    pub init: usize,
    pub prefix: Vec<A>,
    pub cycle: Vec<A>,
}

impl<A: Debug> std::fmt::Display for Lasso<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "prefix ({} steps):", self.prefix.len())?;
        for a in &self.prefix {
            writeln!(f, "  {a:?}")?;
        }
        if self.cycle.is_empty() {
            return writeln!(f, "then it stops: no fair step is enabled (a stutter)");
        }
        writeln!(f, "cycle ({} steps, back to where the prefix ends), repeated forever:", self.cycle.len())?;
        for a in &self.cycle {
            writeln!(f, "  {a:?}")?;
        }
        Ok(())
    }
}

/// The fair-cycle search's outcome.
#[derive(Clone, Debug)]
pub struct Liveness<A> {
    /// A violation, with the shortest prefix among all.
    pub lasso: Option<Lasso<A>>,
    /// Components of pending states that hold a cycle.
    pub cyclic: usize,
    /// Of those, the ones with no weakly fair cycle.
    pub unfair: usize,
    /// Components of the whole graph that hold a cycle.
    pub cycles: usize,
}

const NONE: u32 = u32::MAX;

struct Edge<A, C> {
    to: u32,
    class: Option<C>,
    action: A,
}

/// The explored graph.
pub struct Graph<M: Fair> {
    /// Edges of state `i`: `edges[start[i]..start[i + 1]]`.
    start: Vec<usize>,
    edges: Vec<Edge<M::Action, M::Class>>,
    /// BFS tree: the state each was discovered from (`NONE` for the
    /// initial states, `0..roots`) and the edge it was discovered by.
    parent: Vec<u32>,
    via: Vec<usize>,
    roots: usize,
    depth: Vec<u32>,
    pending: Vec<bool>,
    /// Per `always` property: its name and the first state violating it.
    violations: Vec<(&'static str, Option<u32>)>,
    complete: bool,
}

/// Hashes a state with fixed keys (the same fingerprint every run).
fn fingerprint<T: Hash>(value: &T) -> u64 {
    let mut hasher = Fold(0x243f_6a88_85a3_08d3);
    value.hash(&mut hasher);
    hasher.finish()
}

/// A fast 64-bit hasher for fingerprints: each word is mixed in by a
/// folded 64×64→128-bit multiply (as ahash's fallback does); SipHash took a
/// fifth of the exploration's time.
struct Fold(u64);

const MULTIPLE: u64 = 0x5851_f42d_4c95_7f2d;

fn fold(a: u64, b: u64) -> u64 {
    let full = u128::from(a) * u128::from(b);
    (full as u64) ^ ((full >> 64) as u64)
}

impl Hasher for Fold {
    fn finish(&self) -> u64 {
        fold(self.0, 0x1391_98a2_e037_0734).rotate_left(23) ^ self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            // The length keeps "a" and "a\0" apart.
            self.write_u64(u64::from_le_bytes(word) ^ ((rest.len() as u64) << 59));
        }
    }
    fn write_u8(&mut self, n: u8) {
        self.write_u64(u64::from(n));
    }
    fn write_u16(&mut self, n: u16) {
        self.write_u64(u64::from(n));
    }
    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = fold(self.0 ^ n, MULTIPLE);
    }
    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
}

/// The fingerprint is already a hash: the table uses it as is.
#[derive(Default)]
struct Identity(u64);

impl Hasher for Identity {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

type Table = HashMap<u64, u32, BuildHasherDefault<Identity>>;

/// The states seen: fingerprints, and in exact mode the states themselves
/// (a fingerprint shared by different states goes to `overflow`).
struct Seen<S> {
    table: Table,
    exact: Option<Vec<S>>,
    overflow: HashMap<u64, Vec<u32>>,
}

impl<S: Hash + Eq + Clone> Seen<S> {
    fn find(&self, fp: u64, state: &S) -> Option<u32> {
        let &first = self.table.get(&fp)?;
        let Some(states) = &self.exact else { return Some(first) };
        std::iter::once(first)
            .chain(self.overflow.get(&fp).into_iter().flatten().copied())
            .find(|&i| states[i as usize] == *state)
    }

    fn insert(&mut self, fp: u64, state: &S, index: u32) {
        if let Some(states) = &mut self.exact {
            states.push(state.clone());
            if self.table.contains_key(&fp) {
                self.overflow.entry(fp).or_default().push(index);
                return;
            }
        }
        self.table.insert(fp, index);
    }
}

/// Explores every state reachable from `model`'s initial states.
pub fn explore<M>(model: &M, options: Options) -> Result<Graph<M>, StateLimitExceeded>
where
    M: Fair,
    M::State: Hash + Eq + Clone,
    M::Action: Clone,
{
    let properties: Vec<_> =
        model.properties().into_iter().filter(|p| matches!(p.expectation, Expectation::Always)).collect();
    let mut g = Graph::<M> {
        start: Vec::new(),
        edges: Vec::new(),
        parent: Vec::new(),
        via: Vec::new(),
        roots: 0,
        depth: Vec::new(),
        pending: Vec::new(),
        violations: properties.iter().map(|p| (p.name, None)).collect(),
        complete: true,
    };
    let mut seen = Seen { table: Table::default(), exact: options.exact.then(Vec::new), overflow: HashMap::new() };
    let mut frontier: VecDeque<(u32, M::State)> = VecDeque::new();
    // A newly found state: number it, judge it, queue it.
    let discover = |g: &mut Graph<M>, seen: &mut Seen<M::State>, state: M::State, from: u32, via: usize| {
        let fp = fingerprint(&state);
        if let Some(i) = seen.find(fp, &state) {
            return Ok((i, None));
        }
        let i = g.parent.len();
        if i >= options.max_states.min(NONE as usize) {
            return Err(StateLimitExceeded { limit: options.max_states });
        }
        let i = i as u32;
        seen.insert(fp, &state, i);
        g.parent.push(from);
        g.via.push(via);
        g.depth.push(if from == NONE { 0 } else { g.depth[from as usize] + 1 });
        let inside = model.within_boundary(&state);
        g.pending.push(inside && model.pending(&state));
        for (n, p) in properties.iter().enumerate() {
            if g.violations[n].1.is_none() && !(p.condition)(model, &state) {
                g.violations[n].1 = Some(i);
            }
        }
        Ok((i, inside.then_some(state)))
    };
    for state in model.init_states() {
        if let (i, Some(state)) = discover(&mut g, &mut seen, state, NONE, usize::MAX)? {
            frontier.push_back((i, state));
        }
    }
    g.roots = g.parent.len();
    let mut actions = Vec::new();
    let mut expanded = 0u32;
    while let Some((i, state)) = frontier.pop_front() {
        if options.stop_at_violation && g.violations.iter().any(|v| v.1.is_some()) {
            g.complete = false;
            break;
        }
        // States are expanded in the order they were numbered, so each
        // one's edges follow the previous one's (states outside the
        // boundary, never queued, get none).
        while expanded < i {
            g.start.push(g.edges.len());
            expanded += 1;
        }
        g.start.push(g.edges.len());
        expanded += 1;
        actions.clear();
        model.actions(&state, &mut actions);
        for action in actions.drain(..) {
            let Some(next) = model.next_state(&state, action.clone()) else { continue };
            let class = model.class(&state, &action);
            let edge = g.edges.len();
            let (to, new) = discover(&mut g, &mut seen, next, i, edge)?;
            g.edges.push(Edge { to, class, action });
            if let Some(next) = new {
                frontier.push_back((to, next));
            }
        }
    }
    while (expanded as usize) < g.parent.len() {
        g.start.push(g.edges.len());
        if !g.complete {
            g.pending[expanded as usize] = false; // never expanded: not judged
        }
        expanded += 1;
    }
    g.start.push(g.edges.len());
    Ok(g)
}

impl<M: Fair> Graph<M>
where
    M::Action: Clone,
{
    /// Whether every reachable state was expanded (not stopped at a
    /// violation): only then does no fair cycle mean that none exists.
    pub fn complete(&self) -> bool {
        self.complete
    }

    /// Distinct states.
    pub fn states(&self) -> usize {
        self.parent.len()
    }

    /// Transitions.
    pub fn transitions(&self) -> usize {
        self.edges.len()
    }

    /// The greatest BFS depth (shortest distance from an initial state).
    pub fn max_depth(&self) -> usize {
        self.depth.iter().copied().max().unwrap_or(0) as usize
    }

    fn out(&self, v: u32) -> std::ops::Range<usize> {
        self.start[v as usize]..self.start[v as usize + 1]
    }

    /// The initial state a state descends from, and the actions of the
    /// shortest path to it.
    fn path_to(&self, mut v: u32) -> (usize, Vec<M::Action>) {
        let mut actions = Vec::new();
        while self.parent[v as usize] != NONE {
            actions.push(self.edges[self.via[v as usize]].action.clone());
            v = self.parent[v as usize];
        }
        actions.reverse();
        (v as usize, actions)
    }

    /// The `always` properties that fail, each with a shortest path (from
    /// initial state number `.1`) to a state violating it.
    pub fn violations(&self) -> Vec<(&'static str, usize, Vec<M::Action>)> {
        let found = self.violations.iter().filter_map(|&(name, v)| Some((name, v?)));
        found
            .map(|(name, v)| {
                let (init, path) = self.path_to(v);
                (name, init, path)
            })
            .collect()
    }

    /// The strongly connected components of the subgraph of the states
    /// `member` accepts (Tarjan's algorithm with an explicit stack): each
    /// member's component number, and the number of components.
    fn components(&self, member: &dyn Fn(u32) -> bool) -> (Vec<u32>, u32) {
        let n = self.states();
        let mut index = vec![NONE; n];
        let mut low = vec![0u32; n];
        let mut comp = vec![NONE; n];
        let mut stack: Vec<u32> = Vec::new();
        let mut calls: Vec<(u32, usize)> = Vec::new();
        let (mut next, mut comps) = (0u32, 0u32);
        for root in 0..n as u32 {
            if !member(root) || index[root as usize] != NONE {
                continue;
            }
            index[root as usize] = next;
            low[root as usize] = next;
            next += 1;
            stack.push(root);
            calls.push((root, self.start[root as usize]));
            while let Some(&mut (v, ref mut e)) = calls.last_mut() {
                if *e < self.start[v as usize + 1] {
                    let w = self.edges[*e].to;
                    *e += 1;
                    if !member(w) {
                        continue;
                    }
                    if index[w as usize] == NONE {
                        index[w as usize] = next;
                        low[w as usize] = next;
                        next += 1;
                        stack.push(w);
                        calls.push((w, self.start[w as usize]));
                    } else if comp[w as usize] == NONE {
                        // Visited and not yet in a component: on the stack.
                        low[v as usize] = low[v as usize].min(index[w as usize]);
                    }
                    continue;
                }
                calls.pop();
                if let Some(&(u, _)) = calls.last() {
                    low[u as usize] = low[u as usize].min(low[v as usize]);
                }
                if low[v as usize] == index[v as usize] {
                    while let Some(w) = stack.pop() {
                        comp[w as usize] = comps;
                        if w == v {
                            break;
                        }
                    }
                    comps += 1;
                }
            }
        }
        (comp, comps)
    }

    /// The classes enabled in state `v` (sorted, without repeats).
    fn enabled(&self, v: u32) -> Vec<M::Class> {
        let mut classes: Vec<M::Class> = self.edges[self.out(v)].iter().filter_map(|e| e.class).collect();
        classes.sort();
        classes.dedup();
        classes
    }

    /// A violation of the liveness obligation under weak fairness, with
    /// the shortest prefix among all violations: a fair cycle of pending
    /// states, or a pending state where no fair class is enabled.
    pub fn fair_lasso(&self) -> Option<Lasso<M::Action>> {
        self.liveness().lasso
    }

    /// The fair-cycle search: [`Graph::fair_lasso`]'s answer, and how many
    /// components of pending states hold a cycle and how many of those
    /// the fairness assumption rules out (none ruled out would mean the
    /// obligation holds without fairness).
    pub fn liveness(&self) -> Liveness<M::Action> {
        let (comp, comps) = self.components(&|v| self.pending[v as usize]);
        // Per component: its first state (least index, so least depth),
        // the classes enabled in all its states, those taken inside it,
        // and whether it has an edge inside (a cycle).
        struct Info<C> {
            entry: u32,
            always: Option<Vec<C>>,
            taken: Vec<C>,
            cyclic: bool,
        }
        let mut info: Vec<Info<M::Class>> =
            (0..comps).map(|_| Info { entry: NONE, always: None, taken: Vec::new(), cyclic: false }).collect();
        let mut best: Option<(u32, Option<u32>)> = None; // (entry, component or stutter)
        for v in 0..self.states() as u32 {
            if !self.pending[v as usize] {
                continue;
            }
            let enabled = self.enabled(v);
            if enabled.is_empty() {
                // States are visited in index order: the first is the nearest.
                if best.is_none() {
                    best = Some((v, None));
                }
            }
            let c = &mut info[comp[v as usize] as usize];
            if c.entry == NONE {
                c.entry = v;
            }
            c.always = Some(match c.always.take() {
                None => enabled,
                Some(always) => always.into_iter().filter(|k| enabled.binary_search(k).is_ok()).collect(),
            });
            for e in &self.edges[self.out(v)] {
                if self.pending[e.to as usize] && comp[e.to as usize] == comp[v as usize] {
                    c.cyclic = true;
                    if let Some(k) = e.class {
                        if let Err(at) = c.taken.binary_search(&k) {
                            c.taken.insert(at, k);
                        }
                    }
                }
            }
        }
        let (mut cyclic, mut unfair) = (0, 0);
        for (n, c) in info.iter().enumerate() {
            let fair = c.always.iter().flatten().all(|k| c.taken.binary_search(k).is_ok());
            cyclic += usize::from(c.cyclic);
            unfair += usize::from(c.cyclic && !fair);
            if c.cyclic && fair && best.is_none_or(|(entry, _)| c.entry < entry) {
                best = Some((c.entry, Some(n as u32)));
            }
        }
        let lasso = best.map(|(entry, component)| {
            let (init, prefix) = self.path_to(entry);
            let cycle = match component {
                None => Vec::new(),
                Some(n) => self.fair_cycle(entry, n, &comp),
            };
            Lasso { init, prefix, cycle }
        });
        Liveness { lasso, cyclic, unfair, cycles: self.cyclic_components() }
    }

    /// The components of the whole graph that hold a cycle (pending or not).
    fn cyclic_components(&self) -> usize {
        let (comp, comps) = self.components(&|_| true);
        let mut cyclic = vec![false; comps as usize];
        for v in 0..self.states() as u32 {
            if self.edges[self.out(v)].iter().any(|e| comp[e.to as usize] == comp[v as usize]) {
                cyclic[comp[v as usize] as usize] = true;
            }
        }
        cyclic.iter().filter(|&&c| c).count()
    }

    /// A cycle from `entry` through component `n` that is weakly fair: for
    /// each class enabled somewhere in the component it takes an edge of
    /// that class inside, or passes a state where the class is disabled.
    fn fair_cycle(&self, entry: u32, n: u32, comp: &[u32]) -> Vec<M::Action> {
        let inside = |v: u32| self.pending[v as usize] && comp[v as usize] == n;
        let members: Vec<u32> = (0..self.states() as u32).filter(|&v| inside(v)).collect();
        let mut classes: Vec<M::Class> = members.iter().flat_map(|&v| self.enabled(v)).collect();
        classes.sort();
        classes.dedup();
        // Waypoints: an edge (index) to take, or a state to pass.
        let mut waypoints: Vec<Result<usize, u32>> = Vec::new();
        for k in classes {
            let edge = members
                .iter()
                .flat_map(|&v| self.out(v))
                .find(|&e| self.edges[e].class == Some(k) && inside(self.edges[e].to));
            match edge {
                Some(e) => waypoints.push(Ok(e)),
                None => {
                    if let Some(&z) = members.iter().find(|&&z| self.enabled(z).binary_search(&k).is_err()) {
                        waypoints.push(Err(z));
                    }
                }
            }
        }
        let mut path: Vec<usize> = Vec::new();
        let mut at = entry;
        for waypoint in waypoints {
            match waypoint {
                Ok(e) => {
                    let from = self.source(e);
                    path.extend(self.inner_path(at, from, &inside));
                    path.push(e);
                    at = self.edges[e].to;
                }
                Err(z) => {
                    path.extend(self.inner_path(at, z, &inside));
                    at = z;
                }
            }
        }
        if path.is_empty() {
            // No class to serve: any edge inside will do.
            if let Some(e) = self.out(entry).find(|&e| inside(self.edges[e].to)) {
                path.push(e);
                at = self.edges[e].to;
            }
        }
        path.extend(self.inner_path(at, entry, &inside));
        path.into_iter().map(|e| self.edges[e].action.clone()).collect()
    }

    /// The state edge `e` leaves.
    fn source(&self, e: usize) -> u32 {
        (self.start.partition_point(|&s| s <= e) - 1) as u32
    }

    /// A shortest path (edge indices) from `a` to `b` through states
    /// `inside` accepts (both are inside; empty if `a == b`).
    fn inner_path(&self, a: u32, b: u32, inside: &dyn Fn(u32) -> bool) -> Vec<usize> {
        if a == b {
            return Vec::new();
        }
        let mut came: HashMap<u32, usize> = HashMap::new();
        let mut queue = VecDeque::from([a]);
        while let Some(v) = queue.pop_front() {
            for e in self.out(v) {
                let w = self.edges[e].to;
                if w == a || !inside(w) || came.contains_key(&w) {
                    continue;
                }
                came.insert(w, e);
                if w == b {
                    let mut path = vec![e];
                    let mut x = v;
                    while let Some(&e) = came.get(&x) {
                        path.push(e);
                        x = self.source(e);
                    }
                    path.reverse();
                    return path;
                }
                queue.push_back(w);
            }
        }
        Vec::new() // unreachable: a and b are in one component
    }
}

/// Replays `actions` from initial state `init` of `model`; `None` if an
/// action is not enabled where it is taken.
pub fn replay<M>(model: &M, init: usize, actions: &[M::Action]) -> Option<M::State>
where
    M: Model,
    M::Action: Clone + PartialEq,
{
    let mut state = model.init_states().into_iter().nth(init)?;
    let mut enabled = Vec::new();
    for action in actions {
        enabled.clear();
        model.actions(&state, &mut enabled);
        if !enabled.contains(action) {
            return None;
        }
        state = model.next_state(&state, action.clone())?;
    }
    Some(state)
}

#[cfg(test)]
mod tests {
    use super::*;
    use stateright::Property;

    /// A toy: a flag and a `done` bit. Spin (class 0, where the flag is
    /// clear) changes nothing; Toggle (class 1) flips the flag; Finish
    /// (class 2, or the environment's) sets `done`, where the flag is
    /// clear. The obligation: not done.
    struct Toy {
        spin: bool,
        toggle: bool,
        finisher_fair: bool,
    }

    #[derive(Clone, Debug, PartialEq, Eq, Hash)]
    struct S {
        flag: bool,
        done: bool,
    }

    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    enum A {
        Spin,
        Toggle,
        Finish,
    }

    impl Model for Toy {
        type State = S;
        type Action = A;
        fn init_states(&self) -> Vec<S> {
            vec![S { flag: false, done: false }]
        }
        fn actions(&self, s: &S, out: &mut Vec<A>) {
            if s.done {
                return;
            }
            if self.spin && !s.flag {
                out.push(A::Spin);
            }
            if self.toggle {
                out.push(A::Toggle);
            }
            if !s.flag {
                out.push(A::Finish);
            }
        }
        fn next_state(&self, s: &S, a: A) -> Option<S> {
            let mut s = s.clone();
            match a {
                A::Spin => {}
                A::Toggle => s.flag = !s.flag,
                A::Finish => s.done = true,
            }
            Some(s)
        }
    }

    impl Fair for Toy {
        type Class = u8;
        fn class(&self, _: &S, a: &A) -> Option<u8> {
            match a {
                A::Spin => Some(0),
                A::Toggle => Some(1),
                A::Finish => self.finisher_fair.then_some(2),
            }
        }
        fn pending(&self, s: &S) -> bool {
            !s.done
        }
    }

    fn live(toy: &Toy) -> Liveness<A> {
        let exact =
            explore(toy, Options { max_states: 100, exact: true, ..Options::default() }).expect("small").liveness();
        let hashed = explore(toy, Options { max_states: 100, ..Options::default() }).expect("small").liveness();
        assert_eq!((exact.cyclic, exact.unfair, &exact.lasso), (hashed.cyclic, hashed.unfair, &hashed.lasso));
        exact
    }

    /// The lasso replays, its cycle returns to where the prefix ends, and
    /// the obligation is pending all along it; returns the cycle's states.
    fn states_of<M>(model: &M, lasso: &Lasso<M::Action>) -> Vec<M::State>
    where
        M: Fair,
        M::State: Clone + PartialEq + Debug,
        M::Action: Clone + PartialEq,
    {
        let entry = replay(model, lasso.init, &lasso.prefix).expect("the prefix replays");
        let mut states = vec![entry.clone()];
        for n in 1..=lasso.cycle.len() {
            let path: Vec<_> = lasso.prefix.iter().chain(&lasso.cycle[..n]).cloned().collect();
            states.push(replay(model, lasso.init, &path).expect("the cycle replays"));
        }
        assert!(states.iter().all(|s| model.pending(s)));
        assert_eq!(states.last(), Some(&entry), "the cycle returns to its first state");
        states
    }

    #[test]
    fn a_cycle_starving_a_continuously_enabled_class_is_unfair() {
        // Spinning forever while Finish is enabled throughout: unfair.
        let l = live(&Toy { spin: true, toggle: false, finisher_fair: true });
        assert_eq!((l.lasso, l.cyclic, l.unfair, l.cycles), (None, 1, 1, 1));
    }

    #[test]
    fn without_fairness_for_the_finisher_spinning_is_a_livelock() {
        let toy = Toy { spin: true, toggle: false, finisher_fair: false };
        let l = live(&toy);
        let lasso = l.lasso.expect("a fair cycle");
        assert_eq!((lasso.prefix.as_slice(), lasso.cycle.as_slice()), (&[][..], &[A::Spin][..]));
        states_of(&toy, &lasso);
    }

    #[test]
    fn a_state_where_nothing_fair_is_enabled_is_a_stutter() {
        let l = live(&Toy { spin: false, toggle: false, finisher_fair: false });
        let lasso = l.lasso.expect("stuck");
        assert!(lasso.prefix.is_empty() && lasso.cycle.is_empty());
        assert_eq!(l.cyclic, 0);
    }

    #[test]
    fn the_cycle_printed_is_fair_itself() {
        // Finish is enabled where the flag is clear; the component holds
        // both flags, so it is fair, but the Spin self-loop alone is not:
        // the cycle printed must take Spin and Toggle and pass a set flag.
        let toy = Toy { spin: true, toggle: true, finisher_fair: true };
        let l = live(&toy);
        let lasso = l.lasso.expect("a fair cycle");
        let states = states_of(&toy, &lasso);
        assert!(lasso.cycle.contains(&A::Spin) && lasso.cycle.contains(&A::Toggle));
        assert!(states.iter().any(|s| s.flag), "passes a state where Finish is disabled");
        assert_eq!((l.cyclic, l.unfair), (1, 0));
    }

    /// A ring of `len` states, each the next one's predecessor; `exit`
    /// leaves the ring for a final state (environment).
    struct Ring {
        len: u32,
    }

    impl Model for Ring {
        type State = u32;
        type Action = bool;
        fn init_states(&self) -> Vec<u32> {
            vec![0]
        }
        fn actions(&self, s: &u32, out: &mut Vec<bool>) {
            if *s < self.len {
                out.extend([false, true]);
            }
        }
        fn next_state(&self, s: &u32, exit: bool) -> Option<u32> {
            Some(if exit { self.len } else { (s + 1) % self.len })
        }
        fn properties(&self) -> Vec<Property<Self>> {
            vec![Property::always("below 5", |_, s: &u32| *s < 5)]
        }
    }

    impl Fair for Ring {
        type Class = ();
        fn class(&self, _: &u32, exit: &bool) -> Option<()> {
            (!exit).then_some(())
        }
        fn pending(&self, s: &u32) -> bool {
            *s < self.len
        }
    }

    /// 300,000 states in one cycle: the iterative Tarjan does not recurse.
    #[test]
    fn a_long_cycle_needs_no_recursion() {
        let g = explore(&Ring { len: 300_000 }, Options::default()).expect("fits");
        let l = g.liveness();
        let lasso = l.lasso.expect("the ring is a fair cycle");
        assert_eq!((lasso.prefix.len(), lasso.cycle.len(), l.cyclic, l.cycles), (0, 300_000, 1, 1));
        assert_eq!(g.max_depth(), 299_999, "the last state of the ring is the farthest");
    }

    #[test]
    fn safety_counterexamples_are_shortest() {
        let g = explore(&Ring { len: 9 }, Options::default()).expect("fits");
        // The state 9 (outside the ring) is one step from 0; 5 is five.
        let v = g.violations();
        assert_eq!(v.len(), 1);
        assert_eq!((v[0].0, v[0].2.len()), ("below 5", 1));
        assert_eq!(v[0].2, vec![true]);
    }

    #[test]
    fn stopping_at_a_violation_leaves_the_rest_unjudged() {
        let g = explore(&Ring { len: 9 }, Options { stop_at_violation: true, ..Options::default() }).expect("fits");
        assert!(!g.complete());
        assert_eq!((g.violations().len(), g.states()), (1, 3));
        assert!(g.liveness().lasso.is_none(), "the states not expanded are not stuck");
    }

    #[test]
    fn the_state_limit_is_an_error() {
        let err = explore(&Ring { len: 100 }, Options { max_states: 50, ..Options::default() }).err();
        assert_eq!(err, Some(StateLimitExceeded { limit: 50 }));
    }
}
