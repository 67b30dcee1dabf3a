//! The ledger section of a home's configuration (`kura.toml [ledger]`): key type, origin and
//! witnesses, with their defaults here and nowhere else.

use serde::{Deserialize, Serialize};

/// A witness of the audit ledger.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WitnessConfig {
    /// Its cosignature verifier key, `name+id+base64`.
    pub key: String,
    /// Its submission prefix (`http://host:port`); absent for an offline witness fed by files.
    pub url: Option<String>,
}

/// The audit ledger.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct LedgerConfig {
    /// Checkpoint key type: `ed25519` or `ecdsa-p256` (used when the key is created).
    pub key_type: String,
    /// The log's origin (its key's name); empty = `kura.local/<random>` chosen at creation.
    pub origin: String,
    /// Cosignatures required before a checkpoint is published.
    pub min_witnesses: usize,
    /// Witnesses asked to cosign.
    pub witnesses: Vec<WitnessConfig>,
}

impl Default for LedgerConfig {
    fn default() -> Self {
        Self { key_type: "ed25519".into(), origin: String::new(), min_witnesses: 0, witnesses: Vec::new() }
    }
}
