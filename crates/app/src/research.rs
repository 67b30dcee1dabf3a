//! The research lifecycle's parts (WG-6, HIC-P1, HIC-P3): the service under the home's
//! `[research]` rules, over the same store of record, ledger and clock as accounts, and the
//! catalogue applications may ask for.

use crate::{App, Result};
use kura_accounts::Accounts;
use kura_workflows::{Catalogue, Research};

impl App {
    /// The research service beside `accounts` (same store of record, ledger and clock).
    pub fn research(&self, accounts: Accounts) -> Result<Research> {
        Ok(Research::new(accounts, self.config.research.clone())?)
    }

    /// Every dataset, table and column of the home's data catalogue (WG-5): what an
    /// application may ask for. A home without datasets has an empty catalogue.
    pub fn research_catalogue(&self) -> Result<Catalogue> {
        let mut out = Catalogue::new();
        if !self.home.catalog_path().exists() {
            return Ok(out);
        }
        for d in self.home.catalog()?.datasets.values() {
            for t in &d.tables {
                for c in &t.columns {
                    out.add(&d.name, &t.name, &c.name);
                }
            }
        }
        Ok(out)
    }
}
