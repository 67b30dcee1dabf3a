//! The store's section of a home's configuration (`kura.toml [store]`), and access to the
//! other sections for the crates that own them: every section is deserialised into its owner's
//! type ([`crate::Home::section`]), and the whole file is checked by the composition root
//! (`kura-app`), which also writes the commented template.

use serde::{Deserialize, Serialize};

/// How datasets are written.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// Rows per Parquet row group.
    pub row_group_rows: usize,
    /// Writer threads; 0 = number of CPUs.
    pub threads: usize,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self { row_group_rows: 512 * 1024, threads: 0 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_are_refused() {
        assert!(toml::from_str::<StoreConfig>("row_group_row = 3\n").is_err());
        assert_eq!(toml::from_str::<StoreConfig>("").unwrap(), StoreConfig::default());
    }
}
