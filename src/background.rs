//! Work that must not compete with answering queries: one thread at a lower CPU priority.
//!
//! Parsing a member list (100,000 members: ~0.1 s of CPU) and building zones run below the
//! threads that answer queries. On a busy core a query then waits microseconds for a
//! parse, not the other way round: measured with `bench/run.sh`, phase 4, parsing on a runtime
//! thread put p99 latency at ~4 ms while the members file was re-read every 100 ms.

use std::sync::mpsc;
use std::sync::OnceLock;

type Job = Box<dyn FnOnce() + Send>;

/// Runs `work` on the background thread and waits for its result without blocking the
/// runtime.
pub async fn run<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    static WORKER: OnceLock<mpsc::Sender<Job>> = OnceLock::new();
    let worker = WORKER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("background".into())
            .spawn(move || {
                lower_priority();
                for job in rx {
                    job();
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
    rx.await.expect("background work does not panic")
}

/// Nice 10 for the calling thread (it cannot be raised back without privileges, so only
/// threads that do nothing else call this).
pub fn lower_priority() {
    // SAFETY: a plain system call on this thread's own id.
    let r = unsafe { libc::setpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t, 10) };
    if r != 0 {
        tracing::debug!(error = %std::io::Error::last_os_error(), "cannot lower a background thread's priority");
    }
}
