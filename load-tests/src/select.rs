//! Choosing which certificate each request asks about: a status mix (good / revoked /
//! unknown in chosen proportions) and, within a status, a popularity distribution (uniform, Zipf,
//! or a hot set that gets a fixed share of the requests).
//!
//! "Unknown" serials are random serials no CA issued, taken from a fixed pool (so a server can
//! cache their answers, as a real one would for repeated probes) or fresh for every request
//! (`unknown_pool = 0`, each one a cache miss and a signature).

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution as _, Zipf};

use crate::population::{Expected, Population, SerialBytes};

/// Why a selection spec is refused.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The distribution spec does not parse.
    #[error("distribution {0:?}: expected uniform, zipf:S (S > 0) or hot:FRACTION:SHARE")]
    Distribution(String),
    /// The mix spec does not parse.
    #[error("mix {0:?}: expected good=W,revoked=W,unknown=W with non-negative weights")]
    Mix(String),
    /// Nothing can be chosen.
    #[error("the mix asks for {0} certificates but the population has none")]
    EmptyCategory(&'static str),
}

/// Popularity of entries within a status.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Distribution {
    /// Every entry equally likely.
    Uniform,
    /// Rank k chosen with probability ∝ 1/k^s (ranks are a random permutation of the entries).
    Zipf {
        /// The exponent s.
        exponent: f64,
    },
    /// A `fraction` of the entries gets a `share` of the requests, the rest the remainder.
    HotSet {
        /// Fraction of the entries that are hot (0 < f ≤ 1).
        fraction: f64,
        /// Share of the requests going to them (0 ≤ s ≤ 1).
        share: f64,
    },
}

impl std::str::FromStr for Distribution {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        let bad = || Error::Distribution(s.to_owned());
        let parts: Vec<&str> = s.trim().split(':').collect();
        match parts.as_slice() {
            ["uniform"] => Ok(Distribution::Uniform),
            ["zipf", e] => {
                let exponent: f64 = e.parse().map_err(|_| bad())?;
                if exponent > 0.0 && exponent.is_finite() {
                    Ok(Distribution::Zipf { exponent })
                } else {
                    Err(bad())
                }
            }
            ["hot", f, sh] => {
                let fraction: f64 = f.parse().map_err(|_| bad())?;
                let share: f64 = sh.parse().map_err(|_| bad())?;
                if fraction > 0.0 && fraction <= 1.0 && (0.0..=1.0).contains(&share) {
                    Ok(Distribution::HotSet { fraction, share })
                } else {
                    Err(bad())
                }
            }
            _ => Err(bad()),
        }
    }
}

impl std::fmt::Display for Distribution {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Distribution::Uniform => f.write_str("uniform"),
            Distribution::Zipf { exponent } => write!(f, "zipf:{exponent}"),
            Distribution::HotSet { fraction, share } => write!(f, "hot:{fraction}:{share}"),
        }
    }
}

/// Proportions of good, revoked and unknown certificates asked about.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StatusMix {
    /// Weight of good certificates.
    pub good: f64,
    /// Weight of revoked certificates.
    pub revoked: f64,
    /// Weight of never-issued serials.
    pub unknown: f64,
}

impl Default for StatusMix {
    fn default() -> Self {
        StatusMix {
            good: 0.9,
            revoked: 0.1,
            unknown: 0.0,
        }
    }
}

impl std::str::FromStr for StatusMix {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        let bad = || Error::Mix(s.to_owned());
        let mut mix = StatusMix {
            good: 0.0,
            revoked: 0.0,
            unknown: 0.0,
        };
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (k, v) = part.split_once('=').ok_or_else(bad)?;
            let v: f64 = v.trim().parse().map_err(|_| bad())?;
            if !(v >= 0.0 && v.is_finite()) {
                return Err(bad());
            }
            match k.trim() {
                "good" => mix.good = v,
                "revoked" => mix.revoked = v,
                "unknown" => mix.unknown = v,
                _ => return Err(bad()),
            }
        }
        if mix.good + mix.revoked + mix.unknown <= 0.0 {
            return Err(bad());
        }
        Ok(mix)
    }
}

impl std::fmt::Display for StatusMix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "good={},revoked={},unknown={}",
            self.good, self.revoked, self.unknown
        )
    }
}

/// What to ask about.
#[derive(Debug, Clone, Copy)]
pub enum Pick {
    /// A population entry (by index).
    Entry(usize),
    /// A serial no CA issued.
    Unknown {
        /// CA index.
        ca: u16,
        /// The serial.
        serial: SerialBytes,
    },
}

/// One status category: entry indices in a random order, and how to draw a rank.
#[derive(Debug)]
struct Category {
    indices: Vec<u32>,
    zipf: Option<Zipf<f64>>,
    hot: Option<(usize, f64)>,
}

impl Category {
    fn new(mut indices: Vec<u32>, dist: Distribution, rng: &mut impl Rng) -> Category {
        indices.shuffle(rng);
        let n = indices.len();
        let zipf = match dist {
            Distribution::Zipf { exponent } if n > 0 => Zipf::new(n as f64, exponent).ok(),
            _ => None,
        };
        let hot = match dist {
            Distribution::HotSet { fraction, share } if n > 0 => {
                Some((((n as f64) * fraction).ceil().max(1.0) as usize, share))
            }
            _ => None,
        };
        Category { indices, zipf, hot }
    }

    fn draw(&self, rng: &mut impl Rng) -> usize {
        let n = self.indices.len();
        let rank = if let Some(z) = &self.zipf {
            (z.sample(rng) as usize).clamp(1, n) - 1
        } else if let Some((hot, share)) = self.hot {
            if hot >= n || rng.random_bool(share) {
                rng.random_range(0..hot.min(n))
            } else {
                rng.random_range(hot..n)
            }
        } else {
            rng.random_range(0..n)
        };
        self.indices[rank] as usize
    }
}

/// Chooses what each request asks about. Shared by all connections (read-only); each
/// connection brings its own RNG.
#[derive(Debug)]
pub struct Picker {
    good: Category,
    revoked: Category,
    unknown_pool: Vec<(u16, SerialBytes)>,
    /// CAs that unknown serials are asked of.
    cas: Vec<u16>,
    /// Cumulative thresholds: good, good+revoked, total.
    thresholds: [f64; 3],
}

/// A random positive 16-octet serial (top bit clear, never zero).
pub fn random_serial(rng: &mut impl Rng) -> SerialBytes {
    let mut b = [0u8; 16];
    rng.fill(&mut b[..]);
    b[0] = (b[0] & 0x7f) | 0x40;
    // Cannot fail: 16 octets, the first non-zero.
    SerialBytes::from_content(&b).unwrap_or_else(|| unreachable!())
}

impl Picker {
    /// Builds the categories from the population's current expectations.
    pub fn new(
        population: &Population,
        mix: StatusMix,
        dist: Distribution,
        unknown_pool: usize,
        seed: u64,
    ) -> Result<Picker, Error> {
        let mut rng = rand::rngs::SmallRng::seed_from_u64(seed);
        let mut good = Vec::new();
        let mut revoked = Vec::new();
        for (i, e) in population.entries.iter().enumerate() {
            match e.expected() {
                Expected::Revoked(_) => revoked.push(i as u32),
                _ => good.push(i as u32),
            }
        }
        if mix.good > 0.0 && good.is_empty() {
            return Err(Error::EmptyCategory("good"));
        }
        if mix.revoked > 0.0 && revoked.is_empty() {
            return Err(Error::EmptyCategory("revoked"));
        }
        // Unknown serials go to the CAs the population has entries of.
        let mut cas: Vec<u16> = population.entries.iter().map(|e| e.ca).collect();
        cas.sort_unstable();
        cas.dedup();
        if cas.is_empty() {
            cas = (0..population.cas.len().max(1) as u16).collect();
        }
        // The pool only matters when unknown serials are asked about (compare fetches it all).
        let unknown_pool = if mix.unknown > 0.0 { unknown_pool } else { 0 };
        let unknown_pool = (0..unknown_pool)
            .map(|i| (cas[i % cas.len()], random_serial(&mut rng)))
            .collect();
        let total = mix.good + mix.revoked + mix.unknown;
        Ok(Picker {
            good: Category::new(good, dist, &mut rng),
            revoked: Category::new(revoked, dist, &mut rng),
            unknown_pool,
            cas,
            thresholds: [mix.good / total, (mix.good + mix.revoked) / total, 1.0],
        })
    }

    /// Draws one.
    pub fn pick(&self, rng: &mut impl Rng) -> Pick {
        let x: f64 = rng.random();
        if x < self.thresholds[0] {
            Pick::Entry(self.good.draw(rng))
        } else if x < self.thresholds[1] {
            Pick::Entry(self.revoked.draw(rng))
        } else if self.unknown_pool.is_empty() {
            Pick::Unknown {
                ca: self.cas[rng.random_range(0..self.cas.len())],
                serial: random_serial(rng),
            }
        } else {
            let (ca, serial) = self.unknown_pool[rng.random_range(0..self.unknown_pool.len())];
            Pick::Unknown { ca, serial }
        }
    }

    /// A good entry (for revocations), uniformly: revoking by popularity would soon exhaust
    /// the hot set and leave nothing good to revoke.
    pub fn pick_good(&self, rng: &mut impl Rng) -> Option<usize> {
        let g = &self.good.indices;
        (!g.is_empty()).then(|| g[rng.random_range(0..g.len())] as usize)
    }

    /// Every entry of both categories and the unknown pool: what `compare` must pre-fetch.
    pub fn universe(&self) -> (Vec<usize>, &[(u16, SerialBytes)]) {
        let mut v: Vec<usize> = self
            .good
            .indices
            .iter()
            .chain(self.revoked.indices.iter())
            .map(|&i| i as usize)
            .collect();
        v.sort_unstable();
        (v, &self.unknown_pool)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::population::Entry;

    fn population(good: usize, revoked: usize) -> Population {
        let mut p = Population {
            cas: vec!["a".into(), "b".into()],
            ..Population::default()
        };
        for i in 0..good + revoked {
            let serial = SerialBytes::from_content(&(i as u32 + 1).to_be_bytes()).expect("serial");
            let e = if i < good {
                Expected::Good
            } else {
                Expected::Revoked(Some(1))
            };
            p.entries.push(Entry::new((i % 2) as u16, serial, e));
        }
        p
    }

    #[test]
    fn specs_parse() {
        assert_eq!(
            "uniform".parse::<Distribution>().ok(),
            Some(Distribution::Uniform)
        );
        assert_eq!(
            "zipf:1.1".parse::<Distribution>().ok(),
            Some(Distribution::Zipf { exponent: 1.1 })
        );
        assert_eq!(
            "hot:0.01:0.9".parse::<Distribution>().ok(),
            Some(Distribution::HotSet {
                fraction: 0.01,
                share: 0.9
            })
        );
        assert!("zipf:0".parse::<Distribution>().is_err());
        assert!("hot:2:0.5".parse::<Distribution>().is_err());
        let mix: StatusMix = "good=8, revoked=1,unknown=1".parse().expect("mix");
        assert_eq!(mix.unknown, 1.0);
        assert!("good=-1".parse::<StatusMix>().is_err());
        assert!("bad=1".parse::<StatusMix>().is_err());
        assert!("good=0".parse::<StatusMix>().is_err());
    }

    #[test]
    fn mix_proportions_are_respected() {
        let p = population(900, 100);
        let mix: StatusMix = "good=0.7,revoked=0.2,unknown=0.1".parse().expect("mix");
        let picker = Picker::new(&p, mix, Distribution::Uniform, 10, 1).expect("picker");
        let mut rng = rand::rngs::SmallRng::seed_from_u64(2);
        let (mut g, mut r, mut u) = (0, 0, 0);
        for _ in 0..100_000 {
            match picker.pick(&mut rng) {
                Pick::Entry(i) if p.entries[i].expected() == Expected::Good => g += 1,
                Pick::Entry(_) => r += 1,
                Pick::Unknown { .. } => u += 1,
            }
        }
        assert!((68_000..72_000).contains(&g), "{g}");
        assert!((19_000..21_000).contains(&r), "{r}");
        assert!((9_000..11_000).contains(&u), "{u}");
    }

    #[test]
    fn hot_set_gets_its_share() {
        let p = population(1000, 0);
        let mix: StatusMix = "good=1".parse().expect("mix");
        let dist: Distribution = "hot:0.01:0.9".parse().expect("dist");
        let picker = Picker::new(&p, mix, dist, 0, 1).expect("picker");
        let hot: std::collections::HashSet<usize> = picker.good.indices[..10]
            .iter()
            .map(|&i| i as usize)
            .collect();
        let mut rng = rand::rngs::SmallRng::seed_from_u64(3);
        let hits = (0..50_000)
            .filter(|_| matches!(picker.pick(&mut rng), Pick::Entry(i) if hot.contains(&i)))
            .count();
        assert!((44_000..46_000).contains(&hits), "{hits}");
    }

    #[test]
    fn zipf_favours_low_ranks_and_empty_categories_are_refused() {
        let p = population(1000, 0);
        let picker = Picker::new(
            &p,
            "good=1".parse().expect("mix"),
            Distribution::Zipf { exponent: 1.0 },
            0,
            1,
        )
        .expect("picker");
        let top = picker.good.indices[0] as usize;
        let mut rng = rand::rngs::SmallRng::seed_from_u64(4);
        let hits = (0..10_000)
            .filter(|_| matches!(picker.pick(&mut rng), Pick::Entry(i) if i == top))
            .count();
        // H(1000) ≈ 7.49: rank 1 gets ≈ 13 %.
        assert!((1_100..1_600).contains(&hits), "{hits}");
        let err = Picker::new(&p, StatusMix::default(), Distribution::Uniform, 0, 1)
            .expect_err("no revoked entries");
        assert!(matches!(err, Error::EmptyCategory("revoked")));
    }
}
