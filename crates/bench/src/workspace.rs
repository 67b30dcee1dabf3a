//! `kura bench workspace`: what a project's workspace costs (issue 16).
//!
//! 1. **Extract** — the first start of a project's worker writes the project's extract (its
//!    granted tables with project pseudonyms, renumbered record ids and rows in the project's
//!    keyed order: `kura_query::extract`); its time is shown.
//! 2. **Start** — from a request to its first answer on a workspace whose worker is not
//!    running: the engine's specification built from the home (the workspace key, the
//!    project's pseudonym key), the worker started and confined, its engine opened over the
//!    extract, `SELECT 1` answered. Median of several starts; target ≤ 200 ms.
//! 3. **Overhead of the worker** — the query suite of `kura bench query`, under its grant, in
//!    process and through a worker (one worker for the whole suite, as a workspace keeps it),
//!    alternately; target: the worker's total at most 5 % above the in-process total. The same
//!    suite in a workspace (over its extract) is shown beside it.
//! 4. **Idle workers** — how much memory a started, idle workspace worker holds (its
//!    proportional set size: shared pages counted once over all workers), and so how many
//!    idle workspaces the node holds in 80 % of its memory.

use crate::query::{GRANT, QUERIES, median};
use crate::report::{Figure, figures};
use kura::{CliError, Result, count_bar, runtime, synth_with_progress};
use kura_crypto::SecretKey;
use kura_query::worker::{Session, WORKER_ARG, WorkerCommand};
use kura_query::{EngineSpec, Grant, QueryEngine, WorkspaceSpec};
use kura_store::{Home, WriteOptions};
use kura_synth::SynthConfig;
use std::path::Path;
use std::time::Instant;

/// Arguments of `kura bench workspace`.
#[derive(Debug, clap::Args)]
pub struct WorkspaceBenchArgs {
    /// 生成する人数 / persons to generate
    #[arg(long, default_value_t = 100_000)]
    pub persons: u64,
    /// 乱数シード / random seed
    #[arg(long, default_value_t = 20_240_401)]
    pub seed: u64,
    /// 各クエリの計測回数（中央値）/ timed runs per query (median)
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// 起動時間の計測回数 / worker starts timed
    #[arg(long, default_value_t = 10)]
    pub starts: usize,
    /// 同時に待機させる作業環境プロセスの数 / idle workspace workers to start at once
    #[arg(long, default_value_t = 20)]
    pub idle: usize,
    /// 作業ディレクトリ（新規または空）/ working directory, new or empty [default: a temporary one]
    #[arg(long, value_name = "DIR")]
    pub dir: Option<std::path::PathBuf>,
}

/// Target: from a request to the first answer of a cold workspace.
const MAX_START_MS: f64 = 200.0;
/// Target: the suite through the worker, above in process.
const MAX_OVERHEAD_PCT: f64 = 5.0;

fn bench_err(what: &str) -> impl Fn(kura_query::QueryError) -> CliError + '_ {
    move |e| CliError::Bench(format!("{what}: {e}"))
}

/// The specification of a workspace of project `project` over the suite's grant.
pub(crate) fn workspace_spec(home: &Home, project: &str, dir: &Path, key: &SecretKey) -> Result<EngineSpec> {
    let entry = home.catalog()?.datasets.get("ndb").cloned().ok_or_else(|| CliError::Bench("no dataset".into()))?;
    let grant = Grant::parse(&entry, GRANT)?;
    let mut spec = EngineSpec::from_home(home, "ndb", Some(grant))?;
    let pseudonym = home.platform_pseudonym_key()?.for_project(project);
    // The workspace's directory, as provisioning makes it (workers never make it themselves).
    let ws = dir.join(project);
    std::fs::create_dir_all(&ws).map_err(|e| CliError::Bench(format!("{}: {e}", ws.display())))?;
    spec.workspace =
        Some(WorkspaceSpec { project: project.into(), dir: dir.join(project), key: key.clone(), pseudonym, extract: None, lineage: None });
    // As provisioning gives it: the extract carries the airlock's hidden lineage columns.
    Ok(spec.with_lineage(home)?)
}

/// A process's memory from `/proc`: (resident, proportional) in bytes.
fn memory_of(pid: u32) -> (u64, u64) {
    let field = |text: &str, name: &str| {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024)
    };
    let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
    (field(&rollup, "Rss:"), field(&rollup, "Pss:"))
}

fn mem_total() -> u64 {
    let info = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    info.lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// Runs `kura bench workspace`.
pub fn workspace(a: WorkspaceBenchArgs) -> Result<()> {
    let (work, _scratch) = crate::report::bench_dir(a.dir.as_deref(), "kura-bench-workspace-")?;
    let cmd = WorkerCommand { program: crate::kura_exe()?, args: vec![WORKER_ARG.into()] };
    println!("Kura ベンチマーク（作業環境）/ workspace benchmark: {} 人 persons, seed {}, {} runs", a.persons, a.seed, a.runs);
    let home = Home::init(&work.join("home"))?;
    let (entry, _) = synth_with_progress(&home, SynthConfig::new(a.persons, a.seed), &WriteOptions::from_home(&home, "ndb"))?;
    let spaces = work.join("workspaces");

    // 1. The project's first start writes its extract. One key for the project throughout,
    // as the keyring keeps it.
    let key = SecretKey::generate().map_err(|e| CliError::Bench(e.to_string()))?;
    let project = "PRJ-000001";
    let t = Instant::now();
    let mut ws_worker = Session::start(&cmd, workspace_spec(&home, project, &spaces, &key)?).map_err(bench_err("extract"))?;
    let extract_s = t.elapsed().as_secs_f64();
    let extract_rows: u64 = ws_worker.extract().map_or(0, |m| m.tables.iter().map(|t| t.rows).sum());

    // 2. Starts: specification, worker, engine over the extract, first answer.
    let mut starts = Vec::new();
    for _ in 0..a.starts.max(1) {
        let t = Instant::now();
        let spec = workspace_spec(&home, project, &spaces, &key)?;
        let mut s = Session::start(&cmd, spec).map_err(bench_err("start"))?;
        s.run("SELECT 1", None).map_err(bench_err("first query"))?;
        starts.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let start_ms = median(&mut starts);

    // 3. The suite in process and through a worker, alternately; and in a workspace.
    let grant = Grant::parse(&entry, GRANT)?;
    let engine = QueryEngine::new(EngineSpec::from_home(&home, "ndb", Some(grant.clone()))?)?;
    let mut plain_worker = Session::start(&cmd, EngineSpec::from_home(&home, "ndb", Some(grant))?).map_err(bench_err("worker"))?;
    let rt = runtime()?;
    let (mut inproc, mut worker, mut ws) = (0.0, 0.0, 0.0);
    // Per query: in process, the worker's own engine time, the round trip through it, the workspace.
    let mut per_query: Vec<(&str, f64, f64, f64, f64)> = Vec::new();
    let pb = count_bar(QUERIES.len() as u64, "実行中 running", "問 queries");
    for q in QUERIES {
        let (mut ti, mut tw, mut ts, mut te) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for run in 0..=a.runs {
            let t = Instant::now();
            rt.block_on(engine.run(q.sql)).map_err(bench_err(q.name))?;
            let i = t.elapsed().as_secs_f64();
            let t = Instant::now();
            let outputs = plain_worker.run(q.sql, None).map_err(bench_err(q.name))?;
            let w = t.elapsed().as_secs_f64();
            let e: f64 = outputs.iter().map(|o| o.elapsed.as_secs_f64()).sum();
            let t = Instant::now();
            ws_worker.run(q.sql, None).map_err(bench_err(q.name))?;
            let s = t.elapsed().as_secs_f64();
            if run > 0 {
                ti.push(i);
                tw.push(w);
                ts.push(s);
                te.push(e);
            }
        }
        let (i, w, s, e) = (median(&mut ti), median(&mut tw), median(&mut ts), median(&mut te));
        per_query.push((q.name, i, e, w, s));
        inproc += i;
        worker += w;
        ws += s;
        pb.inc(1);
    }
    pb.finish_and_clear();
    drop((plain_worker, ws_worker, engine));
    let overhead = 100.0 * (worker / inproc.max(1e-9) - 1.0);
    let ws_overhead = 100.0 * (ws / inproc.max(1e-9) - 1.0);

    // 4. Idle workers, all started and answering once, then measured together (over the one
    // extract: what a worker holds does not depend on its project).
    let mut idle = Vec::new();
    for _ in 0..a.idle.max(1) {
        let mut s = Session::start(&cmd, workspace_spec(&home, project, &spaces, &key)?).map_err(bench_err("idle"))?;
        s.run("SELECT 1", None).map_err(bench_err("idle"))?;
        idle.push(s);
    }
    let mems: Vec<(u64, u64)> = idle.iter().map(|s| memory_of(s.pid())).collect();
    let n = mems.len().max(1) as f64;
    let rss = mems.iter().map(|m| m.0 as f64).sum::<f64>() / n;
    let pss = mems.iter().map(|m| m.1 as f64).sum::<f64>() / n;
    drop(idle);
    let total = mem_total();
    let per_node = if pss > 0.0 { (total as f64 * 0.8 / pss) as u64 } else { 0 };

    // Where the worker's time goes, query by query: the engine inside the worker against the
    // round trip (what the pipe, the encoding and the wake-ups add).
    let mut t = comfy_table::Table::new();
    t.load_preset(comfy_table::presets::UTF8_FULL_CONDENSED).set_header(vec![
        "問 / query",
        "プロセス内 / in process",
        "作業プロセス内のエンジン / worker's engine",
        "作業プロセス経由 / through the worker",
        "作業環境 / workspace",
    ]);
    for (name, i, e, w, s) in &per_query {
        t.add_row(vec![
            (*name).to_string(),
            format!("{:.1} ms", i * 1000.0),
            format!("{:.1} ms", e * 1000.0),
            format!("{:.1} ms ({:+.1} %)", w * 1000.0, 100.0 * (w / i.max(1e-9) - 1.0)),
            format!("{:.1} ms", s * 1000.0),
        ]);
    }
    println!("{t}");

    figures(&[
        Figure {
            what: "プロジェクトの抽出の作成（初回の起動）/ writing a project's extract (its first start)",
            value: format!("{extract_s:.1} s ({extract_rows} 行 rows)"),
            target: "",
            met: None,
        },
        Figure {
            what: "作業環境の起動（要求から最初の答えまで、中央値）/ workspace start, request to first answer (median)",
            value: format!("{start_ms:.0} ms"),
            target: "≤ 200 ms",
            met: Some(start_ms <= MAX_START_MS),
        },
        Figure {
            what: "問い合わせ集：プロセス内 / query suite in process",
            value: format!("{:.0} ms", inproc * 1000.0),
            target: "",
            met: None,
        },
        Figure {
            what: "問い合わせ集：作業プロセス経由 / query suite through the worker",
            value: format!("{:.0} ms ({overhead:+.1} %)", worker * 1000.0),
            target: "≤ +5 %",
            met: Some(overhead <= MAX_OVERHEAD_PCT),
        },
        Figure {
            what: "問い合わせ集：作業環境（プロジェクトの抽出）/ query suite in a workspace (over the project's extract)",
            value: format!("{:.0} ms ({ws_overhead:+.1} %)", ws * 1000.0),
            target: "",
            met: None,
        },
        Figure {
            what: "待機中の作業プロセスのメモリ（PSS、RSS）/ memory per idle worker (PSS; RSS)",
            value: format!("{:.1} MiB; {:.1} MiB", pss / 1048576.0, rss / 1048576.0),
            target: "",
            met: None,
        },
        Figure {
            what: "1ノードで待機できる作業環境（メモリの8割）/ idle workspaces per node (80 % of memory)",
            value: format!("{per_node} ({:.1} GiB, {} workers measured)", total as f64 / 1073741824.0, mems.len()),
            target: "",
            met: None,
        },
    ])
}
