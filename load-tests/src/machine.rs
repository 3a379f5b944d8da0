//! What machine a run happened on, and what the processes involved cost: the generator's own CPU
//! time (so its share of a shared machine is known), and the server's CPU time and resident
//! memory, read from `/proc` (Linux) — the server found by the port it listens on, or by pid.

use std::path::Path;

use serde::{Deserialize, Serialize};

/// The machine.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Machine {
    /// Host name.
    pub hostname: String,
    /// Logical CPUs.
    pub cpus: usize,
    /// CPU model (first `model name` of /proc/cpuinfo).
    pub cpu_model: String,
    /// Memory, MiB.
    pub memory_mib: u64,
    /// Kernel release.
    pub kernel: String,
    /// Load averages (1, 5, 15 min) when the run started: other work on the machine.
    pub load_average: String,
}

fn read(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

impl Machine {
    /// Reads it from `/proc`.
    pub fn probe() -> Machine {
        let cpuinfo = read("/proc/cpuinfo");
        let cpu_model = cpuinfo
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_owned())
            .unwrap_or_else(|| "unknown".into());
        let memory_mib = read("/proc/meminfo")
            .lines()
            .find(|l| l.starts_with("MemTotal:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .map_or(0, |kb| kb / 1024);
        let load = read("/proc/loadavg");
        Machine {
            hostname: read("/proc/sys/kernel/hostname"),
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cpu_model,
            memory_mib,
            kernel: read("/proc/sys/kernel/osrelease"),
            load_average: load
                .split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" "),
        }
    }
}

/// CPU seconds (user + system) of a process, from `/proc/PID/stat` (USER_HZ is 100 on Linux).
pub fn cpu_seconds(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold spaces: split after the last ')'.
    let after = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    // Fields 14 and 15 of stat (utime, stime) are at positions 11 and 12 after the name.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

/// Resident set size, MiB, from `/proc/PID/status`.
pub fn rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: f64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(kb / 1024.0)
}

/// The processes holding the listening socket of TCP `port` (several for nginx: master and
/// workers). Empty when it cannot be told (not Linux, or not allowed to read other processes).
pub fn pids_listening_on(port: u16) -> Vec<u32> {
    let mut inodes = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        for line in read(table).lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 10 || f[3] != "0A" {
                continue;
            }
            let local_port = f[1]
                .rsplit(':')
                .next()
                .and_then(|p| u16::from_str_radix(p, 16).ok());
            if local_port == Some(port) {
                inodes.push(format!("socket:[{}]", f[9]));
            }
        }
    }
    if inodes.is_empty() {
        return Vec::new();
    }
    let mut pids = Vec::new();
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return pids;
    };
    for p in procs.flatten() {
        let Some(pid) = p.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(p.path().join("fd")) else {
            continue;
        };
        let holds = fds.flatten().any(|fd| {
            std::fs::read_link(fd.path())
                .ok()
                .and_then(|l| l.to_str().map(|s| inodes.iter().any(|i| i == s)))
                .unwrap_or(false)
        });
        if holds && pid != std::process::id() {
            pids.push(pid);
        }
    }
    pids
}

/// CPU and memory of a set of processes over a run.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct Usage {
    /// The processes watched.
    pub pids: Vec<u32>,
    /// CPU seconds used during the measured period.
    pub cpu_seconds: f64,
    /// Average CPU use, in % of one core.
    pub cpu_percent: f64,
    /// CPU microseconds per completed request.
    pub cpu_us_per_request: f64,
    /// Largest resident memory seen (sum over the processes), MiB.
    pub rss_max_mib: f64,
}

/// Samples CPU and memory of processes.
#[derive(Debug)]
pub struct Watch {
    pids: Vec<u32>,
    cpu_start: f64,
    rss_max: f64,
    started: std::time::Instant,
}

impl Watch {
    /// Starts watching `pids` (the generator itself when `pids` is empty and `own` is set).
    pub fn start(pids: Vec<u32>) -> Watch {
        let mut w = Watch {
            cpu_start: 0.0,
            rss_max: 0.0,
            pids,
            started: std::time::Instant::now(),
        };
        w.cpu_start = w.cpu();
        w.sample();
        w
    }

    fn cpu(&self) -> f64 {
        if self.pids.is_empty() {
            return cpu_seconds("self").unwrap_or(0.0);
        }
        self.pids
            .iter()
            .filter_map(|p| cpu_seconds(&p.to_string()))
            .sum()
    }

    /// Samples memory.
    pub fn sample(&mut self) {
        let rss: f64 = if self.pids.is_empty() {
            rss_mib(std::process::id()).unwrap_or(0.0)
        } else {
            self.pids.iter().filter_map(|&p| rss_mib(p)).sum()
        };
        self.rss_max = self.rss_max.max(rss);
    }

    /// What was used since the start; `requests` were completed over `seconds` (the CPU time
    /// per request is the CPU rate over the watch's own span times `seconds / requests`).
    pub fn finish(&mut self, seconds: f64, requests: u64) -> Usage {
        self.sample();
        let span = self.started.elapsed().as_secs_f64().max(1e-3);
        let cpu_rate = (self.cpu() - self.cpu_start).max(0.0) / span;
        let cpu = cpu_rate * seconds;
        Usage {
            pids: if self.pids.is_empty() {
                vec![std::process::id()]
            } else {
                self.pids.clone()
            },
            cpu_seconds: cpu,
            cpu_percent: 100.0 * cpu_rate,
            cpu_us_per_request: if requests > 0 {
                1e6 * cpu / requests as f64
            } else {
                0.0
            },
            rss_max_mib: self.rss_max,
        }
    }
}

/// The short commit of the git work tree at `dir`, if it is one.
pub fn git_commit(dir: &Path) -> Option<String> {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_process_is_measurable() {
        let m = Machine::probe();
        assert!(m.cpus >= 1);
        assert!(cpu_seconds("self").is_some());
        assert!(rss_mib(std::process::id()).is_some_and(|r| r > 0.0));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        // Our own socket is excluded: nobody else listens there.
        assert!(pids_listening_on(port).is_empty());
        let mut w = Watch::start(Vec::new());
        let u = w.finish(1.0, 10);
        assert!(u.rss_max_mib > 0.0);
    }
}
