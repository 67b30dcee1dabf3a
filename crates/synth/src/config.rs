//! The synth section of a home's configuration (`kura.toml [synth]`): the defaults of
//! `kura synth`, taken from the generator's own.

use serde::{Deserialize, Serialize};

/// Defaults of `kura synth`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct SynthDefaults {
    /// Persons.
    pub persons: u64,
    /// Seed.
    pub seed: u64,
    /// First month, YYYYMM.
    pub start: i32,
    /// Months.
    pub months: u32,
}

impl Default for SynthDefaults {
    fn default() -> Self {
        let c = crate::SynthConfig::new(50_000, 20_240_401);
        Self { persons: c.persons, seed: c.seed, start: c.start.yyyymm(), months: c.months }
    }
}
