//! Projects' workspaces put together from the home ([`kura_workspace`]): their directories
//! from the layout, their rules from the research service, their workers started from this
//! very binary.

use crate::{App, AppError, Result};
use kura_workflows::Research;
use kura_workspace::{Dirs, Workspaces};

impl App {
    /// The home's workspaces under `research`'s rules; workers are this executable started
    /// with the worker argument (the `kura` binary).
    pub fn workspaces(&self, research: Research) -> Result<Workspaces> {
        let cmd = kura_query::worker::WorkerCommand::current_exe().map_err(|e| AppError::Setup(e.to_string()))?;
        let layout = self.layout();
        let dirs = Dirs { workspaces: layout.workspaces(), certificates: layout.certificates(), airlock: layout.airlock() };
        let policy = self
            .config
            .airlock
            .load(self.home.root())
            .map_err(|e| AppError::Setup(format!("{}: {e}", self.home.root().join("kura.toml").display())))?;
        let scanner = kura_scan::Scanner::new(&self.config.scanner);
        Ok(Workspaces::configured(self.home.clone(), research, dirs, cmd, policy, scanner)
            .with_detection_limit(self.config.airlock.detections_per_day))
    }
}
