//! CPU accounting from `/proc` for the benchmarks, which share the machine with other builds and must
//! say how much of it the rest of the machine used while they measured.

use std::time::Duration;

/// The number of CPUs this process may use (0 if unknown).
pub fn nproc() -> usize {
    std::thread::available_parallelism().map_or(0, |n| n.get())
}

/// CPU time of the whole machine since boot, in clock ticks: (busy, total), all CPUs together.
pub fn machine_ticks() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let fields: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    let total: u64 = fields.iter().take(8).sum();
    // idle and iowait are the 4th and 5th fields.
    let idle = fields.get(3).copied().unwrap_or(0) + fields.get(4).copied().unwrap_or(0);
    (total - idle, total)
}

/// utime + stime of a process (all its threads; `"self"` for this one), in clock ticks; 0 if it is gone.
pub fn process_ticks(pid: &str) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may contain spaces) start with the state, field 3.
    let rest = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<u64>().ok());
    field(14).unwrap_or(0) + field(15).unwrap_or(0)
}

/// The CPU a measurement used, split between groups of processes the caller names (e.g. this process,
/// the server) and the rest of the machine. The caller reads each group's ticks (with
/// [`process_ticks`]) at [`CpuWatch::start`] and again at [`CpuWatch::stop`], in the same order.
pub struct CpuWatch {
    machine: (u64, u64),
    groups: Vec<u64>,
}

/// Average number of CPUs busy over a measurement.
#[derive(Debug, Clone, PartialEq)]
pub struct CpuUse {
    /// Per group, in the order given to [`CpuWatch::start`].
    pub groups: Vec<f64>,
    /// Everything else on the machine.
    pub others: f64,
}

impl CpuWatch {
    /// Starts a measurement; `groups` holds each group's ticks now.
    pub fn start(groups: &[u64]) -> Self {
        CpuWatch {
            machine: machine_ticks(),
            groups: groups.to_vec(),
        }
    }

    /// The CPUs used since [`CpuWatch::start`]; `groups` holds each group's ticks now. All zero if no
    /// tick has passed.
    pub fn stop(&self, groups: &[u64]) -> CpuUse {
        assert_eq!(
            groups.len(),
            self.groups.len(),
            "CpuWatch::stop needs as many groups as start"
        );
        let used: Vec<u64> = groups
            .iter()
            .zip(&self.groups)
            .map(|(now, then)| now.saturating_sub(*then))
            .collect();
        let (busy, total) = machine_ticks();
        let (busy, total) = (busy - self.machine.0, total - self.machine.1);
        if total == 0 {
            return CpuUse {
                groups: vec![0.0; used.len()],
                others: 0.0,
            };
        }
        let cpus = |ticks: u64| ticks as f64 / total as f64 * nproc() as f64;
        CpuUse {
            groups: used.iter().map(|ticks| cpus(*ticks)).collect(),
            others: cpus(busy.saturating_sub(used.iter().sum())),
        }
    }
}

/// A duration in milliseconds with `decimals` decimals (`"1.25 ms"`), for benchmark reports.
pub fn ms(d: Duration, decimals: usize) -> String {
    format!("{:.*} ms", decimals, d.as_secs_f64() * 1e3)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn milliseconds_with_decimals() {
        assert_eq!(ms(Duration::from_micros(1500), 2), "1.50 ms");
        assert_eq!(ms(Duration::from_micros(1500), 1), "1.5 ms");
    }

    #[test]
    fn own_process_has_ticks_and_a_gone_one_none() {
        let watch = CpuWatch::start(&[process_ticks("self")]);
        let used = watch.stop(&[process_ticks("self")]);
        assert_eq!(used.groups.len(), 1);
        assert!(used.others >= 0.0);
        assert_eq!(process_ticks("0"), 0);
    }
}
