//! Round trip (issue 18, "Tests that must exist"): the synthetic population written directly
//! as a dataset, and the same population written as UKE files then taken in, give the same
//! rows in every receipt table — the same hashed IDs included, computed once by the generator
//! from its clear identities and once by intake from the files' text.

use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use kura_intake::{FileInfo, Id5Answers, load, read_uke};
use kura_query::{EngineSpec, QueryEngine};
use kura_store::{Home, WriteOptions};
use kura_synth::{Generator, SynthConfig};
use std::io::BufReader;
use std::path::Path;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn rows(home: &Home, dataset: &str, sql: &str) -> Res<Vec<String>> {
    let mut spec = EngineSpec::from_home(home, dataset, None)?;
    spec.limits.max_result_rows = usize::MAX;
    spec.limits.max_result_bytes = usize::MAX;
    let engine = QueryEngine::new(spec)?;
    let rt = tokio::runtime::Runtime::new()?;
    let out = rt.block_on(engine.run(sql))?;
    let mut lines = Vec::new();
    for o in out {
        for b in &o.batches {
            let opts = FormatOptions::default().with_null("∅");
            let fmts = b.columns().iter().map(|c| ArrayFormatter::try_new(c.as_ref(), &opts)).collect::<Result<Vec<_>, _>>()?;
            for i in 0..b.num_rows() {
                lines.push(fmts.iter().map(|f| f.value(i).to_string()).collect::<Vec<_>>().join("|"));
            }
        }
    }
    lines.sort();
    Ok(lines)
}

/// Each table's rows with the receipt id replaced by what identifies the receipt (sorted by `rows`).
const CANONICAL: [(&str, &str); 6] = [
    ("re", "SELECT * EXCLUDE (receipt_id) FROM re"),
    (
        "sy",
        "SELECT r.institution_code, r.service_month, r.receipt_kind, r.id2, r.id1, s.* EXCLUDE (receipt_id) FROM sy s JOIN re r USING (receipt_id)",
    ),
    (
        "si",
        "SELECT r.institution_code, r.service_month, r.receipt_kind, r.id2, r.id1, s.* EXCLUDE (receipt_id) FROM si s JOIN re r USING (receipt_id)",
    ),
    (
        "iy",
        "SELECT r.institution_code, r.service_month, r.receipt_kind, r.id2, r.id1, s.* EXCLUDE (receipt_id) FROM iy s JOIN re r USING (receipt_id)",
    ),
    ("dpc", "SELECT r.institution_code, r.service_month, r.id2, r.id1, s.* EXCLUDE (receipt_id) FROM dpc s JOIN re r USING (receipt_id)"),
    (
        "pharmacy",
        "SELECT r.institution_code, r.service_month, r.id2, r.id1, s.* EXCLUDE (receipt_id) FROM pharmacy s JOIN re r USING (receipt_id)",
    ),
];

fn id5_of(uke: &Path) -> Res<Id5Answers> {
    let stem = uke.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
    let p = uke.with_file_name(format!("{stem}.ID5.CSV"));
    Ok(Id5Answers::parse(&p.display().to_string(), &std::fs::read_to_string(&p)?)?)
}

#[test]
fn synth_to_uke_to_intake_gives_the_direct_rows() -> Res<()> {
    let dir = tempfile::tempdir()?;
    let home = Home::init(&dir.path().join("home"))?;
    let cfg = SynthConfig::new(300, 17);
    kura_synth_dataset::write_synthetic(&home, cfg.clone(), &WriteOptions::from_home(&home, "ndb"), &|_| {})?;

    let files = dir.path().join("files");
    let g = Generator::new(cfg, home.platform_pseudonym_key()?)?;
    let export = kura_synth_dataset::uke::write_uke(&g, &files, &|_| {})?;
    let key = home.platform_pseudonym_key()?;
    // Two runs, so that the second carries the first's rows over: every month but the last,
    // then the last month's files (the paths begin with `uke/YYYYMM/`).
    let month = |p: &std::path::PathBuf| p.components().nth(1).map(|c| c.as_os_str().to_owned());
    let last = export.paths.iter().map(month).max().flatten();
    let split = export.paths.iter().position(|p| month(p) == last).unwrap_or(0);
    assert!(split > 0, "the population spans more than one month");
    let (first, rest) = export.paths.split_at(split);
    for batch in [first, rest] {
        let (_, loaded) = load(&home, "intake", |sink| {
            for rel in batch {
                let path = files.join(rel);
                let input = BufReader::new(std::fs::File::open(&path).map_err(|e| kura_store::StoreError::io(&path, e))?);
                let id5 = id5_of(&path).map_err(|e| kura_intake::IntakeError::Dataset(e.to_string()))?;
                let (outcome, staged) = read_uke(&rel.display().to_string(), input, &id5, &key, None);
                assert!(outcome.refused.is_none(), "{:?}", outcome.refused.map(|p| p.to_string()));
                assert!(outcome.rejected.is_empty(), "{:?}", outcome.rejected);
                let bytes = std::fs::read(&path).map_err(|e| kura_store::StoreError::io(&path, e))?;
                let sha256 = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes));
                let name = rel.display().to_string();
                sink.add(&staged, &FileInfo { sha256: &sha256, name: &name, outcome: &outcome })?;
            }
            Ok(())
        })?;
        assert!(loaded.is_some());
    }

    let direct = home.catalog()?.datasets.get("ndb").map(|d| d.table("re").map_or(0, |t| t.rows)).unwrap_or(0);
    let taken = home.catalog()?.datasets.get("intake").map(|d| d.table("re").map_or(0, |t| t.rows)).unwrap_or(0);
    assert_eq!(direct, export.receipts);
    assert_eq!(taken, direct);
    // The key that replaces the receipt id identifies one receipt.
    let keys = rows(
        &home,
        "ndb",
        "SELECT count(*) - count(DISTINCT concat_ws('|', institution_code, service_month, receipt_kind, id2, id1)) FROM re",
    )?;
    assert_eq!(keys, vec!["0".to_string()]);
    for (table, sql) in CANONICAL {
        let a = rows(&home, "ndb", sql)?;
        let b = rows(&home, "intake", sql)?;
        assert!(!a.is_empty() || table == "dpc", "{table}: no rows");
        assert_eq!(a.len(), b.len(), "{table}: row counts differ");
        if let Some((x, y)) = a.iter().zip(&b).find(|(x, y)| x != y) {
            panic!("{table}: first difference\n direct: {x}\n intake: {y}");
        }
    }
    // Receipt ids are dense and unique across both runs.
    let ids = rows(&home, "intake", "SELECT min(receipt_id), max(receipt_id), count(DISTINCT receipt_id) FROM re")?;
    assert_eq!(ids, vec![format!("1|{taken}|{taken}")]);
    Ok(())
}
