//! The dataset writer on its own (issue 15 §2): any producer of Arrow batches of a table spec can
//! become an encrypted dataset, with no generator involved; a batch of the wrong shape is refused
//! by name; a write that fails or is dropped leaves the previous generation and no leftovers.

use datafusion::arrow::array::{Array, AsArray, Int16Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::parquet::arrow::arrow_reader::{ArrowReaderOptions, ParquetRecordBatchReaderBuilder};
use datafusion::parquet::encryption::decrypt::FileDecryptionProperties;
use kura_store::tables::M_PREFECTURE;
use kura_store::verify::verify_dataset;
use kura_store::{BatchBuilder, DatasetEntry, DatasetMeta, DatasetWriter, GrantedKeys, Home, StoreError, WriteOptions, aad_prefix};
use std::sync::Arc;

fn meta() -> DatasetMeta {
    DatasetMeta {
        title_ja: "都道府県".into(),
        title_en: "Prefectures".into(),
        description_ja: "試験".into(),
        description_en: "test".into(),
        synthetic: false,
        period_from: 202404,
        period_to: 202404,
        persons: 0,
        seed: 0,
    }
}

fn opts(home: &Home) -> WriteOptions {
    WriteOptions { threads: 1, ..WriteOptions::from_home(home, "ref") }
}

/// Prefectures `codes` as a batch built with the store's own builder.
fn prefectures(codes: &[i16]) -> RecordBatch {
    let mut b = BatchBuilder::new(&M_PREFECTURE, codes.len());
    for &c in codes {
        let cols = b.columns_mut();
        cols[0].i16(c);
        cols[1].str(&format!("県{c}"));
        cols[2].str(&format!("Pref {c}"));
    }
    b.finish().unwrap()
}

/// Every `prefecture` value of the table, read back through the granted keys.
fn read_back(home: &Home, entry: &DatasetEntry) -> Vec<i16> {
    let t = entry.table("m_prefecture").unwrap();
    let keys = Arc::new(
        GrantedKeys::unwrap(
            &home.master_key().unwrap(),
            &home.keyring().unwrap(),
            std::iter::once(t.footer_key_id.as_str()).chain(t.columns.iter().map(|c| c.key_id.as_str())),
        )
        .unwrap(),
    );
    let mut out = Vec::new();
    for f in &t.files {
        let props = FileDecryptionProperties::with_key_retriever(keys.clone()).with_aad_prefix(aad_prefix(&f.path)).build().unwrap();
        let file = std::fs::File::open(home.data_dir().join(&f.path)).unwrap();
        let reader =
            ParquetRecordBatchReaderBuilder::try_new_with_options(file, ArrowReaderOptions::new().with_file_decryption_properties(props))
                .unwrap()
                .build()
                .unwrap();
        for batch in reader {
            let batch = batch.unwrap();
            let col = batch.column(0).as_primitive::<datafusion::arrow::datatypes::Int16Type>();
            out.extend((0..col.len()).map(|i| col.value(i)));
        }
    }
    out.sort();
    out
}

/// Files under the home's data directory (recursively).
fn data_files(home: &Home) -> Vec<std::path::PathBuf> {
    fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() { walk(&p, out) } else { out.push(p) }
        }
    }
    let mut out = Vec::new();
    walk(&home.data_dir(), &mut out);
    out
}

#[test]
fn batches_from_any_producer_become_an_encrypted_dataset_and_the_mac_ignores_the_split() {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::init(&dir.path().join("h")).unwrap();
    // One part, three batches in sequence.
    let w = DatasetWriter::begin(&home, &[&M_PREFECTURE], &opts(&home)).unwrap();
    let mut p = w.part(0).unwrap();
    for (seq, codes) in [[1i16, 2], [3, 4], [5, 6]].iter().enumerate() {
        p.write("m_prefecture", seq as u64, &prefectures(codes)).unwrap();
    }
    let parts = vec![p.finish().unwrap()];
    let a = w.commit(meta(), parts).unwrap();
    assert_eq!(a.table("m_prefecture").unwrap().rows, 6);
    assert_eq!(read_back(&home, &a), vec![1, 2, 3, 4, 5, 6]);
    assert!(verify_dataset(&home, &a).is_empty());
    assert_eq!(home.catalog().unwrap().datasets["ref"], a);

    // The same batches from two parts, out of order: same content MAC, other files.
    let w = DatasetWriter::begin(&home, &[&M_PREFECTURE], &opts(&home)).unwrap();
    let (mut p0, mut p1) = (w.part(0).unwrap(), w.part(1).unwrap());
    p1.write("m_prefecture", 2, &prefectures(&[5, 6])).unwrap();
    p0.write("m_prefecture", 0, &prefectures(&[1, 2])).unwrap();
    p1.write("m_prefecture", 1, &prefectures(&[3, 4])).unwrap();
    let parts = vec![p1.finish().unwrap(), p0.finish().unwrap()];
    let b = w.commit(meta(), parts).unwrap();
    assert_eq!(b.table("m_prefecture").unwrap().files.len(), 2);
    assert_eq!(a.table("m_prefecture").unwrap().content_mac, b.table("m_prefecture").unwrap().content_mac);
    assert_eq!(read_back(&home, &b), vec![1, 2, 3, 4, 5, 6]);
    // Other content, other MAC.
    let w = DatasetWriter::begin(&home, &[&M_PREFECTURE], &opts(&home)).unwrap();
    let mut p = w.part(0).unwrap();
    p.write("m_prefecture", 0, &prefectures(&[1, 2, 3, 4, 5, 7])).unwrap();
    let parts = vec![p.finish().unwrap()];
    let c = w.commit(meta(), parts).unwrap();
    assert_ne!(c.table("m_prefecture").unwrap().content_mac, b.table("m_prefecture").unwrap().content_mac);
    // Only the last generation's files remain.
    assert!(data_files(&home).iter().all(|f| f.to_string_lossy().contains(&c.generation)), "{:?}", data_files(&home));
}

/// Asserts that the home holds exactly `entry` as dataset `ref`, with its files and no others.
fn unchanged(home: &Home, entry: &DatasetEntry) {
    assert_eq!(&home.catalog().unwrap().datasets["ref"], entry);
    assert!(verify_dataset(home, entry).is_empty());
    let files = data_files(home);
    assert_eq!(files.len(), entry.tables.iter().map(|t| t.files.len()).sum::<usize>(), "{files:?}");
    let keyring = home.keyring().unwrap();
    let prefix = "ds/ref/";
    assert!(keyring.ids().filter(|k| k.as_str().starts_with(prefix)).all(|k| k.as_str().starts_with(&entry.kek_id)));
    assert_eq!(read_back(home, entry), vec![1, 2]);
}

#[test]
fn a_batch_of_the_wrong_shape_is_refused_by_name_and_the_previous_generation_stays() {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::init(&dir.path().join("h")).unwrap();
    let w = DatasetWriter::begin(&home, &[&M_PREFECTURE], &opts(&home)).unwrap();
    let mut p = w.part(0).unwrap();
    p.write("m_prefecture", 0, &prefectures(&[1, 2])).unwrap();
    let parts = vec![p.finish().unwrap()];
    let good = w.commit(meta(), parts).unwrap();

    let schema = |code: DataType, nullable: bool| {
        Arc::new(Schema::new(vec![
            Field::new("prefecture", code, nullable),
            Field::new("name_ja", DataType::Utf8, false),
            Field::new("name_en", DataType::Utf8, false),
        ]))
    };
    let names = || -> Vec<Arc<dyn Array>> { vec![Arc::new(StringArray::from(vec!["x"])), Arc::new(StringArray::from(vec!["y"]))] };
    let wrong_type = RecordBatch::try_new(
        schema(DataType::Utf8, false),
        [vec![Arc::new(StringArray::from(vec!["13"])) as Arc<dyn Array>], names()].concat(),
    )
    .unwrap();
    let with_null = RecordBatch::try_new(
        schema(DataType::Int16, true),
        [vec![Arc::new(Int16Array::from(vec![None])) as Arc<dyn Array>], names()].concat(),
    )
    .unwrap();
    let declared_non_null = RecordBatch::try_new(
        schema(DataType::Int16, false),
        [vec![Arc::new(Int16Array::from(vec![Some(13)])) as Arc<dyn Array>], names()].concat(),
    )
    .unwrap();
    let reordered = RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            Field::new("name_ja", DataType::Utf8, false),
            Field::new("prefecture", DataType::Int16, false),
            Field::new("name_en", DataType::Utf8, false),
        ])),
        vec![Arc::new(StringArray::from(vec!["x"])), Arc::new(Int16Array::from(vec![13])), Arc::new(StringArray::from(vec!["y"]))],
    )
    .unwrap();
    for (batch, table, expect) in [
        (&wrong_type, "m_prefecture", "'prefecture' is Utf8, expected Int16"),
        (&with_null, "m_prefecture", "non-nullable but contains null values"),
        (&reordered, "m_prefecture", "'name_ja' where 'prefecture'"),
        (&declared_non_null, "m_nothing", "no such table"),
    ] {
        let w = DatasetWriter::begin(&home, &[&M_PREFECTURE], &opts(&home)).unwrap();
        let mut p = w.part(0).unwrap();
        // A good batch first: its file exists when the bad one arrives, and must go too.
        p.write("m_prefecture", 0, &prefectures(&[8, 9])).unwrap();
        let err = p.write(table, 1, batch).unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, StoreError::Schema { .. }), "{err:?}");
        assert!(text.contains(table) && text.contains(expect), "{text}");
        drop(p);
        drop(w);
        unchanged(&home, &good);
    }
    // A part number taken twice is refused; a sequence number used by two parts fails the commit.
    let w = DatasetWriter::begin(&home, &[&M_PREFECTURE], &opts(&home)).unwrap();
    let mut p0 = w.part(0).unwrap();
    assert!(w.part(0).err().unwrap().to_string().contains("part 0 is written twice"));
    let mut p1 = w.part(1).unwrap();
    p0.write("m_prefecture", 7, &prefectures(&[1])).unwrap();
    p1.write("m_prefecture", 7, &prefectures(&[2])).unwrap();
    let parts = vec![p0.finish().unwrap(), p1.finish().unwrap()];
    let err = w.commit(meta(), parts).unwrap_err().to_string();
    assert!(err.contains("sequence number 7 was written by two parts"), "{err}");
    unchanged(&home, &good);
    // A commit without every part handed out publishes nothing.
    let w = DatasetWriter::begin(&home, &[&M_PREFECTURE], &opts(&home)).unwrap();
    let mut p0 = w.part(0).unwrap();
    let p1 = w.part(1).unwrap();
    p0.write("m_prefecture", 0, &prefectures(&[1, 2, 3])).unwrap();
    let parts = vec![p0.finish().unwrap()];
    drop(p1);
    let err = w.commit(meta(), parts).unwrap_err().to_string();
    assert!(err.contains("missing: 1") && err.contains("nothing was published"), "{err}");
    unchanged(&home, &good);
    // A part of another writer is not taken either.
    let other = DatasetWriter::begin(&home, &[&M_PREFECTURE], &opts(&home)).unwrap();
    let mut p = other.part(0).unwrap();
    p.write("m_prefecture", 0, &prefectures(&[4])).unwrap();
    let foreign = p.finish().unwrap();
    drop(other);
    let w = DatasetWriter::begin(&home, &[&M_PREFECTURE], &opts(&home)).unwrap();
    let _mine = w.part(0).unwrap();
    assert!(w.commit(meta(), vec![foreign]).is_err());
    unchanged(&home, &good);
    // A table listed twice, or a bad dataset name, is refused before anything is written.
    assert!(DatasetWriter::begin(&home, &[&M_PREFECTURE, &M_PREFECTURE], &opts(&home)).is_err());
    let bad = WriteOptions { dataset: "../x".into(), ..opts(&home) };
    assert!(DatasetWriter::begin(&home, &[&M_PREFECTURE], &bad).is_err());
    unchanged(&home, &good);
}
