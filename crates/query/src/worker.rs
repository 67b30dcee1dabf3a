//! Statements run in a worker process that the caller can always stop (issue 14, findings 12
//! and 13; HIC-S13).
//!
//! Inside one process a statement cannot be stopped from outside: a CPU-bound operator or a
//! constant being folded while planning holds its thread until it is done, and a failed
//! allocation aborts the whole process. So [`run`] starts a worker — the same `kura` binary
//! with a hidden argument — hands it the engine's specification (the granted keys included)
//! over a pipe, and waits for the answer with a deadline:
//!
//! - the worker limits itself before it reads any data: its writable memory (`RLIMIT_DATA`,
//!   the query's memory limit plus room for the engine itself), no core dumps, not
//!   traceable or dumpable by others (`PR_SET_DUMPABLE` 0: the keys in its memory stay there),
//!   and it dies with its parent (`PR_SET_PDEATHSIG`);
//! - past the statements' time limit (plus a short grace) the parent kills it: the statement
//!   ends with the time-limit error, whatever it was doing;
//! - a worker that ran out of memory dies; the parent answers with the memory-limit error of
//!   that statement, and the next statement starts a fresh worker.
//!
//! Results come back as Arrow IPC streams, capped like in-process results. Spill files the
//! worker makes are nameless and encrypted ([`crate::spill`]): nothing is left behind when it
//! is killed.

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
use std::time::{Duration, Instant};
use zeroize::{Zeroize, Zeroizing};

/// The hidden argument that makes the `kura` binary a query worker.
pub const WORKER_ARG: &str = "query-worker";

/// Room for the engine itself on top of the query's memory limit (runtime, threads, decoded
/// pages that no operator has reserved yet).
pub const ENGINE_HEADROOM: u64 = 768 << 20;

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

/// Runs the statements of `sql` over `spec` in a worker started by `cmd`, and waits at most
/// their time limits (one per statement, plus a grace) for the answer.
pub fn run(cmd: &WorkerCommand, spec: EngineSpec, sql: &str) -> Result<Vec<StatementOutput>> {
    let statements = crate::engine::count_statements(sql)?;
    let limits = spec.limits.clone();
    let keys: Vec<(String, String)> = spec.keys.to_raw().into_iter().map(|(id, k)| (id, hex::encode(&k[..]))).collect();
    let mut request =
        Request { dataset: spec.dataset, grant: spec.grant, keys, data_root: spec.data_root, limits: limits.clone(), sql: sql.to_string() };
    let bytes = Zeroizing::new(serde_json::to_vec(&request).map_err(broken)?);
    for (_, k) in request.keys.iter_mut() {
        k.zeroize();
    }

    let mut child = Command::new(&cmd.program)
        .args(&cmd.args)
        .env("MALLOC_ARENA_MAX", "2")
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
    let cap = (limits.max_result_bytes as u64).saturating_mul(2).saturating_add(64 << 20);
    let mut stdout = child.stdout.take().ok_or_else(|| broken("no stdout"))?;
    let reader = std::thread::spawn(move || -> std::io::Result<Vec<u8>> {
        let mut out = Vec::new();
        (&mut stdout).take(cap).read_to_end(&mut out)?;
        Ok(out)
    });
    let mut stderr = child.stderr.take().ok_or_else(|| broken("no stderr"))?;
    let errors = std::thread::spawn(move || {
        let mut out = Vec::new();
        let _ = (&mut stderr).take(64 << 10).read_to_end(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    });

    let deadline = Instant::now() + limits.timeout.saturating_mul(statements.max(1) as u32) + GRACE;
    let status = loop {
        if let Some(status) = child.try_wait().map_err(broken)? {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(QueryError::Timeout(limits.timeout.as_secs()));
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let _ = writer.join();
    let answer = reader.join().map_err(|_| broken("reader"))?.map_err(broken)?;
    let stderr = errors.join().unwrap_or_default();
    if !status.success() {
        use std::os::unix::process::ExitStatusExt;
        return Err(match status.signal() {
            // A failed allocation aborts (Rust prints "memory allocation of N bytes failed").
            Some(6) if stderr.contains("memory allocation") => QueryError::Memory(format!(
                "{} MiB の上限に達しました / the worker reached its memory limit of {} MiB",
                limits.memory_bytes >> 20,
                limits.memory_bytes >> 20
            )),
            Some(9) | Some(24) => QueryError::Timeout(limits.timeout.as_secs()),
            _ => broken(format!("exit {status}: {}", stderr.lines().last().unwrap_or(""))),
        });
    }
    decode(&answer)
}

fn decode(bytes: &[u8]) -> Result<Vec<StatementOutput>> {
    if bytes.len() < 8 {
        return Err(broken("no answer"));
    }
    let head_len = u64::from_be_bytes(bytes[..8].try_into().map_err(broken)?) as usize;
    let head = bytes.get(8..8 + head_len).ok_or_else(|| broken("short answer"))?;
    let answer: Answer = serde_json::from_slice(head).map_err(broken)?;
    let mut at = 8 + head_len;
    let mut outputs = Vec::new();
    for o in answer.outputs {
        let ipc = bytes.get(at..at + o.ipc_bytes as usize).ok_or_else(|| broken("short result"))?;
        at += o.ipc_bytes as usize;
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

/// Limits this process before it touches any data: writable memory, no core dumps, not
/// dumpable or traceable, dies with its parent, CPU time as a backstop.
fn limit_self(limits: &Limits) -> std::io::Result<()> {
    use rustix::process::{DumpableBehavior, Resource, Rlimit, Signal, set_dumpable_behavior, set_parent_process_death_signal, setrlimit};
    set_parent_process_death_signal(Some(Signal::KILL))?;
    set_dumpable_behavior(DumpableBehavior::NotDumpable)?;
    setrlimit(Resource::Core, Rlimit { current: Some(0), maximum: Some(0) })?;
    let data = (limits.memory_bytes as u64).saturating_add(ENGINE_HEADROOM);
    setrlimit(Resource::Data, Rlimit { current: Some(data), maximum: Some(data) })?;
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get()) as u64;
    let cpu = limits.timeout.as_secs().saturating_add(2).saturating_mul(cores).saturating_add(10);
    setrlimit(Resource::Cpu, Rlimit { current: Some(cpu), maximum: Some(cpu) })?;
    Ok(())
}

/// The worker's side: reads the request on standard input, limits itself, runs the statements
/// and writes the answer on standard output. Returns the process's exit code.
pub fn serve_stdio() -> i32 {
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
    if let Err(e) = limit_self(&request.limits) {
        eprintln!("query worker: cannot limit itself: {e}");
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
    let outcome =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(|e| QueryError::Engine(e.to_string())).and_then(|rt| {
            let engine = QueryEngine::new(spec)?;
            rt.block_on(engine.run(&request.sql))
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
    let Ok(head) = serde_json::to_vec(&Answer { outputs: heads, error: error.map(WireError::from) }) else { return 4 };
    let mut out = std::io::stdout().lock();
    let ok = out.write_all(&(head.len() as u64).to_be_bytes()).and_then(|()| out.write_all(&head));
    let ok = blobs.iter().fold(ok, |ok, b| ok.and_then(|()| out.write_all(b))).and_then(|()| out.flush());
    if ok.is_err() { 4 } else { 0 }
}
