//! Writes the benchmark corpus: N CTRs as gzip Firehose objects on disk, plus Verint's ids.

use std::path::PathBuf;
use std::time::Instant;

use clap::Parser;

#[derive(Debug, Parser)]
#[command(about = "Writes N realistic CTRs (gzip, ~5 MB objects) and verint_ids.txt under DIR")]
struct Args {
    #[arg(long)]
    dir: PathBuf,
    #[arg(long, default_value_t = 100_000)]
    n: usize,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    #[arg(
        long,
        env = "CONNECT_INSTANCE_ID",
        default_value = "5f8a7b3c-1d2e-4f60-8a9b-0c1d2e3f4a5b"
    )]
    instance_id: String,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let started = Instant::now();
    let c = local_stack::generate::bench_corpus(&args.dir, args.n, args.seed, &args.instance_id)?;
    println!("{}", serde_json::to_string_pretty(&c)?);
    eprintln!("written in {:.1?}", started.elapsed());
    Ok(())
}
