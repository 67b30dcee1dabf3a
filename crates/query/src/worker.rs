//! Statements run in a worker process that the caller can always stop (issue 14, findings 12
//! and 13; HIC-S13).
//!
//! Inside one process a statement cannot be stopped from outside: a CPU-bound operator or a
//! constant being folded while planning holds its thread until it is done, and a failed
//! allocation aborts the whole process. So [`run`] starts a worker — the same `kura` binary
//! with a hidden argument — hands it the engine's specification (the granted keys included)
//! over a pipe, and waits for the answer with a deadline:
//!
//! - the worker confines itself as soon as it has read its request, before it opens any data
//!   ([`crate::confine`]): a
//!   network namespace of its own, Landlock (the dataset read-only, the spill directory
//!   read-write, nothing else), a seccomp filter refusing sockets, its writable memory
//!   (`RLIMIT_DATA`, the query's memory limit plus room for the engine itself) and CPU time
//!   limited, no privileges; no core dumps, not traceable or dumpable by others
//!   (`PR_SET_DUMPABLE` 0: the keys in its memory stay there), and it dies with its parent
//!   (`PR_SET_PDEATHSIG`). A mechanism the kernel lacks stops it with the confinement error
//!   unless `[query] allow_without` names it;
//! - the worker says on standard error when each statement starts; past a statement's time
//!   limit (plus a short grace) the parent kills it, and the statement ends with the time-limit
//!   error, whatever it was doing (planning, folding a constant, a CPU-bound operator);
//! - a worker that ran out of memory dies; the parent answers with the memory-limit error of
//!   that statement (the next `kura sql` starts a fresh worker); a panic of the engine is an
//!   error of the statement too, naming any damaged file;
//! - an answer larger than the result cap stops the worker with the result-size error.
//!
//! Results come back as Arrow IPC streams, capped like in-process results. Spill files the
//! worker makes are encrypted ([`crate::spill`]) and live in a scratch directory of that worker
//! alone, which the parent removes when the worker is done: nothing is left behind when it is
//! killed, and no worker sees another's files. The parent gives the worker none of its
//! environment, and trusts nothing the worker says about time: all its statements end by one
//! deadline that no message of the worker moves.

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

#[derive(Serialize, Deserialize)]
struct Request {
    statements: usize,
    dataset: DatasetEntry,
    grant: Grant,
    keys: Vec<(String, String)>,
    data_root: PathBuf,
    limits: Limits,
    sql: String,
}

#[derive(Serialize, Deserialize)]
struct Answer {
    outputs: Vec<OutputHead>,
    error: Option<WireError>,
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
    Refused { class: String, reason: String },
    NotGranted { table: bool, name: String },
    BadGrant(String),
    Timeout(u64),
    Memory(String),
    ResultTooLarge(String),
    Integrity(String),
    Engine(String),
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
            QueryError::Store(e) => WireError::Engine(e.to_string()),
            QueryError::Config(m) => WireError::Engine(m),
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
        }
    }
}

fn broken(what: impl std::fmt::Display) -> QueryError {
    QueryError::Engine(format!("問い合わせ用の子プロセスとの通信に失敗しました / the query worker failed: {what}"))
}

/// Runs the statements of `sql` over `spec` in a worker started by `cmd`, holding each to its
/// time limit (plus a grace).
pub fn run(cmd: &WorkerCommand, spec: EngineSpec, sql: &str) -> Result<Vec<StatementOutput>> {
    let statements = crate::engine::count_statements(sql)?;
    let mut limits = spec.limits.clone();
    // A scratch directory of this worker's own (its spill files), removed when it is done: no
    // worker sees another's files, and nothing it leaves stays behind.
    let scratch = tempfile::Builder::new()
        .prefix("worker-")
        .tempdir_in(&limits.spill_dir)
        .map_err(|e| broken(format!("{}: {e}", limits.spill_dir.display())))?;
    limits.spill_dir = scratch.path().to_path_buf();
    let keys: Vec<(String, String)> = spec.keys.to_raw().into_iter().map(|(id, k)| (id, hex::encode(k.as_slice()))).collect();
    let mut request = Request {
        statements,
        dataset: spec.dataset,
        grant: spec.grant,
        keys,
        data_root: spec.data_root,
        limits: limits.clone(),
        sql: sql.to_string(),
    };
    let bytes = Zeroizing::new(serde_json::to_vec(&request).map_err(broken)?);
    for (_, k) in request.keys.iter_mut() {
        k.zeroize();
    }

    let mut child = Command::new(&cmd.program)
        .args(&cmd.args)
        // Nothing of the caller's environment (tokens, paths) reaches the worker.
        .env_clear()
        .env("MALLOC_ARENA_MAX", "2")
        // A backtrace would show internal paths and push the one line that says what went
        // wrong (a failed allocation, a stack overflow) out of the tail read below.
        .env_remove("RUST_BACKTRACE")
        .env_remove("RUST_LIB_BACKTRACE")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(broken)?;
    let mut stdin = child.stdin.take().ok_or_else(|| broken("no stdin"))?;
    let writer = std::thread::spawn(move || -> std::io::Result<()> {
        stdin.write_all(&(bytes.len() as u64).to_be_bytes())?;
        stdin.write_all(&bytes)?;
        Ok(())
    });
    // The answer, read up to the cap: a worker that writes more is stopped.
    let cap = (limits.max_result_bytes as u64).saturating_mul(2).saturating_add(64 << 20);
    let too_large = Arc::new(AtomicBool::new(false));
    let mut stdout = child.stdout.take().ok_or_else(|| broken("no stdout"))?;
    let flag = too_large.clone();
    let reader = std::thread::spawn(move || -> std::io::Result<Vec<u8>> {
        let mut out = Vec::new();
        (&mut stdout).take(cap + 1).read_to_end(&mut out)?;
        if out.len() as u64 > cap {
            flag.store(true, Ordering::SeqCst);
            out.clear();
        }
        Ok(out)
    });
    // Its standard error: a line as each statement starts (each has its own time limit), and
    // the last of what it says otherwise (a failed allocation, a stack overflow).
    let started = Arc::new(Mutex::new(Instant::now()));
    // Whatever the worker writes, all its statements together end by this deadline.
    let all_done = Instant::now() + (limits.timeout + GRACE).saturating_mul(u32::try_from(statements.max(1)).unwrap_or(u32::MAX));
    let mut stderr = std::io::BufReader::new(child.stderr.take().ok_or_else(|| broken("no stderr"))?);
    let mark = started.clone();
    let errors = std::thread::spawn(move || {
        let mut tail: std::collections::VecDeque<String> = std::collections::VecDeque::new();
        let mut line = Vec::new();
        while matches!(std::io::BufRead::read_until(&mut stderr, b'\n', &mut line), Ok(n) if n > 0) {
            let text = String::from_utf8_lossy(&line).trim_end().to_string();
            line.clear();
            if text.starts_with(STATEMENT_MARK) {
                *mark.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
            } else if is_frame(&text) {
                // A backtrace frame (were one printed all the same) says nothing to a user.
            } else {
                if tail.len() == 50 {
                    tail.pop_front();
                }
                tail.push_back(text.chars().take(500).collect());
            }
        }
        tail.into_iter().collect::<Vec<_>>().join("\n")
    });

    let mut killed = false;
    let status = loop {
        if let Some(status) = child.try_wait().map_err(broken)? {
            break status;
        }
        let since = *started.lock().unwrap_or_else(|e| e.into_inner());
        if since.elapsed() >= limits.timeout + GRACE || Instant::now() >= all_done || too_large.load(Ordering::SeqCst) {
            let _ = child.kill();
            killed = true;
            break child.wait().map_err(broken)?;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let _ = writer.join();
    let answer = reader.join().map_err(|_| broken("reader"))?.map_err(broken)?;
    let stderr = errors.join().unwrap_or_default();
    if too_large.load(Ordering::SeqCst) {
        return Err(QueryError::ResultTooLarge(format!("> {} MiB", limits.max_result_bytes >> 20)));
    }
    if killed {
        return Err(QueryError::Timeout(limits.timeout.as_secs()));
    }
    if let Some(line) = stderr.lines().find(|l| l.starts_with(CONFINE_FAILED)) {
        return Err(QueryError::Config(line.to_string()));
    }
    if !status.success() {
        use std::os::unix::process::ExitStatusExt;
        let memory = || {
            QueryError::Memory(format!(
                "{} MiB の上限に達しました / the worker reached its memory limit of {} MiB",
                limits.memory_bytes >> 20,
                limits.memory_bytes >> 20
            ))
        };
        return Err(match status.signal() {
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
        });
    }
    decode(&answer)
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

/// Runs the statements; a statement that makes the engine panic (a bug, or damaged bytes it
/// trips over) ends as an error of that statement, naming any damaged file.
fn run_statements(spec: EngineSpec, sql: &str) -> Result<Vec<StatementOutput>> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .thread_stack_size(STACK / 2)
        .enable_all()
        .build()
        .map_err(|e| QueryError::Engine(e.to_string()))?;
    let engine = QueryEngine::new(spec)?;
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

fn decode(bytes: &[u8]) -> Result<Vec<StatementOutput>> {
    // Lengths come from the worker, which ran a researcher's SQL: checked before they are used.
    let (len, rest) = bytes.split_first_chunk::<8>().ok_or_else(|| broken("no answer"))?;
    let head_len = usize::try_from(u64::from_be_bytes(*len)).map_err(broken)?;
    let (head, mut rest) = rest.split_at_checked(head_len).ok_or_else(|| broken("short answer"))?;
    let answer: Answer = serde_json::from_slice(head).map_err(broken)?;
    let mut outputs = Vec::new();
    for o in answer.outputs {
        let ipc_len = usize::try_from(o.ipc_bytes).map_err(broken)?;
        let (ipc, after) = rest.split_at_checked(ipc_len).ok_or_else(|| broken("short result"))?;
        rest = after;
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
    match answer.error {
        Some(e) => Err(e.into()),
        None => Ok(outputs),
    }
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

/// Confines this process before it touches any keys or data ([`crate::confine`]): its own
/// network namespace, Landlock (the dataset read-only, the spill directory read-write, nothing
/// else), a seccomp filter, writable memory and CPU time limited, no privileges; besides, no
/// core dumps, not dumpable or traceable, and it dies with its parent.
fn confine_worker(request: &Request) -> std::result::Result<crate::confine::Report, String> {
    let limits = &request.limits;
    // The spill directory must exist before Landlock names it.
    std::fs::create_dir_all(&limits.spill_dir).map_err(|e| format!("{}: {e}", limits.spill_dir.display()))?;
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get()) as u64;
    let cpu = limits
        .timeout
        .as_secs()
        .saturating_add(2)
        .saturating_mul(cores)
        .saturating_mul(request.statements.max(1) as u64)
        .saturating_add(10);
    let c = crate::confine::Confinement {
        read_only: vec![request.data_root.join(&request.dataset.name)],
        read_write: vec![limits.spill_dir.clone()],
        memory_bytes: (limits.memory_bytes as u64).saturating_add(ENGINE_HEADROOM),
        cpu_secs: cpu,
        file_bytes: limits.spill_bytes.max(1 << 30),
        allow_without: limits.allow_without.clone(),
    };
    crate::confine::confine_self(&c).map_err(|e| e.to_string())
}

/// The worker's side: reads the request on standard input, limits itself, runs the statements
/// and writes the answer on standard output. Returns the process's exit code.
pub fn serve_stdio() -> i32 {
    // Before the keys arrive: not dumpable or traceable, no core dumps, dies with its parent.
    if let Err(e) = protect_self() {
        eprintln!("{CONFINE_FAILED}{e}");
        return 3;
    }
    let mut stdin = std::io::stdin().lock();
    let mut len = [0u8; 8];
    if stdin.read_exact(&mut len).is_err() {
        return 2;
    }
    let len = u64::from_be_bytes(len);
    if len > 512 << 20 {
        return 2;
    }
    let mut bytes = Zeroizing::new(vec![0u8; len as usize]);
    if stdin.read_exact(&mut bytes).is_err() {
        return 2;
    }
    let Ok(mut request) = serde_json::from_slice::<Request>(&bytes) else { return 2 };
    drop(bytes);
    if let Err(e) = confine_worker(&request) {
        eprintln!("{CONFINE_FAILED}{e}");
        return 3;
    }
    let mut raw = std::collections::HashMap::new();
    for (id, k) in request.keys.iter_mut() {
        let key = hex::decode(&*k).map(Zeroizing::new);
        k.zeroize();
        match key {
            Ok(key) => raw.insert(id.clone(), key),
            Err(_) => return 2,
        };
    }
    let spec = EngineSpec {
        dataset: request.dataset,
        grant: request.grant,
        keys: GrantedKeys::from_raw(raw),
        data_root: request.data_root,
        limits: request.limits,
    };
    let sql = std::mem::take(&mut request.sql);
    let outcome = std::thread::Builder::new()
        .stack_size(STACK)
        .spawn(move || run_statements(spec, &sql))
        .map_err(|e| QueryError::Engine(e.to_string()))
        .and_then(|t| t.join().unwrap_or_else(|_| Err(QueryError::Engine("the query worker's thread failed".into()))));
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
    let Ok(head) = serde_json::to_vec(&Answer { outputs: heads, error: error.map(WireError::from) }) else { return 4 };
    let mut out = std::io::stdout().lock();
    let ok = out.write_all(&(head.len() as u64).to_be_bytes()).and_then(|()| out.write_all(&head));
    let ok = blobs.iter().fold(ok, |ok, b| ok.and_then(|()| out.write_all(b))).and_then(|()| out.flush());
    if ok.is_err() { 4 } else { 0 }
}
