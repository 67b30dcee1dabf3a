//! Dataset writing: determinism, generation replacement (crypto-shredding), no clear identities
//! on disk, hashed-ID definitions, catalogue completeness, file verification.

use kura_crypto::{IdKind, KeyId};
use kura_store::verify::verify_dataset;
use kura_store::{Home, WriteOptions};
use kura_synth::{Generator, SynthConfig};
use kura_synth_dataset::write_synthetic;
use std::collections::HashSet;
use std::path::Path;

fn opts(home: &Home, threads: usize) -> WriteOptions {
    WriteOptions { threads, ..WriteOptions::from_home(home, "ndb") }
}

fn all_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() { all_files(&p, out) } else { out.push(p) }
    }
}

#[test]
fn same_seed_same_content_new_generation_shreds_the_old() {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::init(&dir.path().join("h")).unwrap();
    let a = write_synthetic(&home, SynthConfig::new(1500, 42), &opts(&home, 2), &|_| {}).unwrap();
    // Same seed, one writer thread instead of two: same content, different files and keys.
    let b = write_synthetic(&home, SynthConfig::new(1500, 42), &opts(&home, 1), &|_| {}).unwrap();
    assert_ne!(a.generation, b.generation);
    for (ta, tb) in a.tables.iter().zip(&b.tables) {
        assert_eq!(ta.content_mac, tb.content_mac, "table {}", ta.name);
        assert_eq!(ta.rows, tb.rows);
    }
    // The old generation's files and keys are gone (crypto-shredding).
    assert!(!home.data_dir().join("ndb").join(&a.generation).exists());
    let keyring = home.keyring().unwrap();
    assert!(!keyring.contains(&KeyId::new(a.kek_id.clone()).unwrap()));
    assert!(keyring.contains(&KeyId::new(b.kek_id.clone()).unwrap()));
    assert!(!keyring.ids().any(|k| k.as_str().starts_with(&a.kek_id)));
    // Another seed gives other data.
    let c = write_synthetic(&home, SynthConfig::new(1500, 43), &opts(&home, 2), &|_| {}).unwrap();
    assert_ne!(c.table("re").unwrap().content_mac, b.table("re").unwrap().content_mac);
    assert!(verify_dataset(&home, &c).is_empty());
}

#[test]
fn no_clear_name_or_insurance_number_anywhere_under_the_home() {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::init(&dir.path().join("h")).unwrap();
    let n = 400;
    write_synthetic(&home, SynthConfig::new(n, 7), &opts(&home, 2), &|_| {}).unwrap();
    let g = Generator::new(SynthConfig::new(n, 7), home.platform_pseudonym_key().unwrap()).unwrap();
    let mut needles: HashSet<Vec<u8>> = HashSet::new();
    for i in 0..n {
        let c = g.clear_identity(i);
        for s in c.names.iter().chain(&c.kana_names).chain(&c.insurance_numbers) {
            needles.insert(s.as_bytes().to_vec());
        }
        for (_, input) in &c.id_inputs {
            needles.insert(input.as_bytes().to_vec());
        }
    }
    assert!(needles.len() > 1000);
    let mut files = Vec::new();
    all_files(home.root(), &mut files);
    assert!(files.len() > 20);
    let needles: Vec<Vec<u8>> = needles.into_iter().collect();
    let matcher = aho_corasick::AhoCorasick::new(&needles).unwrap();
    let mut scanned = 0usize;
    for f in &files {
        let bytes = std::fs::read(f).unwrap();
        scanned += bytes.len();
        if let Some(m) = matcher.find(&bytes) {
            panic!("{} contains {:?}", f.display(), String::from_utf8_lossy(&needles[m.pattern().as_usize()]));
        }
    }
    // The matcher itself works.
    assert!(matcher.find(needles[0].as_slice()).is_some());
    // The scan itself works: a string that is there is found.
    let cat = std::fs::read(home.catalog_path()).unwrap();
    assert!(cat.windows(4).any(|w| w == b"\"re\""));
    assert!(scanned > 100_000);
}

#[test]
fn hashed_ids_follow_their_definitions() {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::init(&dir.path().join("h")).unwrap();
    let n = 600;
    let entry = write_synthetic(&home, SynthConfig::new(n, 11), &opts(&home, 1), &|_| {}).unwrap();
    let key = home.platform_pseudonym_key().unwrap();
    let g = Generator::new(SynthConfig::new(n, 11), key.clone()).unwrap();
    // Read the hashed IDs back from the encrypted files with the owner's keys.
    let ids = read_ids(&home, &entry);
    let mut matched = [0usize; 4];
    let mut job_changers = 0;
    for i in 0..n {
        let c = g.clear_identity(i);
        let id1s: Vec<String> = c.id_inputs.iter().filter(|(k, _)| *k == IdKind::Id1).map(|(_, s)| key.hash_id(IdKind::Id1, s)).collect();
        for (k, input) in &c.id_inputs {
            let h = key.hash_id(*k, input);
            assert_eq!(h.len(), 64);
            let idx = match k {
                IdKind::Id1 => 0,
                IdKind::Id2 => 1,
                IdKind::Id4 => 2,
                IdKind::Id5 => 3,
            };
            if ids[idx].contains(&h) {
                matched[idx] += 1;
            }
        }
        // ID5 is stable across a change of insurer, which changes ID1.
        if id1s.len() > 1 && id1s.iter().all(|h| ids[0].contains(h)) {
            job_changers += 1;
            let id5 = key.hash_id(IdKind::Id5, &c.id_inputs[0].1);
            let pairs = &ids[4];
            for h in &id1s {
                assert!(pairs.contains(&format!("{h}/{id5}")), "ID1 {h} not linked to the same ID5");
            }
        }
    }
    // Everyone with a receipt appears under IDs computed from the definitions.
    assert!(matched[0] > n as usize / 2, "{matched:?}");
    assert!(matched[1] > n as usize / 2 && matched[2] > n as usize / 2 && matched[3] > n as usize / 2, "{matched:?}");
    assert!(job_changers > 0, "no job change among {n} persons");
    // An unrelated input hashes to something that is not in the data.
    assert!(!ids[0].contains(&key.hash_id(IdKind::Id1, "not a person")));
}

/// Reads id1, id2, id4, id5 of `re` (and the id1/id5 pairs) with DataFusion-free Parquet reading.
fn read_ids(home: &Home, entry: &kura_store::DatasetEntry) -> [HashSet<String>; 5] {
    use datafusion::arrow::array::{Array, AsArray};
    use datafusion::parquet::arrow::arrow_reader::{ArrowReaderOptions, ParquetRecordBatchReaderBuilder};
    use datafusion::parquet::encryption::decrypt::FileDecryptionProperties;
    use kura_store::{GrantedKeys, aad_prefix};
    use std::sync::Arc;
    let re = entry.table("re").unwrap();
    let keys = Arc::new(
        GrantedKeys::unwrap(
            &home.master_key().unwrap(),
            &home.keyring().unwrap(),
            std::iter::once(re.footer_key_id.as_str()).chain(re.columns.iter().map(|c| c.key_id.as_str())),
        )
        .unwrap(),
    );
    let mut out: [HashSet<String>; 5] = Default::default();
    for f in &re.files {
        let props = FileDecryptionProperties::with_key_retriever(keys.clone()).with_aad_prefix(aad_prefix(&f.path)).build().unwrap();
        let file = std::fs::File::open(home.data_dir().join(&f.path)).unwrap();
        let reader =
            ParquetRecordBatchReaderBuilder::try_new_with_options(file, ArrowReaderOptions::new().with_file_decryption_properties(props))
                .unwrap()
                .build()
                .unwrap();
        for batch in reader {
            let batch = batch.unwrap();
            let col = |name: &str| batch.column(batch.schema().index_of(name).unwrap()).as_string::<i32>().clone();
            let (id1, id2, id4, id5) = (col("id1"), col("id2"), col("id4"), col("id5"));
            for r in 0..batch.num_rows() {
                out[0].insert(id1.value(r).to_string());
                out[1].insert(id2.value(r).to_string());
                out[2].insert(id4.value(r).to_string());
                if !id5.is_null(r) {
                    out[3].insert(id5.value(r).to_string());
                    out[4].insert(format!("{}/{}", id1.value(r), id5.value(r)));
                }
            }
        }
    }
    out
}

#[test]
fn catalogue_describes_every_table_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::init(&dir.path().join("h")).unwrap();
    let e = write_synthetic(&home, SynthConfig::new(800, 3), &opts(&home, 2), &|_| {}).unwrap();
    assert_eq!(home.catalog().unwrap().datasets["ndb"], e);
    assert_eq!((e.period_from, e.period_to), (202404, 202503));
    let names: Vec<&str> = e.tables.iter().map(|t| t.name.as_str()).collect();
    for t in [
        "re",
        "sy",
        "si",
        "iy",
        "dpc",
        "pharmacy",
        "checkup",
        "checkup_item",
        "care_cert",
        "care_claim",
        "m_disease",
        "m_drug",
        "m_procedure",
        "m_lab_item",
        "m_population",
    ] {
        assert!(names.contains(&t), "missing table {t}");
    }
    let mut key_ids = HashSet::new();
    for t in &e.tables {
        assert!(t.rows > 0, "{} is empty", t.name);
        assert!(!t.title_ja.is_empty() && !t.title_en.is_empty());
        assert_eq!(t.rows, t.files.iter().map(|f| f.rows).sum::<u64>());
        for c in &t.columns {
            assert!(!c.title_ja.is_empty() && !c.title_en.is_empty());
            assert!(key_ids.insert(c.key_id.clone()), "key {} shared", c.key_id);
        }
    }
    let re = e.table("re").unwrap();
    assert_eq!(re.column("id5").unwrap().sensitivity, kura_store::schema::Sensitivity::Identifier);
    assert_eq!(re.column("age").unwrap().sensitivity, kura_store::schema::Sensitivity::Quasi);
    // Tampering is found by the full verification.
    let f = home.data_dir().join(&re.files[0].path);
    let mut bytes = std::fs::read(&f).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x20;
    std::fs::write(&f, bytes).unwrap();
    let findings = verify_dataset(&home, &e);
    assert_eq!(findings.len(), 1);
    assert_eq!(findings[0].file, re.files[0].path);
    assert!(findings[0].problem.contains("SHA-256"));
}

#[test]
fn a_failed_write_leaves_the_previous_dataset_and_no_orphans() {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::init(&dir.path().join("h")).unwrap();
    let a = write_synthetic(&home, SynthConfig::new(300, 1), &opts(&home, 1), &|_| {}).unwrap();
    // An interrupted write: a stray generation directory and its keys.
    let stray = home.data_dir().join("ndb/gdeadbeef/re");
    std::fs::create_dir_all(&stray).unwrap();
    std::fs::write(stray.join("part-00000.parquet"), b"partial").unwrap();
    // A configuration the generator refuses fails before anything changes.
    let bad = SynthConfig { months: 0, ..SynthConfig::new(300, 1) };
    assert!(write_synthetic(&home, bad, &opts(&home, 1), &|_| {}).is_err());
    assert_eq!(home.catalog().unwrap().datasets["ndb"], a);
    assert!(verify_dataset(&home, &a).is_empty());
    // The next write removes the stray generation.
    write_synthetic(&home, SynthConfig::new(300, 1), &opts(&home, 1), &|_| {}).unwrap();
    assert!(!home.data_dir().join("ndb/gdeadbeef").exists());
}

/// Review of the hardening: writers and readers of one home at the same time. Two writers of
/// one dataset take turns (neither loses the other's keys), readers always see keys and
/// catalogue that belong together, and the home is readable at the end.
#[test]
fn concurrent_writers_and_readers_keep_the_home_whole() {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::init(&dir.path().join("h")).unwrap();
    write_synthetic(&home, SynthConfig::new(100, 1), &opts(&home, 1), &|_| {}).unwrap();
    let done = std::sync::atomic::AtomicBool::new(false);
    let reads = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|s| {
        let readers: Vec<_> = (0..2)
            .map(|_| {
                s.spawn(|| {
                    while !done.load(std::sync::atomic::Ordering::SeqCst) {
                        let (master, keyring, catalog) = home.snapshot().expect("a reader always sees a whole home");
                        // The keys of what the catalogue lists open with the master key seen
                        // with it: `catalog --verify` finds nothing while rewrites go on.
                        for d in catalog.datasets.values() {
                            let findings = kura_store::verify::verify_keys(&master, &keyring, d);
                            assert!(findings.is_empty(), "{findings:?}");
                        }
                        reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    }
                })
            })
            .collect();
        let writers: Vec<_> = (0..2)
            .map(|w| {
                let home = &home;
                s.spawn(move || {
                    for i in 0..3 {
                        write_synthetic(home, SynthConfig::new(100, 10 * w + i), &opts(home, 1), &|_| {}).unwrap();
                    }
                })
            })
            .collect();
        for w in writers {
            w.join().unwrap();
        }
        done.store(true, std::sync::atomic::Ordering::SeqCst);
        for r in readers {
            r.join().unwrap();
        }
    });
    assert!(reads.load(std::sync::atomic::Ordering::SeqCst) > 0);
    let (master, keyring, catalog) = home.snapshot().unwrap();
    let entry = &catalog.datasets["ndb"];
    assert!(verify_dataset(&home, entry).is_empty());
    assert!(kura_store::verify::verify_keys(&master, &keyring, entry).is_empty());
}

/// Review of the hardening: a catalogue restored from before a rewrite is authentic (it was
/// sealed by this home) but its keys are gone: `--verify` says so instead of passing it.
#[test]
fn verify_finds_a_catalogue_whose_keys_are_gone() {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::init(&dir.path().join("h")).unwrap();
    let old = write_synthetic(&home, SynthConfig::new(100, 1), &opts(&home, 1), &|_| {}).unwrap();
    let saved = std::fs::read(home.catalog_path()).unwrap();
    write_synthetic(&home, SynthConfig::new(100, 2), &opts(&home, 1), &|_| {}).unwrap();
    std::fs::write(home.catalog_path(), saved).unwrap();
    let (master, keyring, catalog) = home.snapshot().unwrap();
    let findings = kura_store::verify::verify_keys(&master, &keyring, &catalog.datasets["ndb"]);
    assert!(!findings.is_empty() && findings[0].file.starts_with("key ds/ndb/"), "{findings:?}");
    assert_eq!(home.catalog().unwrap().datasets["ndb"].generation, old.generation);
}
