//! dnstap (dnstap.io, `[log] dnstap`): every query and response answered here (AUTH_QUERY,
//! AUTH_RESPONSE) and forwarded for clients (CLIENT_QUERY, CLIENT_RESPONSE), sent as Frame
//! Streams over a Unix socket to whatever reads it (`dnstap -u`, fstrm_capture, a collector).
//!
//! Answering never waits for the reader: requests hand copies to a bounded lock-free queue
//! ([`Tap::observe`]: no lock, no system call, never blocking) and one thread of its own
//! takes them every few milliseconds, encodes them and writes them in one go, connecting and
//! reconnecting as the reader comes and goes. What does not fit the queue, or arrives while
//! no reader is there, is dropped and counted.

mod encode;

use std::io::{Read, Write};
use std::net::IpAddr;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

pub use encode::Kind;
use encode::{control_frame, dnstap, Control, Observed, CONTENT_TYPE};

use crossbeam_queue::ArrayQueue;

use crate::metrics::Telemetry;

/// Messages waiting for the writer at most; more are dropped.
const QUEUE: usize = 8192;
/// How long the writer waits on a reader that does not take its bytes (then reconnects).
const IO_TIMEOUT: Duration = Duration::from_secs(2);
/// Between connection attempts while no reader listens.
const RETRY: Duration = Duration::from_secs(1);
/// Exchanges written with one system call at most.
const WRITE_BATCH: usize = 256;
/// How often the writer looks at the queue when it found it empty: the most a message waits
/// (the requests never wake it: waking a thread is a system call per request).
const POLL: Duration = Duration::from_millis(2);

/// One exchange to report.
struct Event {
    query_kind: Kind,
    response_kind: Kind,
    client: IpAddr,
    server: Option<IpAddr>,
    tcp: bool,
    at: SystemTime,
    query: Box<[u8]>,
    response: Box<[u8]>,
}

/// The requests' side of the tap (clones share the one writer).
#[derive(Clone)]
pub struct Tap {
    queue: Arc<ArrayQueue<Event>>,
    telemetry: Arc<Telemetry>,
    /// A reader is connected: without one, exchanges are counted as dropped at once (no
    /// copy, no queueing).
    connected: Arc<AtomicBool>,
}

impl Tap {
    /// Starts the writer thread for the socket at `path`, reporting as `identity` (the host
    /// name).
    pub fn start(
        path: PathBuf,
        identity: String,
        telemetry: Arc<Telemetry>,
    ) -> std::io::Result<Tap> {
        let queue = Arc::new(ArrayQueue::new(QUEUE));
        let events = queue.clone();
        let sink = telemetry.clone();
        let connected = Arc::new(AtomicBool::new(false));
        let state = connected.clone();
        std::thread::Builder::new()
            .name("dnstap".into())
            .spawn(move || write_loop(&path, identity.as_bytes(), &events, &sink, &state))?;
        Ok(Tap {
            queue,
            telemetry,
            connected,
        })
    }

    /// Reports one exchange (query and response) answered at `at`; never blocks.
    #[allow(clippy::too_many_arguments)]
    pub fn observe(
        &self,
        forwarded: bool,
        client: IpAddr,
        server: Option<IpAddr>,
        tcp: bool,
        at: SystemTime,
        query: &[u8],
        response: &[u8],
    ) {
        if !self.connected.load(Ordering::Relaxed) {
            self.telemetry.dnstap_dropped(2);
            return;
        }
        let (query_kind, response_kind) = if forwarded {
            (Kind::ClientQuery, Kind::ClientResponse)
        } else {
            (Kind::AuthQuery, Kind::AuthResponse)
        };
        let event = Event {
            query_kind,
            response_kind,
            client,
            server,
            tcp,
            at,
            query: query.into(),
            response: response.into(),
        };
        if self.queue.push(event).is_err() {
            self.telemetry.dnstap_dropped(2);
        }
    }
}

/// The writer: connect, hand-shake, write frames; on any trouble drop the connection, keep
/// draining the queue (counting what is dropped) and try again.
fn write_loop(
    path: &Path,
    identity: &[u8],
    events: &Arc<ArrayQueue<Event>>,
    telemetry: &Telemetry,
    connected: &AtomicBool,
) {
    let version = format!("backhaul-dns {}", env!("CARGO_PKG_VERSION"));
    let mut warned = false;
    loop {
        let mut stream = match connect(path) {
            Ok(s) => {
                tracing::info!(socket = %path.display(), "dnstap: connected");
                warned = false;
                connected.store(true, Ordering::Relaxed);
                s
            }
            Err(e) => {
                if !warned {
                    warned = true;
                    tracing::warn!(socket = %path.display(), error = %e,
                        "dnstap: no reader on the socket (messages are dropped and counted until one listens)");
                }
                // Requests queue nothing while no reader is connected; what was queued
                // before the reader went is dropped.
                while events.pop().is_some() {
                    telemetry.dnstap_dropped(2);
                }
                if Arc::strong_count(events) == 1 {
                    return; // the server is gone
                }
                std::thread::sleep(RETRY);
                continue;
            }
        };
        let mut frames = Vec::with_capacity(64 * 1024);
        loop {
            // Everything waiting, up to a batch, in one write.
            let Some(first) = events.pop() else {
                if Arc::strong_count(events) == 1 {
                    let _ = stream.write_all(&control_frame(Control::Stop));
                    return;
                }
                std::thread::sleep(POLL);
                continue;
            };
            frames.clear();
            let mut count = 0u64;
            let rest = std::iter::from_fn(|| events.pop()).take(WRITE_BATCH - 1);
            for event in std::iter::once(first).chain(rest) {
                for (kind, response) in [
                    (event.query_kind, None),
                    (event.response_kind, Some((&event.response[..], event.at))),
                ] {
                    let observed = Observed {
                        kind,
                        client: event.client,
                        server: event.server,
                        tcp: event.tcp,
                        query_time: event.at,
                        query: &event.query,
                        response,
                    };
                    let message = dnstap(identity, version.as_bytes(), &observed);
                    // A data frame: its length, then its bytes.
                    frames.extend_from_slice(&(message.len() as u32).to_be_bytes());
                    frames.extend_from_slice(&message);
                }
                count += 2;
            }
            if let Err(e) = stream.write_all(&frames) {
                connected.store(false, Ordering::Relaxed);
                telemetry.dnstap_dropped(count);
                tracing::warn!(socket = %path.display(), error = %e, "dnstap: the reader went away; reconnecting");
                break;
            }
            telemetry.dnstap_sent(count);
        }
    }
}

/// Connects and runs the bidirectional Frame Streams handshake: READY, the reader's ACCEPT
/// (with our content type), START.
fn connect(path: &Path) -> std::io::Result<UnixStream> {
    let mut stream = UnixStream::connect(path)?;
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    stream.write_all(&control_frame(Control::Ready))?;
    let mut head = [0u8; 8];
    stream.read_exact(&mut head)?;
    let len = u32::from_be_bytes([head[4], head[5], head[6], head[7]]) as usize;
    if head[..4] != [0, 0, 0, 0] || len > 4096 {
        return Err(std::io::Error::other(
            "the reader did not answer with a control frame",
        ));
    }
    let mut body = vec![0u8; len];
    stream.read_exact(&mut body)?;
    let accepted = body.get(..4) == Some(&(Control::Accept as u32).to_be_bytes()[..])
        && body.windows(CONTENT_TYPE.len()).any(|w| w == CONTENT_TYPE);
    if !accepted {
        return Err(std::io::Error::other("the reader does not accept dnstap"));
    }
    stream.write_all(&control_frame(Control::Start))?;
    Ok(stream)
}

/// This host's name, the identity dnstap messages carry.
pub fn host_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most `buf.len()` bytes into the buffer we own.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return String::from("backhaul-dns");
    }
    let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}
