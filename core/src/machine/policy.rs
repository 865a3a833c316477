//! Concurrency-management policy: pure predicates over a pool's counters.
//!
//! These are the kernel's "policy functions" (`need_more_worker`,
//! `may_start_working`, `keep_working`, `need_to_create_worker`,
//! `too_many_workers`), written as one-liners over plain numbers so that
//! proofs and models can check them directly. The mechanism in `worker.rs`
//! and `manager.rs` only ever asks these questions.
//!
//! The kernel's predicates compare `nr_running` with 1: a pool wants one
//! running worker. Here each pool has a *concurrency target*
//! ([`PoolCounts::concurrency`]): 1 for a CPU's pool (the kernel's rule),
//! the CPU count for the unbound pool (a departure: the kernel does not
//! manage unbound pools at all, which starts a worker per waiting item).

/// Kernel `MAX_IDLE_WORKERS_RATIO`: one idle worker per this many busy ones
/// may stay beyond the [`MIN_IDLE_WORKERS`] always kept.
pub const MAX_IDLE_WORKERS_RATIO: usize = 4;

/// Idle workers always kept (beyond the ratio) so that a blocked worker can
/// be replaced at once.
pub const MIN_IDLE_WORKERS: usize = 2;

/// The counters the policy looks at, copied out of the locked pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolCounts {
    /// Items on the pool's worklist.
    pub pending: usize,
    /// Workers counted as running (`nr_running`).
    pub running: usize,
    /// Idle workers (`nr_idle`).
    pub idle: usize,
    /// All workers (`nr_workers`).
    pub workers: usize,
    /// Whether a manager is active (it counts as idle for culling).
    pub managing: bool,
    /// The concurrency target: workers that may count as running before
    /// waiting items wait for one of them (at least 1).
    pub concurrency: usize,
}

/// Is there work and fewer workers running than the target, so that a
/// worker must be woken? With target 1, the kernel's rule: nobody runs.
pub fn need_more_worker(c: PoolCounts) -> bool {
    c.pending > 0 && c.running < c.concurrency
}

/// Can a worker start processing, i.e. is a spare idle worker left to take
/// over if it blocks?
pub fn may_start_working(c: PoolCounts) -> bool {
    c.idle > 0
}

/// Should a worker that just finished an item take another one? Yes while
/// work is pending and at most the target are running, this worker
/// included (target 1, the kernel's rule: only this worker runs).
pub fn keep_working(c: PoolCounts) -> bool {
    c.pending > 0 && c.running <= c.concurrency
}

/// Must the manager create a worker: a worker is needed and nobody idles?
pub fn need_to_create_worker(c: PoolCounts) -> bool {
    need_more_worker(c) && !may_start_working(c)
}

/// Are there more idle workers than the policy keeps (two, plus one per
/// `MAX_IDLE_WORKERS_RATIO` busy workers)? The manager counts as idle.
pub fn too_many_workers(c: PoolCounts) -> bool {
    let idle = c.idle + usize::from(c.managing);
    let busy = c.workers.saturating_sub(idle);
    idle > MIN_IDLE_WORKERS && (idle - MIN_IDLE_WORKERS) * MAX_IDLE_WORKERS_RATIO >= busy
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(pending: usize, running: usize, idle: usize, workers: usize) -> PoolCounts {
        PoolCounts { pending, running, idle, workers, managing: false, concurrency: 1 }
    }

    fn target(concurrency: usize, c: PoolCounts) -> PoolCounts {
        PoolCounts { concurrency, ..c }
    }

    #[test]
    fn wake_only_when_nobody_runs() {
        assert!(need_more_worker(counts(1, 0, 1, 2)));
        assert!(!need_more_worker(counts(1, 1, 1, 2)), "a running worker will get to it");
        assert!(!need_more_worker(counts(0, 0, 1, 2)), "nothing to do");
    }

    #[test]
    fn keep_working_allows_one_runner() {
        assert!(keep_working(counts(1, 1, 0, 1)));
        assert!(!keep_working(counts(1, 2, 0, 2)), "another runner exists; yield the CPU");
        assert!(!keep_working(counts(0, 1, 0, 1)));
    }

    #[test]
    fn a_target_of_two_wakes_and_keeps_two_runners() {
        assert!(need_more_worker(target(2, counts(1, 1, 1, 3))), "one runs, a second may");
        assert!(!need_more_worker(target(2, counts(1, 2, 1, 3))), "two run: the target");
        assert!(keep_working(target(2, counts(1, 2, 0, 2))), "this worker and one other");
        assert!(!keep_working(target(2, counts(1, 3, 0, 3))), "a surplus runner yields");
        assert!(need_to_create_worker(target(2, counts(1, 1, 0, 2))));
        assert!(!need_to_create_worker(target(2, counts(1, 2, 0, 2))));
    }

    #[test]
    fn create_only_without_spare() {
        assert!(need_to_create_worker(counts(1, 0, 0, 1)));
        assert!(!need_to_create_worker(counts(1, 0, 1, 2)));
        assert!(may_start_working(counts(0, 0, 1, 1)));
    }

    #[test]
    fn idle_ratio_matches_kernel() {
        // Two idle workers are always kept.
        assert!(!too_many_workers(counts(0, 0, 2, 2)));
        // Three idle, none busy: (3-2)*4 >= 0.
        assert!(too_many_workers(counts(0, 0, 3, 3)));
        // Three idle, four busy: 4 >= 4 -> too many; five busy -> fine.
        assert!(too_many_workers(counts(0, 4, 3, 7)));
        assert!(!too_many_workers(counts(0, 5, 3, 8)));
        // The manager counts as idle.
        let mut c = counts(0, 0, 2, 3);
        c.managing = true;
        assert!(too_many_workers(c));
    }
}
