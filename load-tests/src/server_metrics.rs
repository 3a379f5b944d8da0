//! What the server says about itself during a run: its admin `/metrics` read once a second,
//! for the series a report plots beside the load — the pre-signing backlog
//! (`vigie_ocsp_presign_pending`, all CAs together) and the signatures made for requests
//! (`vigie_ocsp_signing_seconds_count`). A server without an admin listener, or that does not
//! export these, gives no samples; the run is the same.
//!
//! A plain blocking HTTP/1.0 GET on its own thread: it must not take time from the engine's
//! runtime, and once a second it costs nothing measurable.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// One reading of the server's metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct ServerSample {
    /// Seconds since the start of the run (warm-up included).
    pub t: f64,
    /// `vigie_ocsp_presign_pending`, summed over CAs.
    pub presign_pending: Option<f64>,
    /// `vigie_ocsp_signing_seconds_count`: signatures made for requests so far.
    pub signatures: Option<f64>,
}

/// Sums every series of metric `name` (any labels) in a Prometheus text body.
pub fn sum_of(body: &str, name: &str) -> Option<f64> {
    let mut total = None;
    for line in body.lines().filter(|l| !l.starts_with('#')) {
        let Some(rest) = line.strip_prefix(name) else {
            continue;
        };
        if !(rest.starts_with('{') || rest.starts_with(' ')) {
            continue;
        }
        if let Some(v) = rest.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()) {
            *total.get_or_insert(0.0) += v;
        }
    }
    total
}

fn fetch(addr: SocketAddr, host: &str) -> Option<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        s,
        "GET /metrics HTTP/1.0\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut body = String::new();
    s.read_to_string(&mut body).ok()?;
    let (head, body) = body.split_once("\r\n\r\n")?;
    if head.starts_with("HTTP/1.1 200") || head.starts_with("HTTP/1.0 200") {
        Some(body.to_owned())
    } else {
        None
    }
}

/// The sampling thread.
pub struct Sampler {
    stop: Arc<AtomicBool>,
    samples: Arc<Mutex<Vec<ServerSample>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Sampler {
    /// Starts reading `http://{addr}/metrics` every second, times counted from `start`.
    pub fn start(addr: SocketAddr, host: String, start: Instant) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let samples = Arc::new(Mutex::new(Vec::new()));
        let thread = {
            let stop = Arc::clone(&stop);
            let samples = Arc::clone(&samples);
            std::thread::Builder::new()
                .name("server-metrics".into())
                .spawn(move || {
                    while !stop.load(Ordering::Acquire) {
                        let t = start.elapsed().as_secs_f64();
                        if let Some(body) = fetch(addr, &host) {
                            let sample = ServerSample {
                                t,
                                presign_pending: sum_of(&body, "vigie_ocsp_presign_pending"),
                                signatures: sum_of(&body, "vigie_ocsp_signing_seconds_count"),
                            };
                            samples
                                .lock()
                                .unwrap_or_else(|p| p.into_inner())
                                .push(sample);
                        }
                        let next = Duration::from_secs_f64(
                            (t.floor() + 1.0 - start.elapsed().as_secs_f64()).max(0.05),
                        );
                        std::thread::sleep(next);
                    }
                })
                .ok()
        };
        Sampler {
            stop,
            samples,
            thread,
        }
    }

    /// Stops and returns the samples (none unless the server answered with these metrics).
    pub fn finish(mut self) -> Vec<ServerSample> {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let samples = std::mem::take(&mut *self.samples.lock().unwrap_or_else(|p| p.into_inner()));
        if samples
            .iter()
            .all(|s| s.presign_pending.is_none() && s.signatures.is_none())
        {
            return Vec::new();
        }
        samples
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_series_of_one_name_only() {
        let body = "# TYPE vigie_ocsp_presign_pending gauge\n\
                    vigie_ocsp_presign_pending{ca=\"a\"} 10\n\
                    vigie_ocsp_presign_pending{ca=\"b\"} 5\n\
                    vigie_ocsp_presign_pending_other 99\n\
                    vigie_ocsp_signing_seconds_count 42\n";
        assert_eq!(sum_of(body, "vigie_ocsp_presign_pending"), Some(15.0));
        assert_eq!(sum_of(body, "vigie_ocsp_signing_seconds_count"), Some(42.0));
        assert_eq!(sum_of(body, "absent"), None);
    }
}
