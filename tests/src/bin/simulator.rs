//! The Verint + Amazon Connect simulator of the local stack, as a process.

use std::net::SocketAddr;

use clap::Parser;
use local_stack::sim::{SimConfig, Simulator};
use tracing::info;

#[derive(Debug, Parser)]
#[command(
    about = "Serves Verint DAS + ingest and Amazon Connect DescribeContact for the local stack"
)]
struct Args {
    /// Address to listen on.
    #[arg(long, env = "SIM_LISTEN", default_value = "127.0.0.1:5056")]
    listen: SocketAddr,
    /// The one Verint API key id accepted.
    #[arg(long, env = "VERINT_API_KEY_ID", default_value = local_stack::stack::LOCAL_KEY_ID)]
    key_id: String,
    /// The API key, base64url without padding.
    #[arg(
        long,
        env = "VERINT_API_KEY",
        hide_env_values = true,
        default_value = local_stack::stack::LOCAL_KEY
    )]
    api_key: String,
    /// The largest DAS page.
    #[arg(long, default_value_t = 500)]
    max_page_size: usize,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let args = Args::parse();
    let sim = Simulator::start(
        SimConfig {
            key_id: args.key_id,
            api_key: args.api_key,
            max_page_size: args.max_page_size,
        },
        args.listen,
    )
    .await?;
    info!(url = %sim.base_url(), das = %sim.das_url(), ingest = %sim.ingest_url(), "simulator listening");
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r?,
        _ = term.recv() => {}
    }
    info!("stopping");
    sim.stop().await;
    Ok(())
}
