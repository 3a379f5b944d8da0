//! Rationing of the signatures that only an anonymous request asks for: a nonce to echo
//! (RFC 9654), a serial nobody registered, several CertIDs in one request. Such a signature
//! serves one client once, so one client must not be able to take the signing pool from
//! everyone else (nor from the re-signing that follows a revocation).
//!
//! Two limits, both checked before the signature is queued:
//! - a token bucket per client network — the /24 of an IPv4 address, the /56 of an IPv6 one
//!   (`[ocsp] sign_rate_per_client`, `sign_burst_per_client`);
//! - a global count of such signatures in flight, at most a share of the signing pool's
//!   capacity (threads + queue; `[ocsp] anonymous_sign_share`), so the rest of the pool is
//!   always free for answers that everyone shares.
//!
//! What to do when a ration is refused (answer without the nonce, or `tryLater`) is the
//! responder's decision ([`super::Responder`]); this module only counts. It knows nothing of
//! the pool itself ([`super::pool`]): only its capacity.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

/// Buckets kept at most; beyond, buckets that have refilled are forgotten (a full bucket and
/// no bucket are the same thing), and if that is not enough, all of them.
const MAX_BUCKETS: usize = 1 << 16;

/// A client network: the /24 of an IPv4 address or the /56 of an IPv6 address (an IPv4-mapped
/// IPv6 address counts as IPv4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClientNet {
    /// The first three octets.
    V4([u8; 3]),
    /// The first seven octets.
    V6([u8; 7]),
}

impl ClientNet {
    /// The network `ip` belongs to.
    pub fn of(ip: IpAddr) -> ClientNet {
        match ip {
            IpAddr::V4(v4) => {
                let o = v4.octets();
                ClientNet::V4([o[0], o[1], o[2]])
            }
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => ClientNet::of(IpAddr::V4(v4)),
                None => {
                    let o = v6.octets();
                    let mut p = [0u8; 7];
                    p.copy_from_slice(&o[..7]);
                    ClientNet::V6(p)
                }
            },
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Why a ration was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The client's network used its rate.
    Client,
    /// All clients together hold their share of the signing pool.
    Share,
}

impl Refused {
    /// Label for metrics.
    pub fn label(self) -> &'static str {
        match self {
            Refused::Client => "client",
            Refused::Share => "share",
        }
    }
}

/// The two limits.
#[derive(Debug)]
pub struct Ration {
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<ClientNet, Bucket>>,
    in_flight: AtomicUsize,
    max_in_flight: usize,
}

/// One rationed signature in flight; dropping it gives its place back.
#[derive(Debug)]
pub struct Permit<'a> {
    ration: &'a Ration,
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        self.ration.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Ration {
    /// `rate` signatures per second and `burst` at once per client network; at most
    /// `share` × `pool_capacity` rationed signatures in flight (at least one).
    pub fn new(rate: f64, burst: f64, share: f64, pool_capacity: usize) -> Ration {
        Ration {
            rate: rate.max(0.0),
            burst: burst.max(1.0),
            buckets: Mutex::new(HashMap::new()),
            in_flight: AtomicUsize::new(0),
            max_in_flight: ((pool_capacity as f64 * share).floor() as usize).max(1),
        }
    }

    /// Rationed signatures that may be in flight at once.
    pub fn max_in_flight(&self) -> usize {
        self.max_in_flight
    }

    /// A permit for one signature asked by `client` (`None`: a caller with no address, which
    /// only the global share limits), at `now`.
    pub fn try_acquire(&self, client: Option<IpAddr>, now: Instant) -> Result<Permit<'_>, Refused> {
        // The global share first: it is one atomic, and refusing there spends no client token.
        let mut current = self.in_flight.load(Ordering::Acquire);
        loop {
            if current >= self.max_in_flight {
                return Err(Refused::Share);
            }
            match self.in_flight.compare_exchange_weak(
                current,
                current + 1,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => break,
                Err(seen) => current = seen,
            }
        }
        let permit = Permit { ration: self };
        if let Some(ip) = client
            && !self.take_token(ClientNet::of(ip), now)
        {
            return Err(Refused::Client);
        }
        Ok(permit)
    }

    fn take_token(&self, net: ClientNet, now: Instant) -> bool {
        // A poisoned lock only means another thread panicked while holding a plain map.
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() >= MAX_BUCKETS && !buckets.contains_key(&net) {
            let (rate, burst) = (self.rate, self.burst);
            buckets.retain(|_, b| refilled(b, rate, burst, now) < burst);
            if buckets.len() >= MAX_BUCKETS {
                buckets.clear();
            }
        }
        let bucket = buckets.entry(net).or_insert(Bucket {
            tokens: self.burst,
            at: now,
        });
        bucket.tokens = refilled(bucket, self.rate, self.burst, now);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

fn refilled(b: &Bucket, rate: f64, burst: f64, now: Instant) -> f64 {
    let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
    (b.tokens + elapsed * rate).min(burst)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().expect("address"))
    }

    #[test]
    fn networks_are_slash_24_and_slash_56() {
        let a = ClientNet::of("192.0.2.1".parse().expect("v4"));
        assert_eq!(a, ClientNet::of("192.0.2.250".parse().expect("v4")));
        assert_ne!(a, ClientNet::of("192.0.3.1".parse().expect("v4")));
        assert_eq!(
            a,
            ClientNet::of("::ffff:192.0.2.9".parse().expect("mapped"))
        );
        let b = ClientNet::of("2001:db8:0:ab00::1".parse().expect("v6"));
        assert_eq!(
            b,
            ClientNet::of("2001:db8:0:abff:1::2".parse().expect("v6"))
        );
        assert_ne!(b, ClientNet::of("2001:db8:0:ac00::1".parse().expect("v6")));
    }

    #[test]
    fn bucket_allows_burst_then_rate() {
        let r = Ration::new(2.0, 3.0, 1.0, 100);
        let t0 = Instant::now();
        for _ in 0..3 {
            drop(r.try_acquire(ip("10.0.0.1"), t0).expect("within burst"));
        }
        assert_eq!(
            r.try_acquire(ip("10.0.0.2"), t0).err(),
            Some(Refused::Client),
            "same /24"
        );
        assert!(r.try_acquire(ip("10.0.1.1"), t0).is_ok(), "another /24");
        let later = t0 + Duration::from_millis(500);
        assert!(
            r.try_acquire(ip("10.0.0.1"), later).is_ok(),
            "one token back"
        );
        assert!(r.try_acquire(ip("10.0.0.1"), later).is_err());
    }

    #[test]
    fn share_bounds_signatures_in_flight() {
        let r = Ration::new(1000.0, 1000.0, 0.5, 10);
        assert_eq!(r.max_in_flight(), 5);
        let now = Instant::now();
        let held: Vec<_> = (0..5)
            .map(|_| r.try_acquire(None, now).expect("room"))
            .collect();
        assert_eq!(r.try_acquire(None, now).err(), Some(Refused::Share));
        drop(held);
        assert!(r.try_acquire(None, now).is_ok());
    }

    #[test]
    fn refused_client_gives_its_place_back() {
        let r = Ration::new(0.0, 1.0, 1.0, 2);
        let now = Instant::now();
        let first = r.try_acquire(ip("10.0.0.1"), now).expect("burst of one");
        assert!(r.try_acquire(ip("10.0.0.1"), now).is_err());
        // The refused one released its place: one more client still fits beside `first`.
        assert!(r.try_acquire(ip("10.0.9.1"), now).is_ok());
        drop(first);
    }

    #[test]
    fn bucket_map_stays_bounded() {
        let r = Ration::new(1.0, 1.0, 1.0, 4);
        let now = Instant::now();
        for i in 0..(MAX_BUCKETS as u32 + 10) {
            let a = std::net::Ipv4Addr::from(i << 8);
            let _ = r.try_acquire(Some(IpAddr::V4(a)), now);
        }
        assert!(r.buckets.lock().expect("lock").len() <= MAX_BUCKETS);
    }
}
