//! The process's basics as Prometheus' clients name them (`process_cpu_seconds_total`,
//! `process_resident_memory_bytes`, `process_virtual_memory_bytes`, `process_open_fds`,
//! `process_start_time_seconds`), read from `/proc/self` at each scrape. Where there is no
//! `/proc` (not Linux), nothing is reported.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

/// Linux's clock ticks per second as `/proc` counts them (`USER_HZ`, 100 on every
/// architecture Linux exposes to user space).
const TICKS: f64 = 100.0;

/// The process collector.
#[derive(Debug, Default)]
pub(crate) struct Process;

/// What `/proc/self` says.
#[derive(Debug, Default, PartialEq)]
struct Figures {
    cpu_seconds: f64,
    start_seconds: Option<f64>,
    resident_bytes: Option<u64>,
    virtual_bytes: Option<u64>,
    open_fds: Option<u64>,
}

/// `utime + stime` in ticks and `starttime` in ticks after boot, from `/proc/self/stat` (whose
/// second field, the command in parentheses, may hold spaces).
fn parse_stat(stat: &str) -> Option<(u64, u64)> {
    let after = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    // `after` starts at field 3 (state): utime is field 14, stime 15, starttime 22.
    let field = |n: usize| fields.get(n - 3)?.parse::<u64>().ok();
    Some((field(14)? + field(15)?, field(22)?))
}

/// A `Vm...:  1234 kB` line of `/proc/self/status`, in bytes.
fn status_bytes(status: &str, key: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with(key))?;
    let kb: u64 = line[key.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb * 1024)
}

fn read() -> Option<Figures> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let (cpu_ticks, start_ticks) = parse_stat(&stat)?;
    let boot = std::fs::read_to_string("/proc/stat").ok().and_then(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("btime "))
            .and_then(|v| v.trim().parse::<u64>().ok())
    });
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    Some(Figures {
        cpu_seconds: cpu_ticks as f64 / TICKS,
        start_seconds: boot.map(|b| b as f64 + start_ticks as f64 / TICKS),
        resident_bytes: status_bytes(&status, "VmRSS:"),
        virtual_bytes: status_bytes(&status, "VmSize:"),
        open_fds: std::fs::read_dir("/proc/self/fd")
            .ok()
            .map(|d| d.count() as u64),
    })
}

impl Collector for Process {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(figures) = read() else {
            return Ok(());
        };
        ConstCounter::new(figures.cpu_seconds).encode(encoder.encode_descriptor(
            "process_cpu_seconds",
            "Total user and system CPU time spent in seconds",
            None,
            MetricType::Counter,
        )?)?;
        let gauges = [
            (
                "process_start_time_seconds",
                "Start time of the process since unix epoch in seconds",
                figures.start_seconds,
            ),
            (
                "process_resident_memory_bytes",
                "Resident memory size in bytes",
                figures.resident_bytes.map(|b| b as f64),
            ),
            (
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes",
                figures.virtual_bytes.map(|b| b as f64),
            ),
            (
                "process_open_fds",
                "Number of open file descriptors",
                figures.open_fds.map(|n| n as f64),
            ),
        ];
        for (name, help, value) in gauges {
            if let Some(value) = value {
                ConstGauge::new(value).encode(encoder.encode_descriptor(
                    name,
                    help,
                    None,
                    MetricType::Gauge,
                )?)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_read_after_the_command_whatever_it_holds() {
        let stat = "42 (a (b) c) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 8 0 1234 0 0";
        assert_eq!(parse_stat(stat), Some((300, 1234)));
        assert_eq!(parse_stat("42 (x) S 1"), None);
    }

    #[test]
    fn status_sizes_are_bytes() {
        let status = "Name:\tadamant\nVmSize:\t  2048 kB\nVmRSS:\t    512 kB\n";
        assert_eq!(status_bytes(status, "VmRSS:"), Some(512 * 1024));
        assert_eq!(status_bytes(status, "VmSize:"), Some(2048 * 1024));
        assert_eq!(status_bytes(status, "VmSwap:"), None);
    }
}
