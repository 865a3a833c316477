//! Seeded bugs: deliberate mistakes that the models in `models/` must
//! catch. A model that no bug can make fail proves nothing.
//!
//! They exist only with the `seeded-bugs` feature (which only `models/`
//! enables) and are switched on per system through
//! `Config::seeded_bugs`; without the feature every check is a
//! constant `false` and compiles away.

/// A deliberate bug that can be switched on in a model run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SeededBug {
    /// A worker entering `blocking()` does not wake an idle worker.
    NoWakeOnSleep,
    /// Queueing skips the non-reentrancy lookup on the item's last pool.
    SkipNonReentrancyLookup,
    /// A worker does not defer an item that another worker of its pool is
    /// already running (the collision check).
    SkipCollisionCheck,
    /// PENDING is cleared after the function instead of before it.
    ClearPendingAfterRun,
    /// Finishing an item never reports its flush colour as flushed.
    SkipFlushColorDecrement,
    /// Inactive items are activated newest first.
    LifoActivation,
    /// Cancelling an inactive item frees an active slot (the kernel bug
    /// fixed in 2010).
    CancelInactiveDecrementsActive,
    /// A worker starts working without first creating a spare worker when
    /// none is idle (`may_start_working` ignored).
    NoSpareWorker,
    /// A worker leaving `blocking()` is counted as running twice.
    DoubleCountRunning,
    /// `cancel_sync` does not wait for the running instance.
    CancelSyncSkipsWait,
    /// `flush_work` does not wait for a running instance.
    FlushWorkIgnoresRunning,
    /// A worker keeps taking items while another worker runs
    /// (`keep_working` ignores `nr_running`).
    KeepWorkingIgnoresRunners,
    /// The mayday timer never calls a rescuer.
    NoMayday,
    /// A rescuer leaves a pool without waking an idle worker for the items
    /// its completions activated.
    RescuerLeavesWithoutWake,
    /// A mayday puts a pool-workqueue on the list even if it is there.
    DuplicateMayday,
    /// A stopped rescuer exits without emptying its mayday list.
    RescuerExitsBeforeDraining,
    /// The trustee takes charge of an offline CPU's pool without kicking
    /// it, skipping the items that waited behind a worker that no longer
    /// counts as running.
    TrusteeSkipsItem,
    /// Rebinding a pool on `cpu_up` drops its inactive items.
    RebindLosesInactive,
    /// An offline pool's busy workers keep counting in `nr_running`.
    OfflinePoolCountsRunning,
    /// `cpu_down` waits for the offline pools to drain.
    CpuDownWaitsForDrain,
    /// A delayed queueing is accepted without being counted where destroy
    /// sees it (the order before the acceptance gate): destroy can take the
    /// pool-workqueues away under an item it already accepted.
    DelayedAcceptedUncounted,
    /// A plain `queue` that spreads to another CPU's pool skips the
    /// non-reentrancy redirect to the pool where the item still runs.
    SpreadSkipsRedirect,
    /// Queueing's one-section fast path inserts the item into the chosen
    /// pool even when it last ran on another pool, skipping QU4's probe.
    FastPathIgnoresLastPool,
    /// The policy ignores a pool's concurrency target and wants one running
    /// worker everywhere: the unbound pool runs one item at a time.
    UnboundTargetIgnored,
    /// A pool section does not begin by splicing its inbox: only a worker
    /// out of items, and closing the inbox, move what queueings left there
    /// onto the pool.
    SectionSkipsSplice,
    /// Closing a pool's inbox (the pool fell below its concurrency target)
    /// leaves what queueings left there in it.
    InboxCloseSkipsSplice,
    /// Destroy and an orphan's finalization judge a pool-workqueue empty
    /// without taking the inbox lock first (the inbox's hint only).
    DestroySkipsInboxSplice,
    /// A cancel that finds its item marked queued on a pool does not
    /// splice that pool's inbox again under the item's lock: a queueing
    /// that left the item after the section's first splice is not seen.
    CancelSkipsResplice,
    /// The monitor's "seen asleep" (rule M32) is applied whatever run it
    /// was made in: a worker that has moved on to another item is taken
    /// out of the running count.
    StaleDetection,
    /// A worker seen asleep by the monitor stays out of the running count
    /// after it finishes its item (rule M33 skipped at M9's end).
    FinishKeepsDetection,
    /// A worker seen asleep by the monitor wakes nobody (rule M32 without
    /// rule M10's wakeup).
    NoWakeOnDetect,
    /// The monitor takes a worker inside a blocking section out of the
    /// running count a second time (a count of its own instead of rule
    /// M1's recount).
    DetectWhileBlocked,
    /// The monitor's "seen hogging" (rule M34) is applied whatever run it
    /// was made in: the next item of a worker that has moved on is taken
    /// out of the running count.
    StaleHog,
    /// A worker seen hogging the CPU wakes nobody (rule M34 without its
    /// wakeup): the items behind a CPU-bound one wait for its end.
    NoWakeOnHog,
}

impl SeededBug {
    /// Every seeded bug.
    pub const ALL: [SeededBug; 34] = [
        SeededBug::NoWakeOnSleep,
        SeededBug::SkipNonReentrancyLookup,
        SeededBug::SkipCollisionCheck,
        SeededBug::ClearPendingAfterRun,
        SeededBug::SkipFlushColorDecrement,
        SeededBug::LifoActivation,
        SeededBug::CancelInactiveDecrementsActive,
        SeededBug::NoSpareWorker,
        SeededBug::DoubleCountRunning,
        SeededBug::CancelSyncSkipsWait,
        SeededBug::FlushWorkIgnoresRunning,
        SeededBug::KeepWorkingIgnoresRunners,
        SeededBug::NoMayday,
        SeededBug::RescuerLeavesWithoutWake,
        SeededBug::DuplicateMayday,
        SeededBug::RescuerExitsBeforeDraining,
        SeededBug::TrusteeSkipsItem,
        SeededBug::RebindLosesInactive,
        SeededBug::OfflinePoolCountsRunning,
        SeededBug::CpuDownWaitsForDrain,
        SeededBug::DelayedAcceptedUncounted,
        SeededBug::SpreadSkipsRedirect,
        SeededBug::FastPathIgnoresLastPool,
        SeededBug::UnboundTargetIgnored,
        SeededBug::SectionSkipsSplice,
        SeededBug::InboxCloseSkipsSplice,
        SeededBug::DestroySkipsInboxSplice,
        SeededBug::CancelSkipsResplice,
        SeededBug::StaleDetection,
        SeededBug::FinishKeepsDetection,
        SeededBug::NoWakeOnDetect,
        SeededBug::DetectWhileBlocked,
        SeededBug::StaleHog,
        SeededBug::NoWakeOnHog,
    ];

    /// The bug's bit in `Config::seeded_bugs`.
    pub const fn bit(self) -> u64 {
        1 << self as u64
    }
}
