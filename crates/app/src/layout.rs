//! Where everything lives in a home, in one place:
//!
//! ```text
//! <home>/kura.toml                   configuration
//! <home>/keys/                       master key, keyring, ledger.key, witness.key (0600)
//! <home>/data/                       encrypted datasets
//! <home>/state.db                    the store of record (unless [server] database names PostgreSQL)
//! <home>/ledger/log/                 the published log: checkpoint, hash tiles, entry bundles
//! <home>/ca/ca.crt.pem, ca.key.pem   Kura's certificate authority (key 0600)
//! <home>/ca/server/                  server certificates issued ahead
//! <home>/witness/logs.txt, state.json  the home's own witness: logs it cosigns, their last sizes
//! <home>/workspaces/PRJ-…/           a project's workspace: saved tables (sealed), scratch
//! <home>/certificates/               deletion certificates and their .tlog-proof files
//! <home>/airlock/outputs/OUT-…/      output files, sealed under the airlock key when made
//! <home>/airlock/releases/OUT-…/     released packages: files, manifest.json, release.tlog-proof
//! ```

use kura_store::Home;
use std::path::PathBuf;

/// The paths of one home.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    /// The home's root.
    pub root: PathBuf,
}

impl Layout {
    /// The layout of `home`.
    pub fn of(home: &Home) -> Self {
        Self { root: home.root().to_path_buf() }
    }

    /// The SQLite store of record, when `[server] database` is empty.
    pub fn state_db(&self) -> PathBuf {
        self.root.join("state.db")
    }

    /// The ledger's checkpoint signing key.
    pub fn ledger_key(&self) -> PathBuf {
        self.root.join("keys/ledger.key")
    }

    /// The published log (C2SP tlog-tiles).
    pub fn ledger_published(&self) -> PathBuf {
        self.root.join("ledger/log")
    }

    /// The projects' workspaces.
    pub fn workspaces(&self) -> PathBuf {
        self.root.join("workspaces")
    }

    /// One project's workspace directory.
    pub fn workspace(&self, project: &str) -> PathBuf {
        self.workspaces().join(project)
    }

    /// Deletion certificates of ended projects and their proofs.
    pub fn certificates(&self) -> PathBuf {
        self.root.join("certificates")
    }

    /// The airlock's files: output files as made, released packages.
    pub fn airlock(&self) -> PathBuf {
        self.root.join("airlock")
    }

    /// The exchange's sealed files (one per transfer, until it is deleted).
    pub fn exchange(&self) -> PathBuf {
        self.root.join("exchange")
    }

    /// The certificate authority's directory.
    pub fn ca_dir(&self) -> PathBuf {
        self.root.join("ca")
    }

    /// The CA's certificate.
    pub fn ca_cert(&self) -> PathBuf {
        self.ca_dir().join("ca.crt.pem")
    }

    /// Server certificates issued ahead.
    pub fn server_cert_dir(&self) -> PathBuf {
        self.ca_dir().join("server")
    }

    /// The home's witness key.
    pub fn witness_key(&self) -> PathBuf {
        self.root.join("keys/witness.key")
    }

    /// The logs the home's witness cosigns (one verifier key per line).
    pub fn witness_logs(&self) -> PathBuf {
        self.root.join("witness/logs.txt")
    }

    /// The home's witness state (the last size it cosigned per log).
    pub fn witness_state(&self) -> PathBuf {
        self.root.join("witness/state.json")
    }
}
