//! The local stack: the Verint + Amazon Connect simulator ([`sim`]) and the generator of
//! realistic CTR days and benchmark corpora ([`generate`]), and a corner of the running stack for
//! end-to-end tests ([`stack`]), and the claims those tests make ([`claims`]).

pub mod bench;
pub mod claims;
pub mod generate;
pub mod s3;
pub mod sim;
pub mod sqs;
pub mod stack;

/// Binds a free loopback port, builds `app` for its URL (`http://127.0.0.1:PORT`) and serves it
/// until the process ends; returns the URL. The soak's stand-ins ([`s3`], [`sqs`]) run this way.
pub async fn serve_on_loopback(app: impl FnOnce(&str) -> axum::Router) -> anyhow::Result<String> {
    let listener =
        tokio::net::TcpListener::bind(std::net::SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    let url = format!("http://{}", listener.local_addr()?);
    let app = app(&url);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(url)
}

/// The MD5 of `bytes` in hex: S3's ETag of a simple object, SQS's `MD5OfMessageBody`.
pub(crate) fn md5_hex(bytes: &[u8]) -> String {
    use md5::Digest as _;
    hex::encode(md5::Md5::digest(bytes))
}

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

/// The 1, 5 and 15 minute load averages (`/proc/loadavg`), for a benchmark's summary: other work
/// on the machine shows there.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

/// A benchmark summary's "met" column.
pub fn met(ok: bool) -> &'static str {
    if ok { "yes" } else { "NO" }
}

/// The number of CPUs this process may use, for a benchmark's summary.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
