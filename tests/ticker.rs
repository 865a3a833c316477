//! Shared by the async tests (`#[path]`-included; not a test target): a
//! wait awaited on tokio's current-thread runtime beside a ticking task
//! that must keep running meanwhile.

use cmwq_tests::Gate;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

/// Ticks the ticker must make before the gate opens.
pub const TICKS: usize = 20;

/// Awaits `body`, a wait that cannot end before `gate` opens, on a tokio
/// current-thread runtime beside a ticker and an opener that opens `gate`
/// once the ticker has ticked [`TICKS`] times; asserts that the ticker got
/// there (it only can if awaiting `body` left the executor thread free).
pub fn with_ticker<F: Future>(gate: &Arc<Gate>, body: F) -> F::Output {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
    runtime.block_on(async {
        let ticks = Arc::new(AtomicUsize::new(0));
        let ticker = {
            let ticks = ticks.clone();
            tokio::spawn(async move {
                loop {
                    ticks.fetch_add(1, SeqCst);
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            })
        };
        let opener = {
            let (ticks, gate) = (ticks.clone(), gate.clone());
            tokio::spawn(async move {
                while ticks.load(SeqCst) < TICKS {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                gate.open();
            })
        };
        let out = body.await;
        assert!(ticks.load(SeqCst) >= TICKS, "the ticker ran while the wait was pending");
        opener.await.unwrap();
        ticker.abort();
        out
    })
}
