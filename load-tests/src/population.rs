//! The population: the certificates the load is aimed at, each with the status the server is
//! expected to give it.
//!
//! It is read from a JSON-lines file that `vigie-load seed` writes (one object per line:
//! `{"ca":"aci-el-org","serial":"1f…","status":"good"}` or
//! `{"ca":…,"serial":…,"status":"revoked","reason":"keyCompromise"}`), or built from the demo's
//! own sample manifest (`DIR/pki/manifest.json`, 14 certificates) when no seed was run. A later
//! line about the same (ca, serial) replaces an earlier one, so runs that revoke or issue append
//! what they changed and the file stays the truth.
//!
//! This module owns the file format and the in-memory table; choosing entries is
//! [`crate::select`]'s job, and what the server answers is checked by [`crate::check`].

use std::collections::HashMap;
use std::io::{BufRead, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, Ordering};

use serde::{Deserialize, Serialize};
use vigie::model::{RevocationReason, Serial};
use vigie::pki::demo::{DemoPki, SampleStatus};

/// Why a population could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A line is not a population entry.
    #[error("{path}:{line}: {message}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// The population names a CA that the target does not serve.
    #[error("CA {0:?} of the population is not one of the demo's issuing CAs")]
    UnknownCa(String),
    /// Nothing to aim at.
    #[error("the population is empty")]
    Empty,
}

/// A serial as the content octets of its DER INTEGER, inline (at most 21 octets).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SerialBytes {
    len: u8,
    bytes: [u8; 21],
}

impl SerialBytes {
    /// From a serial.
    pub fn from_serial(serial: &Serial) -> SerialBytes {
        let content = serial.der_content();
        let mut bytes = [0u8; 21];
        // A Serial has at most 20 magnitude octets, so its DER content has at most 21.
        let len = content.len().min(21);
        bytes[..len].copy_from_slice(&content[..len]);
        SerialBytes {
            len: len as u8,
            bytes,
        }
    }

    /// From DER content octets; `None` when longer than 21 octets.
    pub fn from_content(content: &[u8]) -> Option<SerialBytes> {
        if content.is_empty() || content.len() > 21 {
            return None;
        }
        let mut bytes = [0u8; 21];
        bytes[..content.len()].copy_from_slice(content);
        Some(SerialBytes {
            len: content.len() as u8,
            bytes,
        })
    }

    /// The DER INTEGER content octets.
    pub fn content(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }

    /// Lowercase hex of the magnitude (no leading zero octet), as the ingest API and the
    /// manifests write serials.
    pub fn to_hex(&self) -> String {
        let c = self.content();
        let start = c.iter().position(|&b| b != 0).unwrap_or(c.len());
        hex::encode(&c[start..])
    }
}

impl std::fmt::Debug for SerialBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.to_hex())
    }
}

/// The status the server should answer, as far as the population knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expected {
    /// `good`.
    Good,
    /// `revoked`, with this CRLReason code (`None`: no reason code; code 0 "unspecified" is
    /// treated as `None`, RFC 5280 §5.3.1 saying to omit it).
    Revoked(Option<u8>),
    /// `unknown` (or what the CA's policy answers for never-issued serials).
    Unknown,
    /// A revocation was sent and not yet acknowledged: good and revoked are both right.
    Changing,
}

const GOOD: u8 = 0;
const CHANGING: u8 = 1;
const REVOKED_NO_REASON: u8 = 0xff;
const REVOKED_BASE: u8 = 0x10;

fn encode(e: Expected) -> u8 {
    match e {
        Expected::Good => GOOD,
        Expected::Changing => CHANGING,
        Expected::Revoked(None) | Expected::Revoked(Some(0)) => REVOKED_NO_REASON,
        Expected::Revoked(Some(code)) => REVOKED_BASE + code.min(0x40),
        // Unknown is never stored in an entry: entries are certificates that were issued.
        Expected::Unknown => GOOD,
    }
}

fn decode(v: u8) -> Expected {
    match v {
        GOOD => Expected::Good,
        CHANGING => Expected::Changing,
        REVOKED_NO_REASON => Expected::Revoked(None),
        v => Expected::Revoked(Some(v - REVOKED_BASE)),
    }
}

/// One issued certificate of the population.
#[derive(Debug)]
pub struct Entry {
    /// Index of its CA in [`Population::cas`].
    pub ca: u16,
    /// Its serial.
    pub serial: SerialBytes,
    state: AtomicU8,
}

impl Entry {
    /// A new entry.
    pub fn new(ca: u16, serial: SerialBytes, expected: Expected) -> Entry {
        Entry {
            ca,
            serial,
            state: AtomicU8::new(encode(expected)),
        }
    }

    /// What the server should answer now.
    pub fn expected(&self) -> Expected {
        decode(self.state.load(Ordering::Acquire))
    }

    /// Records a change of expectation (a revocation sent, then acknowledged).
    pub fn set_expected(&self, e: Expected) {
        self.state.store(encode(e), Ordering::Release);
    }

    /// Atomically moves a good entry to [`Expected::Changing`]; false if it was not good (another
    /// task is revoking it, or it is revoked already).
    pub fn begin_revocation(&self) -> bool {
        self.state
            .compare_exchange(GOOD, CHANGING, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }
}

/// One line of the population file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Line {
    /// CA id.
    pub ca: String,
    /// Serial, hex.
    pub serial: String,
    /// `good` or `revoked`.
    pub status: String,
    /// CRLReason name for `revoked`, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl Line {
    /// A line for a certificate of `ca` with this expectation.
    pub fn new(ca: &str, serial: &SerialBytes, expected: Expected) -> Line {
        let (status, reason) = match expected {
            Expected::Revoked(code) => (
                "revoked",
                code.and_then(RevocationReason::from_code)
                    .filter(|r| *r != RevocationReason::Unspecified)
                    .map(|r| r.name().to_owned()),
            ),
            _ => ("good", None),
        };
        Line {
            ca: ca.to_owned(),
            serial: serial.to_hex(),
            status: status.to_owned(),
            reason,
        }
    }

    fn expected(&self) -> Result<Expected, String> {
        match self.status.as_str() {
            "good" => Ok(Expected::Good),
            "revoked" => match &self.reason {
                None => Ok(Expected::Revoked(None)),
                Some(name) => RevocationReason::from_name(name)
                    .map(|r| Expected::Revoked(Some(r.code())))
                    .map_err(|e| e.to_string()),
            },
            other => Err(format!("status {other:?} is neither good nor revoked")),
        }
    }
}

/// The certificates aimed at.
#[derive(Debug, Default)]
pub struct Population {
    /// CA ids, indexed by [`Entry::ca`].
    pub cas: Vec<String>,
    /// The certificates.
    pub entries: Vec<Entry>,
    /// Where it came from (for the result file).
    pub source: String,
}

impl Population {
    /// Index of a CA id in [`Population::cas`] (which lists the target's CAs, in its order).
    fn ca_index(&self, id: &str) -> Result<u16, Error> {
        self.cas
            .iter()
            .position(|c| c == id)
            .map(|i| i as u16)
            .ok_or_else(|| Error::UnknownCa(id.to_owned()))
    }

    /// The demo's sample certificates with their intended statuses.
    pub fn from_demo(pki: &DemoPki) -> Result<Population, Error> {
        let mut p = Population {
            cas: pki.cas.iter().map(|c| c.id.clone()).collect(),
            source: "demo sample manifest (pki/manifest.json)".into(),
            ..Population::default()
        };
        for cert in &pki.certs {
            let ca = p.ca_index(&cert.ca_id)?;
            let serial = Serial::from_hex(&cert.serial_hex).map_err(|e| Error::Syntax {
                path: "pki/manifest.json".into(),
                line: 0,
                message: e.to_string(),
            })?;
            let expected = match &cert.status {
                SampleStatus::Good => Expected::Good,
                SampleStatus::Revoked { reason, .. } => Expected::Revoked(
                    reason
                        .and_then(|r| RevocationReason::from_name(r).ok())
                        .map(RevocationReason::code)
                        .filter(|&c| c != 0),
                ),
            };
            p.entries
                .push(Entry::new(ca, SerialBytes::from_serial(&serial), expected));
        }
        if p.entries.is_empty() {
            return Err(Error::Empty);
        }
        Ok(p)
    }

    /// Reads a JSON-lines population file; `cas` are the CA ids the target serves, in the order
    /// [`Entry::ca`] will index.
    pub fn read(path: &Path, cas: &[String]) -> Result<Population, Error> {
        let file = std::fs::File::open(path).map_err(|source| Error::Io {
            path: path.to_owned(),
            source,
        })?;
        let mut p = Population {
            cas: cas.to_vec(),
            source: path.display().to_string(),
            ..Population::default()
        };
        let mut index: HashMap<(u16, SerialBytes), usize> = HashMap::new();
        for (n, line) in std::io::BufReader::new(file).lines().enumerate() {
            let line = line.map_err(|source| Error::Io {
                path: path.to_owned(),
                source,
            })?;
            if line.trim().is_empty() {
                continue;
            }
            let syntax = |message: String| Error::Syntax {
                path: path.to_owned(),
                line: n + 1,
                message,
            };
            let parsed: Line = serde_json::from_str(&line).map_err(|e| syntax(e.to_string()))?;
            let expected = parsed.expected().map_err(syntax)?;
            let serial = Serial::from_hex(&parsed.serial).map_err(|e| syntax(e.to_string()))?;
            let serial = SerialBytes::from_serial(&serial);
            let ca = p.ca_index(&parsed.ca)?;
            match index.get(&(ca, serial)) {
                Some(&i) => p.entries[i].set_expected(expected),
                None => {
                    index.insert((ca, serial), p.entries.len());
                    p.entries.push(Entry::new(ca, serial, expected));
                }
            }
        }
        if p.entries.is_empty() {
            return Err(Error::Empty);
        }
        Ok(p)
    }

    /// Counts of good and revoked entries.
    pub fn counts(&self) -> (usize, usize) {
        let revoked = self
            .entries
            .iter()
            .filter(|e| matches!(e.expected(), Expected::Revoked(_)))
            .count();
        (self.entries.len() - revoked, revoked)
    }
}

/// Appends lines to a population file (creating it), flushing on [`Appender::flush`] and drop.
#[derive(Debug)]
pub struct Appender {
    path: PathBuf,
    out: BufWriter<std::fs::File>,
}

impl Appender {
    /// Opens `path` for appending.
    pub fn open(path: &Path) -> Result<Appender, Error> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|source| Error::Io {
                path: path.to_owned(),
                source,
            })?;
        Ok(Appender {
            path: path.to_owned(),
            out: BufWriter::with_capacity(1 << 16, file),
        })
    }

    /// Appends one line.
    pub fn push(&mut self, line: &Line) -> Result<(), Error> {
        let mut text = serde_json::to_vec(line).map_err(|e| Error::Io {
            path: self.path.clone(),
            source: std::io::Error::other(e),
        })?;
        text.push(b'\n');
        self.out.write_all(&text).map_err(|source| Error::Io {
            path: self.path.clone(),
            source,
        })
    }

    /// Writes what is buffered.
    pub fn flush(&mut self) -> Result<(), Error> {
        self.out.flush().map_err(|source| Error::Io {
            path: self.path.clone(),
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_round_trip_and_later_lines_win() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("population.jsonl");
        let s1 = SerialBytes::from_serial(&Serial::from_hex("8a01").expect("hex"));
        let s2 = SerialBytes::from_serial(&Serial::from_hex("0102").expect("hex"));
        assert_eq!(s1.content(), &[0, 0x8a, 0x01]);
        assert_eq!(s1.to_hex(), "8a01");
        {
            let mut a = Appender::open(&path).expect("open");
            a.push(&Line::new("aci-el-org", &s1, Expected::Good))
                .expect("push");
            a.push(&Line::new("aci-el-pp", &s2, Expected::Revoked(Some(1))))
                .expect("push");
            a.push(&Line::new("aci-el-org", &s1, Expected::Revoked(None)))
                .expect("push");
            a.flush().expect("flush");
        }
        let allowed = vec!["aci-el-org".to_owned(), "aci-el-pp".to_owned()];
        let p = Population::read(&path, &allowed).expect("reads");
        assert_eq!(p.entries.len(), 2);
        assert_eq!(p.cas, allowed);
        assert_eq!(p.entries[0].expected(), Expected::Revoked(None));
        assert_eq!(p.entries[1].expected(), Expected::Revoked(Some(1)));
        assert_eq!(p.counts(), (0, 2));
        let text = std::fs::read_to_string(&path).expect("text");
        assert!(text.contains(r#""reason":"keyCompromise""#), "{text}");

        let err = Population::read(&path, &["aci-el-org".to_owned()]).expect_err("unknown CA");
        assert!(matches!(err, Error::UnknownCa(_)));
    }

    #[test]
    fn bad_lines_name_their_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("p.jsonl");
        std::fs::write(
            &path,
            "{\"ca\":\"a\",\"serial\":\"01\",\"status\":\"good\"}\n{\"ca\":\"a\",\"serial\":\"zz\",\"status\":\"good\"}\n",
        )
        .expect("write");
        let err = Population::read(&path, &["a".to_owned()]).expect_err("bad serial");
        assert!(matches!(err, Error::Syntax { line: 2, .. }), "{err}");
    }

    #[test]
    fn revocation_state_machine() {
        let e = Entry::new(
            0,
            SerialBytes::from_content(&[1]).expect("serial"),
            Expected::Good,
        );
        assert!(e.begin_revocation());
        assert!(!e.begin_revocation());
        assert_eq!(e.expected(), Expected::Changing);
        e.set_expected(Expected::Revoked(Some(4)));
        assert_eq!(e.expected(), Expected::Revoked(Some(4)));
        assert!(!e.begin_revocation());
    }
}
