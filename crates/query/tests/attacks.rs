//! The query engine and the store attacked as a researcher with a grant, or anyone with write
//! access to a home's files, would (issue 14, findings 15 and 16): each test performs one attack
//! and asserts that it gets nothing (HIC-S11, HIC-S13, HX-12).

use kura_query::{EngineSpec, Grant, QueryEngine, QueryError};
use kura_store::{Home, WriteOptions};
use kura_synth::SynthConfig;
use kura_synth_dataset::write_synthetic;

fn fresh_home(persons: u64, seed: u64) -> (tempfile::TempDir, Home) {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::init(&dir.path().join("h")).unwrap();
    let opts = WriteOptions { threads: 2, ..WriteOptions::from_home(&home, "ndb") };
    let cfg = SynthConfig { chunk_persons: 500, ..SynthConfig::new(persons, seed) };
    write_synthetic(&home, cfg, &opts, &|_| {}).unwrap();
    (dir, home)
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

fn engine(home: &Home, grant: &[&str]) -> Result<QueryEngine, QueryError> {
    let entry = home.catalog()?.datasets["ndb"].clone();
    let grant = if grant.is_empty() { None } else { Some(Grant::parse(&entry, grant)?) };
    QueryEngine::new(EngineSpec::from_home(home, "ndb", grant)?)
}

fn scalar(e: &QueryEngine, sql: &str) -> Result<String, QueryError> {
    let out = rt().block_on(e.run(sql))?;
    let b = &out.last().unwrap().batches[0];
    Ok(datafusion::arrow::util::display::array_value_to_string(b.column(0), 0).unwrap())
}

/// Finding 15: deleting a data file and editing `catalog.json` to match (no keys needed) must
/// not silently halve the answer, and `--verify` must not call it OK.
#[test]
fn an_edited_catalogue_is_refused() {
    let (_d, home) = fresh_home(1500, 5);
    let entry = home.catalog().unwrap().datasets["ndb"].clone();
    let full: u64 = scalar(&engine(&home, &[]).unwrap(), "SELECT count(*) FROM re").unwrap().parse().unwrap();
    let re = entry.table("re").unwrap();
    assert!(re.files.len() >= 2);
    // The attacker removes the second file and its line in the catalogue, as plain JSON.
    std::fs::remove_file(home.data_dir().join(&re.files[1].path)).unwrap();
    let text = std::fs::read_to_string(home.catalog_path()).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let tables = v["datasets"]["ndb"]["tables"].as_array_mut().unwrap();
    let t = tables.iter_mut().find(|t| t["name"] == "re").unwrap();
    let removed = t["files"].as_array_mut().unwrap().remove(1);
    let rows = t["rows"].as_u64().unwrap() - removed["rows"].as_u64().unwrap();
    t["rows"] = rows.into();
    std::fs::write(home.catalog_path(), serde_json::to_string_pretty(&v).unwrap()).unwrap();

    match engine(&home, &[]).and_then(|e| scalar(&e, "SELECT count(*) FROM re")) {
        Ok(n) => panic!("an edited catalogue was believed: {n} of {full} receipts"),
        Err(e) => assert!(e.to_string().contains("catalog"), "the error should name the catalogue: {e}"),
    }
    // `kura catalog --verify`: the catalogue itself fails, or the check finds what is missing.
    match home.catalog() {
        Err(e) => assert!(e.to_string().contains("catalog"), "{e}"),
        Ok(c) => assert!(!kura_store::verify::verify_dataset(&home, &c.datasets["ndb"]).is_empty(), "--verify passed an edited catalogue"),
    }
}

/// Finding 15: what the catalogue says about content is keyed, so it confirms nothing to
/// someone who guesses the content (two homes with the same code masters).
#[test]
fn the_catalogue_holds_no_plain_content_hash() {
    let (_a, one) = fresh_home(300, 1);
    let (_b, two) = fresh_home(300, 1);
    let digest = |h: &Home| h.catalog().unwrap().datasets["ndb"].table("m_prefecture").unwrap().content_mac.clone();
    assert_ne!(digest(&one), digest(&two), "the same public table has the same content digest in two homes: an unkeyed hash");
}

/// Finding 16: a temporary view named like a qualified table does not replace a granted table.
#[test]
fn a_view_cannot_shadow_a_table_through_a_quoted_name() {
    let (_d, home) = fresh_home(300, 5);
    let rows = home.catalog().unwrap().datasets["ndb"].table("re").unwrap().rows;
    let e = engine(&home, &["re.age", "re.sex"]).unwrap();
    for name in ["\"ndb.re\"", "\"kura.ndb.re\"", "\"RE\"", "\"re \""] {
        let _ = rt().block_on(e.run(&format!("CREATE TEMPORARY VIEW {name} AS SELECT 1 AS age")));
        let n: u64 = scalar(&e, "SELECT count(*) FROM re").unwrap().parse().unwrap();
        assert_eq!(n, rows, "after CREATE TEMPORARY VIEW {name}, re has {n} rows");
    }
}

/// Finding 16: the engine's settings do not reveal where the home is.
#[test]
fn settings_do_not_reveal_the_home() {
    let (_d, home) = fresh_home(300, 5);
    let e = engine(&home, &[]).unwrap();
    let root = home.root().display().to_string();
    for sql in ["SELECT * FROM information_schema.df_settings", "SHOW ALL"] {
        if let Ok(out) = rt().block_on(e.run(sql)) {
            let text = datafusion::arrow::util::pretty::pretty_format_batches(&out[0].batches).unwrap().to_string();
            assert!(!text.contains(&root), "{sql} shows the home's path");
        }
    }
}

/// Finding 16: after a dataset is rewritten (crypto-shredding), a copy of the old keyring is of
/// no use even with the current master key.
#[test]
fn a_copy_of_the_old_keyring_does_not_survive_shredding() {
    let (_d, home) = fresh_home(300, 5);
    let old = home.catalog().unwrap().datasets["ndb"].clone();
    let old_keyring = std::fs::read(home.keyring_path()).unwrap();
    let opts = WriteOptions { threads: 1, ..WriteOptions::from_home(&home, "ndb") };
    write_synthetic(&home, SynthConfig::new(300, 6), &opts, &|_| {}).unwrap();
    let copy = home.root().join("keyring-copy.json");
    std::fs::write(&copy, old_keyring).unwrap();
    let ring = kura_crypto::Keyring::load(&copy).unwrap();
    let id = kura_crypto::KeyId::new(old.table("re").unwrap().column("id5").unwrap().key_id.clone()).unwrap();
    assert!(ring.unwrap(&home.master_key().unwrap(), &id).is_err(), "an old generation's key opens with the current master key");
}

/// Finding 16: the result cap counts what a result holds, not the buffers its rows share with
/// batches they were cut from (a top-k keeps every batch it took a row from: counted that way
/// a result of a few MiB weighed hundreds, and was refused).
#[test]
fn the_result_cap_counts_the_result() {
    let (_d, home) = fresh_home(10_000, 5);
    let sql = "SELECT id1 FROM re ORDER BY id1 LIMIT 20000";
    // What the result holds: 20,000 strings, each a 16-byte view and its bytes.
    let plain = engine(&home, &[]).unwrap();
    let out = rt().block_on(plain.run(sql)).unwrap();
    let held: usize = out[0]
        .batches
        .iter()
        .flat_map(|b| {
            let col = b.column(0).clone();
            (0..col.len()).map(move |i| 16 + datafusion::arrow::util::display::array_value_to_string(&col, i).unwrap().len())
        })
        .sum();
    assert_eq!(out[0].rows(), 20_000);
    let mut spec = EngineSpec::from_home(&home, "ndb", None).unwrap();
    spec.limits.max_result_bytes = 2 * held + (64 << 10);
    let e = QueryEngine::new(spec).unwrap();
    let out = rt()
        .block_on(e.run(sql))
        .unwrap_or_else(|err| panic!("a result of {} KiB under a cap of {} KiB: {err}", held >> 10, (2 * held) >> 10));
    assert_eq!(out[0].rows(), 20_000);
}
