//! Statements run in a worker process that the caller can always stop (issue 14, findings 12
//! and 13; HIC-S13), and each project's workspace runs in a worker of its own (issue 16,
//! HIC-P3).
//!
//! Inside one process a statement cannot be stopped from outside: a CPU-bound operator or a
//! constant being folded while planning holds its thread until it is done, and a failed
//! allocation aborts the whole process. So a [`Session`] starts a worker — the same `kura`
//! binary with a hidden argument — hands it the engine's specification (the granted keys and,
//! for a workspace, the workspace key and the project's pseudonym key; never the master key)
//! over a pipe, and then sends it scripts one at a time, each answered before the next:
//!
//! - the worker confines itself as soon as it has read its setup, before it opens any data
//!   ([`crate::confine`]): a network namespace of its own, Landlock (the dataset read-only, its
//!   scratch directory and — for a workspace — the workspace's saved tables read-write,
//!   nothing else), a seccomp filter refusing sockets, its writable memory (`RLIMIT_DATA`, the
//!   query's memory limit plus room for the engine itself) and CPU time limited (the soft limit
//!   re-armed before each script, a hard limit for its whole life), no privileges; no core
//!   dumps, not traceable or dumpable by others (`PR_SET_DUMPABLE` 0: the keys in its memory
//!   stay there), and it dies with its parent (`PR_SET_PDEATHSIG`). A mechanism the kernel
//!   lacks stops it with the confinement error unless `[query] allow_without` names it; its
//!   first answer says which mechanisms are on ([`Session::report`]);
//! - the worker says on standard error when each statement starts; past a statement's time
//!   limit (plus a short grace) the parent kills it, and the statement ends with the time-limit
//!   error, whatever it was doing (planning, folding a constant, a CPU-bound operator); a
//!   killed worker is done, and its owner starts a fresh one;
//! - a worker that ran out of memory dies; the parent answers with the memory-limit error of
//!   that statement; a panic of the engine is an error of the statement, naming any damaged
//!   file;
//! - an answer larger than the result cap stops the worker with the result-size error.
//!
//! Messages are frames (a `u64` length, then the bytes): the setup, then one script per
//! request; the worker answers with a ready frame, then per script a head and one Arrow IPC
//! stream per result. Spill files the worker makes are encrypted ([`crate::spill`]) and live in
//! a scratch directory of that worker alone, which the parent removes when the worker is done:
//! nothing is left behind when it is killed, and no worker sees another's files. The parent
//! gives the worker none of its environment, and trusts nothing the worker says about time:
//! startup has a fixed deadline, and all statements of a script end by one deadline that no
//! message of the worker moves.

use crate::engine::{EngineSpec, Limits, QueryEngine, StatementKind, StatementOutput};
use crate::grant::Grant;
use crate::{QueryError, Result};
use datafusion::arrow::ipc::reader::StreamReader;
use datafusion::arrow::ipc::writer::StreamWriter;
use kura_store::{DatasetEntry, GrantedKeys};
use serde::{Deserialize, Serialize};
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use zeroize::{Zeroize, Zeroizing};

/// The hidden argument that makes the `kura` binary a query worker.
pub const WORKER_ARG: &str = "query-worker";

/// Room for the engine itself on top of the query's memory limit (runtime, threads, decoded
/// pages that no operator has reserved yet).
pub const ENGINE_HEADROOM: u64 = 768 << 20;

/// What the worker writes on standard error, before the reason, when it cannot confine itself.
const CONFINE_FAILED: &str = "query worker not confined: ";

/// How long past the statements' time limits the parent waits before it kills the worker.
const GRACE: Duration = Duration::from_secs(2);

/// How to start a worker.
#[derive(Clone, Debug)]
pub struct WorkerCommand {
    /// The program (the `kura` binary).
    pub program: PathBuf,
    /// Its arguments (ending with [`WORKER_ARG`]).
    pub args: Vec<String>,
}

impl WorkerCommand {
    /// This very binary, with the worker argument.
    pub fn current_exe() -> Result<WorkerCommand> {
        let program = std::env::current_exe().map_err(|e| QueryError::Engine(format!("the query worker cannot be started: {e}")))?;
        Ok(WorkerCommand { program, args: vec![WORKER_ARG.into()] })
    }
}

/// The first frame to a worker: everything its engine needs (keys over the pipe only).
#[derive(Serialize, Deserialize)]
struct Setup {
    dataset: DatasetEntry,
    grant: Grant,
    keys: Vec<(String, String)>,
    data_root: PathBuf,
    limits: Limits,
    workspace: Option<WireWorkspace>,
    /// The user and group the worker becomes when started by root.
    user: Option<(u32, u32)>,
}

/// A workspace as it crosses the pipe (keys in hex, wiped after use).
#[derive(Serialize, Deserialize)]
struct WireWorkspace {
    project: String,
    dir: PathBuf,
    key: String,
    pseudonym: String,
    /// The extract to read; `None` for the builder.
    extract: Option<crate::extract::Manifest>,
    /// The project's lineage key (the builder and the checker only), hex.
    #[serde(default)]
    lineage: Option<String>,
    /// The lineage hashing key (the builder only), hex.
    #[serde(default)]
    lineage_hashing: Option<String>,
}

/// The worker's first answer: confined, engine built (for a builder: the extract written).
#[derive(Serialize, Deserialize)]
struct Ready {
    report: Vec<String>,
    saved: Vec<String>,
    error: Option<WireError>,
    /// The builder's extract.
    #[serde(default)]
    extract: Option<crate::extract::Manifest>,
}

/// One request: a script, and optionally the name to save its last result under.
#[derive(Serialize, Deserialize)]
struct Job {
    sql: String,
    save_as: Option<String>,
    /// The airlock's checker: one SELECT, answered with the evidence of its cells.
    #[serde(default)]
    evidence: bool,
}

#[derive(Serialize, Deserialize)]
struct Answer {
    outputs: Vec<OutputHead>,
    saved: Vec<String>,
    error: Option<WireError>,
    /// The checker's evidence of the one output.
    #[serde(default)]
    evidence: Option<EvidenceHead>,
}

/// The evidence of an output's cells as it crosses the pipe (its rows follow as the output).
#[derive(Serialize, Deserialize)]
struct EvidenceHead {
    table: kura_disclosure::Table,
    lineage: bool,
    /// How many person sets each cell has, per row; the sets themselves follow as a second
    /// output (one list of person keys per set, row by row, cell by cell).
    #[serde(default)]
    shape: Vec<Vec<u32>>,
}

/// The output kind of the checker's person sets.
const SETS: &str = "sets";

/// The person sets of every cell as one Arrow batch: a list of person keys per set, in order.
fn sets_batch(sets: &[Vec<crate::lineage::CellSets>]) -> std::result::Result<datafusion::arrow::record_batch::RecordBatch, String> {
    use datafusion::arrow::array::{ListArray, UInt64Array};
    use datafusion::arrow::buffer::OffsetBuffer;
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    let all = sets.iter().flatten().flatten();
    let values: Vec<u64> = all.clone().flatten().copied().collect();
    let field = Arc::new(Field::new("item", DataType::UInt64, false));
    let list = ListArray::try_new(field.clone(), OffsetBuffer::from_lengths(all.map(Vec::len)), Arc::new(UInt64Array::from(values)), None)
        .map_err(|e| e.to_string())?;
    let schema = Arc::new(Schema::new(vec![Field::new("persons", DataType::List(field), false)]));
    datafusion::arrow::record_batch::RecordBatch::try_new(schema, vec![Arc::new(list)]).map_err(|e| e.to_string())
}

/// The person sets back in their cells; `None` where they do not fit `shape`.
fn sets_from(shape: &[Vec<u32>], batches: &[datafusion::arrow::record_batch::RecordBatch]) -> Option<Vec<Vec<crate::lineage::CellSets>>> {
    use datafusion::arrow::array::{Array, AsArray};
    use datafusion::arrow::datatypes::UInt64Type;
    let mut flat: Vec<Vec<u64>> = Vec::new();
    for b in batches {
        let list = b.columns().first()?.as_list_opt::<i32>()?;
        for i in 0..list.len() {
            let v = list.value(i);
            flat.push(v.as_primitive_opt::<UInt64Type>()?.values().to_vec());
        }
    }
    let mut it = flat.into_iter();
    let out = shape
        .iter()
        .map(|row| row.iter().map(|&n| (0..n).map(|_| it.next()).collect::<Option<Vec<_>>>()).collect::<Option<Vec<_>>>())
        .collect::<Option<Vec<_>>>()?;
    it.next().is_none().then_some(out)
}

#[derive(Serialize, Deserialize)]
struct OutputHead {
    sql: String,
    kind: String,
    view: Option<String>,
    elapsed_us: u64,
    ipc_bytes: u64,
}

/// A [`QueryError`] as it crosses the pipe.
#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", content = "detail")]
enum WireError {
    Syntax(String),
    Refused {
        class: String,
        reason: String,
    },
    NotGranted {
        table: bool,
        name: String,
    },
    BadGrant(String),
    Timeout(u64),
    Memory(String),
    ResultTooLarge(String),
    Integrity(String),
    Engine(String),
    /// Kura's own failure inside the worker (the store, its configuration): the parent treats
    /// it as its own, never as the statement's.
    Internal(String),
}

impl From<QueryError> for WireError {
    fn from(e: QueryError) -> WireError {
        match e {
            QueryError::Syntax(m) => WireError::Syntax(m),
            QueryError::Refused { class, reason } => WireError::Refused { class, reason },
            QueryError::NotGranted { kind_en, name, .. } => WireError::NotGranted { table: kind_en == "table", name },
            QueryError::BadGrant(m) => WireError::BadGrant(m),
            QueryError::Timeout(s) => WireError::Timeout(s),
            QueryError::Memory(m) => WireError::Memory(m),
            QueryError::ResultTooLarge(m) => WireError::ResultTooLarge(m),
            QueryError::Integrity(m) => WireError::Integrity(m),
            QueryError::Store(e) => WireError::Internal(e.to_string()),
            QueryError::Config(m) => WireError::Internal(m),
            QueryError::Engine(m) => WireError::Engine(m),
        }
    }
}

impl From<WireError> for QueryError {
    fn from(e: WireError) -> QueryError {
        match e {
            WireError::Syntax(m) => QueryError::Syntax(m),
            WireError::Refused { class, reason } => QueryError::Refused { class, reason },
            WireError::NotGranted { table: true, name } => QueryError::NotGranted { kind_ja: "テーブル", kind_en: "table", name },
            WireError::NotGranted { table: false, name } => QueryError::NotGranted { kind_ja: "列", kind_en: "column", name },
            WireError::BadGrant(m) => QueryError::BadGrant(m),
            WireError::Timeout(s) => QueryError::Timeout(s),
            WireError::Memory(m) => QueryError::Memory(m),
            WireError::ResultTooLarge(m) => QueryError::ResultTooLarge(m),
            WireError::Integrity(m) => QueryError::Integrity(m),
            WireError::Engine(m) => QueryError::Engine(m),
            WireError::Internal(m) => QueryError::Config(m),
        }
    }
}

fn broken(what: impl std::fmt::Display) -> QueryError {
    QueryError::Engine(format!("問い合わせ用の子プロセスとの通信に失敗しました / the query worker failed: {what}"))
}

/// Runs the statements of `sql` over `spec` in a worker started by `cmd`, holding each to its
/// time limit (plus a grace): a [`Session`] for one script.
pub fn run(cmd: &WorkerCommand, spec: EngineSpec, sql: &str) -> Result<Vec<StatementOutput>> {
    Session::start(cmd, spec)?.run(sql, None)
}

/// A frame from the worker's standard output, or the end of it.
type Frame = std::io::Result<Vec<u8>>;

/// A running worker: confined, holding one engine (for a workspace, the project's), answering
/// scripts one after the other until it is dropped. A worker that was killed (time limit,
/// result cap) or died (memory) is done: every later call says so, and its owner starts
/// another.
pub struct Session {
    child: std::process::Child,
    stdin: Option<Arc<Mutex<std::process::ChildStdin>>>,
    frames: std::sync::mpsc::Receiver<Frame>,
    /// When the statement now running started (the worker's marks move it).
    mark: Arc<Mutex<Instant>>,
    /// The last lines of the worker's standard error that were not statement marks.
    tail: Arc<Mutex<std::collections::VecDeque<String>>>,
    errors: Option<std::thread::JoinHandle<()>>,
    too_large: Arc<AtomicBool>,
    limits: Limits,
    report: Vec<String>,
    saved: Vec<String>,
    /// The extract the worker reads (a workspace's).
    extract: Option<crate::extract::Manifest>,
    /// The extract a builder wrote.
    built: Option<crate::extract::Manifest>,
    /// The workspace's directory (its extract is forgotten when found damaged).
    workspace_dir: Option<PathBuf>,
    /// Where this worker is recorded for the end of use (stop_workspace_workers).
    record: Option<PathBuf>,
    dead: Option<String>,
    // Last: removed after the worker is gone.
    _scratch: Option<tempfile::TempDir>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session").field("pid", &self.child.id()).field("dead", &self.dead).finish_non_exhaustive()
    }
}

/// The first of the user ids workers run as when Kura runs as root: `kura sql`'s workers are
/// this one, project `PRJ-n`'s are this plus `n` — a user of their own per project, which no
/// account of the host uses, so no other process may signal or trace them or open what they
/// write.
pub const WORKER_UID_BASE: u32 = 2_100_000_000;

/// The user (and group) of the worker for `spec`, when the parent is root.
fn worker_user(spec: &EngineSpec) -> Option<(u32, u32)> {
    if !rustix::process::geteuid().is_root() {
        return None;
    }
    let id = spec.workspace.as_ref().map_or(WORKER_UID_BASE, |ws| project_uid(&ws.project));
    Some((id, id))
}

/// The user id of project `project`'s workers when started by root.
fn project_uid(project: &str) -> u32 {
    let n = project.strip_prefix("PRJ-").and_then(|n| n.parse::<u32>().ok()).map_or(u32::MAX - WORKER_UID_BASE, |n| n.min(99_999_999));
    WORKER_UID_BASE.saturating_add(n)
}

/// The directory where the parent records the workers of a workspace (their process ids and
/// start times): in the workspace directory, which the workers' user cannot write.
fn workers_dir(workspace_dir: &std::path::Path) -> PathBuf {
    workspace_dir.join("workers")
}

/// A process's boot and start time (clock ticks since boot, `/proc/PID/stat` field 22): with
/// the pid, it names one process, never a later one that reused the pid.
fn start_time(pid: u32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    let ticks = rest.split_whitespace().nth(19)?;
    // The boot too: a record a crash left behind never names a process of a later boot.
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap_or_default();
    Some(format!("{} {ticks}", boot.trim()))
}

/// Stops every worker of the workspace at `workspace_dir`, whichever process started it (the
/// end of use, HIC-IO3: another `kura workspace sql`, a server beside the console). Returns
/// how many were stopped.
pub fn stop_workspace_workers(workspace_dir: &std::path::Path) -> usize {
    use rustix::process::{Pid, Signal, kill_process};
    let mut stopped = 0;
    let Ok(entries) = std::fs::read_dir(workers_dir(workspace_dir)) else { return 0 };
    for e in entries.flatten() {
        let recorded = std::fs::read_to_string(e.path()).unwrap_or_default();
        let pid = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok());
        if let Some(pid) = pid
            && start_time(pid).is_some_and(|t| t == recorded.trim())
            && let Some(p) = i32::try_from(pid).ok().and_then(Pid::from_raw)
            && kill_process(p, Signal::KILL).is_ok()
        {
            stopped += 1;
        }
        let _ = std::fs::remove_file(e.path());
    }
    stopped
}

/// Makes directory `dir` if it is not there, inside a parent that must exist.
fn subdir(dir: &std::path::Path) -> std::io::Result<()> {
    match std::fs::create_dir(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        other => other,
    }
}

/// Gives `dir` to the worker's user (it writes there and nowhere else).
fn give(dir: &std::path::Path, user: Option<(u32, u32)>) -> Result<()> {
    if let Some((uid, gid)) = user {
        // lchown: a link is never followed.
        std::os::unix::fs::lchown(dir, Some(uid), Some(gid)).map_err(|e| broken(format!("{}: {e}", dir.display())))?;
    }
    Ok(())
}

/// How long a worker may take to confine itself and build its engine: a statement's time
/// limit plus the grace, and never less than this. A worker that builds its workspace's
/// extract first has a statement's time per table besides.
const STARTUP: Duration = Duration::from_secs(5);

impl Session {
    /// Starts a worker for `spec` and waits until it is confined and its engine is built.
    /// For a workspace, the worker's scratch directory is the workspace's `tmp/`; otherwise a
    /// directory of its own under the spill directory. Either is removed when it is done.
    ///
    /// A workspace's worker reads the project's extract (crate::extract) and gets no column key.
    /// When the extract is missing, damaged or out of date, a builder — a confined worker of its
    /// own, with the keys of the grant — writes it first and exits; this process then seals its
    /// manifest where the worker's user cannot write.
    pub fn start(cmd: &WorkerCommand, spec: EngineSpec) -> Result<Session> {
        Self::start_as(cmd, spec, false)
    }

    /// Starts the airlock's checker of a workspace (issue 17 §2, issue 22 §8): a worker like
    /// the one [`Session::start`] gives, over the same extract, that also holds the project's
    /// lineage key and so reads the hidden lineage columns ([`crate::hidden`]); it answers
    /// [`Session::evidence`]. The spec must carry the builder's lineage keys
    /// ([`WorkspaceSpec::lineage`](crate::WorkspaceSpec)); an extract written without the
    /// hidden columns is written again first.
    pub fn start_checker(cmd: &WorkerCommand, spec: EngineSpec) -> Result<Session> {
        if spec.workspace.as_ref().and_then(|ws| ws.lineage.as_ref()).and_then(|l| l.hashing.as_ref()).is_none() {
            return Err(QueryError::Engine("the airlock's checker needs the workspace's lineage keys".into()));
        }
        Self::start_as(cmd, spec, true)
    }

    fn start_as(cmd: &WorkerCommand, mut spec: EngineSpec, checker: bool) -> Result<Session> {
        if let Some(mut ws) = spec.workspace.take() {
            if ws.extract.is_none() {
                let fingerprint = crate::extract::fingerprint(&ws, &spec.dataset, &spec.grant);
                // An extract without the hidden columns is written again when their keys are
                // at hand (the checker needs them).
                let wanted_lineage = ws.lineage.as_ref().is_some_and(|l| l.hashing.is_some());
                let manifest = match crate::extract::current(&ws, &fingerprint).filter(|m| m.lineage || !wanted_lineage) {
                    Some(m) => m,
                    None => {
                        let builder = EngineSpec {
                            dataset: spec.dataset.clone(),
                            grant: spec.grant.clone(),
                            keys: GrantedKeys::from_raw(spec.keys.to_raw().into_iter().collect()),
                            data_root: spec.data_root.clone(),
                            limits: spec.limits.clone(),
                            workspace: Some(ws.clone()),
                        };
                        let built = Self::launch(cmd, builder)?.built.take();
                        let m = built
                            .filter(|m| m.fingerprint == fingerprint)
                            .ok_or_else(|| broken("the extract's builder answered without the extract"))?;
                        crate::extract::save_manifest(&ws, &m)?;
                        m
                    }
                };
                ws.extract = Some(manifest);
            }
            if checker && !ws.extract.as_ref().is_some_and(|m| m.lineage) {
                return Err(QueryError::Engine("the workspace's extract has no lineage columns for the checker".into()));
            }
            // The worker that answers SQL holds no column key, and no lineage key; the checker
            // the project's lineage key only.
            spec.keys = GrantedKeys::default();
            ws.lineage = if checker { ws.lineage.as_ref().map(crate::hidden::LineageKeys::for_checker) } else { None };
            spec.workspace = Some(ws);
        }
        Self::launch(cmd, spec)
    }

    /// Starts one worker process for `spec`: a workspace's builder when the workspace has no
    /// extract yet, otherwise a worker that answers scripts.
    fn launch(cmd: &WorkerCommand, spec: EngineSpec) -> Result<Session> {
        let builder = spec.workspace.as_ref().is_some_and(|ws| ws.extract.is_none());
        let mut limits = spec.limits.clone();
        // A scratch directory of this worker's own (its spill files), removed when it is done:
        // no worker sees another's files, and nothing it leaves stays behind.
        let scratch_root = match &spec.workspace {
            Some(ws) => ws.dir.join("tmp"),
            None => limits.spill_dir.clone(),
        };
        // A workspace's directories are made only inside a workspace that exists: one removed
        // at the end of use is never made again here.
        let made = if spec.workspace.is_some() { subdir(&scratch_root) } else { std::fs::create_dir_all(&scratch_root) };
        made.map_err(|e| broken(format!("scratch directory: {}", e.kind())))?;
        let scratch = tempfile::Builder::new()
            .prefix("worker-")
            .tempdir_in(&scratch_root)
            .map_err(|e| broken(format!("scratch directory: {}", e.kind())))?;
        limits.spill_dir = scratch.path().to_path_buf();
        let user = worker_user(&spec);
        give(scratch.path(), user)?;
        if let Some(ws) = &spec.workspace {
            // The extract's directory is the worker's user's (the builder writes there); the
            // parent never walks what that user could have put inside.
            let dir = crate::extract::extract_dir(&ws.dir);
            subdir(&dir).map_err(|e| broken(format!("extract directory: {}", e.kind())))?;
            if !std::fs::symlink_metadata(&dir).is_ok_and(|m| m.file_type().is_dir()) {
                return Err(QueryError::Integrity(format!(
                    "作業環境 {} の抽出のディレクトリがリンクです / the workspace's extract directory is not a directory of its own",
                    ws.project
                )));
            }
            give(&dir, user)?;
        }
        if let Some(ws) = spec.workspace.as_ref().filter(|_| !builder) {
            let tables = ws.dir.join("tables");
            subdir(&tables).map_err(|e| broken(format!("table directory: {}", e.kind())))?;
            // A link where the workspace's own files should be would lend the worker (and
            // root's change of owner) a place outside the workspace: refused, never followed.
            let real_dir = std::fs::symlink_metadata(&tables).is_ok_and(|m| m.file_type().is_dir());
            if !real_dir {
                return Err(QueryError::Integrity(format!(
                    "作業環境の表のディレクトリ {} がリンクです / the workspace's table directory is not a directory of its own",
                    ws.project
                )));
            }
            give(&tables, user)?;
            // The tables it saved before (as its user) stay its own.
            for e in std::fs::read_dir(&tables).map_err(|e| broken(format!("table directory: {}", e.kind())))?.flatten() {
                if !e.file_type().is_ok_and(|t| t.is_file()) {
                    return Err(QueryError::Integrity(format!(
                        "作業環境 {} の表のディレクトリに通常のファイルでないものがあります / the workspace's table directory holds something that is not a plain file",
                        ws.project
                    )));
                }
                give(&e.path(), user)?;
            }
        }
        let tables_to_extract = if builder {
            let granted = spec.dataset.tables.iter().filter(|t| !spec.grant.columns(t).is_empty() && !t.files.is_empty()).count();
            u32::try_from(granted).unwrap_or(u32::MAX)
        } else {
            0
        };
        let keys: Vec<(String, String)> = spec.keys.to_raw().into_iter().map(|(id, k)| (id, hex::encode(k.as_slice()))).collect();
        let workspace_dir = spec.workspace.as_ref().map(|ws| ws.dir.clone());
        let extract = spec.workspace.as_ref().and_then(|ws| ws.extract.clone());
        let workspace = spec.workspace.as_ref().map(|ws| WireWorkspace {
            project: ws.project.clone(),
            dir: ws.dir.clone(),
            key: hex::encode(ws.key.expose()),
            pseudonym: hex::encode(ws.pseudonym.expose()),
            extract: ws.extract.clone(),
            lineage: ws.lineage.as_ref().map(|l| hex::encode(l.project.expose())),
            lineage_hashing: ws.lineage.as_ref().and_then(|l| l.hashing.as_ref()).map(|k| hex::encode(k.expose())),
        });
        let mut setup =
            Setup { dataset: spec.dataset, grant: spec.grant, keys, data_root: spec.data_root, limits: limits.clone(), workspace, user };
        let bytes = Zeroizing::new(serde_json::to_vec(&setup).map_err(broken)?);
        for (_, k) in setup.keys.iter_mut() {
            k.zeroize();
        }
        if let Some(ws) = setup.workspace.as_mut() {
            ws.key.zeroize();
            ws.pseudonym.zeroize();
            ws.lineage.zeroize();
            ws.lineage_hashing.zeroize();
        }

        let mut child = Command::new(&cmd.program)
            .args(&cmd.args)
            // Nothing of the caller's environment (tokens, paths) reaches the worker.
            .env_clear()
            .env("MALLOC_ARENA_MAX", "2")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(broken)?;
        // A workspace's worker is recorded where the end of use finds it, whichever process
        // started it (stop_workspace_workers).
        let record = match &workspace_dir {
            Some(dir) => {
                let path = workers_dir(dir).join(child.id().to_string());
                let written = subdir(&workers_dir(dir))
                    .and_then(|()| start_time(child.id()).ok_or_else(|| std::io::Error::from(std::io::ErrorKind::NotFound)))
                    .and_then(|t| kura_crypto::write_atomic(&path, t.as_bytes(), 0o600));
                if let Err(e) = written {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(broken(format!("recording the worker: {}", e.kind())));
                }
                Some(path)
            }
            None => None,
        };
        let stdin = Arc::new(Mutex::new(child.stdin.take().ok_or_else(|| broken("no stdin"))?));
        // The answers, a frame at a time, each up to the cap: a worker that writes more is
        // stopped. One frame waits at most, so a worker cannot fill the parent's memory.
        let cap = (limits.max_result_bytes as u64).saturating_mul(2).saturating_add(64 << 20);
        let too_large = Arc::new(AtomicBool::new(false));
        let mut stdout = child.stdout.take().ok_or_else(|| broken("no stdout"))?;
        let flag = too_large.clone();
        let (tx, frames) = std::sync::mpsc::sync_channel::<Frame>(1);
        std::thread::spawn(move || {
            loop {
                let mut len = [0u8; 8];
                if let Err(e) = stdout.read_exact(&mut len) {
                    let _ = tx.send(Err(e));
                    return;
                }
                let len = u64::from_be_bytes(len);
                if len > cap {
                    flag.store(true, Ordering::SeqCst);
                    return;
                }
                let mut frame = Vec::new();
                let read = (&mut stdout).take(len).read_to_end(&mut frame);
                let short = matches!(read, Ok(n) if (n as u64) < len);
                let failed = short || read.is_err();
                let sent = tx
                    .send(read.and_then(|_| if short { Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof)) } else { Ok(frame) }));
                if failed || sent.is_err() {
                    return;
                }
            }
        });
        // Its standard error: a line as each statement starts (each has its own time limit),
        // and the last of what it says otherwise (a failed allocation, a stack overflow).
        let mark = Arc::new(Mutex::new(Instant::now()));
        let tail = Arc::new(Mutex::new(std::collections::VecDeque::new()));
        let mut stderr = std::io::BufReader::new(child.stderr.take().ok_or_else(|| broken("no stderr"))?);
        let (m, t) = (mark.clone(), tail.clone());
        let errors = std::thread::spawn(move || {
            let mut line = Vec::new();
            while matches!(std::io::BufRead::read_until(&mut stderr, b'\n', &mut line), Ok(n) if n > 0) {
                let text = String::from_utf8_lossy(&line).trim_end().to_string();
                line.clear();
                if text.starts_with(STATEMENT_MARK) {
                    *m.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
                } else if !is_frame(&text) {
                    let mut tail = t.lock().unwrap_or_else(|e| e.into_inner());
                    if tail.len() == 50 {
                        tail.pop_front();
                    }
                    tail.push_back(text.chars().take(500).collect());
                }
            }
        });
        let mut session = Session {
            child,
            stdin: Some(stdin),
            frames,
            mark,
            tail,
            errors: Some(errors),
            too_large,
            limits,
            report: Vec::new(),
            saved: Vec::new(),
            extract,
            built: None,
            workspace_dir,
            record,
            dead: None,
            _scratch: Some(scratch),
        };
        let writer = session.send(bytes.to_vec());
        // Startup is held to one fixed deadline: statement marks do not move it.
        let per = session.limits.timeout + GRACE;
        let deadline = Instant::now() + per.max(STARTUP) + per.saturating_mul(tables_to_extract);
        let frame = session.next_frame(|| Instant::now() >= deadline);
        let _ = writer.join();
        let ready: Ready = serde_json::from_slice(&frame?).map_err(broken)?;
        if let Some(e) = ready.error {
            session.stop();
            return Err(e.into());
        }
        session.report = ready.report;
        session.saved = ready.saved;
        session.built = ready.extract;
        Ok(session)
    }

    /// For a workspace, the manifest of the extract its worker reads.
    pub fn extract(&self) -> Option<&crate::extract::Manifest> {
        self.extract.as_ref()
    }

    /// One `mechanism: on|off` line each for the confinement the worker put in place.
    pub fn report(&self) -> &[String] {
        &self.report
    }

    /// The workspace's saved tables, as the worker last said.
    pub fn saved_tables(&self) -> &[String] {
        &self.saved
    }

    /// The worker's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the worker can take another script.
    pub fn is_alive(&self) -> bool {
        self.dead.is_none()
    }

    /// Runs the statements of `sql` in the worker, each held to its time limit (plus a
    /// grace) and all of them to one deadline that nothing the worker says moves; with
    /// `save_as`, the last statement's result is saved as a workspace table.
    pub fn run(&mut self, sql: &str, save_as: Option<&str>) -> Result<Vec<StatementOutput>> {
        self.exchange(Job { sql: sql.to_string(), save_as: save_as.map(str::to_string), evidence: false }).map(|(outputs, _)| outputs)
    }

    /// Runs one SELECT in the airlock's checker ([`Session::start_checker`]) and returns its
    /// result with the evidence of every cell, held to the statement's time limit.
    pub fn evidence(&mut self, sql: &str) -> Result<crate::lineage::Evidenced> {
        let (outputs, evidence) = self.exchange(Job { sql: sql.to_string(), save_as: None, evidence: true })?;
        let mut outputs = outputs.into_iter();
        let (Some(head), Some(output), Some(sets)) = (evidence, outputs.next(), outputs.next()) else {
            return Err(broken("the checker answered without evidence"));
        };
        let sets = sets_from(&head.shape, &sets.batches).ok_or_else(|| broken("the checker's person sets do not fit its cells"))?;
        Ok(crate::lineage::Evidenced { table: head.table, batches: output.batches, lineage: head.lineage, sets })
    }

    fn exchange(&mut self, job: Job) -> Result<(Vec<StatementOutput>, Option<EvidenceHead>)> {
        if let Some(why) = &self.dead {
            return Err(broken(format!("the worker has stopped ({why}); start another")));
        }
        let statements = crate::engine::count_statements(&job.sql)?;
        let job = serde_json::to_vec(&job).map_err(broken)?;
        *self.mark.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
        let per = self.limits.timeout + GRACE;
        let all_done = Instant::now() + per.saturating_mul(u32::try_from(statements.max(1)).unwrap_or(u32::MAX));
        let writer = self.send(job);
        let mark = self.mark.clone();
        let over = move || {
            let since = *mark.lock().unwrap_or_else(|e| e.into_inner());
            since.elapsed() >= per || Instant::now() >= all_done
        };
        let head = self.next_frame(&over);
        let head = head.and_then(|h| serde_json::from_slice::<Answer>(&h).map_err(broken));
        let head = match head {
            Ok(h) => h,
            Err(e) => {
                let _ = writer.join();
                return Err(e);
            }
        };
        let mut outputs = Vec::new();
        let mut total = 0u64;
        let cap = (self.limits.max_result_bytes as u64).saturating_mul(2).saturating_add(64 << 20);
        for o in head.outputs {
            // The checker's person sets are the platform's own evidence, not a result: they
            // grow with the persons behind the output, not with its rows.
            if o.kind != SETS {
                total = total.saturating_add(o.ipc_bytes);
            }
            if total > cap {
                self.kill("result too large");
                return Err(QueryError::ResultTooLarge(format!("> {} MiB", self.limits.max_result_bytes >> 20)));
            }
            let ipc = self.next_frame(&over)?;
            if ipc.len() as u64 != o.ipc_bytes {
                self.kill("a result of the wrong size");
                return Err(broken("a result of the wrong size"));
            }
            let reader = StreamReader::try_new(std::io::Cursor::new(ipc), None).map_err(broken)?;
            let schema = reader.schema();
            let batches = reader.collect::<std::result::Result<Vec<_>, _>>().map_err(broken)?;
            let kind = match (o.kind.as_str(), o.view) {
                ("explain", _) => StatementKind::Explain,
                ("introspection", _) => StatementKind::Introspection,
                ("view", Some(v)) => StatementKind::View(v),
                _ => StatementKind::Query,
            };
            outputs.push(StatementOutput { sql: o.sql, kind, schema, batches, elapsed: Duration::from_micros(o.elapsed_us) });
        }
        let _ = writer.join();
        self.saved = head.saved;
        match head.error {
            Some(e) => {
                let e: QueryError = e.into();
                // A damaged extract is forgotten and this worker stopped: the next start
                // builds the extract again (crate::extract).
                if let (QueryError::Integrity(m), Some(dir)) = (&e, &self.workspace_dir)
                    && m.contains(crate::engine::EXTRACT_DAMAGED)
                {
                    crate::extract::forget(dir);
                    self.kill("damaged extract");
                }
                Err(e)
            }
            None => Ok((outputs, head.evidence)),
        }
    }

    /// Writes one frame to the worker in a thread of its own (a worker that does not read
    /// cannot stop the parent; its deadline still runs).
    fn send(&self, bytes: Vec<u8>) -> std::thread::JoinHandle<std::io::Result<()>> {
        let stdin = self.stdin.clone();
        let bytes = Zeroizing::new(bytes);
        std::thread::spawn(move || {
            let Some(stdin) = stdin else { return Err(std::io::Error::from(std::io::ErrorKind::BrokenPipe)) };
            let mut w = stdin.lock().unwrap_or_else(|e| e.into_inner());
            w.write_all(&(bytes.len() as u64).to_be_bytes())?;
            w.write_all(&bytes)?;
            w.flush()
        })
    }

    /// The next frame of the worker's answer, or the error that ended it: the time limit
    /// (`over` says when), the result cap, or the worker's death (memory, a signal).
    fn next_frame(&mut self, over: impl Fn() -> bool) -> Result<Vec<u8>> {
        loop {
            match self.frames.recv_timeout(Duration::from_millis(10)) {
                Ok(Ok(frame)) => return Ok(frame),
                Ok(Err(_)) | Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                    if self.too_large.load(Ordering::SeqCst) {
                        self.kill("result too large");
                        return Err(QueryError::ResultTooLarge(format!("> {} MiB", self.limits.max_result_bytes >> 20)));
                    }
                    return Err(self.died());
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    if self.too_large.load(Ordering::SeqCst) {
                        self.kill("result too large");
                        return Err(QueryError::ResultTooLarge(format!("> {} MiB", self.limits.max_result_bytes >> 20)));
                    }
                    if over() {
                        self.kill("time limit");
                        return Err(QueryError::Timeout(self.limits.timeout.as_secs()));
                    }
                }
            }
        }
    }

    /// Kills the worker (it is done) and waits for it.
    fn kill(&mut self, why: &str) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.dead = Some(why.into());
        self.stdin = None;
    }

    /// Stops the worker: closes its input (it ends by itself), then makes sure.
    fn stop(&mut self) {
        self.stdin = None;
        if self.dead.is_none() {
            self.kill("stopped");
        }
    }

    /// The error a worker's death means (its exit status and the end of its standard error).
    fn died(&mut self) -> QueryError {
        // Its output ended: it exits now, or is made to.
        let deadline = Instant::now() + GRACE;
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(s)) => break Ok(s),
                Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
                Ok(None) => {
                    // Not a death: a worker that stopped answering. Kura stops it.
                    self.kill("closed its output");
                    return broken("the worker closed its output without exiting");
                }
                Err(e) => break Err(e),
            }
        };
        self.stdin = None;
        if let Some(h) = self.errors.take() {
            let _ = h.join();
        }
        let stderr = self.tail.lock().map(|t| t.iter().cloned().collect::<Vec<_>>().join("\n")).unwrap_or_default();
        let status = match status {
            Ok(s) => s,
            Err(e) => {
                self.dead = Some("lost".into());
                return broken(e);
            }
        };
        self.dead = Some(status.to_string());
        if let Some(line) = stderr.lines().find(|l| l.starts_with(CONFINE_FAILED)) {
            return QueryError::Config(line.to_string());
        }
        use std::os::unix::process::ExitStatusExt;
        let limits = &self.limits;
        let memory = || {
            QueryError::Memory(format!(
                "{} MiB の上限に達しました / the worker reached its memory limit of {} MiB",
                limits.memory_bytes >> 20,
                limits.memory_bytes >> 20
            ))
        };
        match status.signal() {
            // A failed allocation aborts (Rust prints "memory allocation of N bytes failed").
            Some(6) if stderr.contains("memory allocation") => memory(),
            Some(6) if stderr.contains("stack overflow") => QueryError::Refused {
                class: "PLAN".into(),
                reason: "文の入れ子が深すぎます / the statement is nested too deeply for the engine".into(),
            },
            // Killed, but not by Kura: on Linux, the kernel's out-of-memory killer.
            Some(9) => memory(),
            Some(24) => QueryError::Timeout(limits.timeout.as_secs()),
            _ => broken(format!("{status}: {}", stderr.lines().rev().take(3).collect::<Vec<_>>().join(" / "))),
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.stop();
        if let Some(r) = &self.record {
            let _ = std::fs::remove_file(r);
        }
    }
}

/// Whether a line of standard error is a backtrace's frame (`  12: name` or `at file:line`).
fn is_frame(line: &str) -> bool {
    let t = line.trim_start();
    t.starts_with("at ")
        || t.split_once(": ").is_some_and(|(n, _)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        || t.starts_with("stack backtrace:")
        || t.starts_with("note: Some details are omitted")
}

/// The line a worker writes to standard error as each statement starts.
const STATEMENT_MARK: &str = "kura-worker: statement ";

/// Stack of the thread that plans and runs statements (the engine's planner recurses).
const STACK: usize = 32 << 20;

/// Runs the statements on the engine; a statement that makes the engine panic (a bug, or
/// damaged bytes it trips over) ends as an error of that statement, naming any damaged file.
fn run_statements(rt: &tokio::runtime::Runtime, engine: &QueryEngine, sql: &str) -> Result<Vec<StatementOutput>> {
    let starting = |i: usize| {
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "{STATEMENT_MARK}{i}");
        let _ = err.flush();
    };
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| rt.block_on(engine.run_each(sql, &starting)))) {
        Ok(r) => r,
        Err(panic) => {
            let what =
                panic.downcast_ref::<&str>().map(|s| s.to_string()).or_else(|| panic.downcast_ref::<String>().cloned()).unwrap_or_default();
            let damaged = engine.damaged_files();
            if damaged.is_empty() {
                Err(QueryError::Engine(format!("問い合わせエンジンの内部エラー / internal error of the query engine: {what}")))
            } else {
                let list: Vec<String> = damaged.iter().map(|f| format!("{}: {}", f.file, f.problem)).collect();
                Err(QueryError::Integrity(format!("損傷ファイル / damaged file(s): {}", list.join("; "))))
            }
        }
    }
}

/// The checker's answer to one output query: the evidence head, then the rows.
fn answer_evidence(rt: &tokio::runtime::Runtime, engine: &QueryEngine, sql: &str, out: &mut impl Write) -> std::io::Result<()> {
    {
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "{STATEMENT_MARK}0");
        let _ = err.flush();
    }
    let started = Instant::now();
    let outcome = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| rt.block_on(engine.evidence(sql)))) {
        Ok(r) => r,
        Err(_) => Err(QueryError::Engine("問い合わせエンジンの内部エラー / internal error of the query engine".into())),
    };
    let (answer, blob) = match outcome {
        Ok(ev) => {
            let schema = ev.batches.first().map(|b| b.schema()).unwrap_or_else(|| Arc::new(datafusion::arrow::datatypes::Schema::empty()));
            let ipc = to_ipc(&schema, &ev.batches)?;
            let sets = sets_batch(&ev.sets).map_err(std::io::Error::other)?;
            let sets_ipc = to_ipc(&sets.schema(), std::slice::from_ref(&sets))?;
            let elapsed_us = started.elapsed().as_micros() as u64;
            let head = |kind: &str, ipc: &Vec<u8>| OutputHead {
                sql: sql.to_string(),
                kind: kind.into(),
                view: None,
                elapsed_us,
                ipc_bytes: ipc.len() as u64,
            };
            let answer = Answer {
                outputs: vec![head("query", &ipc), head(SETS, &sets_ipc)],
                saved: engine.saved_tables(),
                error: None,
                evidence: Some(EvidenceHead {
                    table: ev.table,
                    lineage: ev.lineage,
                    shape: ev.sets.iter().map(|row| row.iter().map(|cell| cell.len() as u32).collect()).collect(),
                }),
            };
            (answer, Some([ipc, sets_ipc]))
        }
        Err(e) => (Answer { outputs: Vec::new(), saved: engine.saved_tables(), error: Some(e.into()), evidence: None }, None),
    };
    let head = serde_json::to_vec(&answer).map_err(std::io::Error::other)?;
    write_frame(out, &head)?;
    for b in blob.iter().flatten() {
        write_frame(out, b)?;
    }
    Ok(())
}

/// Batches as one Arrow IPC stream.
fn to_ipc(
    schema: &datafusion::arrow::datatypes::SchemaRef,
    batches: &[datafusion::arrow::record_batch::RecordBatch],
) -> std::io::Result<Vec<u8>> {
    let mut ipc = Vec::new();
    let mut w = StreamWriter::try_new(&mut ipc, schema).map_err(std::io::Error::other)?;
    for b in batches {
        w.write(b).map_err(std::io::Error::other)?;
    }
    w.finish().map_err(std::io::Error::other)?;
    drop(w);
    Ok(ipc)
}

fn protect_self() -> std::io::Result<()> {
    use rustix::process::{DumpableBehavior, Resource, Rlimit, Signal, set_dumpable_behavior, set_parent_process_death_signal, setrlimit};
    close_inherited()?;
    set_parent_process_death_signal(Some(Signal::KILL))?;
    set_dumpable_behavior(DumpableBehavior::NotDumpable)?;
    setrlimit(Resource::Core, Rlimit { current: Some(0), maximum: Some(0) })?;
    Ok(())
}

/// Closes every descriptor but standard input, output and error: whatever the caller of
/// `kura sql` had open (a file, a socket) is not the worker's, and Landlock does not restrict
/// descriptors already open.
fn close_inherited() -> std::io::Result<()> {
    let fds: Vec<i32> = std::fs::read_dir("/proc/self/fd")?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|fd| *fd > 2)
        .collect();
    for fd in fds {
        // The directory listing's own descriptor is among them and already closed: EBADF.
        match nix::unistd::close(fd) {
            Ok(()) | Err(nix::errno::Errno::EBADF) => {}
            Err(e) => return Err(std::io::Error::from(e)),
        }
    }
    Ok(())
}

/// CPU seconds one statement may use: its time limit (plus a little) on every core.
fn cpu_per_statement(limits: &Limits) -> u64 {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get()) as u64;
    limits.timeout.as_secs().saturating_add(2).saturating_mul(cores).saturating_add(10)
}

/// How many statements' worth of CPU one worker may use in its whole life.
const LIFETIME_STATEMENTS: u64 = 10_000;

/// Confines this process before it touches any keys or data ([`crate::confine`]): its own
/// network namespace, Landlock (the dataset read-only; the scratch directory — for a
/// workspace, the workspace directory — read-write; nothing else), a seccomp filter, writable
/// memory and CPU time limited, no privileges; besides, no core dumps, not dumpable or
/// traceable, and it dies with its parent.
fn confine_worker(setup: &Setup) -> std::result::Result<crate::confine::Report, String> {
    let limits = &setup.limits;
    // The scratch directory must exist before Landlock names it.
    std::fs::create_dir_all(&limits.spill_dir).map_err(|e| format!("{}: {e}", limits.spill_dir.display()))?;
    let mut read_write = vec![limits.spill_dir.clone()];
    let mut read_only = Vec::new();
    let data = setup.data_root.join(&setup.dataset.name);
    match &setup.workspace {
        None => read_only.push(data),
        // The builder: the platform's files read-only, the extract read-write.
        Some(ws) if ws.extract.is_none() => {
            read_only.push(data);
            read_write.push(crate::extract::extract_dir(&ws.dir));
        }
        // The worker that answers: its extract read-only, its saved tables read-write, nothing
        // of the platform's files.
        Some(ws) => {
            read_only.push(crate::extract::extract_dir(&ws.dir));
            read_write.push(ws.dir.join("tables"));
        }
    }
    for dir in read_write.iter().chain(&read_only) {
        subdir(dir).map_err(|e| format!("{}: {}", dir.file_name().map(|n| n.to_string_lossy()).unwrap_or_default(), e.kind()))?;
    }
    let per = cpu_per_statement(limits);
    let c = crate::confine::Confinement {
        read_only,
        read_write,
        memory_bytes: (limits.memory_bytes as u64).saturating_add(ENGINE_HEADROOM),
        cpu_secs: per,
        cpu_hard_secs: per.saturating_mul(LIFETIME_STATEMENTS),
        file_bytes: limits.spill_bytes.max(1 << 30),
        allow_without: limits.allow_without.clone(),
        user: setup.user,
        // Every worker keeps it: the home's directories above the workspace are root's alone
        // (0700), and a worker without it could not reach its own files. Landlock limits what
        // it reads.
        read_search: true,
    };
    crate::confine::confine_self(&c).map_err(|e| e.to_string())
}

/// Before each script: the CPU the worker has used so far plus the script's share becomes
/// its soft limit (the kernel stops it there); the hard limit set at confinement stays.
fn arm_cpu(limits: &Limits, statements: usize) {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let used = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime).tv_sec.max(0) as u64;
    let hard = getrlimit(Resource::Cpu).maximum;
    let want = used.saturating_add(cpu_per_statement(limits).saturating_mul(statements.max(1) as u64));
    let soft = hard.map_or(want, |h| want.min(h));
    let _ = setrlimit(Resource::Cpu, Rlimit { current: Some(soft), maximum: hard });
}

/// Reads one frame (`u64` length, then the bytes) from standard input; `None` at its end or
/// on a frame larger than `max`.
fn read_frame(stdin: &mut impl Read, max: u64) -> Option<Zeroizing<Vec<u8>>> {
    let mut len = [0u8; 8];
    stdin.read_exact(&mut len).ok()?;
    let len = u64::from_be_bytes(len);
    if len > max {
        return None;
    }
    let mut bytes = Zeroizing::new(vec![0u8; usize::try_from(len).ok()?]);
    stdin.read_exact(&mut bytes).ok()?;
    Some(bytes)
}

/// Writes one frame to standard output.
fn write_frame(out: &mut impl Write, bytes: &[u8]) -> std::io::Result<()> {
    out.write_all(&(bytes.len() as u64).to_be_bytes())?;
    out.write_all(bytes)?;
    out.flush()
}

fn hex_key(hex_text: &mut String) -> Option<[u8; 32]> {
    let bytes = hex::decode(&*hex_text).ok().map(Zeroizing::new);
    hex_text.zeroize();
    let bytes = bytes?;
    <[u8; 32]>::try_from(bytes.as_slice()).ok()
}

/// The worker's side: reads its setup on standard input, confines itself, builds the engine,
/// says it is ready, then answers one script after another until its input ends. Returns the
/// process's exit code.
pub fn serve_stdio() -> i32 {
    // Before the keys arrive: not dumpable or traceable, no core dumps, dies with its parent.
    if let Err(e) = protect_self() {
        eprintln!("{CONFINE_FAILED}{e}");
        return 3;
    }
    let Some(bytes) = read_frame(&mut std::io::stdin().lock(), 512 << 20) else { return 2 };
    let Ok(mut setup) = serde_json::from_slice::<Setup>(&bytes) else { return 2 };
    drop(bytes);
    let report = match confine_worker(&setup) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{CONFINE_FAILED}{e}");
            return 3;
        }
    };
    let mut raw = std::collections::HashMap::new();
    for (id, k) in setup.keys.iter_mut() {
        let key = hex::decode(&*k).map(Zeroizing::new);
        k.zeroize();
        match key {
            Ok(key) => raw.insert(id.clone(), key),
            Err(_) => return 2,
        };
    }
    let workspace = match setup.workspace.take() {
        None => None,
        Some(mut w) => {
            let (Some(key), Some(pseudonym)) = (hex_key(&mut w.key), hex_key(&mut w.pseudonym)) else { return 2 };
            let lineage = match (w.lineage.as_mut().map(hex_key), w.lineage_hashing.as_mut().map(hex_key)) {
                (None, None) => None,
                (Some(Some(project)), hashing) => Some(crate::hidden::LineageKeys {
                    project: kura_crypto::SecretKey::from_bytes(project),
                    hashing: match hashing {
                        None => None,
                        Some(Some(h)) => Some(kura_crypto::SecretKey::from_bytes(h)),
                        Some(None) => return 2,
                    },
                }),
                _ => return 2,
            };
            Some(crate::workspace::WorkspaceSpec {
                project: w.project,
                dir: w.dir,
                key: kura_crypto::SecretKey::from_bytes(key),
                pseudonym: kura_crypto::PseudonymKey::new(kura_crypto::SecretKey::from_bytes(pseudonym)),
                extract: w.extract,
                lineage,
            })
        }
    };
    let limits = setup.limits.clone();
    let spec = EngineSpec {
        dataset: setup.dataset,
        grant: setup.grant,
        keys: GrantedKeys::from_raw(raw),
        data_root: setup.data_root,
        limits: setup.limits,
        workspace,
    };
    let lines = report.lines();
    // The engine plans recursively: it runs on a thread with a large stack.
    let served = std::thread::Builder::new().stack_size(STACK).spawn(move || serve(spec, limits, lines));
    match served.map(|t| t.join()) {
        Ok(Ok(code)) => code,
        _ => 4,
    }
}

/// The worker's loop (see [`serve_stdio`]).
fn serve(spec: EngineSpec, limits: Limits, report: Vec<String>) -> i32 {
    let mut stdin = std::io::stdin().lock();
    let mut out = std::io::stdout().lock();
    // A workspace may build its extract first: a statement's CPU time per table.
    let tables = spec.dataset.tables.iter().filter(|t| !spec.grant.columns(t).is_empty()).count();
    arm_cpu(&limits, tables.saturating_add(1));
    let built = tokio::runtime::Builder::new_multi_thread()
        .thread_stack_size(STACK / 2)
        .enable_all()
        .build()
        .map_err(|e| QueryError::Engine(e.to_string()))
        .and_then(|rt| rt.block_on(QueryEngine::open(spec)).map(|e| (rt, e)));
    let (rt, engine) = match built {
        Ok(b) => b,
        Err(e) => {
            let ready = Ready { report, saved: Vec::new(), error: Some(e.into()), extract: None };
            let Ok(bytes) = serde_json::to_vec(&ready) else { return 4 };
            return if write_frame(&mut out, &bytes).is_ok() { 0 } else { 4 };
        }
    };
    let built = engine.built_extract().cloned();
    let builder = built.is_some();
    let ready = Ready { report, saved: engine.saved_tables(), error: None, extract: built };
    let Ok(bytes) = serde_json::to_vec(&ready) else { return 4 };
    if write_frame(&mut out, &bytes).is_err() {
        return 4;
    }
    // A builder's work is done: it takes no script.
    if builder {
        return 0;
    }
    while let Some(bytes) = read_frame(&mut stdin, (crate::bounds::MAX_SQL_BYTES as u64).saturating_mul(2).saturating_add(4096)) {
        let Ok(job) = serde_json::from_slice::<Job>(&bytes) else { return 2 };
        let statements = crate::engine::count_statements(&job.sql).unwrap_or(1);
        arm_cpu(&limits, statements);
        if job.evidence {
            if answer_evidence(&rt, &engine, &job.sql, &mut out).is_err() {
                return 4;
            }
            continue;
        }
        let outcome = run_statements(&rt, &engine, &job.sql).and_then(|outputs| match &job.save_as {
            None => Ok(outputs),
            Some(name) => match outputs.last() {
                Some(last) => engine.save(name, last).map(|()| outputs),
                None => Ok(outputs),
            },
        });
        let (outputs, error) = match outcome {
            Ok(outputs) => (outputs, None),
            Err(e) => (Vec::new(), Some(e)),
        };
        let mut heads = Vec::new();
        let mut blobs = Vec::new();
        for o in outputs {
            let mut ipc = Vec::new();
            let written = StreamWriter::try_new(&mut ipc, &o.schema).and_then(|mut w| {
                for b in &o.batches {
                    w.write(b)?;
                }
                w.finish()
            });
            if written.is_err() {
                return 4;
            }
            let (kind, view) = match o.kind {
                StatementKind::Query => ("query", None),
                StatementKind::Explain => ("explain", None),
                StatementKind::Introspection => ("introspection", None),
                StatementKind::View(v) => ("view", Some(v)),
            };
            heads.push(OutputHead {
                sql: o.sql,
                kind: kind.into(),
                view,
                elapsed_us: o.elapsed.as_micros() as u64,
                ipc_bytes: ipc.len() as u64,
            });
            blobs.push(ipc);
        }
        let answer = Answer { outputs: heads, saved: engine.saved_tables(), error: error.map(WireError::from), evidence: None };
        let Ok(head) = serde_json::to_vec(&answer) else { return 4 };
        let ok = write_frame(&mut out, &head);
        if blobs.iter().fold(ok, |ok, b| ok.and_then(|()| write_frame(&mut out, b))).is_err() {
            return 4;
        }
    }
    0
}
