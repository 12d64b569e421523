//! The standard `process_*` metrics, read from Linux's `/proc/self`.
//!
//! prometheus-client has no process collector. On other systems, or when
//! `/proc` cannot be read, the values are absent rather than wrong.

use std::fs;

/// Linux reports CPU times in USER_HZ ticks, which the kernel ABI fixes at
/// 100 per second on every architecture it exports them to user space.
const TICKS_PER_SECOND: f64 = 100.0;

/// A reading of the process's resource use.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ProcessStats {
    /// User plus system CPU time, seconds.
    pub cpu_seconds: f64,
    /// Resident set size, bytes.
    pub resident_memory_bytes: f64,
    /// Virtual memory size, bytes.
    pub virtual_memory_bytes: f64,
    /// Open file descriptors.
    pub open_fds: f64,
    /// Soft limit on open file descriptors.
    pub max_fds: Option<f64>,
    /// Process start, seconds since the epoch.
    pub start_time_seconds: f64,
}

/// Reads the current stats; `None` when `/proc/self` is not readable.
pub fn read() -> Option<ProcessStats> {
    let stat = fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // Index 0 here is field 3 (state) of proc(5).
    let field = |n: usize| f.get(n - 3).and_then(|v| v.parse::<f64>().ok());
    let cpu_seconds = (field(14)? + field(15)?) / TICKS_PER_SECOND;
    let start_ticks = field(22)?;
    let virtual_memory_bytes = field(23)?;

    let status = fs::read_to_string("/proc/self/status").ok()?;
    let resident_memory_bytes = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())?
        * 1024.0;

    let boot = fs::read_to_string("/proc/stat")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse::<f64>().ok())?;

    let open_fds = fs::read_dir("/proc/self/fd").ok()?.count() as f64;
    let max_fds = fs::read_to_string("/proc/self/limits").ok().and_then(|l| {
        l.lines()
            .find(|l| l.starts_with("Max open files"))
            .and_then(|l| l.split_whitespace().nth(3))
            .and_then(|v| v.parse::<f64>().ok())
    });
    Some(ProcessStats {
        cpu_seconds,
        resident_memory_bytes,
        virtual_memory_bytes,
        open_fds,
        max_fds,
        start_time_seconds: boot + start_ticks / TICKS_PER_SECOND,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_own_process() {
        let s = super::read().expect("/proc/self is readable on Linux");
        assert!(s.resident_memory_bytes > 1e5, "{s:?}");
        assert!(s.open_fds >= 3.0, "{s:?}");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        // Started within the last day, and not in the future.
        assert!(
            s.start_time_seconds <= now + 1.0 && s.start_time_seconds > now - 86_400.0,
            "{s:?}"
        );
    }
}
