//! Writing a dataset from `RecordBatch` streams: a [`DatasetWriter`] creates the keys of a new
//! generation (saved before any byte of data is written), hands out one [`PartWriter`] per
//! producing thread (one encrypted Parquet file per table and part), checks every batch against
//! its [`TableSpec`], and switches the catalogue to the new generation only in
//! [`DatasetWriter::commit`], once every file is complete. A writer dropped before its commit, or
//! a crash, leaves the previous generation in place; leftovers are removed on the next write.
//!
//! The writer knows nothing of where rows come from: the synthetic generator
//! (`kura-synth-dataset`) and the intake parsers produce batches of the standard tables
//! ([`crate::tables`]).

use crate::catalog::{ColumnEntry, DatasetEntry, FileEntry, TableEntry};
use crate::home::{Home, utc_now};
use crate::keys::aad_prefix;
use crate::schema::TableSpec;
use crate::{Result, StoreError};
use datafusion::arrow::array::Array;
use datafusion::arrow::record_batch::RecordBatch;
use futures::StreamExt;
use kura_crypto::{KeyId, Keyring, MasterKey, Purpose, SecretKey};
use object_store::buffered::BufWriter;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};
use parquet::arrow::async_writer::AsyncArrowWriter;
use parquet::basic::Compression;
use parquet::encryption::encrypt::FileEncryptionProperties;
use parquet::file::properties::WriterProperties;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

/// How to write.
#[derive(Clone, Debug)]
pub struct WriteOptions {
    /// Dataset name.
    pub dataset: String,
    /// Writer threads (≥ 1).
    pub threads: usize,
    /// Rows per row group.
    pub row_group_rows: usize,
}

impl WriteOptions {
    /// Options from the home's configuration.
    pub fn from_home(home: &Home, dataset: &str) -> Self {
        let cfg = home.store_config();
        let threads = if cfg.threads == 0 { std::thread::available_parallelism().map_or(2, |n| n.get()) } else { cfg.threads };
        Self { dataset: dataset.to_string(), threads, row_group_rows: cfg.row_group_rows.max(1024) }
    }
}

/// Keys of one table, in column order.
struct TableKeys {
    footer_id: String,
    footer: SecretKey,
    columns: Vec<(String, String, SecretKey)>,
}

fn key_prefix(dataset: &str, generation: &str) -> String {
    format!("ds/{dataset}/{generation}")
}

fn new_generation() -> Result<String> {
    let mut b = [0u8; 6];
    kura_crypto::random_bytes(&mut b)?;
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    Ok(format!("g{secs:x}{}", hex::encode(b)))
}

fn create_keys(
    master: &MasterKey,
    keyring: &mut Keyring,
    dataset: &str,
    generation: &str,
    tables: &[&TableSpec],
) -> Result<Vec<TableKeys>> {
    let prefix = key_prefix(dataset, generation);
    let kek = KeyId::new(prefix.clone())?;
    keyring.create(master, None, kek.clone(), Purpose::DatasetKek)?;
    let mut out = Vec::new();
    for t in tables {
        let footer_id = format!("{prefix}/{}#footer", t.name);
        let footer = keyring.create(master, Some(&kek), KeyId::new(footer_id.clone())?, Purpose::ColumnData)?;
        let mut columns = Vec::new();
        for c in t.columns {
            let id = format!("{prefix}/{}/{}", t.name, c.name);
            let k = keyring.create(master, Some(&kek), KeyId::new(id.clone())?, Purpose::ColumnData)?;
            columns.push((c.name.to_string(), id, k));
        }
        out.push(TableKeys { footer_id, footer, columns });
    }
    Ok(out)
}

fn encryption(keys: &TableKeys, path: &str) -> Result<Arc<FileEncryptionProperties>> {
    // Every column gets a key: a column without one would be written in plaintext.
    let mut b = FileEncryptionProperties::builder(keys.footer.expose().to_vec())
        .with_footer_key_metadata(keys.footer_id.as_bytes().to_vec())
        .with_aad_prefix(aad_prefix(path))
        .with_aad_prefix_storage(false);
    for (name, id, key) in &keys.columns {
        b = b.with_column_key_and_metadata(name, key.expose().to_vec(), id.as_bytes().to_vec());
    }
    b.build().map_err(|e| StoreError::Parquet { file: path.to_string(), reason: e.to_string() })
}

/// Whether a column's buffers hold exactly its rows from offset 0: a sliced string array keeps
/// its parent's values and absolute offsets, a sliced or short boolean array shares bits.
fn is_compact(c: &datafusion::arrow::array::ArrayRef) -> bool {
    use datafusion::arrow::array::{Array, StringArray};
    use datafusion::arrow::datatypes::DataType;
    if c.to_data().offset() != 0 || c.data_type() == &DataType::Boolean {
        return false;
    }
    match c.as_any().downcast_ref::<StringArray>() {
        Some(s) => {
            let o = s.value_offsets();
            o.first() == Some(&0) && o.last().is_some_and(|&end| usize::try_from(end).is_ok_and(|end| end == s.values().len()))
        }
        None => true,
    }
}

/// The SHA-256 of a batch's content (see [`hash_batch`]); a column that is a slice of a larger
/// array is copied first, so that only the rows of the batch count, from offset 0.
fn digest_batch(batch: &RecordBatch) -> Result<[u8; 32]> {
    let mut columns = Vec::with_capacity(batch.num_columns());
    for c in batch.columns() {
        if is_compact(c) {
            columns.push(c.clone());
        } else {
            // `take` of every row builds fresh buffers (`concat` of one array returns it as is).
            let rows = datafusion::arrow::array::UInt32Array::from_iter_values(0..c.len() as u32);
            let copied = datafusion::arrow::compute::take(c.as_ref(), &rows, None)
                .map_err(|e| StoreError::Schema { table: "batch".into(), reason: e.to_string() })?;
            columns.push(copied);
        }
    }
    let batch =
        RecordBatch::try_new(batch.schema(), columns).map_err(|e| StoreError::Schema { table: "batch".into(), reason: e.to_string() })?;
    let mut h = Sha256::new();
    hash_batch(&mut h, &batch);
    Ok(h.finalize().into())
}

/// Feeds a batch's content into a hash: lengths, validity bitmaps and value buffers of every
/// column. Independent of encryption and of file layout; the same rows in other batches give
/// other digests, so a producer that wants equal MACs for equal content cuts equal batches.
fn hash_batch(h: &mut Sha256, batch: &RecordBatch) {
    h.update((batch.num_rows() as u64).to_le_bytes());
    for col in batch.columns() {
        let data = col.to_data();
        h.update((data.len() as u64).to_le_bytes());
        match data.nulls() {
            Some(n) => {
                h.update([1]);
                for i in 0..n.len() {
                    h.update([u8::from(n.is_valid(i))]);
                }
            }
            None => h.update([0]),
        }
        for b in data.buffers() {
            h.update((b.len() as u64).to_le_bytes());
            h.update(b.as_slice());
        }
    }
}

fn props(keys: &TableKeys, path: &str, opts: &WriteOptions) -> Result<WriterProperties> {
    Ok(WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_max_row_group_row_count(Some(opts.row_group_rows))
        .set_created_by(format!("kura {}", env!("CARGO_PKG_VERSION")))
        .with_file_encryption_properties(encryption(keys, path)?)
        .build())
}

fn parquet_err(file: &str) -> impl Fn(parquet::errors::ParquetError) -> StoreError + '_ {
    move |e| StoreError::Parquet { file: file.to_string(), reason: e.to_string() }
}

/// Describes the dataset in the catalogue; the writer adds generation, keys, files and tables.
#[derive(Clone, Debug)]
pub struct DatasetMeta {
    /// Japanese title.
    pub title_ja: String,
    /// English title.
    pub title_en: String,
    /// Japanese description.
    pub description_ja: String,
    /// English description.
    pub description_en: String,
    /// Synthetic (true) or real data.
    pub synthetic: bool,
    /// First month covered (YYYYMM).
    pub period_from: i32,
    /// Last month covered (YYYYMM).
    pub period_to: i32,
    /// Persons (synthetic data: generated).
    pub persons: u64,
    /// Seed (synthetic data; 0 otherwise).
    pub seed: u64,
}

/// A new generation of one dataset being written. Created by [`DatasetWriter::begin`], filled
/// through [`DatasetWriter::part`] (one per thread, in parallel), published by
/// [`DatasetWriter::commit`]. Dropped without a commit (an error, a panic), it removes its files
/// and keys and the catalogue keeps the previous generation.
pub struct DatasetWriter<'h> {
    home: &'h Home,
    dataset: String,
    generation: String,
    tables: Vec<&'static TableSpec>,
    keys: Vec<TableKeys>,
    store: Arc<dyn ObjectStore>,
    opts: WriteOptions,
    previous: Option<String>,
    catalog_key: SecretKey,
    parts: Mutex<BTreeSet<usize>>,
    data_dir: std::path::PathBuf,
    committed: bool,
    _writing: crate::home::KeysLock,
}

/// The files and content digests one [`PartWriter`] produced, for [`DatasetWriter::commit`].
pub struct WrittenPart {
    generation: String,
    part: usize,
    /// (table index, file).
    files: Vec<(usize, FileEntry)>,
    /// (table index, sequence number, digest of the batch), in the order written.
    digests: Vec<(usize, u64, [u8; 32])>,
}

struct OpenFile {
    path: String,
    writer: AsyncArrowWriter<BufWriter>,
}

/// Writes the batches of one producer (a thread) to one file per table. Not `Send`-bound to a
/// runtime: it drives its own single-threaded one, so producers stay plain threads.
pub struct PartWriter<'w> {
    writer: &'w DatasetWriter<'w>,
    part: usize,
    rt: tokio::runtime::Runtime,
    open: Vec<Option<OpenFile>>,
    digests: Vec<(usize, u64, [u8; 32])>,
    /// Rows written per table, checked against each file's own count when it is closed.
    rows: Vec<u64>,
    /// Set by a failed write: a file may hold part of a batch, so the part is unusable.
    broken: bool,
}

impl<'h> DatasetWriter<'h> {
    /// Starts a new generation of `opts.dataset` with these tables: takes the home's write lock
    /// (one writer at a time; readers keep reading the previous generation), removes leftovers
    /// of an interrupted write, and creates and saves every table's and column's key.
    pub fn begin(home: &'h Home, tables: &[&'static TableSpec], opts: &WriteOptions) -> Result<Self> {
        let dataset = opts.dataset.as_str();
        if dataset.is_empty() || !dataset.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_') {
            return Err(StoreError::Config { path: "dataset".into(), reason: format!("'{dataset}': use lowercase letters, digits and _") });
        }
        let mut names = BTreeSet::new();
        for t in tables {
            if !names.insert(t.name) {
                return Err(StoreError::Schema { table: t.name.to_string(), reason: "the table is listed twice".into() });
            }
        }
        let writing = home.lock_writes()?;
        let data_dir = home.data_dir();
        std::fs::create_dir_all(&data_dir).map_err(|e| StoreError::io(&data_dir, e))?;
        let store: Arc<dyn ObjectStore> = Arc::new(
            LocalFileSystem::new_with_prefix(&data_dir)
                .map_err(|e| StoreError::ObjectStore { path: data_dir.display().to_string(), reason: e.to_string() })?,
        );
        let catalog_key = home.catalog_key()?;
        let generation = new_generation()?;
        let (previous, keys) = {
            let _keys = home.lock_keys(true)?;
            home.finish_rotation_locked()?;
            let master = home.master_key_locked()?;
            let mut keyring = Keyring::load(&home.keyring_path())?;
            let catalog = home.catalog_locked(&catalog_key)?;
            let previous = catalog.datasets.get(dataset).map(|d| d.generation.clone());
            // Leftovers of an interrupted write.
            remove_other_generations(home, &mut keyring, dataset, previous.as_deref())?;
            let keys = create_keys(&master, &mut keyring, dataset, &generation, tables)?;
            // Keys are durable before any data exists, so no file is ever written without its keys.
            keyring.save(&home.keyring_path())?;
            (previous, keys)
        };
        let writer = Self {
            home,
            dataset: dataset.to_string(),
            generation,
            tables: tables.to_vec(),
            keys,
            store,
            opts: opts.clone(),
            previous,
            catalog_key,
            parts: Mutex::new(BTreeSet::new()),
            data_dir,
            committed: false,
            _writing: writing,
        };
        Ok(writer)
    }

    /// The new generation's id.
    pub fn generation(&self) -> &str {
        &self.generation
    }

    /// A writer for part `part` (its files are named `part-NNNNN.parquet`); each part number
    /// can be taken once.
    pub fn part(&self, part: usize) -> Result<PartWriter<'_>> {
        let fresh = self.parts.lock().map_err(|_| poisoned())?.insert(part);
        if !fresh {
            return Err(StoreError::Schema { table: self.dataset.clone(), reason: format!("part {part} is written twice") });
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| StoreError::io(std::path::Path::new("tokio runtime"), e))?;
        Ok(PartWriter {
            writer: self,
            part,
            rt,
            open: self.tables.iter().map(|_| None).collect(),
            digests: Vec::new(),
            rows: vec![0; self.tables.len()],
            broken: false,
        })
    }

    /// Publishes the generation: every part's files go into the catalogue with their sizes,
    /// SHA-256 and row counts, and each table's content MAC over its batches in sequence order
    /// (so the MAC does not depend on how many parts wrote them). Then the previous generation
    /// is removed and, if there was one, the master key replaced.
    pub fn commit(mut self, meta: DatasetMeta, parts: Vec<WrittenPart>) -> Result<DatasetEntry> {
        // Exactly the parts handed out, each finished, each of this generation: a part that
        // failed and was left out would publish a dataset that is silently short.
        let given: BTreeSet<usize> = parts.iter().filter(|p| p.generation == self.generation).map(|p| p.part).collect();
        let handed_out = self.parts.lock().map_err(|_| poisoned())?.clone();
        if given != handed_out || given.len() != parts.len() {
            let missing: Vec<String> = handed_out.difference(&given).map(usize::to_string).collect();
            return Err(StoreError::Schema {
                table: self.dataset.clone(),
                reason: format!(
                    "the commit must hold every part this writer handed out, once each (missing: {}); nothing was published",
                    if missing.is_empty() { "none, but a part is foreign or repeated".into() } else { missing.join(", ") }
                ),
            });
        }
        self.sync_generation()?;
        let mut table_entries = Vec::new();
        for (ti, (t, tk)) in self.tables.iter().zip(&self.keys).enumerate() {
            // (sequence, part, order within the part) → digest; one sequence number belongs to one part.
            let mut seqs: BTreeMap<(u64, usize, usize), [u8; 32]> = BTreeMap::new();
            let mut owner: BTreeMap<u64, usize> = BTreeMap::new();
            for p in &parts {
                for (order, (_, seq, d)) in p.digests.iter().enumerate().filter(|(_, (i, _, _))| *i == ti) {
                    if *owner.entry(*seq).or_insert(p.part) != p.part {
                        return Err(StoreError::Schema {
                            table: t.name.to_string(),
                            reason: format!("sequence number {seq} was written by two parts"),
                        });
                    }
                    seqs.insert((*seq, p.part, order), *d);
                }
            }
            let mut h = Sha256::new();
            for d in seqs.values() {
                h.update(d);
            }
            let mut files: Vec<FileEntry> =
                parts.iter().flat_map(|p| p.files.iter()).filter(|(i, _)| *i == ti).map(|(_, f)| f.clone()).collect();
            files.sort_by(|a, b| a.path.cmp(&b.path));
            table_entries.push(TableEntry {
                name: t.name.to_string(),
                title_ja: t.title_ja.to_string(),
                title_en: t.title_en.to_string(),
                source_format: t.source_format.to_string(),
                rows: files.iter().map(|f| f.rows).sum(),
                content_mac: crate::catalog::keyed_digest(&self.catalog_key, "content", &h.finalize()),
                footer_key_id: tk.footer_id.clone(),
                files,
                columns: t
                    .columns
                    .iter()
                    .zip(tk.columns.iter())
                    .map(|(c, (_, id, _))| ColumnEntry {
                        name: c.name.to_string(),
                        data_type: c.ty.data_type().to_string(),
                        nullable: c.nullable,
                        title_ja: c.title_ja.to_string(),
                        title_en: c.title_en.to_string(),
                        code_system: c.code_system.map(str::to_string),
                        sensitivity: c.sensitivity,
                        key_id: id.clone(),
                    })
                    .collect(),
            });
        }
        let entry = DatasetEntry {
            name: self.dataset.clone(),
            title_ja: meta.title_ja,
            title_en: meta.title_en,
            description_ja: meta.description_ja,
            description_en: meta.description_en,
            synthetic: meta.synthetic,
            generation: self.generation.clone(),
            kek_id: key_prefix(&self.dataset, &self.generation),
            period_from: meta.period_from,
            period_to: meta.period_to,
            persons: meta.persons,
            seed: meta.seed,
            created_at: utc_now(),
            created_by: format!("kura {}", env!("CARGO_PKG_VERSION")),
            tables: table_entries,
        };
        let home = self.home;
        let _keys = home.lock_keys(true)?;
        let mut catalog = home.catalog_locked(&self.catalog_key)?;
        catalog.version = 1;
        catalog.datasets.insert(self.dataset.clone(), entry.clone());
        home.save_catalog_locked(&mut catalog, &self.catalog_key)?;
        self.committed = true;
        // The previous generation is no longer referenced: shred it, and replace the master key,
        // so that a copy of the old keyring is of no use with the master key from now on.
        let mut keyring = Keyring::load(&home.keyring_path())?;
        remove_other_generations(home, &mut keyring, &self.dataset, Some(&self.generation))?;
        if self.previous.is_some() {
            home.rotate_master_locked(&mut keyring)?;
        } else {
            keyring.save(&home.keyring_path())?;
        }
        Ok(entry)
    }

    /// Makes the new generation's files and directories durable before the catalogue points
    /// at them (the object store renames files into place without syncing them).
    fn sync_generation(&self) -> Result<()> {
        fn sync_tree(dir: &std::path::Path) -> Result<()> {
            for e in std::fs::read_dir(dir).map_err(|e| StoreError::io(dir, e))? {
                let p = e.map_err(|e| StoreError::io(dir, e))?.path();
                if p.is_dir() {
                    sync_tree(&p)?;
                } else {
                    std::fs::File::open(&p).and_then(|f| f.sync_all()).map_err(|e| StoreError::io(&p, e))?;
                }
            }
            std::fs::File::open(dir).and_then(|f| f.sync_all()).map_err(|e| StoreError::io(dir, e))
        }
        let generation = self.data_dir.join(&self.dataset).join(&self.generation);
        if generation.is_dir() {
            sync_tree(&generation)?;
        }
        let dataset = self.data_dir.join(&self.dataset);
        if dataset.is_dir() {
            std::fs::File::open(&dataset).and_then(|f| f.sync_all()).map_err(|e| StoreError::io(&dataset, e))?;
        }
        Ok(())
    }

    /// Removes this generation's files and keys (the keyring read afresh, so a key another
    /// process added meanwhile is kept).
    fn undo(&self) -> Result<()> {
        let _keys = self.home.lock_keys(true)?;
        let mut keyring = Keyring::load(&self.home.keyring_path())?;
        remove_other_generations(self.home, &mut keyring, &self.dataset, self.previous.as_deref())?;
        Ok(keyring.save(&self.home.keyring_path())?)
    }
}

impl Drop for DatasetWriter<'_> {
    fn drop(&mut self) {
        if !self.committed
            && let Err(e) = self.undo()
        {
            tracing::warn!(dataset = %self.dataset, error = %e, "書きかけの世代を消せませんでした。次の書き込みで消します / could not remove an unfinished generation; the next write removes it");
        }
    }
}

fn poisoned() -> StoreError {
    StoreError::Corrupt { what: "dataset writer".into(), reason: "a writer thread panicked".into() }
}

impl PartWriter<'_> {
    /// Appends a batch to `table`. `seq` orders the batch in the table's content MAC: give equal
    /// content equal numbers (the synthetic writer uses the chunk index), and never let two
    /// parts use the same number for one table. The batch must have exactly the table's columns.
    pub fn write(&mut self, table: &str, seq: u64, batch: &RecordBatch) -> Result<()> {
        let w = self.writer;
        let Some((ti, &spec)) = w.tables.iter().enumerate().find(|(_, t)| t.name == table) else {
            return Err(StoreError::Schema { table: table.to_string(), reason: "the dataset has no such table".into() });
        };
        spec.check(batch).map_err(|reason| StoreError::Schema { table: table.to_string(), reason })?;
        // The file's schema is the table's, whatever metadata the batch carried; non-nullable
        // columns are checked for nulls here.
        let batch = RecordBatch::try_new(spec.schema(), batch.columns().to_vec())
            .map_err(|e| StoreError::Schema { table: table.to_string(), reason: e.to_string() })?;
        if self.broken {
            return Err(self.broken_err());
        }
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let digest = digest_batch(&batch)?;
        if self.open.get(ti).is_some_and(Option::is_none) {
            match self.open_file(ti) {
                Ok(f) => {
                    if let Some(slot) = self.open.get_mut(ti) {
                        *slot = Some(f);
                    }
                }
                Err(e) => {
                    self.broken = true;
                    return Err(e);
                }
            }
        }
        // One slot per table from the start (`part`): a table found above has its slot.
        let Some(f) = self.open.get_mut(ti).and_then(Option::as_mut) else { return Err(self.broken_err()) };
        if let Err(e) = self.rt.block_on(f.writer.write(&batch)) {
            // The file may now hold part of the batch: this part cannot be finished.
            self.broken = true;
            return Err(parquet_err(&f.path)(e));
        }
        // Counted only once written, so the MAC and the row counts describe the files.
        self.digests.push((ti, seq, digest));
        if let Some(rows) = self.rows.get_mut(ti) {
            *rows += batch.num_rows() as u64;
        }
        Ok(())
    }

    fn broken_err(&self) -> StoreError {
        StoreError::Schema {
            table: self.writer.dataset.clone(),
            reason: format!("part {} failed earlier and cannot be used; write the dataset again", self.part),
        }
    }

    fn open_file(&self, ti: usize) -> Result<OpenFile> {
        let w = self.writer;
        let (Some(t), Some(key)) = (w.tables.get(ti), w.keys.get(ti)) else { return Err(self.broken_err()) };
        let path = format!("{}/{}/{}/part-{:05}.parquet", w.dataset, w.generation, t.name, self.part);
        let obj = BufWriter::new(w.store.clone(), ObjectPath::from(path.as_str()));
        let writer = {
            let _g = self.rt.enter();
            AsyncArrowWriter::try_new(obj, t.schema(), Some(props(key, &path, &w.opts)?)).map_err(parquet_err(&path))?
        };
        Ok(OpenFile { path, writer })
    }

    /// Closes every file of this part and hashes each as stored.
    pub fn finish(mut self) -> Result<WrittenPart> {
        if self.broken {
            return Err(self.broken_err());
        }
        let mut files = Vec::new();
        for (ti, f) in std::mem::take(&mut self.open).into_iter().enumerate() {
            if let Some(f) = f {
                let entry = self.close(f)?;
                let written = self.rows.get(ti).copied().unwrap_or(0);
                if entry.rows != written {
                    return Err(StoreError::Integrity {
                        file: entry.path,
                        reason: format!("{} rows in the file, {written} written", entry.rows),
                    });
                }
                files.push((ti, entry));
            }
        }
        Ok(WrittenPart { generation: self.writer.generation.clone(), part: self.part, files, digests: std::mem::take(&mut self.digests) })
    }

    fn close(&self, f: OpenFile) -> Result<FileEntry> {
        let OpenFile { path, writer } = f;
        let meta = self.rt.block_on(writer.close()).map_err(parquet_err(&path))?;
        let rows = meta.file_metadata().num_rows().max(0) as u64;
        let store = self.writer.store.clone();
        // Hash the file as stored.
        let (bytes, sha256) = self.rt.block_on(async {
            let obj = ObjectPath::from(path.as_str());
            let get = store.get(&obj).await.map_err(|e| StoreError::ObjectStore { path: path.clone(), reason: e.to_string() })?;
            let mut stream = get.into_stream();
            let mut h = Sha256::new();
            let mut n = 0u64;
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(|e| StoreError::ObjectStore { path: path.clone(), reason: e.to_string() })?;
                n += chunk.len() as u64;
                h.update(&chunk);
            }
            Ok::<_, StoreError>((n, hex::encode(h.finalize())))
        })?;
        Ok(FileEntry { path, bytes, rows, sha256 })
    }
}

/// Removes a dataset's generations other than `keep` (files and keys).
fn remove_other_generations(home: &Home, keyring: &mut Keyring, dataset: &str, keep: Option<&str>) -> Result<()> {
    let dir = home.data_dir().join(dataset);
    if let Ok(rd) = std::fs::read_dir(&dir) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if Some(name.as_str()) != keep {
                let p = e.path();
                let removed = if p.is_dir() { std::fs::remove_dir_all(&p) } else { std::fs::remove_file(&p) };
                removed.map_err(|err| StoreError::io(&p, err))?;
            }
        }
    }
    let prefix = format!("ds/{dataset}/");
    let stale: Vec<KeyId> = keyring
        .ids()
        .filter(|id| id.as_str().starts_with(&prefix) && id.as_str()[prefix.len()..].split('/').count() == 1)
        .filter(|id| keep.is_none_or(|k| id.as_str() != key_prefix(dataset, k)))
        .cloned()
        .collect();
    for id in stale {
        keyring.destroy(&id);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_batch_is_content_only() {
        use datafusion::arrow::array::{Int64Array, StringArray};
        use datafusion::arrow::datatypes::{DataType, Field, Schema};
        let schema = Arc::new(Schema::new(vec![Field::new("a", DataType::Int64, true), Field::new("b", DataType::Utf8, true)]));
        let mk = |v: Option<i64>| {
            RecordBatch::try_new(
                schema.clone(),
                vec![Arc::new(Int64Array::from(vec![Some(1), v])), Arc::new(StringArray::from(vec![Some("x"), None]))],
            )
            .unwrap()
        };
        let d = |b: &RecordBatch| {
            let mut h = Sha256::new();
            hash_batch(&mut h, b);
            h.finalize()
        };
        assert_eq!(d(&mk(Some(2))), d(&mk(Some(2))));
        assert_ne!(d(&mk(Some(2))), d(&mk(Some(3))));
        assert_ne!(d(&mk(Some(2))), d(&mk(None)));
        let _ = Array::len(&Int64Array::from(vec![1]));
    }

    #[test]
    fn a_sliced_batch_hashes_as_its_rows_alone() {
        use datafusion::arrow::array::{BooleanArray, StringArray};
        use datafusion::arrow::datatypes::{DataType, Field, Schema};
        let schema = Arc::new(Schema::new(vec![Field::new("b", DataType::Boolean, false), Field::new("s", DataType::Utf8, false)]));
        let whole = RecordBatch::try_new(
            schema.clone(),
            vec![Arc::new(BooleanArray::from(vec![true, false, true])), Arc::new(StringArray::from(vec!["long text", "x", "y"]))],
        )
        .unwrap();
        let fresh = RecordBatch::try_new(
            schema,
            vec![Arc::new(BooleanArray::from(vec![false, true])), Arc::new(StringArray::from(vec!["x", "y"]))],
        )
        .unwrap();
        assert_eq!(digest_batch(&whole.slice(1, 2)).unwrap(), digest_batch(&fresh).unwrap());
        assert_ne!(digest_batch(&whole.slice(0, 2)).unwrap(), digest_batch(&fresh).unwrap());
    }
}
