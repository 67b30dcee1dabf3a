//! `kura bench airlock`: what the airlock's automatic check costs (issue 17, "Performance").
//!
//! 1. **The check against the plain query** — an output table of at least 10,000 cells
//!    (prefecture × age × sex, with a count and a sum) over the synthetic population (1,000,000
//!    persons by default), once as the plain query in the project's workspace worker and once as
//!    the airlock checks it: the checker's evidence query (the same query rewritten to carry
//!    every cell's persons, institutions and largest contributions), the policy's per-cell
//!    verdicts with suppression and secondary suppression, the sets that would leave, and the
//!    differencing comparison of the output's cells with each other. Both warm (their workers
//!    started), median of `--runs`; target: the check at most 2 × the plain query.
//! 2. **Differencing against 100 earlier releases** — the remembered releases (each a table of
//!    one prefecture's persons by age band and sex with its total, made from the real person
//!    sets of the table above, sealed in the memory as a release writes them) read back and
//!    decrypted, and the new table's cells compared with all of them. The time is shown, and the
//!    whole check including it is held to the same 2 × target.

use crate::query::median;
use crate::report::{Figure, figures};
use crate::workspace::workspace_spec;
use kura::{CliError, Result, synth_with_progress};
use kura_crypto::SecretKey;
use kura_query::worker::{Session, WORKER_ARG, WorkerCommand};
use kura_store::{Home, WriteOptions};
use kura_synth::SynthConfig;
use kura_workspace::memory::{MemCell, Memory, Persons, compare, leaving_sets};
use std::collections::BTreeMap;
use std::time::Instant;

/// Arguments of `kura bench airlock`.
#[derive(Debug, clap::Args)]
pub struct AirlockBenchArgs {
    /// 生成する人数 / persons to generate
    #[arg(long, default_value_t = 1_000_000)]
    pub persons: u64,
    /// 乱数シード / random seed
    #[arg(long, default_value_t = 20_240_401)]
    pub seed: u64,
    /// 計測回数（中央値）/ timed runs (median)
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// 比較する過去の持ち出しの数 / earlier releases to compare with
    #[arg(long, default_value_t = 100)]
    pub releases: usize,
    /// 作業ディレクトリ（新規または空）/ working directory, new or empty [default: a temporary one]
    #[arg(long, value_name = "DIR")]
    pub dir: Option<std::path::PathBuf>,
}

/// Target: the check, evidence queries included, against the plain query.
const MAX_RATIO: f64 = 2.0;

/// The output table: prefecture × age × sex, a count and a sum.
const SQL: &str = "SELECT prefecture, age, sex, count(*) AS receipts, sum(total_points) AS points FROM re GROUP BY prefecture, age, sex";

fn bench_err(what: &'static str) -> impl Fn(kura_query::QueryError) -> CliError {
    move |e| CliError::Bench(format!("{what}: {e}"))
}

fn ws_err(e: kura_workspace::WorkspaceError) -> CliError {
    CliError::Bench(e.to_string())
}

/// One check's outcome.
struct Checked {
    /// Cells of the table.
    cells: usize,
    /// Differencing findings.
    findings: usize,
    /// Seconds the evidence query, the verdicts and the leaving sets took.
    evidence_s: f64,
    /// Seconds the policy's verdicts (with suppression) took.
    verdict_s: f64,
    /// Seconds the sets that would leave took.
    sets_s: f64,
    /// Seconds the differencing comparison took.
    compare_s: f64,
    /// The evidence.
    ev: kura_query::lineage::Evidenced,
}

/// The airlock's check of [`SQL`] as `check_query` does it, without the database: evidence,
/// verdicts, the leaving sets, and their comparison with each other and with `released`.
fn check(checker: &mut Session, policy: &kura_disclosure::LoadedPolicy, released: &[(String, MemCell)]) -> Result<Checked> {
    let t = Instant::now();
    let ev = checker.evidence(SQL).map_err(bench_err("evidence"))?;
    let evidence_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let mut verdict = kura_disclosure::table::check_table(policy, &ev.table).map_err(|e| CliError::Bench(e.to_string()))?;
    let verdict_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let sets = leaving_sets("table.csv", &ev.table, &verdict, &ev.sets);
    let sets_s = t.elapsed().as_secs_f64();
    let threshold = policy.policy.persons.threshold;
    let t = Instant::now();
    let hits = compare(&sets, released, threshold);
    let compare_s = t.elapsed().as_secs_f64();
    kura_workspace::memory::apply(&mut verdict, &hits, threshold);
    let cells = ev.table.rows.len() * ev.table.measures.len();
    Ok(Checked { cells, findings: hits.len(), evidence_s, verdict_s, sets_s, compare_s, ev })
}

/// `releases` earlier releases made of the real person sets of `ev`: release `r` is one
/// prefecture's persons by ten-year age band and sex, with its total.
fn earlier_releases(ev: &kura_query::lineage::Evidenced, releases: usize) -> Vec<Vec<MemCell>> {
    // Rows by prefecture: (age band, sex) → persons.
    let mut by_pref: BTreeMap<String, BTreeMap<(i64, String), Vec<u64>>> = BTreeMap::new();
    for (row, sets) in ev.table.rows.iter().zip(&ev.sets) {
        let key = |i: usize| row.keys.get(i).cloned().flatten().unwrap_or_default();
        let band = key(1).parse::<i64>().unwrap_or(0) / 10;
        let persons = sets.first().and_then(|c| c.first()).cloned().unwrap_or_default();
        by_pref.entry(key(0)).or_default().entry((band, key(2))).or_default().extend(persons);
    }
    let prefs: Vec<&BTreeMap<(i64, String), Vec<u64>>> = by_pref.values().collect();
    (0..releases)
        .filter_map(|r| {
            let cells = prefs.get(r % prefs.len().max(1))?;
            let mut total: Vec<u64> = Vec::new();
            let mut out: Vec<MemCell> = cells
                .iter()
                .map(|((band, sex), persons)| {
                    let mut p = persons.clone();
                    p.sort_unstable();
                    p.dedup();
                    total.extend(&p);
                    MemCell {
                        file: format!("earlier-{r}.csv"),
                        label: format!("{}0s · {sex} / receipts", band),
                        at: None,
                        set: Persons::new(p),
                    }
                })
                .collect();
            total.sort_unstable();
            total.dedup();
            out.push(MemCell {
                file: format!("earlier-{r}.csv"),
                label: "receipts (合計 total)".into(),
                at: None,
                set: Persons::new(total),
            });
            Some(out)
        })
        .collect()
}

/// Runs `kura bench airlock`.
pub fn airlock(a: AirlockBenchArgs) -> Result<()> {
    let (work, _scratch) = crate::report::bench_dir(a.dir.as_deref(), "kura-bench-airlock-")?;
    let cmd = WorkerCommand { program: crate::kura_exe()?, args: vec![WORKER_ARG.into()] };
    println!("Kura ベンチマーク（持ち出し審査）/ airlock benchmark: {} 人 persons, seed {}, {} runs", a.persons, a.seed, a.runs);
    let home = Home::init(&work.join("home"))?;
    synth_with_progress(&home, SynthConfig::new(a.persons, a.seed), &WriteOptions::from_home(&home, "ndb"))?;
    let spaces = work.join("workspaces");
    let key = SecretKey::generate().map_err(|e| CliError::Bench(e.to_string()))?;
    let project = "PRJ-000001";
    let policy = kura_disclosure::LoadedPolicy::default_ndb();

    // The project's worker (it writes the extract) and its checker, both warm.
    let mut worker = Session::start(&cmd, workspace_spec(&home, project, &spaces, &key)?).map_err(bench_err("worker"))?;
    let mut checker = Session::start_checker(&cmd, workspace_spec(&home, project, &spaces, &key)?).map_err(bench_err("checker"))?;
    worker.run(SQL, None).map_err(bench_err("plain query"))?;
    let first = check(&mut checker, &policy, &[])?;
    let (cells, ev) = (first.cells, first.ev);

    // The memory of the earlier releases, sealed as the release gate writes it.
    let memory = Memory::new(&work.join("airlock"), &home.airlock_key()?);
    let members = vec!["r1".to_string()];
    for (r, cells) in earlier_releases(&ev, a.releases).into_iter().enumerate() {
        memory.remember(&format!("OUT-{:06}", r + 1), project, &members, cells, Vec::new(), r as u64 + 1).map_err(ws_err)?;
    }
    drop(ev);

    let (mut plain, mut alone, mut with, mut recall, mut compared) = (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut findings, mut remembered) = (0, 0);
    let (mut evidence, mut verdicts, mut leaving, mut inside) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..a.runs.max(1) {
        let t = Instant::now();
        worker.run(SQL, None).map_err(bench_err("plain query"))?;
        plain.push(t.elapsed().as_secs_f64());
        let t = Instant::now();
        let part = check(&mut checker, &policy, &[])?;
        alone.push(t.elapsed().as_secs_f64());
        evidence.push(part.evidence_s);
        verdicts.push(part.verdict_s);
        leaving.push(part.sets_s);
        inside.push(part.compare_s);
        // The whole check: the memory read back, then every comparison.
        let t = Instant::now();
        let released = memory.relevant(project, &members).map_err(ws_err)?;
        recall.push(t.elapsed().as_secs_f64());
        let checked = check(&mut checker, &policy, &released)?;
        with.push(t.elapsed().as_secs_f64());
        compared.push(checked.compare_s);
        findings = checked.findings;
        remembered = released.len();
    }
    let (plain, alone, with, recall, compared) =
        (median(&mut plain), median(&mut alone), median(&mut with), median(&mut recall), median(&mut compared));
    let (evidence, verdicts, leaving, inside) = (median(&mut evidence), median(&mut verdicts), median(&mut leaving), median(&mut inside));
    let ratio = alone / plain.max(1e-9);
    let ratio_with = with / plain.max(1e-9);
    figures(&[
        Figure {
            what: "出力表のセル数 / cells of the output table",
            value: format!("{cells} (prefecture × age × sex; receipts, points)"),
            target: "≥ 10,000",
            met: Some(cells >= 10_000),
        },
        Figure {
            what: "元の問い合わせ（作業環境）/ the plain query in the workspace",
            value: format!("{:.0} ms", plain * 1000.0),
            target: "",
            met: None,
        },
        Figure {
            what: "自動検査（根拠の問い合わせ・判定・抑制・出力内の差分）/ the check: evidence query, verdicts, suppression, differencing inside the output",
            value: format!("{:.0} ms ({ratio:.2} ×)", alone * 1000.0),
            target: "≤ 2 ×",
            met: Some(ratio <= MAX_RATIO),
        },
        Figure {
            what: "  内訳：根拠の問い合わせ（検査役）/ of which: the evidence query (the checker)",
            value: format!("{:.0} ms", evidence * 1000.0),
            target: "",
            met: None,
        },
        Figure {
            what: "  内訳：判定・抑制・二次抑制 / of which: verdicts, suppression",
            value: format!("{:.0} ms", verdicts * 1000.0),
            target: "",
            met: None,
        },
        Figure {
            what: "  内訳：持ち出す集合 / of which: the sets that would leave",
            value: format!("{:.0} ms", leaving * 1000.0),
            target: "",
            met: None,
        },
        Figure {
            what: "  内訳：出力内の差分比較 / of which: differencing inside the output",
            value: format!("{:.0} ms", inside * 1000.0),
            target: "",
            met: None,
        },
        Figure {
            what: "過去の持ち出しの読み出し（復号）/ earlier releases read back (decrypted)",
            value: format!("{:.0} ms ({} releases, {remembered} sets)", recall * 1000.0, a.releases),
            target: "",
            met: None,
        },
        Figure {
            what: "過去の持ち出しとの差分比較 / differencing against the earlier releases",
            value: format!("{:.0} ms ({findings} findings)", compared * 1000.0),
            target: "",
            met: None,
        },
        Figure {
            what: "自動検査の全体（過去の持ち出しとの比較を含む）/ the whole check, the earlier releases included",
            value: format!("{:.0} ms ({ratio_with:.2} ×)", with * 1000.0),
            target: "≤ 2 ×",
            met: Some(ratio_with <= MAX_RATIO),
        },
    ])
}
