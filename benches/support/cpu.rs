//! CPU time of the bench process, shared by the bench binaries that print
//! it (`#[path = "support/cpu.rs"] mod cpu;`): on a shared machine CPU per
//! operation moves less than wall time does.

/// CPU seconds this process has used (user + system), from /proc/self/stat
/// (clock ticks of 10 ms); `None` where that file does not exist.
pub fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which is in parentheses).
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}
