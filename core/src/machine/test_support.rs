//! Helpers shared by the machine's tests.

use super::pool::{PoolState, WorkerState, WqId, WORKER_PREP};
use super::Queued;
use core::time::Duration;

/// A test entry: item key and workqueue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Item(pub usize, pub WqId);

impl Queued for Item {
    fn key(&self) -> usize {
        self.0
    }
    fn wq(&self) -> WqId {
        self.1
    }
}

/// A test entry for the pool section: item key, workqueue, colour.
pub(crate) type Ent = super::section::PlainEntry;

/// A pool with `idle` idle workers (ids `0..idle`, the last most recently
/// idle), all last active at `at`.
pub(crate) fn pool_with_idle<E>(idle: usize, at: Duration) -> PoolState<E> {
    let mut pool = PoolState::default();
    for _ in 0..idle {
        let id = pool.next_id();
        pool.workers.insert(id, WorkerState::new(WORKER_PREP, at, true));
        pool.nr_workers += 1;
        let _ = pool.worker_enter_idle(id, at);
    }
    pool
}
