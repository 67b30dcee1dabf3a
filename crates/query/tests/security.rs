//! SQL over encrypted datasets: grants, column keys, refused statements, tampering, limits.

use kura_query::{EngineSpec, Grant, Limits, QueryEngine, QueryError, StatementKind};
use kura_store::{GrantedKeys, Home, WriteOptions};
use kura_synth::SynthConfig;
use kura_synth_dataset::write_synthetic;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

/// A home with a small dataset written by two threads (two files per fact table).
fn fresh_home(persons: u64) -> (tempfile::TempDir, Home) {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::init(&dir.path().join("h")).unwrap();
    let opts = WriteOptions { threads: 2, ..WriteOptions::from_home(&home, "ndb") };
    let cfg = SynthConfig { chunk_persons: 500, ..SynthConfig::new(persons, 5) };
    write_synthetic(&home, cfg, &opts, &|_| {}).unwrap();
    (dir, home)
}

/// One shared read-only home for tests that do not modify it.
fn shared() -> &'static Home {
    static HOME: OnceLock<(tempfile::TempDir, Home)> = OnceLock::new();
    &HOME.get_or_init(|| fresh_home(3000)).1
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

fn engine(home: &Home, grant: &[&str]) -> QueryEngine {
    let entry = home.catalog().unwrap().datasets["ndb"].clone();
    let grant = if grant.is_empty() { None } else { Some(Grant::parse(&entry, grant).unwrap()) };
    QueryEngine::new(EngineSpec::from_home(home, "ndb", grant).unwrap()).unwrap()
}

fn scalar(e: &QueryEngine, sql: &str) -> Result<String, QueryError> {
    let out = rt().block_on(e.run(sql))?;
    let o = out.last().unwrap();
    let b = &o.batches[0];
    Ok(datafusion::arrow::util::display::array_value_to_string(b.column(0), 0).unwrap())
}

#[test]
fn owner_sees_everything_and_counts_match_the_catalogue() {
    let home = shared();
    let entry = home.catalog().unwrap().datasets["ndb"].clone();
    let e = engine(home, &[]);
    for t in ["re", "sy", "iy", "checkup_item", "care_claim", "m_population"] {
        let n: u64 = scalar(&e, &format!("SELECT count(*) FROM {t}")).unwrap().parse().unwrap();
        assert_eq!(n, entry.table(t).unwrap().rows, "{t}");
    }
    let pop: u64 = scalar(&e, "SELECT sum(persons) FROM m_population").unwrap().parse().unwrap();
    assert_eq!(pop, 3000);
    // Ids are dense across the chunks written in parallel: 1..=n without gaps or repeats.
    for (t, id) in [("re", "receipt_id"), ("checkup", "checkup_id"), ("care_cert", "cert_id")] {
        let n = entry.table(t).unwrap().rows;
        let check = format!(
            "SELECT CAST(min({id}) AS VARCHAR) || '/' || CAST(max({id}) AS VARCHAR) || '/' || CAST(count(DISTINCT {id}) AS VARCHAR) FROM {t}"
        );
        assert_eq!(scalar(&e, &check).unwrap(), format!("1/{n}/{n}"), "{t}");
    }
    let orphans = scalar(&e, "SELECT count(*) FROM sy WHERE receipt_id NOT IN (SELECT receipt_id FROM re)").unwrap();
    assert_eq!(orphans, "0");
}

#[test]
fn only_granted_columns_and_tables_exist() {
    let home = shared();
    let e = engine(home, &["re.age", "re.sex", "m_prefecture"]);
    assert!(scalar(&e, "SELECT count(*) FROM re WHERE age >= 65 AND sex = 2").unwrap().parse::<u64>().unwrap() > 0);
    match rt().block_on(e.run("SELECT id5 FROM re")) {
        Err(QueryError::NotGranted { kind_en: "column", name, .. }) => assert_eq!(name, "id5"),
        other => panic!("{other:?}"),
    }
    match rt().block_on(e.run("SELECT count(*) FROM sy")) {
        Err(QueryError::NotGranted { kind_en: "table", name, .. }) => assert_eq!(name, "sy"),
        other => panic!("{other:?}"),
    }
    // Told apart by what the statement names, not by the planner's wording: a table the
    // dataset has (in a join, after a granted one), one it does not have, a CTE and a table
    // function that are not tables.
    match rt().block_on(e.run("SELECT count(*) FROM re JOIN si ON re.age = si.age")) {
        Err(QueryError::NotGranted { kind_en: "table", name, .. }) => assert_eq!(name, "si"),
        other => panic!("{other:?}"),
    }
    match rt().block_on(e.run("SELECT * FROM no_such_table")) {
        Err(QueryError::Engine(m)) => assert!(m.contains("no table 'no_such_table'"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(scalar(&e, "WITH sy AS (SELECT 1 AS n) SELECT count(*) FROM sy").unwrap(), "1");
    assert_eq!(scalar(&e, "SELECT count(*) FROM range(5)").unwrap(), "5");
    // A planning error beside a CTE or a table function is not taken for a missing table.
    for sql in ["WITH sy AS (SELECT 1 AS n) SELECT m FROM sy", "SELECT nosuch FROM range(5)"] {
        match rt().block_on(e.run(sql)) {
            Err(QueryError::Engine(m)) => assert!(!m.contains("no table") && !m.contains("not granted"), "{sql}: {m}"),
            other => panic!("{sql}: {other:?}"),
        }
    }
    // Another schema's table of the same name is not the dataset's: no table, named in full.
    match rt().block_on(e.run("SELECT * FROM information_schema.sy")) {
        Err(QueryError::Engine(m)) => assert!(m.contains("no table 'information_schema.sy'"), "{m}"),
        other => panic!("{other:?}"),
    }
    // SELECT * expands to the granted columns only.
    let out = rt().block_on(e.run("SELECT * FROM re LIMIT 1")).unwrap();
    let names: Vec<&str> = out[0].schema.fields().iter().map(|f| f.name().as_str()).collect();
    assert_eq!(names, ["sex", "age"]);
    // A name that exists nowhere is reported as such.
    assert!(matches!(rt().block_on(e.run("SELECT * FROM nosuch")), Err(QueryError::Engine(m)) if m.contains("nosuch")));
    // The grant parser refuses unknown names.
    let entry = home.catalog().unwrap().datasets["ndb"].clone();
    assert!(matches!(Grant::parse(&entry, &["re.nosuch"]), Err(QueryError::BadGrant(_))));
    assert!(matches!(Grant::parse(&entry, &["nosuch"]), Err(QueryError::BadGrant(_))));
    assert!(Grant::parse(&entry, &["ndb.re.id5"]).is_ok());
}

#[test]
fn a_column_without_its_key_cannot_be_read_even_if_the_engine_asks() {
    // Simulates an engine bug: the table schema exposes id5, but only age's key is loaded.
    let home = shared();
    let entry = home.catalog().unwrap().datasets["ndb"].clone();
    let re = entry.table("re").unwrap();
    let age_key = re.column("age").unwrap().key_id.clone();
    let keys =
        GrantedKeys::unwrap(&home.master_key().unwrap(), &home.keyring().unwrap(), [re.footer_key_id.as_str(), age_key.as_str()]).unwrap();
    assert_eq!(keys.len(), 2);
    let spec = EngineSpec {
        dataset: entry.clone(),
        grant: Grant::parse(&entry, &["re"]).unwrap(),
        keys,
        data_root: home.data_dir(),
        limits: Limits::from_home(home).unwrap(),
        workspace: None,
    };
    let e = QueryEngine::new(spec).unwrap();
    assert!(scalar(&e, "SELECT max(age) FROM re").unwrap().parse::<u32>().unwrap() > 80);
    match rt().block_on(e.run("SELECT count(DISTINCT id5) FROM re")) {
        Err(QueryError::Integrity(m)) => assert!(m.contains("id5") || m.contains("not granted") || m.contains("decrypt"), "{m}"),
        other => panic!("expected a decryption failure, got {other:?}"),
    }
}

#[test]
fn every_refused_statement_class_is_refused_by_the_engine() {
    let home = shared();
    let e = engine(home, &[]);
    let outside = home.root().join("escape.parquet");
    for sql in [
        format!("COPY re TO '{}'", outside.display()),
        format!("COPY (SELECT 1) TO '{}' STORED AS CSV", outside.display()),
        format!("CREATE EXTERNAL TABLE x STORED AS PARQUET LOCATION '{}'", home.data_dir().display()),
        "CREATE TABLE t AS SELECT 1".into(),
        "CREATE VIEW v AS SELECT 1".into(),
        "INSERT INTO re SELECT * FROM re".into(),
        "DELETE FROM re".into(),
        "UPDATE re SET age = 0".into(),
        "DROP TABLE re".into(),
        "SET datafusion.execution.target_partitions = 64".into(),
        "RESET datafusion.execution.batch_size".into(),
        "SELECT * FROM read_parquet('/etc/passwd')".into(),
        "SELECT * FROM '/etc/passwd'".into(),
        "EXPLAIN COPY re TO '/tmp/x'".into(),
        "PREPARE p AS SELECT 1".into(),
        "BEGIN".into(),
        "CREATE TEMPORARY VIEW re AS SELECT 1".into(),
    ] {
        match rt().block_on(e.run(&sql)) {
            Err(QueryError::Refused { .. }) => {}
            other => panic!("{sql}: expected a refusal, got {other:?}"),
        }
    }
    assert!(!outside.exists());
    // A refusal in a script stops it before later statements run.
    assert!(matches!(rt().block_on(e.run("SELECT 1; DROP TABLE re; SELECT 2")), Err(QueryError::Refused { .. })));
    assert_eq!(scalar(&e, "SELECT count(*) FROM m_prefecture").unwrap(), "47");
}

#[test]
fn temporary_views_explain_and_show() {
    let home = shared();
    let e = engine(home, &["re.age", "re.sex"]);
    let out = rt()
        .block_on(
            e.run("CREATE TEMPORARY VIEW old AS SELECT sex FROM re WHERE age >= 75; SELECT count(*) FROM old; EXPLAIN SELECT * FROM old"),
        )
        .unwrap();
    assert_eq!(out[0].kind, StatementKind::View("old".into()));
    assert!(out[1].rows() == 1);
    assert_eq!(out[2].kind, StatementKind::Explain);
    // Views see only what the grant allows.
    assert!(matches!(rt().block_on(e.run("CREATE TEMPORARY VIEW leak AS SELECT id5 FROM re")), Err(QueryError::NotGranted { .. })));
    let tables = rt().block_on(e.run("SHOW TABLES")).unwrap();
    let text = format!("{:?}", tables[0].batches);
    assert!(text.contains("\"re\"") || text.contains("re"));
    assert!(!text.contains("\"sy\""));
}

fn tamper_home() -> (tempfile::TempDir, Home, kura_store::DatasetEntry) {
    let (dir, home) = fresh_home(1500);
    let entry = home.catalog().unwrap().datasets["ndb"].clone();
    (dir, home, entry)
}

fn expect_integrity(home: &Home, sql: &str, needle: &str) {
    let e = engine(home, &[]);
    match rt().block_on(e.run(sql)) {
        Err(QueryError::Integrity(m)) => assert!(m.contains(needle), "message {m:?} should mention {needle:?}"),
        other => panic!("expected an integrity error, got {other:?}"),
    }
}

fn re_file(home: &Home, entry: &kura_store::DatasetEntry, i: usize) -> (String, PathBuf) {
    let f = &entry.table("re").unwrap().files[i];
    (f.path.clone(), home.data_dir().join(&f.path))
}

/// Where things are in one encrypted file, read from its own (decrypted) footer: the byte range
/// of each column chunk and of the encrypted footer. Positions come from the file's layout, never
/// from a fraction of its length (file sizes change with fresh keys and pseudonyms).
struct Layout {
    chunks: Vec<(String, u64, u64)>,
    footer: (u64, u64),
}

impl Layout {
    fn read(home: &Home, entry: &kura_store::DatasetEntry, rel: &str) -> Self {
        use datafusion::parquet::encryption::decrypt::FileDecryptionProperties;
        use datafusion::parquet::file::metadata::ParquetMetaDataReader;
        let table = entry.tables.iter().find(|t| t.files.iter().any(|f| f.path == rel)).unwrap();
        let ids = std::iter::once(table.footer_key_id.as_str()).chain(table.columns.iter().map(|c| c.key_id.as_str()));
        let keys = GrantedKeys::unwrap(&home.master_key().unwrap(), &home.keyring().unwrap(), ids).unwrap();
        let props = FileDecryptionProperties::with_key_retriever(std::sync::Arc::new(keys))
            .with_aad_prefix(kura_store::aad_prefix(rel))
            .build()
            .unwrap();
        let path = home.data_dir().join(rel);
        let file = std::fs::File::open(&path).unwrap();
        let meta = ParquetMetaDataReader::new().with_decryption_properties(Some(props)).parse_and_finish(&file).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let mut chunks = Vec::new();
        for rg in meta.row_groups() {
            for c in rg.columns() {
                let (start, len) = c.byte_range();
                chunks.push((c.column_path().string(), start, len));
            }
        }
        // An encrypted footer ends the file: [FileMetaData module][length: u32 LE]["PARE"].
        let n = bytes.len() as u64;
        let footer_len = u64::from(u32::from_le_bytes(bytes[bytes.len() - 8..bytes.len() - 4].try_into().unwrap()));
        assert_eq!(&bytes[bytes.len() - 4..], b"PARE");
        Self { chunks, footer: (n - 8 - footer_len, footer_len) }
    }

    /// The last byte of the column's first chunk: the last byte of the GCM tag of its last page,
    /// so a flip there always fails authentication when the chunk is read.
    fn last_byte_of(&self, column: &str) -> u64 {
        let (_, start, len) = self.chunks.iter().find(|(c, _, _)| c == column).unwrap_or_else(|| panic!("no chunk of {column}"));
        start + len - 1
    }
}

fn flip(path: &std::path::Path, at: u64) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[usize::try_from(at).unwrap()] ^= 0x01;
    std::fs::write(path, &bytes).unwrap();
}

/// The promise about damaged files (README, "How the data is protected"): an answer is never
/// computed from damaged bytes — every page a query reads is authenticated (AES-GCM) — and damage
/// in bytes a query does not read is found by `kura catalog --verify` (size and SHA-256 of every
/// file), not by the query.
const TAMPER_QUERY: &str = "SELECT sum(total_points), count(DISTINCT id1), max(age) FROM re";

/// The tamper query's one row, every column as text.
fn answer(home: &Home) -> Result<Vec<String>, QueryError> {
    let out = rt().block_on(engine(home, &[]).run(TAMPER_QUERY))?;
    let b = &out[0].batches[0];
    Ok((0..b.num_columns()).map(|i| datafusion::arrow::util::display::array_value_to_string(b.column(i), 0).unwrap()).collect())
}

#[test]
fn a_flipped_byte_in_a_column_the_query_reads_is_detected_not_answered() {
    let (_d, home, entry) = tamper_home();
    let (rel, path) = re_file(&home, &entry, 0);
    let layout = Layout::read(&home, &entry, &rel);
    for column in ["total_points", "id1", "age"] {
        let original = std::fs::read(&path).unwrap();
        flip(&path, layout.last_byte_of(column));
        match answer(&home) {
            // The message names the damaged file and how it was found.
            Err(QueryError::Integrity(m)) => assert!(m.contains(&rel) && m.contains("SHA-256"), "{column}: {m}"),
            other => panic!("{column}: expected an integrity error, got {other:?}"),
        }
        std::fs::write(&path, original).unwrap();
    }
}

#[test]
fn a_flipped_byte_in_a_column_the_query_does_not_read_changes_nothing_and_verify_names_it() {
    let (_d, home, entry) = tamper_home();
    let undamaged = answer(&home).unwrap();
    let (rel, path) = re_file(&home, &entry, 0);
    let layout = Layout::read(&home, &entry, &rel);
    flip(&path, layout.last_byte_of("institution_code"));
    // The query never reads that chunk: its answer is exactly the undamaged one.
    assert_eq!(answer(&home).unwrap(), undamaged);
    // The full verification names the file.
    let findings = kura_store::verify::verify_dataset(&home, &entry);
    assert_eq!(findings.len(), 1, "{findings:?}");
    assert_eq!(findings[0].file, rel);
    assert!(findings[0].problem.contains("SHA-256"), "{}", findings[0].problem);
}

#[test]
fn a_flipped_byte_in_the_footer_fails_any_query_of_the_table() {
    let (_d, home, entry) = tamper_home();
    let (rel, path) = re_file(&home, &entry, 0);
    let layout = Layout::read(&home, &entry, &rel);
    // The footer region is a short plaintext FileCryptoMetaData (algorithm, key id) and then
    // the encrypted FileMetaData module: the middle and the last byte (the module's GCM tag)
    // are in the module.
    let (start, len) = layout.footer;
    for at in [start + len / 2, start + len - 2, start + len - 1] {
        let original = std::fs::read(&path).unwrap();
        flip(&path, at);
        for sql in ["SELECT count(*) FROM re", "SELECT max(sex) FROM re", TAMPER_QUERY] {
            expect_integrity(&home, sql, &rel);
        }
        std::fs::write(&path, original).unwrap();
    }
}

#[test]
fn a_truncated_file_is_named() {
    let (_d, home, entry) = tamper_home();
    let (rel, path) = re_file(&home, &entry, 0);
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() - 100]).unwrap();
    expect_integrity(&home, "SELECT count(*) FROM re", &rel);
}

#[test]
fn a_plaintext_replacement_is_refused() {
    // Even an insider holding the keys, who also seals a catalogue with the new size, cannot
    // slip in a plaintext file.
    let (_d, home, entry) = tamper_home();
    let (rel, path) = re_file(&home, &entry, 0);
    let plain = b"PAR1 not really parquet PAR1".to_vec();
    std::fs::write(&path, &plain).unwrap();
    let mut cat = home.catalog().unwrap();
    let ds = cat.datasets.get_mut("ndb").unwrap();
    ds.tables.iter_mut().find(|t| t.name == "re").unwrap().files[0].bytes = plain.len() as u64;
    home.save_catalog(&mut cat).unwrap();
    expect_integrity(&home, "SELECT count(*) FROM re", &rel);
}

#[test]
fn swapped_files_fail_authentication() {
    // Two files of the same table, same keys: the AAD binds each to its path.
    let (_d, home, entry) = tamper_home();
    let (_, a) = re_file(&home, &entry, 0);
    let (_, b) = re_file(&home, &entry, 1);
    let (ba, bb) = (std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    std::fs::write(&a, &bb).unwrap();
    std::fs::write(&b, &ba).unwrap();
    let mut cat = home.catalog().unwrap();
    let files = &mut cat.datasets.get_mut("ndb").unwrap().tables.iter_mut().find(|t| t.name == "re").unwrap().files;
    let (sa, sb) = (files[0].bytes, files[1].bytes);
    files[0].bytes = sb;
    files[1].bytes = sa;
    home.save_catalog(&mut cat).unwrap();
    let e = engine(&home, &[]);
    let r = rt().block_on(e.run("SELECT count(*), sum(age) FROM re"));
    assert!(matches!(r, Err(QueryError::Integrity(_))), "{r:?}");
}

#[test]
fn a_wrong_master_key_fails_clearly() {
    let (_d, home, _) = tamper_home();
    let other = tempfile::tempdir().unwrap();
    let other_home = Home::init(&other.path().join("o")).unwrap();
    std::fs::copy(other_home.root().join("keys/master.key"), home.root().join("keys/master.key")).unwrap();
    match EngineSpec::from_home(&home, "ndb", None) {
        Err(QueryError::Store(kura_store::StoreError::Crypto(kura_crypto::CryptoError::Unwrap(id)))) => {
            assert!(id.starts_with("ds/ndb/") || id.starts_with("platform/"), "{id}")
        }
        Err(other) => panic!("{other:?}"),
        Ok(_) => panic!("a wrong master key unwrapped the keys"),
    }
}

fn limited(home: &Home, f: impl FnOnce(&mut Limits)) -> QueryEngine {
    let mut spec = EngineSpec::from_home(home, "ndb", None).unwrap();
    f(&mut spec.limits);
    QueryEngine::new(spec).unwrap()
}

#[test]
fn memory_limit_spills_or_fails_cleanly() {
    let home = shared();
    // 2 MiB: a large hash join cannot fit and must fail with a memory error, not crash.
    let e = limited(home, |l| l.memory_bytes = 2 << 20);
    match rt().block_on(e.run("SELECT count(*) FROM re a JOIN re b ON a.id2 = b.id2 AND a.receipt_id <> b.receipt_id")) {
        Err(QueryError::Memory(m)) => assert!(!m.is_empty()),
        other => panic!("expected the memory limit, got {other:?}"),
    }
    // A sort under the same limit spills and succeeds. Its spill files are encrypted and have
    // no name in the home's tmp directory (issue 14, finding 14): nothing there to read, and
    // nothing left behind by a killed process.
    let e = limited(home, |l| {
        l.memory_bytes = 1 << 20;
        l.target_partitions = 1;
        l.settings.insert("datafusion.execution.sort_spill_reservation_bytes".into(), (256 << 10).to_string());
    });
    let sort = "SELECT receipt_id, disease_code FROM sy ORDER BY disease_code, start_date, receipt_id";
    let rows = home.catalog().unwrap().datasets["ndb"].table("sy").unwrap().rows as usize;
    let out = rt().block_on(e.run(sort)).unwrap();
    assert_eq!(out[0].rows(), rows);
    let explain = rt().block_on(e.run(&format!("EXPLAIN ANALYZE {sort}"))).unwrap();
    let text = datafusion::arrow::util::pretty::pretty_format_batches(&explain[0].batches).unwrap().to_string();
    let spills: u64 = text
        .split("spill_count=")
        .skip(1)
        .filter_map(|rest| rest.split(|c: char| !c.is_ascii_digit()).next().and_then(|n| n.parse::<u64>().ok()))
        .sum();
    assert!(spills > 0, "the sort spilled: {text}");
    let left: Vec<_> = std::fs::read_dir(home.tmp_dir()).unwrap().flatten().map(|e| e.file_name()).collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn time_limit_stops_a_long_query() {
    let home = shared();
    let e = limited(home, |l| l.timeout = Duration::from_millis(300));
    match rt().block_on(e.run("SELECT count(*) FROM generate_series(1, 5000000000) a")) {
        Err(QueryError::Timeout(_)) => {}
        other => panic!("expected a timeout, got {other:?}"),
    }
}

#[test]
fn results_are_capped() {
    let home = shared();
    let e = limited(home, |l| l.max_result_rows = 10);
    assert!(matches!(rt().block_on(e.run("SELECT receipt_id FROM re")), Err(QueryError::ResultTooLarge(_))));
    assert!(rt().block_on(e.run("SELECT receipt_id FROM re LIMIT 10")).is_ok());
}

/// A worker taken over by the SQL it runs cannot buy itself time: writing the "statement
/// starts" mark again and again does not move the deadline of all its statements, and its
/// scratch directory is gone afterwards.
/// A worker that closes its output but does not exit is stopped and reported as broken — not
/// as having run out of memory (the kill is Kura's own, not the kernel's).
#[test]
fn a_worker_that_stops_answering_is_reported_as_broken() {
    let home = shared();
    let mut spec = EngineSpec::from_home(home, "ndb", None).unwrap();
    let spill = tempfile::tempdir().unwrap();
    spec.limits.spill_dir = spill.path().to_path_buf();
    let cmd =
        kura_query::worker::WorkerCommand { program: PathBuf::from("/bin/sh"), args: vec!["-c".into(), "exec cat >/dev/null".into()] };
    let err = kura_query::worker::run(&cmd, spec, "SELECT 1").unwrap_err();
    assert!(matches!(&err, QueryError::Engine(m) if m.contains("closed its output without exiting")), "{err}");
}

#[test]
fn a_hostile_worker_cannot_extend_its_deadline() {
    let home = shared();
    let mut spec = EngineSpec::from_home(home, "ndb", None).unwrap();
    spec.limits.timeout = Duration::from_secs(1);
    // Its own spill root, so that other tests on the shared home never see its scratch
    // directory (one of them checks that the home's tmp directory stays empty).
    let spill = tempfile::tempdir().unwrap();
    spec.limits.spill_dir = spill.path().to_path_buf();
    let spill_root = spec.limits.spill_dir.clone();
    // Stands in for a compromised worker: it never answers and marks new statements without
    // pause.
    let cmd = kura_query::worker::WorkerCommand {
        program: PathBuf::from("/bin/sh"),
        // (It keeps its standard output open on descriptor 3 and never writes to it: only the
        // deadline stops it.)
        args: vec!["-c".into(), "exec yes 'kura-worker: statement 1' 3>&1 1>&2".into()],
    };
    let started = std::time::Instant::now();
    let err = kura_query::worker::run(&cmd, spec, "SELECT 1").unwrap_err();
    assert!(matches!(err, QueryError::Timeout(1)), "{err}");
    // It never says it is ready: the startup deadline (a statement's time plus the grace, at
    // least five seconds), not the worker's say-so.
    assert!(started.elapsed() < Duration::from_secs(15), "{:?}", started.elapsed());
    let left: Vec<_> = std::fs::read_dir(&spill_root)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("worker-"))
        .collect();
    assert!(left.is_empty(), "the worker's scratch directory was removed: {left:?}");
}
