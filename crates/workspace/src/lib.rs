//! # kura-workspace — projects' workspaces (HIC-P3, HIC-S13, HIC-L1) and their end (HIC-IO3, CLD-5)
//!
//! 作業環境：プロジェクトごとの隔離されたプロセスで SQL を実行し、利用終了時には鍵を破棄して
//! 削除証明書を台帳に記録する。
//!
//! A workspace is a directory of the home (`workspaces/PRJ-…/`: saved tables sealed under the
//! workspace key, the worker's scratch space) and a key of the keyring (`workspace/PRJ-…`),
//! made when the project is provisioned. Its SQL runs in a confined worker process
//! ([`kura_query::worker::Session`]) that holds the unwrapped keys of the project's grant, the
//! workspace key and the project's pseudonym key — never the master key or the platform's
//! pseudonym key. [`Workspaces`] keeps one worker per project running between requests (so a
//! request does not pay for starting one), never shares a worker between projects, and stops
//! workers that have been idle for a while.
//!
//! Who may use a workspace is `kura-workflows`' rule ([`kura_workflows::Research::workspace`]:
//! active members of a project that has not ended); every script is recorded in the ledger by
//! its SHA-256, never its text or results.
//!
//! The end of use destroys a workspace in this order, so that a crash at any point leaves
//! nothing readable and can be repeated: a marker that the end has begun (no worker starts
//! after it), the project's worker stopped, the workspace key removed from the keyring and the
//! master key replaced (crypto-shredding: a copy of the files or of an old keyring is of no
//! use), the directory deleted; then the project's state and the deletion certificate's ledger
//! entry in one transaction; then the certificate and its `.tlog-proof` are written where the
//! applicant can fetch them.

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
#![forbid(unsafe_code)]

pub mod airlock;
pub mod bringin;
pub mod memory;
pub mod values;

use kura_crypto::Purpose;
use kura_query::worker::{Session, WorkerCommand};
use kura_query::{EngineSpec, Grant, Limits, StatementOutput, WorkspaceSpec};
use kura_store::{GrantedKeys, Home};
use kura_workflows::{Caller, Project, ProjectState, Research, Sample, Viewer, WorkflowError};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Everything that can go wrong with a workspace.
#[derive(Debug, thiserror::Error)]
pub enum WorkspaceError {
    /// A rule of the research lifecycle (not a member, ended, wrong party…).
    #[error(transparent)]
    Workflow(#[from] WorkflowError),
    /// From SQL or the worker.
    #[error(transparent)]
    Query(#[from] kura_query::QueryError),
    /// From the home (keys, catalogue).
    #[error(transparent)]
    Store(#[from] kura_store::StoreError),
    /// From a key operation.
    #[error(transparent)]
    Crypto(#[from] kura_crypto::CryptoError),
    /// From the ledger.
    #[error(transparent)]
    Ledger(#[from] kura_ledger::LedgerError),
    /// File-system I/O on a named path.
    #[error("{path}: 入出力エラー / I/O error: {source}")]
    Io {
        /// The path.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// The malware scanner could not scan: nothing passes (issue 17 §4).
    #[error(transparent)]
    Scan(#[from] kura_scan::ScanError),
    /// Malware was found in a file (recorded for the operators and in the ledger).
    #[error(
        "{file}: マルウェアを検出しました（{signature}）。ファイルは受け付けません / malware found in {file} ({signature}): the file is refused"
    )]
    Malware {
        /// The file.
        file: String,
        /// The signature found.
        signature: String,
    },
    /// The workspace cannot be used as it stands; says why and what to do.
    #[error("{0}")]
    Unusable(String),
    /// The user's uploads are refused for now: their files held malware too often.
    #[error("{0}")]
    Blocked(String),
}

impl WorkspaceError {
    fn io(path: &Path, source: std::io::Error) -> Self {
        WorkspaceError::Io { path: path.display().to_string(), source }
    }
}

/// Result type of this crate.
pub type Result<T> = std::result::Result<T, WorkspaceError>;

/// The keyring id of a project's workspace key.
pub fn workspace_key_id(project: &str) -> String {
    format!("workspace/{project}")
}

/// Where workspaces and deletion certificates live (from the home's layout).
#[derive(Clone, Debug)]
pub struct Dirs {
    /// The projects' workspaces (`workspaces/`).
    pub workspaces: PathBuf,
    /// Deletion certificates and their proofs (`certificates/`).
    pub certificates: PathBuf,
    /// The airlock's output files and released packages (`airlock/`).
    pub airlock: PathBuf,
}

/// What ending a project produced.
#[derive(Debug)]
pub struct EndOfUse {
    /// The project, ended.
    pub project: Project,
    /// The deletion certificate (JSON).
    pub certificate: PathBuf,
    /// Its SHA-256 (the ledger entry's `object_hash`).
    pub certificate_sha256: String,
    /// The ledger entry's index.
    pub entry: u64,
    /// The `.tlog-proof` of the entry, or why there is none yet (a checkpoint that waits for
    /// witnesses: `kura ledger prove --index N` writes it later).
    pub proof: std::result::Result<PathBuf, String>,
}

/// A workspace's worker as `kura workspace status` shows it.
#[derive(Clone, Debug, Serialize)]
pub struct Status {
    /// The project.
    pub project: String,
    /// The worker's process id.
    pub pid: u32,
    /// One `mechanism: on|off` line each, then the worker's user.
    pub confinement: Vec<String>,
    /// The saved tables.
    pub saved_tables: Vec<String>,
    /// The project's extract: when it was built, and each table with its rows.
    pub extract: Option<ExtractStatus>,
}

/// The extract a workspace reads (`kura_query::extract`).
#[derive(Clone, Debug, Serialize)]
pub struct ExtractStatus {
    /// When it was built (UTC).
    pub built_at: String,
    /// Each table and its rows.
    pub tables: Vec<(String, u64)>,
}

/// The deletion certificate: what was destroyed, when, by whom (CLD-5).
#[derive(Debug, Serialize)]
struct Certificate<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    project: &'a str,
    application: &'a str,
    dataset: &'a str,
    applicant: &'a str,
    ended_by: &'a str,
    ended_at: String,
    period_ends_at: String,
    members_revoked: usize,
    destroyed: Destroyed,
    statement_ja: &'static str,
    statement_en: &'static str,
}

#[derive(Debug, Serialize)]
struct Destroyed {
    /// SHA-256 of each destroyed key's identifier.
    key_id_sha256: Vec<String>,
    /// How many keys left the keyring now (0 when an interrupted end had removed them).
    keys_removed_now: usize,
    master_key_replaced: bool,
    saved_tables: usize,
    files: usize,
    bytes: u64,
    workspace_directory_removed: bool,
}

/// One project's running worker, taken out while it answers.
type Slot = Arc<tokio::sync::Mutex<Option<(Session, Instant)>>>;

struct Inner {
    home: Home,
    research: Research,
    dirs: Dirs,
    cmd: WorkerCommand,
    pool: Mutex<HashMap<String, Slot>>,
    /// The airlock's disclosure policy.
    policy: kura_disclosure::LoadedPolicy,
    /// The malware scanner of the airlock's both directions.
    scanner: kura_scan::Scanner,
    /// Detections in a user's files within 24 hours that block their uploads (0: never).
    detections_per_day: u32,
}

/// The workspaces of a home (see the crate documentation).
#[derive(Clone)]
pub struct Workspaces {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Workspaces {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Workspaces").field("dirs", &self.inner.dirs).finish_non_exhaustive()
    }
}

fn mkdir_private(path: &Path) -> Result<()> {
    Ok(kura_store::home::mkdir_private(path)?)
}

/// Files and bytes below `dir`.
fn count_files(dir: &Path) -> (usize, u64) {
    let mut files = 0;
    let mut bytes = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            match e.file_type() {
                Ok(t) if t.is_dir() => stack.push(e.path()),
                Ok(t) if t.is_file() => {
                    files += 1;
                    bytes += e.metadata().map_or(0, |m| m.len());
                }
                _ => {}
            }
        }
    }
    (files, bytes)
}

fn blocking_failed(e: tokio::task::JoinError) -> WorkspaceError {
    WorkspaceError::Unusable(format!("作業環境の処理が中断されました / the workspace task failed: {e}"))
}

impl Workspaces {
    /// The workspaces of `home`, checked by `research`'s rules, whose workers `cmd` starts (the
    /// `kura` binary with its worker argument); the airlock applies the NDB rules and scans
    /// through clamd at its default socket.
    pub fn new(home: Home, research: Research, dirs: Dirs, cmd: WorkerCommand) -> Workspaces {
        let scanner = kura_scan::Scanner::new(&kura_scan::ScannerConfig::default());
        Self::configured(home, research, dirs, cmd, kura_disclosure::LoadedPolicy::default_ndb(), scanner)
    }

    /// [`Workspaces::new`] whose airlock applies `policy` (issue 17 §1) and scans with
    /// `scanner` (issue 17 §4).
    pub fn configured(
        home: Home,
        research: Research,
        dirs: Dirs,
        cmd: WorkerCommand,
        policy: kura_disclosure::LoadedPolicy,
        scanner: kura_scan::Scanner,
    ) -> Workspaces {
        let detections_per_day = airlock::AirlockConfig::default().detections_per_day;
        Workspaces {
            inner: Arc::new(Inner { home, research, dirs, cmd, pool: Mutex::new(HashMap::new()), policy, scanner, detections_per_day }),
        }
    }

    /// The same workspaces blocking a user's uploads after `n` malware detections in their
    /// files within 24 hours (`[airlock] detections_per_day`; 0: never). Only while nothing else
    /// holds these workspaces (right after they are made); otherwise unchanged.
    pub fn with_detection_limit(mut self, n: u32) -> Workspaces {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.detections_per_day = n;
        }
        self
    }

    /// Refuses `caller`'s upload while their files held malware `detections_per_day` times in
    /// the last 24 hours (abuse detected and blocked, HIC-S1); the refusal is recorded against
    /// `object` (the project or the application) with the file's hash.
    pub(crate) async fn check_not_blocked(&self, caller: &Caller, object: &str, what: &str, sha256: &str) -> Result<()> {
        let limit = self.inner.detections_per_day;
        if limit == 0 {
            return Ok(());
        }
        let research = &self.inner.research;
        let since = research.now_secs() - 24 * 3600;
        let n = research.detections_by(caller.login(), since).await?;
        if n < i64::from(limit) {
            return Ok(());
        }
        let detail = format!("{n} malware detections in 24 hours");
        research.record_workspace(caller, object, what, sha256, "refused", &detail).await?;
        Err(WorkspaceError::Blocked(format!(
            "過去24時間にあなたのファイルからマルウェアが {n} 件検出されたため、ファイルの受け付けを止めています。24時間たつまで待つか、管理者に連絡してください / \
             your files held malware {n} times in the last 24 hours: uploads are refused until that has passed; ask a custodian"
        )))
    }

    /// The research service whose rules apply.
    pub fn research(&self) -> &Research {
        &self.inner.research
    }

    fn workspace_dir(&self, project: &str) -> PathBuf {
        self.inner.dirs.workspaces.join(project)
    }

    fn ending_marker(&self, project: &str) -> PathBuf {
        self.inner.dirs.workspaces.join(format!("{project}.ending"))
    }

    /// Makes project `project`'s workspace: its directory (0700) and its key. Called when the
    /// project is provisioned; repeating it changes nothing.
    pub fn prepare(&self, project: &str) -> Result<()> {
        mkdir_private(&self.inner.dirs.workspaces)?;
        // An ended project's workspace is never made again: its deletion certificate says so.
        if self.inner.dirs.certificates.join(format!("{project}.deletion-certificate.json")).exists() {
            return Err(WorkspaceError::Unusable(format!("プロジェクト {project} は利用終了しました / project {project} has ended")));
        }
        if self.ending_marker(project).exists() {
            return Err(WorkspaceError::Unusable(format!(
                "プロジェクト {project} の利用終了処理が途中です。`kura project end {project}` をやり直してください / the end of project {project} was interrupted: run `kura project end {project}` again"
            )));
        }
        mkdir_private(&self.workspace_dir(project))?;
        self.inner.home.ensure_key(&workspace_key_id(project), Purpose::Workspace)?;
        Ok(())
    }

    /// The engine specification of project `p`'s workspace: exactly the approved columns
    /// (their keys unwrapped, no other), the workspace key, the project's pseudonym key, the
    /// workspace directory and the home's limits. The caller has checked membership.
    pub fn spec(&self, p: &Project) -> Result<EngineSpec> {
        if self.ending_marker(&p.id).exists() {
            return Err(WorkspaceError::Unusable(format!("プロジェクト {} は利用終了処理中です / project {} is being ended", p.id, p.id)));
        }
        if ProjectState::parse(&p.state) == Some(ProjectState::Ended) || p.certificate_sha256.is_some() {
            return Err(WorkspaceError::Unusable(format!("プロジェクト {} は利用終了しました / project {} has ended", p.id, p.id)));
        }
        let key_id = workspace_key_id(&p.id);
        if !self.inner.home.has_key(&key_id)? {
            // Provisioned but never prepared (interrupted right after the agreement): only a
            // project in use, within its period, gets its workspace now — an ended one (whose
            // end requires a notice or the period's end) never again.
            let in_use = ProjectState::parse(&p.state) == Some(ProjectState::Active) && p.ends_at > self.inner.research.now_secs();
            if !in_use {
                return Err(WorkspaceError::Unusable(format!(
                    "プロジェクト {} の作業環境はありません / project {} has no workspace",
                    p.id, p.id
                )));
            }
            self.prepare(&p.id)?;
        }
        let home = &self.inner.home;
        let (master, keyring, catalog) = home.snapshot()?;
        let entry = catalog.datasets.get(&p.dataset).cloned().ok_or_else(|| {
            WorkspaceError::Unusable(format!(
                "プロジェクト {} のデータセット '{}' がありません / project {}'s dataset '{}' is not in the catalogue",
                p.id, p.dataset, p.id, p.dataset
            ))
        })?;
        let specs: Vec<String> = p.columns.iter().map(|(t, c)| format!("{t}.{c}")).collect();
        let grant = Grant::parse(&entry, &specs)?;
        // The grant's keys, and for the extract's builder the keys of the columns its hidden
        // lineage columns are computed from (kura_query::hidden): the worker that answers SQL
        // receives none of them.
        let mut ids = grant.key_ids(&entry);
        ids.extend(grant.lineage_key_ids(&entry));
        ids.sort();
        ids.dedup();
        let keys = GrantedKeys::unwrap(&master, &keyring, ids.iter().map(String::as_str))?;
        let key = keyring.unwrap_as(&master, &kura_crypto::KeyId::new(key_id)?, Purpose::Workspace)?;
        drop(master);
        let pseudonym = home.platform_pseudonym_key()?.for_project(&p.id);
        let lineage = kura_query::hidden::LineageKeys::for_builder(&home.airlock_key()?, &p.id);
        Ok(EngineSpec {
            dataset: entry,
            grant,
            keys,
            data_root: home.data_dir(),
            limits: Limits::from_home(home)?,
            workspace: Some(WorkspaceSpec {
                project: p.id.clone(),
                dir: self.workspace_dir(&p.id),
                key,
                pseudonym,
                extract: None,
                lineage: Some(lineage),
            }),
        })
    }

    fn slot(&self, project: &str) -> Slot {
        let mut pool = self.inner.pool.lock().unwrap_or_else(|e| e.into_inner());
        pool.entry(project.to_string()).or_default().clone()
    }

    /// Runs `f` on project `p`'s worker, starting one if none runs (or the last was stopped);
    /// the worker stays for the next request unless it was killed.
    async fn with_session<T: Send + 'static>(
        &self,
        p: &Project,
        f: impl FnOnce(&mut Session) -> std::result::Result<T, kura_query::QueryError> + Send + 'static,
    ) -> Result<T> {
        self.ended(p)?;
        let slot = self.slot(&p.id);
        let mut guard = slot.lock().await;
        // Read again under the lock: the project may have ended while this request waited (a
        // long script before it, another process's end).
        let p = &self.inner.research.project(Viewer::Owner, &p.id).await?;
        self.ended(p)?;
        // A worker started before the dataset was written again (data withdrawn or added)
        // reads an extract of the old data: it is replaced, and the new one's builder writes
        // the extract afresh.
        let generation = self.inner.home.catalog()?.datasets.get(&p.dataset).map(|d| d.generation.clone()).unwrap_or_default();
        let running =
            guard.take().filter(|(s, _)| s.is_alive() && s.extract().is_none_or(|m| m.dataset_generation == generation)).map(|(s, _)| s);
        let spec = if running.is_none() { Some(self.spec(p)?) } else { None };
        let cmd = self.inner.cmd.clone();
        let (session, out) = tokio::task::spawn_blocking(move || {
            let mut session = match (running, spec) {
                (Some(s), _) => s,
                (None, Some(spec)) => Session::start(&cmd, spec)?,
                (None, None) => return Err(kura_query::QueryError::Engine("no worker".into())),
            };
            let out = f(&mut session);
            Ok((session, out))
        })
        .await
        .map_err(blocking_failed)??;
        if session.is_alive() {
            *guard = Some((session, Instant::now()));
        }
        Ok(out?)
    }

    /// Runs `sql` in project `project`'s workspace for `caller` (an active member; otherwise
    /// refused and recorded), saving the last result as table `save_as` if given. Every script
    /// is recorded in the ledger by its keyed digest ([`Workspaces::script_digest`]).
    pub async fn run(&self, caller: &Caller, project: &str, sql: &str, save_as: Option<&str>) -> Result<Vec<StatementOutput>> {
        let research = &self.inner.research;
        let p = research.workspace(caller, project).await?;
        // A name that cannot be a table is refused before anything runs, and never written
        // into the ledger.
        if let Some(name) = save_as {
            kura_query::workspace::check_table_name(name, &Default::default())?;
            kura_query::workspace::check_not_protected(&self.workspace_dir(&p.id), name)?;
        }
        let hash = self.script_digest(sql)?;
        let (text, save) = (sql.to_string(), save_as.map(str::to_string));
        let outcome = self.with_session(&p, move |s| s.run(&text, save.as_deref())).await;
        let (action, detail) = match save_as {
            Some(name) => ("workspace.save", format!("saved table {}", kura_ledger::entry::printable(name))),
            None => ("workspace.query", String::new()),
        };
        // The project may have ended, or the member been removed, while the script ran (the
        // end may come from another process): the result is then withheld.
        let still = match research.workspace(caller, &p.id).await {
            Ok(now) => self.ended(&now),
            Err(e) => Err(e.into()),
        };
        if let Err(e) = still {
            research
                .record_workspace(caller, &p.id, action, &hash, "withheld", "result withheld: access ended while the script ran")
                .await?;
            return Err(e);
        }
        research.record_workspace(caller, &p.id, action, &hash, if outcome.is_ok() { "ok" } else { "error" }, &detail).await?;
        outcome
    }

    /// Runs one SELECT in project `project`'s checker for `caller`, an active member: the
    /// result with the evidence of every cell from the hidden lineage columns
    /// ([`kura_query::hidden`]). The checker is a worker of its own, started for this request
    /// while the project's worker waits (one script of the project at a time); when it had to
    /// write the extract again (with the lineage columns), the project's worker is replaced.
    /// Recorded in the ledger by the script's keyed digest.
    pub async fn evidence(&self, caller: &Caller, project: &str, sql: &str) -> Result<kura_query::lineage::Evidenced> {
        let research = &self.inner.research;
        let p = research.workspace(caller, project).await?;
        let outcome = self.checker_evidence(&p, sql).await;
        let hash = self.script_digest(sql)?;
        research.record_workspace(caller, &p.id, "output.check", &hash, if outcome.is_ok() { "ok" } else { "error" }, "").await?;
        outcome
    }

    /// Runs one SELECT in project `p`'s checker (not recorded: the callers record it).
    pub(crate) async fn checker_evidence(&self, p: &Project, sql: &str) -> Result<kura_query::lineage::Evidenced> {
        self.ended(p)?;
        let slot = self.slot(&p.id);
        let mut guard = slot.lock().await;
        let spec = self.spec(p)?;
        let cmd = self.inner.cmd.clone();
        let text = sql.to_string();
        let (generation, outcome) = tokio::task::spawn_blocking(move || {
            let mut checker = Session::start_checker(&cmd, spec)?;
            let generation = checker.extract().map(|m| m.generation.clone());
            Ok::<_, kura_query::QueryError>((generation, checker.evidence(&text)))
        })
        .await
        .map_err(blocking_failed)??;
        if guard.as_ref().is_some_and(|(s, _)| s.extract().map(|m| m.generation.clone()) != generation) {
            *guard = None;
        }
        drop(guard);
        Ok(outcome?)
    }

    /// How a script is named in the ledger: HMAC-SHA-256 under a key derived from the home's
    /// catalogue key, never its text or plain SHA-256. The log's tiles may be served to anyone,
    /// and a plain hash of a short script can be found by trying guesses (which disease codes a
    /// project studies); the platform, holding the key, can still tell whether a given script
    /// is the one recorded.
    pub fn script_digest(&self, sql: &str) -> Result<String> {
        let key = self.inner.home.catalog_key()?.derive(b"kura/ledger/script-digest");
        Ok(kura_store::catalog::keyed_digest(&key, "workspace-script", sql.as_bytes()))
    }

    /// The confinement of project `project`'s worker and its saved tables (the owner's view:
    /// starts the worker if none runs).
    pub async fn status(&self, project: &str) -> Result<Status> {
        let p = self.inner.research.project(Viewer::Owner, project).await?;
        self.ended(&p)?;
        let id = p.id.clone();
        self.with_session(&p, move |s| {
            let extract = s.extract().map(|m| ExtractStatus {
                built_at: m.built_at.clone(),
                tables: m.tables.iter().map(|t| (t.name.clone(), t.rows)).collect(),
            });
            Ok(Status { project: id, pid: s.pid(), confinement: s.report().to_vec(), saved_tables: s.saved_tables().to_vec(), extract })
        })
        .await
    }

    /// Removes saved table `name` of project `project` for `caller`, a member: the project's
    /// worker is stopped first (the next request starts one without the table), the sealed
    /// file deleted, and the removal recorded in the ledger.
    pub async fn drop_table(&self, caller: &Caller, project: &str, name: &str) -> Result<()> {
        let research = &self.inner.research;
        let p = research.workspace(caller, project).await?;
        kura_query::workspace::check_table_name(name, &Default::default())?;
        kura_query::workspace::check_not_protected(&self.workspace_dir(&p.id), name)?;
        if !kura_query::workspace::saved_names(&self.workspace_dir(&p.id)).iter().any(|n| n == name) {
            return Err(WorkspaceError::Unusable(format!("保存した表 '{name}' はありません / no saved table '{name}'")));
        }
        self.stop(&p.id).await;
        let file = self.workspace_dir(&p.id).join("tables").join(format!("{name}.kura-table"));
        std::fs::remove_file(&file).map_err(|e| WorkspaceError::io(&file, e))?;
        let hash = hex::encode(Sha256::digest(name.as_bytes()));
        research.record_workspace(caller, &p.id, "workspace.drop", &hash, "ok", &format!("dropped table {name}")).await?;
        Ok(())
    }

    /// The saved tables of a member's workspace.
    pub async fn saved_tables(&self, caller: &Caller, project: &str) -> Result<Vec<String>> {
        let p = self.inner.research.workspace(caller, project).await?;
        Ok(kura_query::workspace::saved_names(&self.workspace_dir(&p.id)))
    }

    /// Refuses an ended project, and one whose end has begun (its marker written: the key may
    /// already be gone).
    fn ended(&self, p: &Project) -> Result<()> {
        let ended_at = if ProjectState::parse(&p.state) == Some(ProjectState::Ended) {
            p.ended_at
        } else if self.ending_marker(&p.id).exists() {
            Some(self.inner.research.now_secs())
        } else {
            None
        };
        match ended_at {
            Some(at) => {
                let ended = kura_ledger::entry::format_seconds(at);
                Err(WorkflowError::Ended { id: p.id.clone(), ended: ended.chars().take(10).collect() }.into())
            }
            None => Ok(()),
        }
    }

    /// How many workers run now.
    pub fn running(&self) -> usize {
        let pool = self.inner.pool.lock().unwrap_or_else(|e| e.into_inner());
        pool.values().filter(|s| s.try_lock().map(|g| g.is_some()).unwrap_or(true)).count()
    }

    /// Stops the workers idle for longer than `idle`; returns how many were stopped.
    pub fn stop_idle(&self, idle: Duration) -> usize {
        let pool = self.inner.pool.lock().unwrap_or_else(|e| e.into_inner());
        let mut stopped = 0;
        for slot in pool.values() {
            if let Ok(mut g) = slot.try_lock()
                && g.as_ref().is_some_and(|(_, at)| at.elapsed() >= idle)
            {
                // Dropping the session stops the worker and removes its scratch directory.
                *g = None;
                stopped += 1;
            }
        }
        stopped
    }

    /// Stops project `project`'s worker, waiting for a request it is answering.
    async fn stop(&self, project: &str) {
        let slot = self.inner.pool.lock().unwrap_or_else(|e| e.into_inner()).remove(project);
        if let Some(slot) = slot {
            *slot.lock().await = None;
        }
    }

    /// Ends project `id` for `caller`, a custodian (HIC-IO3, CLD-5): stops its worker,
    /// destroys the workspace (see the crate documentation), records the deletion certificate
    /// in the ledger and writes it with its `.tlog-proof` under the certificates directory.
    pub async fn end(&self, caller: &Caller, id: &str) -> Result<EndOfUse> {
        let research = &self.inner.research;
        let p = research.may_end(caller, id).await?;
        mkdir_private(&self.inner.dirs.workspaces)?;
        let marker = self.ending_marker(id);
        kura_crypto::write_atomic(&marker, b"ending\n", 0o600).map_err(|e| WorkspaceError::io(&marker, e))?;
        self.stop(id).await;
        // Workers other processes started for the project (another `kura workspace sql`, a
        // server beside the console) stop too; whatever they were answering is withheld.
        let dir = self.workspace_dir(id);
        kura_query::worker::stop_workspace_workers(&dir);
        let saved = kura_query::workspace::saved_names(&dir).len();
        let (files, bytes) = count_files(&dir);
        let key_id = workspace_key_id(id);
        let removed = self.inner.home.destroy_key(&key_id)?;
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(|e| WorkspaceError::io(&dir, e))?;
        }
        let certificate = Certificate {
            kind: "kura.deletion-certificate/v1",
            project: &p.id,
            application: &p.application,
            dataset: &p.dataset,
            applicant: &p.applicant,
            ended_by: caller.login(),
            ended_at: kura_ledger::entry::format_seconds(research.now_secs()),
            period_ends_at: kura_ledger::entry::format_seconds(p.ends_at),
            members_revoked: p.members.len(),
            destroyed: Destroyed {
                key_id_sha256: vec![hex::encode(Sha256::digest(key_id.as_bytes()))],
                keys_removed_now: removed,
                master_key_replaced: true,
                saved_tables: saved,
                files,
                bytes,
                workspace_directory_removed: !dir.exists(),
            },
            statement_ja: "このプロジェクトの作業環境の鍵を破棄し（暗号学的消去）、保存された表と作業ファイルを削除しました。メンバーの利用権は失効しています。",
            statement_en: "The workspace key of this project was destroyed (crypto-shredding), its saved tables and working files deleted, and its members' access revoked.",
        };
        let mut text = serde_json::to_vec_pretty(&certificate).map_err(|e| WorkspaceError::Unusable(e.to_string()))?;
        text.push(b'\n');
        let sha = hex::encode(Sha256::digest(&text));
        let detail = format!(
            "deletion certificate; workspace key id sha256 {}; {removed} key(s) removed, master key replaced; {saved} saved table(s), {files} file(s) deleted",
            certificate.destroyed.key_id_sha256.join(",")
        );
        let (project, entry) = research.end(caller, id, &sha, &detail).await?;
        let certs = &self.inner.dirs.certificates;
        mkdir_private(certs)?;
        let cert_path = certs.join(format!("{id}.deletion-certificate.json"));
        kura_crypto::write_atomic(&cert_path, &text, 0o600).map_err(|e| WorkspaceError::io(&cert_path, e))?;
        let _ = std::fs::remove_file(&marker);
        let proof = self.prove_entry(entry, &certs.join(format!("{id}.deletion-certificate.tlog-proof"))).await;
        Ok(EndOfUse { project, certificate: cert_path, certificate_sha256: sha, entry, proof })
    }

    /// Writes the `.tlog-proof` of ledger entry `index` (carrying the entry) to `path`.
    async fn prove_entry(&self, index: u64, path: &Path) -> std::result::Result<PathBuf, String> {
        let log = self.inner.research.log();
        let entry = log.store_read(index).await.map_err(|e| e.to_string())?;
        match log.prove(index, Some(entry)).await {
            Ok(proof) => {
                kura_crypto::write_atomic(path, &proof.to_bytes(), 0o644).map_err(|e| format!("{}: {e}", path.display()))?;
                Ok(path.to_path_buf())
            }
            Err(e) => Err(format!(
                "{e}: 立会人の連署の後に `kura ledger prove --index {index} --out {}` で作成できます / once witnesses cosign, `kura ledger prove --index {index} --out {}` writes it",
                path.display(),
                path.display()
            )),
        }
    }

    /// A custodian publishes `dataset` as a sample dataset (HIC-P2): any signed-in researcher
    /// may then query it without an application. Only a synthetic dataset of the catalogue.
    pub async fn publish_sample(&self, caller: &Caller, dataset: &str, note: &str) -> Result<Sample> {
        let synthetic = self.synthetic(dataset)?;
        Ok(self.inner.research.publish_sample(caller, dataset, synthetic, note).await?)
    }

    fn synthetic(&self, dataset: &str) -> Result<bool> {
        let catalog = self.inner.home.catalog()?;
        let entry = catalog.datasets.get(dataset).ok_or_else(|| kura_store::StoreError::UnknownDataset(dataset.into()))?;
        Ok(entry.synthetic)
    }

    /// Runs `sql` on sample dataset `dataset` for `caller`, an active researcher, through the
    /// sample's built-in grant (every column of the synthetic dataset), in a worker of this
    /// request's own (never shared: another user's temporary views stay theirs). Recorded in
    /// the ledger by the script's keyed digest.
    pub async fn run_sample(&self, caller: &Caller, dataset: &str, sql: &str) -> Result<Vec<StatementOutput>> {
        let research = &self.inner.research;
        let sample = research.sample(caller, dataset).await?;
        // Still synthetic now (a dataset replaced under the same name is not a sample).
        if !self.synthetic(&sample.dataset)? {
            return Err(WorkspaceError::Unusable(format!(
                "'{dataset}' は合成データではなくなりました。データ管理者に確認してください / '{dataset}' is no longer synthetic: ask a custodian"
            )));
        }
        let spec = EngineSpec::from_home(&self.inner.home, &sample.dataset, None)?;
        let hash = self.script_digest(sql)?;
        let (cmd, text) = (self.inner.cmd.clone(), sql.to_string());
        let outcome = tokio::task::spawn_blocking(move || Session::start(&cmd, spec).and_then(|mut s| s.run(&text, None)))
            .await
            .map_err(blocking_failed)?
            .map_err(WorkspaceError::from);
        research.record_workspace(caller, &sample.dataset, "sample.query", &hash, if outcome.is_ok() { "ok" } else { "error" }, "").await?;
        outcome
    }

    /// The deletion certificate and its proof of ended project `id`, for its applicant to
    /// fetch: `(certificate JSON, .tlog-proof)`.
    pub fn certificate(&self, id: &str) -> Result<(Vec<u8>, Option<Vec<u8>>)> {
        let certs = &self.inner.dirs.certificates;
        let cert = certs.join(format!("{id}.deletion-certificate.json"));
        let text = std::fs::read(&cert).map_err(|e| WorkspaceError::io(&cert, e))?;
        let proof = std::fs::read(certs.join(format!("{id}.deletion-certificate.tlog-proof"))).ok();
        Ok((text, proof))
    }
}
