//! Work that must not compete with answering queries: one thread at the lowest CPU priority.
//!
//! Parsing a member list (100,000 members: ~0.1 s of CPU) here, and building zones on the
//! zone builder thread (same priority), run below the threads that answer queries: on a busy
//! core a query then waits microseconds for a parse or a build, not milliseconds.

use std::sync::mpsc;
use std::sync::OnceLock;

type Job = Box<dyn FnOnce() + Send>;

/// Runs `work` on the background thread and waits for its result without blocking the
/// runtime. `None` when the work panicked (a bug, reported by the panic hook): the thread
/// lives on for the next job, so one bad input cannot stop every later sync.
pub async fn run<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    static WORKER: OnceLock<mpsc::Sender<Job>> = OnceLock::new();
    let worker = WORKER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("background".into())
            .spawn(move || {
                lower_priority();
                for job in rx {
                    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                }
            })
            .expect("cannot start the background thread");
        tx
    });
    let (tx, rx) = tokio::sync::oneshot::channel();
    let job: Job = Box::new(move || {
        let _ = tx.send(work());
    });
    worker
        .send(job)
        .expect("the background thread runs for the whole process");
    rx.await.ok()
}

/// Puts the calling thread in the SCHED_IDLE class (it cannot be raised back without
/// privileges, so only threads that do nothing else call this).
///
/// SCHED_IDLE rather than a nice value: the kernel's EEVDF scheduler lets a running task
/// finish its slice (1-3 ms) before a woken one runs, whatever their nice values, so a
/// nice-10 parse still delayed the query that arrived during it (p99 ~2-4 ms in
/// `bench/run.sh` phase 4). A SCHED_IDLE task is preempted at once by any normal one. The
/// cost: while every core is busy (queries, or any other process on the host), syncs wait
/// for idle time; the current zone keeps answering meanwhile.
pub fn lower_priority() {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: plain system calls on the calling thread (pid 0), with a valid parameter.
    let idle = unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) };
    if idle != 0 {
        let why = std::io::Error::last_os_error();
        // SAFETY: as above.
        unsafe { libc::setpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t, 19) };
        tracing::debug!(error = %why, "no SCHED_IDLE for a background thread; nice 19 instead");
    }
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn a_panicking_job_does_not_stop_the_next() {
        assert_eq!(super::run(|| -> u32 { panic!("a bug") }).await, None);
        assert_eq!(super::run(|| 7).await, Some(7));
    }
}
