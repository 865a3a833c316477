//! A std program using cmwq: a system of its own, a workqueue whose items
//! block (declared with `cmwq::blocking`), an ordered log, and one-shot
//! jobs returning values. `cargo run --release -p cmwq --example
//! std_program`; `cargo test` runs it too (its test calls `run`).

use cmwq::{System, Work, Workqueue};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The program; returns the lines it logged, in order.
fn run() -> Result<Vec<String>, Box<dyn std::error::Error>> {
    let system = System::builder().cpus(2).build()?;
    let io = Workqueue::builder("io").max_active(8).build(&system)?;
    let log = Workqueue::builder("log").ordered().build(&system)?;
    let lines = Arc::new(Mutex::new(Vec::new()));

    // Items that block: each sleep is declared, so the pool starts another
    // worker and the items behind it run meanwhile.
    let fetched = Arc::new(AtomicUsize::new(0));
    let fetch = {
        let fetched = fetched.clone();
        Work::new(move || {
            cmwq::blocking(|| std::thread::sleep(Duration::from_millis(5)));
            fetched.fetch_add(1, Ordering::SeqCst);
        })
    };
    io.queue_on(0, &fetch)?;
    // Ok(false) if still pending (coalesced), Ok(true) if it had started:
    // then it runs once more.
    let again = io.queue_on(1, &fetch)?;

    // Jobs return values; the ordered workqueue keeps their order.
    let sizes: Vec<_> = (1..=4u64).map(|n| io.spawn(move || n * 1024)).collect::<Result<_, _>>()?;
    for size in sizes {
        let size = size.join()?;
        let lines = lines.clone();
        log.spawn(move || lines.lock().expect("log lock").push(format!("read {size} bytes")))?;
    }
    io.flush()?;
    log.flush()?;
    let expected = if again { 2 } else { 1 };
    let fetches = fetched.load(Ordering::SeqCst);
    lines.lock().expect("log lock").push(format!("fetched as queued: {}", fetches == expected));
    let lines = lines.lock().expect("log lock").clone();
    Ok(lines)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    for line in run()? {
        println!("{line}");
    }
    Ok(())
}

#[test]
fn the_program_runs() {
    let lines = run().expect("runs");
    assert_eq!(
        lines,
        ["read 1024 bytes", "read 2048 bytes", "read 3072 bytes", "read 4096 bytes", "fetched as queued: true"]
    );
}
