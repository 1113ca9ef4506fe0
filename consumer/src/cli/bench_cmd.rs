//! `trelay-consumer bench` arguments and output.

/// Arguments of `bench`.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {}

/// Runs `bench`.
pub async fn run(_a: BenchArgs) -> anyhow::Result<()> {
    anyhow::bail!("bench is not built yet")
}
