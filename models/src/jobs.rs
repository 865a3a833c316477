//! One-shot jobs (`Workqueue::spawn`, `JobHandle`) under the checkers.

use crate::scenarios::{system, workqueue, Counter};
use crate::{FaultPlan, ModelPlatform};
use cmwq::JobError;

/// W1 W6 for jobs: a `cancel` races the job's start. Exactly one of them
/// wins: `cancel` returned true and the function never ran (`join` says
/// cancelled), or it returned false and the function ran once (`join`
/// returns its value). `join` returns in every schedule (no lost wakeup of
/// the handle).
pub fn job_cancel_racing_start<P: ModelPlatform>(bugs: u64) {
    let system = system(P::with_faults(FaultPlan::default()), 1, 2, bugs);
    let wq = workqueue(&system, 0);
    let runs = Counter::<P>::new();
    let job = {
        let runs = runs.clone();
        wq.spawn(move || {
            runs.inc();
            7
        })
        .expect("spawned")
    };
    let cancelled = job.cancel();
    let outcome = job.join();
    if cancelled {
        assert_eq!(outcome, Err(JobError::Cancelled));
        wq.flush().unwrap();
        assert_eq!(runs.get(), 0, "a cancelled job ran");
    } else {
        assert_eq!(outcome, Ok(7));
        assert_eq!(runs.get(), 1, "a job ran other than once");
    }
}

/// F1 for jobs: a panicking job comes back from `join` as an error, and
/// the workqueue has counted the panic by then, in every schedule.
pub fn job_panic_counted_before_join<P: ModelPlatform>(bugs: u64) {
    let system = system(P::with_faults(FaultPlan::default()), 1, 2, bugs);
    let wq = workqueue(&system, 0);
    let job = wq.spawn(|| -> u8 { panic!("model job panics") }).expect("spawned");
    let outcome = job.join();
    assert_eq!(outcome, Err(JobError::Panicked { message: "model job panics".to_string() }));
    assert_eq!(wq.panic_count(), 1, "join returned before the panic was counted");
}
