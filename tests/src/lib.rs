//! The local stack: the Verint + Amazon Connect simulator ([`sim`]) and the generator of
//! realistic CTR days and benchmark corpora ([`generate`]), and a corner of the running stack for
//! end-to-end tests ([`stack`]), and the claims those tests make ([`claims`]).

pub mod claims;
pub mod generate;
pub mod sim;
pub mod stack;

/// The process's peak resident set (`VmHWM`), in KiB; 0 when /proc is unavailable. Used by the
/// benchmark binaries.
pub fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}
