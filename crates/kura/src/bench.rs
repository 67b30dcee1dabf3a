//! `kura bench query` (placeholder until the benchmark module is written below).
use crate::Result;

/// Arguments.
#[derive(Debug, clap::Args)]
pub struct QueryBenchArgs {
    /// Persons.
    #[arg(long, default_value_t = 100_000)]
    pub persons: u64,
}

/// Runs the benchmark.
pub fn query(_home: Option<std::path::PathBuf>, _a: QueryBenchArgs) -> Result<()> {
    Ok(())
}
