//! The query section of a home's configuration (`kura.toml [query]`): limits and defaults of
//! SQL execution, with their defaults here and nowhere else.

use serde::{Deserialize, Serialize};

/// Limits and defaults of SQL execution.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct QueryConfig {
    /// Memory a query may use before it spills or fails (MiB); 0 = half of physical memory.
    pub memory_limit_mb: u64,
    /// Wall-clock limit of one statement (seconds).
    pub timeout_secs: u64,
    /// Disk a query may use for spill files (MiB).
    pub spill_limit_mb: u64,
    /// Parallelism; 0 = number of CPUs.
    pub target_partitions: usize,
    /// Whether Kura's own plan rewrites (kura-query `rules`) are applied; they give the same
    /// answers faster, and can be switched off should one misbehave.
    pub rewrites: bool,
    /// Extra DataFusion settings (`datafusion.execution.…` = value) applied to every session;
    /// for operators tuning the engine. Researchers cannot change settings from SQL.
    pub datafusion: std::collections::BTreeMap<String, String>,
    /// Confinement mechanisms the query worker may run without where the kernel lacks them
    /// (`"landlock"`, `"seccomp"`, `"network namespace"`, `"memory limit"`, `"cpu limit"`);
    /// empty = the worker refuses to start without every one of them.
    pub allow_without: Vec<String>,
}

impl Default for QueryConfig {
    fn default() -> Self {
        Self {
            memory_limit_mb: 0,
            timeout_secs: 600,
            spill_limit_mb: 20_480,
            target_partitions: 0,
            rewrites: true,
            datafusion: std::collections::BTreeMap::new(),
            allow_without: Vec::new(),
        }
    }
}
