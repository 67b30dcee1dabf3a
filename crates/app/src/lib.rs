//! # kura-app — the composition root
//!
//! The one place that knows how a Kura home is laid out and how its parts are put together from
//! its configuration (`kura.toml`): the store of record, the audit ledger (signing key, origin,
//! witnesses), accounts, the research lifecycle, the gate, the certificate authority's files and the server
//! certificates issued ahead, and a running front door. The CLI (`kura`) parses arguments and
//! prints; every test and every command that needs a part asks [`App`] for it, so the wiring
//! exists once.
//!
//! Nothing here reads the environment: what differs between a test and production (the cost of
//! password hashing) is an explicit [`Options`] field the caller sets.

pub mod config;
pub mod exchange;
pub mod front;
pub mod layout;
pub mod ledger;
pub mod research;
pub mod workspace;

pub use layout::Layout;

use kura_accounts::HashCost;
use kura_store::Home;

/// Errors of putting a home's parts together. Each names the file, setting or part concerned.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// A setting in `kura.toml` that cannot be used, or a missing prerequisite, with what to do.
    #[error("{0}")]
    Setup(String),
    /// File-system I/O on a named path.
    #[error("{path}: 入出力エラー / I/O error: {source}")]
    Io {
        /// The path.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// From the home (keys, catalogue, configuration).
    #[error(transparent)]
    Store(#[from] kura_store::StoreError),
    /// From the store of record.
    #[error(transparent)]
    Db(#[from] kura_db::DbError),
    /// From the ledger.
    #[error(transparent)]
    Ledger(#[from] kura_ledger::LedgerError),
    /// From the transparency-log formats (keys, notes).
    #[error(transparent)]
    Tlog(#[from] kura_tlog::TlogError),
    /// From accounts.
    #[error(transparent)]
    Accounts(#[from] kura_accounts::AccountsError),
    /// From the gate.
    #[error(transparent)]
    Gate(#[from] kura_gate::GateError),
    /// From the certificate authority or TLS.
    #[error(transparent)]
    Pki(#[from] kura_pki::PkiError),
    /// From the server.
    #[error(transparent)]
    Server(#[from] kura_server::ServerError),
    /// From a key operation.
    #[error(transparent)]
    Crypto(#[from] kura_crypto::CryptoError),
    /// From the research lifecycle.
    #[error(transparent)]
    Workflow(#[from] kura_workflows::WorkflowError),
    /// From a project's workspace.
    #[error(transparent)]
    Workspace(#[from] kura_workspace::WorkspaceError),
}

impl AppError {
    fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        AppError::Io { path: path.display().to_string(), source }
    }
}

/// Result type of this crate.
pub type Result<T> = std::result::Result<T, AppError>;

/// What the caller decides rather than the configuration file.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Argon2id cost of password hashes: [`HashCost::DEFAULT`] in production; tests pass
    /// [`HashCost::TEST`].
    pub hash_cost: HashCost,
}

impl Default for Options {
    fn default() -> Self {
        Self { hash_cost: HashCost::DEFAULT }
    }
}

/// A home, its whole configuration checked, and the options it is composed with.
#[derive(Clone, Debug)]
pub struct App {
    home: Home,
    config: config::KuraConfig,
    options: Options,
    /// A store of record given by the caller instead of `[server] database`.
    db: Option<kura_db::Db>,
}

impl App {
    /// Composes `home` with `options`; fails if any section of `kura.toml` is invalid or unknown.
    pub fn new(home: Home, options: Options) -> Result<Self> {
        let config = config::KuraConfig::of(&home)?;
        config.research.check().map_err(|e| AppError::Setup(format!("{}: [research] {e}", home.root().join("kura.toml").display())))?;
        config.exchange.check().map_err(|e| AppError::Setup(format!("{}: [exchange] {e}", home.root().join("kura.toml").display())))?;
        Ok(Self { home, config, options, db: None })
    }

    /// Uses `db` (already connected) as the store of record instead of `[server] database`:
    /// for a caller that made the database itself, such as a test on a fresh PostgreSQL
    /// database.
    pub fn with_db(mut self, db: kura_db::Db) -> Self {
        self.db = Some(db);
        self
    }

    /// The configuration, for a caller that sets parts of it in code before composing (a
    /// test's stricter limits); `kura.toml` is not written. Only what this crate composes takes
    /// the change (`[server]`, `[ledger]`); `[store]` and `[query]` are read by their owners
    /// from the home itself.
    pub fn config_mut(&mut self) -> &mut config::KuraConfig {
        &mut self.config
    }

    /// Opens the home at `root`, creating it with the commented template if there is none.
    pub fn open_or_init(root: &std::path::Path, options: Options) -> Result<(Self, bool)> {
        let (home, created) = Home::open_or_init_with_config(root, config::TEMPLATE)?;
        Ok((Self::new(home, options)?, created))
    }

    /// Creates a home at `root` with the commented template.
    pub fn init(root: &std::path::Path, options: Options) -> Result<Self> {
        Self::new(Home::init_with_config(root, config::TEMPLATE)?, options)
    }

    /// The configuration.
    pub fn config(&self) -> &config::KuraConfig {
        &self.config
    }

    /// The home.
    pub fn home(&self) -> &Home {
        &self.home
    }

    /// The options.
    pub fn options(&self) -> Options {
        self.options
    }

    /// Where things are in the home.
    pub fn layout(&self) -> Layout {
        Layout::of(&self.home)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_home_is_composed_only_with_a_valid_configuration() {
        let dir = tempfile::tempdir().unwrap();
        let app = App::init(&dir.path().join("h"), Options::default()).unwrap();
        assert_eq!(app.config(), &config::KuraConfig { version: 1, ..Default::default() });
        let text = std::fs::read_to_string(app.home().root().join("kura.toml")).unwrap();
        assert_eq!(text, config::TEMPLATE, "kura init writes the commented template");
        // A key no section knows, in any section, refuses the whole composition and names the file.
        let path = app.home().root().join("kura.toml");
        for (bad, what) in [
            ("[server]\nlockout = 3\n", "lockout"),
            ("[query]\ntimeout_secs = \"soon\"\n", "timeout_secs"),
            ("[nothing]\n", "nothing"),
            ("[store]\nthreads = -1\n", "threads"),
        ] {
            std::fs::write(&path, format!("version = 1\n{bad}")).unwrap();
            let err = Home::open(app.home().root()).map_err(AppError::from).and_then(|h| App::new(h, Options::default())).unwrap_err();
            let text = err.to_string();
            assert!(text.contains("kura.toml") && text.contains(what), "{bad:?}: {text}");
        }
        // The section an owner reads on its own is checked too, naming the section.
        std::fs::write(&path, "version = 1\n[query]\ntimeout_secs = \"soon\"\n").unwrap();
        let home = Home::open(app.home().root()).unwrap();
        let err = home.section::<kura_query::config::QueryConfig>("query").unwrap_err().to_string();
        assert!(err.contains("[query]") && err.contains("timeout_secs"), "{err}");
    }
}
