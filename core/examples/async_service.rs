//! An async service on tokio's current-thread runtime that hands blocking
//! work to cmwq and awaits it: each request becomes a job on a workqueue
//! (`Workqueue::spawn`, awaited as a `Future`), while a heartbeat task
//! keeps ticking on the one executor thread; shutdown awaits a flush of
//! the workqueue (`flush_async`). `cargo run --release -p cmwq --example
//! async_service`; `cargo test` runs it too.

use cmwq::{System, Workqueue};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Serves `requests` requests; returns (responses, heartbeats seen while
/// the requests were in flight).
fn run(requests: u64) -> Result<(Vec<u64>, usize), Box<dyn std::error::Error>> {
    let system = System::builder().cpus(2).build()?;
    let handlers = Workqueue::builder("handlers").max_active(4).build(&system)?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build()?;
    runtime.block_on(async move {
        let beats = Arc::new(AtomicUsize::new(0));
        let heartbeat = {
            let beats = beats.clone();
            tokio::spawn(async move {
                loop {
                    beats.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            })
        };
        // Each request: a blocking computation on a cmwq worker.
        let mut jobs = Vec::new();
        for request in 0..requests {
            jobs.push(handlers.spawn(move || {
                cmwq::sleep(Duration::from_millis(10));
                request * request
            })?);
        }
        let mut responses = Vec::new();
        for job in jobs {
            responses.push(job.await?);
        }
        handlers.flush_async()?.await;
        let seen = beats.load(Ordering::SeqCst);
        heartbeat.abort();
        Ok((responses, seen))
    })
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (responses, beats) = run(8)?;
    println!("responses {responses:?}; the heartbeat ticked {beats} times meanwhile");
    Ok(())
}

#[test]
fn the_service_answers_while_the_heartbeat_ticks() {
    let (responses, beats) = run(8).expect("runs");
    assert_eq!(responses, (0..8u64).map(|n| n * n).collect::<Vec<_>>());
    // 8 requests of 10 ms on 4 active handlers take at least 20 ms: a
    // heartbeat that never got the executor thread would read 1.
    assert!(beats > 1, "the heartbeat did not run while requests were awaited");
}
