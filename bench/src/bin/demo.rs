//! Demo of the seed's scenario (Herrenschmidt 2008): work items that block
//! must not hold up the items queued behind them. Prints what happened on
//! cmwq and on a fixed pool of the same size.

use cmwq_bench::{seed_on_cmwq_blocking, seed_on_fixed_pool, Blocking, SeedOutcome};
use std::time::Duration;

fn report(name: &str, outcome: &SeedOutcome) {
    println!("{name}:");
    println!("  items queued:             {}", outcome.queued);
    println!("  completed on their own:   {}", outcome.completed);
    println!("  threads used (CPU 0 pool): {}", outcome.threads);
    match outcome.short_wait {
        Some(wait) => println!("  short item waited:        {wait:?}"),
        None => println!("  short item waited:        never ran; the pool stalled until rescued"),
    }
}

fn main() {
    let cpus = 1;
    let blockers = 4;
    let patience = Duration::from_secs(2);
    println!("Seed scenario on {cpus} CPU: {blockers} items block until a short item queued after them has run.\n");
    report(
        "cmwq, the items block inside cmwq::blocking()",
        &seed_on_cmwq_blocking(cpus, blockers, patience, Blocking::Annotated),
    );
    println!();
    report(
        "cmwq, the items block in a plain wait (seen by the blocking monitor)",
        &seed_on_cmwq_blocking(cpus, blockers, patience, Blocking::Unannotated),
    );
    println!();
    report(
        "cmwq, plain waits, blocking detection off",
        &seed_on_cmwq_blocking(cpus, blockers, patience, Blocking::UnannotatedUndetected),
    );
    println!();
    report(
        &format!("fixed pool of {cpus} thread(s) over crossbeam-channel"),
        &seed_on_fixed_pool(cpus, blockers, patience),
    );
    println!(
        "\ncmwq starts another worker the moment a running item blocks: at once inside blocking(), \
         within about a millisecond per blocked item for a plain wait (Linux: the monitor reads /proc), never with detection off."
    );
}
