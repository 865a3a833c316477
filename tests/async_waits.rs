//! The async forms of the library's waits (`Work::flush_async`,
//! `Work::cancel_sync_async`, `Workqueue::flush_async`,
//! `Workqueue::drain_async`, and `DelayedWork`'s): under tokio's
//! current-thread runtime a ticking task keeps running while each is
//! pending (the item waited for cannot finish until the ticker has ticked
//! 20 times, so a wait that blocked the executor thread would never
//! return); the semantics match the blocking forms; self-waits are refused
//! at the call; a future dropped while pending leaves everything working.
//! No timing assertions: a lost wakeup or a deadlock shows up as a hang.

use cmwq::{DelayedWork, QueueError, WaitError, Work, Workqueue};
use cmwq_tests::{system, system_holding, wait_until, wq, Gate};
use std::future::Future;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{mpsc, Arc};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

#[path = "ticker.rs"]
mod ticker;
use ticker::with_ticker;

/// A waker that counts its wakes.
#[derive(Default)]
struct CountingWaker(AtomicUsize);

impl Wake for CountingWaker {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, SeqCst);
    }
}

/// Polls `future` once with a counting waker.
fn poll_once<F: Future + Unpin>(future: &mut F) -> Poll<F::Output> {
    let waker = Waker::from(Arc::new(CountingWaker::default()));
    Pin::new(future).poll(&mut Context::from_waker(&waker))
}

/// The output of a wait that must be ready at its first poll.
fn ready_now<F: Future + Unpin>(mut future: F) -> F::Output {
    match poll_once(&mut future) {
        Poll::Ready(out) => out,
        Poll::Pending => panic!("the wait was expected to be ready at once"),
    }
}

/// A minimal executor for one future on the calling thread (parks between
/// polls), for threads other than the runtime's.
fn block_on<F: Future>(future: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let mut future = pin!(future);
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    loop {
        if let Poll::Ready(out) = future.as_mut().poll(&mut Context::from_waker(&waker)) {
            return out;
        }
        std::thread::park();
    }
}

/// An item that counts its runs and blocks on `gate` in each.
fn gated(gate: &Arc<Gate>, runs: &Arc<AtomicUsize>) -> Work {
    let (gate, runs) = (gate.clone(), runs.clone());
    Work::new(move || {
        gate.wait();
        runs.fetch_add(1, SeqCst);
    })
}

/// Guarantee: `Work::flush_async` on a running item is pending until the
/// instance finishes, leaving the executor thread free meanwhile, and then
/// says it waited; on an idle item it is ready at once with `false`.
#[test]
fn work_flush_async_leaves_the_executor_free() {
    let system = system(1);
    let wq = wq(&system, "async_flush_work");
    let (gate, runs) = (Arc::new(Gate::new()), Arc::new(AtomicUsize::new(0)));
    let work = gated(&gate, &runs);
    wq.queue(&work).unwrap();
    let flushed = work.flush_async().unwrap();
    assert!(with_ticker(&gate, flushed), "it waited");
    assert_eq!(runs.load(SeqCst), 1, "the instance queued before the call finished");
    assert!(!ready_now(work.flush_async().unwrap()), "idle: nothing to wait for");
}

/// Guarantee: `Work::flush_async` waits for the instance running at the
/// call, not for one queued after it (which here cannot run until the
/// flush has returned).
#[test]
fn work_flush_async_does_not_wait_for_instances_queued_after_the_call() {
    let system = system(1);
    let wq = wq(&system, "async_flush_work_later");
    let (first, second) = (Arc::new(Gate::new()), Arc::new(Gate::new()));
    let runs = Arc::new(AtomicUsize::new(0));
    let work = {
        let (first, second, runs) = (first.clone(), second.clone(), runs.clone());
        Work::new(move || {
            if runs.fetch_add(1, SeqCst) == 0 {
                first.wait();
            } else {
                second.wait();
            }
        })
    };
    wq.queue(&work).unwrap();
    wait_until("the first instance runs", || runs.load(SeqCst) == 1);
    let flushed = work.flush_async().unwrap();
    assert!(wq.queue(&work).unwrap(), "a second instance, queued after the call");
    assert!(with_ticker(&first, flushed));
    assert!(!second.is_open(), "returned while the later instance cannot finish");
    second.open();
    work.flush().unwrap();
    assert_eq!(runs.load(SeqCst), 2);
}

/// Guarantee: `Workqueue::flush_async` leaves the executor free, waits for
/// every item queued before the call and not for one queued after it.
#[test]
fn workqueue_flush_async_waits_for_exactly_what_was_queued_before() {
    let system = system(2);
    let wq = wq(&system, "async_flush_wq");
    let (before, after) = (Arc::new(Gate::new()), Arc::new(Gate::new()));
    let (runs_before, runs_after) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let early: Vec<Work> = (0..4).map(|_| gated(&before, &runs_before)).collect();
    for (i, work) in early.iter().enumerate() {
        wq.queue_on(i % 2, work).unwrap();
    }
    let flushed = wq.flush_async().unwrap();
    assert_eq!(wq.flushes_in_progress(), 1, "the flush began at the call");
    let late = gated(&after, &runs_after);
    wq.queue(&late).unwrap();
    with_ticker(&before, flushed);
    assert_eq!(runs_before.load(SeqCst), 4, "every earlier item finished");
    assert_eq!(runs_after.load(SeqCst), 0, "the later one could not have");
    after.open();
    wq.flush().unwrap();
    assert_eq!(runs_after.load(SeqCst), 1);
    assert_eq!(wq.flushes_in_progress(), 0);
}

/// Guarantee: more than 15 async flushes at once (every flush colour
/// taken) all complete; the later ones wait for the oldest and begin then.
#[test]
fn many_async_flushes_at_once_wrap_around_the_colours() {
    let system = system(1);
    let wq = wq(&system, "async_flush_many");
    let (gate, runs) = (Arc::new(Gate::new()), Arc::new(AtomicUsize::new(0)));
    let items: Vec<Work> = (0..20).map(|_| gated(&gate, &runs)).collect();
    let mut flushes = Vec::new();
    for item in &items {
        wq.queue(item).unwrap();
        flushes.push(wq.flush_async().unwrap());
    }
    assert_eq!(wq.flushes_in_progress(), 15, "at most 15 tickets are outstanding");
    with_ticker(&gate, async move {
        for flush in flushes {
            flush.await;
        }
    });
    assert_eq!(runs.load(SeqCst), 20);
    assert_eq!(wq.flushes_in_progress(), 0);
}

/// Guarantee: `cancel_sync_async` cancels at the call and is ready once
/// the running instance has finished; a self-requeueing item is then idle
/// (its requeue found PENDING taken) and stays idle.
#[test]
fn cancel_sync_async_leaves_a_self_requeueing_item_idle() {
    let system = system_holding(1);
    let wq = wq(&system, "async_cancel");
    let gate = Arc::new(Gate::new());
    let runs = Arc::new(AtomicUsize::new(0));
    let work = {
        let (gate, runs, wq) = (gate.clone(), runs.clone(), wq.clone());
        Work::with_self(move |me| {
            runs.fetch_add(1, SeqCst);
            gate.wait();
            let _ = wq.queue(me);
        })
    };
    wq.queue(&work).unwrap();
    wait_until("the item runs", || runs.load(SeqCst) == 1);
    let cancelled = work.cancel_sync_async().unwrap();
    assert!(work.busy().pending, "PENDING is held from the call on");
    assert!(!with_ticker(&gate, cancelled), "nothing was pending: only the running instance was waited for");
    assert!(work.busy().is_idle());
    wq.flush().unwrap();
    assert_eq!(runs.load(SeqCst), 1, "the requeue from the running instance was a no-op");
    // A pending instance is taken off its queue at the call (behind a
    // blocker that holds the only CPU): reported as pending, nothing to
    // wait for.
    let hold = Arc::new(Gate::new());
    let blocker = {
        let hold = hold.clone();
        Work::new(move || hold.wait_unannotated())
    };
    wq.queue(&blocker).unwrap();
    wq.queue(&work).unwrap();
    assert!(ready_now(work.cancel_sync_async().unwrap()), "it was pending");
    hold.open();
    wq.flush().unwrap();
    assert_eq!(runs.load(SeqCst), 1, "the cancelled instance never ran");
}

/// Guarantee: `drain_async` refuses outside queueing from the call on,
/// waits for chained queueing and armed delayed items, and ends the drain.
#[test]
fn drain_async_waits_for_chained_queueing_and_delayed_items() {
    let system = system(2);
    let wq = wq(&system, "async_drain");
    let gate = Arc::new(Gate::new());
    let chain = Arc::new(AtomicUsize::new(0));
    let work = {
        let (gate, chain, wq) = (gate.clone(), chain.clone(), wq.clone());
        Work::with_self(move |me| {
            gate.wait();
            if chain.fetch_add(1, SeqCst) < 9 {
                wq.queue(me).unwrap(); // chained: accepted while draining
            }
        })
    };
    let delayed_ran = Arc::new(AtomicUsize::new(0));
    let delayed = {
        let ran = delayed_ran.clone();
        DelayedWork::new(move || {
            ran.fetch_add(1, SeqCst);
        })
    };
    wq.queue(&work).unwrap();
    wq.queue_delayed(&delayed, Duration::from_millis(30)).unwrap();
    let drained = wq.drain_async().unwrap();
    assert!(wq.is_draining());
    let outsider = Work::new(|| {});
    assert!(matches!(wq.queue(&outsider), Err(QueueError::Draining { .. })), "outside queueing is refused");
    with_ticker(&gate, drained);
    assert_eq!(chain.load(SeqCst), 10, "every chained instance ran");
    assert_eq!(delayed_ran.load(SeqCst), 1, "the armed delayed item ran");
    assert!(!wq.is_draining());
    assert!(wq.queue(&outsider).unwrap(), "queueing is accepted again");
    wq.flush().unwrap();
}

/// Guarantee: the self-waits are refused at the call, with the blocking
/// forms' errors.
#[test]
fn self_waits_are_refused_at_the_call() {
    let system = system(1);
    let wq = wq(&system, "async_self");
    let (tx, rx) = mpsc::channel();
    let delayed_slot: Arc<std::sync::Mutex<Option<DelayedWork>>> = Arc::default();
    let work = {
        let (wq, tx) = (wq.clone(), std::sync::Mutex::new(tx));
        Work::with_self(move |me| {
            let results = vec![
                me.flush_async().map(drop),
                me.cancel_sync_async().map(drop),
                wq.flush_async().map(drop),
                wq.drain_async().map(drop),
            ];
            tx.lock().unwrap().send(results).unwrap();
        })
    };
    wq.queue(&work).unwrap();
    let own_wq = |operation| Err(WaitError::OwnWorkqueue { operation, workqueue: "async_self".to_string() });
    assert_eq!(
        rx.recv().unwrap(),
        vec![
            Err(WaitError::OwnWork { operation: "flush_work" }),
            Err(WaitError::OwnWork { operation: "cancel_sync" }),
            own_wq("flush_workqueue"),
            own_wq("drain_workqueue"),
        ]
    );
    let (tx, rx) = mpsc::channel();
    let delayed = {
        let (slot, tx) = (delayed_slot.clone(), std::sync::Mutex::new(tx));
        DelayedWork::new(move || {
            let me = slot.lock().unwrap().clone().unwrap();
            let results = vec![me.flush_async().map(drop), me.cancel_sync_async().map(drop)];
            tx.lock().unwrap().send(results).unwrap();
        })
    };
    *delayed_slot.lock().unwrap() = Some(delayed.clone());
    wq.queue_delayed(&delayed, Duration::ZERO).unwrap();
    assert_eq!(
        rx.recv().unwrap(),
        vec![Err(WaitError::OwnWork { operation: "flush_work" }), Err(WaitError::OwnWork { operation: "cancel_sync" })]
    );
    wq.flush().unwrap();
    delayed_slot.lock().unwrap().take();
}

/// Guarantee: `DelayedWork::flush_async` fires an armed timer now and
/// waits for that instance; `cancel_sync_async` takes an armed timer away.
#[test]
fn delayed_work_async_waits() {
    let system = system(1);
    let wq = wq(&system, "async_delayed");
    let (gate, runs) = (Arc::new(Gate::new()), Arc::new(AtomicUsize::new(0)));
    let delayed = {
        let (gate, runs) = (gate.clone(), runs.clone());
        DelayedWork::new(move || {
            gate.wait();
            runs.fetch_add(1, SeqCst);
        })
    };
    wq.queue_delayed(&delayed, Duration::from_secs(3600)).unwrap();
    let flushed = delayed.flush_async().unwrap();
    assert!(with_ticker(&gate, flushed), "fired now and waited for");
    assert_eq!(runs.load(SeqCst), 1);
    wq.queue_delayed(&delayed, Duration::from_secs(3600)).unwrap();
    assert!(ready_now(delayed.cancel_sync_async().unwrap()), "the armed timer was pending");
    assert!(delayed.busy().is_idle());
    assert!(!ready_now(delayed.flush_async().unwrap()), "idle");
    assert_eq!(runs.load(SeqCst), 1);
}

/// Guarantee: dropping a pending `FlushWork` or `CancelWorkSync` leaves
/// the item working: later waits return, and a dropped cancel gave PENDING
/// back (the item can be queued again).
#[test]
fn dropped_pending_work_waits_leave_everything_working() {
    let system = system(1);
    let wq = wq(&system, "async_drop_work");
    let (gate, runs) = (Arc::new(Gate::new()), Arc::new(AtomicUsize::new(0)));
    let work = gated(&gate, &runs);
    wq.queue(&work).unwrap();
    wait_until("the item runs", || work.busy().running);
    let mut flushed = work.flush_async().unwrap();
    assert!(poll_once(&mut flushed).is_pending());
    drop(flushed);
    drop(work.flush_async().unwrap()); // never polled
    let mut cancelled = work.cancel_sync_async().unwrap();
    assert!(poll_once(&mut cancelled).is_pending(), "the instance is still running");
    drop(cancelled);
    assert!(!work.busy().pending, "the dropped cancel gave PENDING back");
    assert!(wq.queue(&work).unwrap(), "the item can be queued again");
    gate.open();
    work.flush().unwrap();
    assert_eq!(runs.load(SeqCst), 2, "the instance queued again ran too");
    assert!(work.busy().is_idle());
    assert!(!work.cancel_sync().unwrap());
}

/// Guarantee: dropping pending `FlushWorkqueue`s (more of them than there
/// are colours) leaves the workqueue working: a later blocking flush
/// completes the tickets they left and returns, and nothing is left in
/// progress.
#[test]
fn dropped_pending_workqueue_flushes_leave_everything_working() {
    let system = system(1);
    let wq = wq(&system, "async_drop_flush");
    let (gate, runs) = (Arc::new(Gate::new()), Arc::new(AtomicUsize::new(0)));
    let items: Vec<Work> = (0..20).map(|_| gated(&gate, &runs)).collect();
    for item in &items {
        wq.queue(item).unwrap();
        let mut flushed = wq.flush_async().unwrap();
        assert!(poll_once(&mut flushed).is_pending());
        drop(flushed);
    }
    gate.open();
    wq.flush().unwrap();
    assert_eq!(runs.load(SeqCst), 20);
    assert_eq!(wq.flushes_in_progress(), 0, "the dropped flushes' tickets were completed");
    // And once more, dropped after the items finished.
    let item = gated(&gate, &runs);
    wq.queue(&item).unwrap();
    let flushed = wq.flush_async().unwrap();
    item.flush().unwrap();
    drop(flushed);
    wq.flush().unwrap();
    assert_eq!(wq.flushes_in_progress(), 0);
}

/// Guarantee: a blocking flush does not wait for an async flush's future
/// to be polled: a flush future held, unpolled, by the very thread that
/// then flushes blocking does not deadlock it, and is ready afterwards.
#[test]
fn a_blocking_flush_finishes_an_unpolled_async_flush() {
    let system = system(1);
    let wq = wq(&system, "async_unpolled");
    let (gate, runs) = (Arc::new(Gate::new()), Arc::new(AtomicUsize::new(0)));
    let work = gated(&gate, &runs);
    wq.queue(&work).unwrap();
    let held = wq.flush_async().unwrap(); // the head ticket
    let opener = {
        let gate = gate.clone();
        std::thread::spawn(move || gate.open())
    };
    wq.flush().unwrap();
    opener.join().unwrap();
    assert_eq!(runs.load(SeqCst), 1);
    let mut held = held;
    assert!(poll_once(&mut held).is_ready());
    assert_eq!(wq.flushes_in_progress(), 0);
}

/// Guarantee: dropping a pending `DrainWorkqueue` ends the drain:
/// outside queueing is accepted again, and a later drain returns.
#[test]
fn a_dropped_pending_drain_ends_the_drain() {
    let system = system(1);
    let wq = wq(&system, "async_drop_drain");
    let (gate, runs) = (Arc::new(Gate::new()), Arc::new(AtomicUsize::new(0)));
    let work = gated(&gate, &runs);
    wq.queue(&work).unwrap();
    let mut drained = wq.drain_async().unwrap();
    assert!(poll_once(&mut drained).is_pending());
    assert!(wq.is_draining());
    drop(drained);
    assert!(!wq.is_draining());
    let other = gated(&gate, &runs);
    assert!(wq.queue(&other).unwrap(), "queueing is accepted again");
    gate.open();
    wq.drain().unwrap();
    assert_eq!(runs.load(SeqCst), 2);
    assert_eq!(wq.flushes_in_progress(), 0);
}

/// Guarantee: async and blocking flushes of one workqueue, from several
/// threads at once, all return (no lost wakeup, no undriven ticket).
#[test]
fn async_and_blocking_flushes_race() {
    let system = system(2);
    let wq = Workqueue::builder("async_race").build(&system).unwrap();
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let wq = wq.clone();
            std::thread::spawn(move || {
                let runs = Arc::new(AtomicUsize::new(0));
                for round in 0..500 {
                    let work = {
                        let runs = runs.clone();
                        Work::new(move || {
                            runs.fetch_add(1, SeqCst);
                        })
                    };
                    wq.queue_on(round % 2, &work).unwrap();
                    match (t + round) % 4 {
                        0 => wq.flush().unwrap(),
                        1 => block_on(wq.flush_async().unwrap()),
                        2 => drop(block_on(work.flush_async().unwrap())),
                        _ => {
                            // Given up at once, or after one poll.
                            let mut flushed = wq.flush_async().unwrap();
                            if round % 2 == 0 {
                                let _ = poll_once(&mut flushed);
                            }
                            drop(flushed);
                            work.flush().unwrap();
                        }
                    }
                    assert_eq!(runs.load(SeqCst), round + 1, "the item queued before the wait ran");
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    wq.flush().unwrap();
    assert_eq!(wq.flushes_in_progress(), 0);
}
