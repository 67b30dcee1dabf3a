//! Writing a synthetic dataset: generation on every core, one encrypted Parquet file per table
//! and writer thread, keys created (and saved) before any byte of data is written, and the
//! catalogue switched to the new generation only once every file is complete. A crash leaves the
//! previous generation in place; its leftovers are removed on the next write.

use crate::catalog::{ColumnEntry, DatasetEntry, FileEntry, TableEntry};
use crate::home::{Home, utc_now};
use crate::keys::aad_prefix;
use crate::schema::{AnyTable, Ctx, all_tables};
use crate::{Result, StoreError};
use datafusion::arrow::array::Array;
use datafusion::arrow::record_batch::RecordBatch;
use futures::StreamExt;
use kura_crypto::{KeyId, Keyring, MasterKey, Purpose, SecretKey};
use kura_synth::model::{IdCounts, POPULATION_CELLS};
use kura_synth::{Generator, SynthConfig};
use object_store::buffered::BufWriter;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};
use parquet::arrow::async_writer::AsyncArrowWriter;
use parquet::basic::Compression;
use parquet::encryption::encrypt::FileEncryptionProperties;
use parquet::file::properties::WriterProperties;
use sha2::{Digest, Sha256};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};

/// How to write.
#[derive(Clone, Debug)]
pub struct WriteOptions {
    /// Dataset name.
    pub dataset: String,
    /// Writer threads (≥ 1).
    pub threads: usize,
    /// Rows per row group.
    pub row_group_rows: usize,
    /// Also write every table unencrypted to this directory (for the benchmark's peer engine;
    /// never used for real data).
    pub plaintext_copy: Option<std::path::PathBuf>,
}

impl WriteOptions {
    /// Options from the home's configuration.
    pub fn from_home(home: &Home, dataset: &str) -> Self {
        let cfg = &home.config().store;
        let threads = if cfg.threads == 0 { std::thread::available_parallelism().map_or(2, |n| n.get()) } else { cfg.threads };
        Self { dataset: dataset.to_string(), threads, row_group_rows: cfg.row_group_rows.max(1024), plaintext_copy: None }
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
    tables: &[&dyn AnyTable],
) -> Result<Vec<TableKeys>> {
    let prefix = key_prefix(dataset, generation);
    let kek = KeyId::new(prefix.clone())?;
    keyring.create(master, None, kek.clone(), Purpose::DatasetKek)?;
    let mut out = Vec::new();
    for t in tables {
        let footer_id = format!("{prefix}/{}#footer", t.name());
        let footer = keyring.create(master, Some(&kek), KeyId::new(footer_id.clone())?, Purpose::ColumnData)?;
        let mut columns = Vec::new();
        for c in t.columns() {
            let id = format!("{prefix}/{}/{}", t.name(), c.name);
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

/// Feeds a batch's content into a hash: lengths, validity bitmaps and value buffers of every
/// column. Independent of encryption and of file layout.
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

struct OpenFile {
    path: String,
    writer: AsyncArrowWriter<BufWriter>,
    plain: Option<parquet::arrow::ArrowWriter<std::fs::File>>,
}

struct ShardOutput {
    /// (chunk index, per-table digest).
    digests: Vec<(u64, Vec<[u8; 32]>)>,
    /// (table index, file).
    files: Vec<(usize, FileEntry)>,
    /// Population counts of the chunks this shard generated.
    population: Vec<u32>,
}

struct Shared<'a> {
    generator: &'a Generator,
    tables: &'a [&'static dyn AnyTable],
    keys: &'a [TableKeys],
    store: Arc<dyn ObjectStore>,
    dataset: &'a str,
    generation: &'a str,
    opts: &'a WriteOptions,
    threads: usize,
    failed: AtomicBool,
    offsets: Offsets,
    progress: &'a (dyn Fn(u64) + Sync),
}

/// Dense ids across chunks generated in parallel: chunk `i`'s ids are shifted by the id counts
/// of chunks `0..i`, known once those chunks are generated (not written). Each thread takes its
/// chunks in increasing order, so the lowest uncounted chunk is always being generated and the
/// wait cannot deadlock.
struct Offsets {
    state: Mutex<OffsetState>,
    ready: Condvar,
}

struct OffsetState {
    counts: Vec<Option<IdCounts>>,
    /// prefix[i] = sum of counts[0..i], known for i ≤ prefix.len() - 1.
    prefix: Vec<IdCounts>,
}

impl Offsets {
    fn new(chunks: u64) -> Self {
        Self {
            state: Mutex::new(OffsetState { counts: vec![None; chunks as usize], prefix: vec![IdCounts::default()] }),
            ready: Condvar::new(),
        }
    }

    /// Wakes every waiter (under the lock, so no wake-up is lost).
    fn wake_all(&self) {
        let _guard = self.state.lock();
        self.ready.notify_all();
    }

    fn offset_of(&self, i: u64, counts: IdCounts, failed: &AtomicBool) -> Result<IdCounts> {
        let i = i as usize;
        let poisoned = || StoreError::Corrupt { what: "id offsets".into(), reason: "a writer thread panicked".into() };
        let mut s = self.state.lock().map_err(|_| poisoned())?;
        s.counts[i] = Some(counts);
        while s.prefix.len() <= s.counts.len() {
            let k = s.prefix.len() - 1;
            match s.counts.get(k).copied().flatten() {
                Some(c) => {
                    let mut next = s.prefix[k];
                    next.add(&c);
                    s.prefix.push(next);
                }
                None => break,
            }
        }
        self.ready.notify_all();
        while s.prefix.len() <= i {
            if failed.load(Ordering::Relaxed) {
                return Err(StoreError::Corrupt { what: "dataset write".into(), reason: "another writer thread failed".into() });
            }
            s = self.ready.wait(s).map_err(|_| poisoned())?;
        }
        Ok(s.prefix[i])
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

fn plain_props(opts: &WriteOptions) -> WriterProperties {
    WriterProperties::builder().set_compression(Compression::SNAPPY).set_max_row_group_row_count(Some(opts.row_group_rows)).build()
}

impl Shared<'_> {
    fn open(&self, rt: &tokio::runtime::Runtime, ti: usize, shard: usize) -> Result<OpenFile> {
        let t = self.tables[ti];
        let path = format!("{}/{}/{}/part-{shard:05}.parquet", self.dataset, self.generation, t.name());
        let obj = BufWriter::new(self.store.clone(), ObjectPath::from(path.as_str()));
        let writer = {
            let _g = rt.enter();
            AsyncArrowWriter::try_new(obj, t.schema(), Some(props(&self.keys[ti], &path, self.opts)?))
                .map_err(|e| StoreError::Parquet { file: path.clone(), reason: e.to_string() })?
        };
        let plain = match &self.opts.plaintext_copy {
            None => None,
            Some(dir) => {
                let d = dir.join(t.name());
                std::fs::create_dir_all(&d).map_err(|e| StoreError::io(&d, e))?;
                let p = d.join(format!("part-{shard:05}.parquet"));
                let f = std::fs::File::create(&p).map_err(|e| StoreError::io(&p, e))?;
                Some(
                    parquet::arrow::ArrowWriter::try_new(f, t.schema(), Some(plain_props(self.opts)))
                        .map_err(|e| StoreError::Parquet { file: p.display().to_string(), reason: e.to_string() })?,
                )
            }
        };
        Ok(OpenFile { path, writer, plain })
    }

    fn write(&self, rt: &tokio::runtime::Runtime, f: &mut OpenFile, batch: &RecordBatch) -> Result<()> {
        rt.block_on(f.writer.write(batch)).map_err(|e| StoreError::Parquet { file: f.path.clone(), reason: e.to_string() })?;
        if let Some(p) = f.plain.as_mut() {
            p.write(batch).map_err(|e| StoreError::Parquet { file: format!("plaintext copy of {}", f.path), reason: e.to_string() })?;
        }
        Ok(())
    }

    fn close(&self, rt: &tokio::runtime::Runtime, f: OpenFile) -> Result<FileEntry> {
        let OpenFile { path, writer, plain } = f;
        let meta = rt.block_on(writer.close()).map_err(|e| StoreError::Parquet { file: path.clone(), reason: e.to_string() })?;
        if let Some(p) = plain {
            p.close().map_err(|e| StoreError::Parquet { file: format!("plaintext copy of {path}"), reason: e.to_string() })?;
        }
        let rows = meta.file_metadata().num_rows().max(0) as u64;
        // Hash the file as stored.
        let (bytes, sha256) = rt.block_on(async {
            let obj = ObjectPath::from(path.as_str());
            let get = self.store.get(&obj).await.map_err(|e| StoreError::ObjectStore { path: path.clone(), reason: e.to_string() })?;
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

    fn run_shard(&self, shard: usize) -> Result<ShardOutput> {
        // If this thread unwinds, the others must not wait for its chunks forever.
        struct FailOnUnwind<'a, 'b>(&'a Shared<'b>);
        impl Drop for FailOnUnwind<'_, '_> {
            fn drop(&mut self) {
                if std::thread::panicking() {
                    self.0.failed.store(true, Ordering::Relaxed);
                    self.0.offsets.wake_all();
                }
            }
        }
        let _guard = FailOnUnwind(self);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| StoreError::io(std::path::Path::new("tokio runtime"), e))?;
        let empty = [];
        let ctx = Ctx { world: self.generator.world(), population: &empty };
        let mut out = ShardOutput { digests: Vec::new(), files: Vec::new(), population: vec![0; POPULATION_CELLS] };
        let mut open: Vec<Option<OpenFile>> = self.tables.iter().map(|_| None).collect();
        let result = (|| -> Result<()> {
            // Chunks are dealt round-robin, so the files depend only on the seed and the number
            // of threads.
            let n = self.generator.chunk_count();
            for i in (shard as u64..n).step_by(self.threads) {
                if self.failed.load(Ordering::Relaxed) {
                    return Ok(());
                }
                let mut chunk = self.generator.generate_chunk(i);
                let offset = self.offsets.offset_of(i, chunk.id_counts, &self.failed)?;
                chunk.rebase(&offset);
                let mut digests = vec![[0u8; 32]; self.tables.len()];
                for (ti, t) in self.tables.iter().enumerate().filter(|(_, t)| !t.is_master()) {
                    let mut h = Sha256::new();
                    if let Some(batch) =
                        t.chunk_batch(&chunk, &ctx).map_err(|e| StoreError::Parquet { file: t.name().into(), reason: e.to_string() })?
                    {
                        hash_batch(&mut h, &batch);
                        if open[ti].is_none() {
                            open[ti] = Some(self.open(&rt, ti, shard)?);
                        }
                        if let Some(f) = open[ti].as_mut() {
                            self.write(&rt, f, &batch)?;
                        }
                    }
                    digests[ti] = h.finalize().into();
                }
                for (acc, n) in out.population.iter_mut().zip(&chunk.population) {
                    *acc += n;
                }
                out.digests.push((i, digests));
                (self.progress)(chunk.persons);
            }
            Ok(())
        })();
        if let Err(e) = result {
            self.failed.store(true, Ordering::Relaxed);
            self.offsets.wake_all();
            return Err(e);
        }
        for (ti, f) in open.iter_mut().enumerate() {
            if let Some(f) = f.take() {
                out.files.push((ti, self.close(&rt, f)?));
            }
        }
        Ok(out)
    }
}

/// Writes every master table (one file each) and returns the files and content digests.
/// Files (by table index) and content digests (by table index) of the master tables.
type MasterOutput = (Vec<(usize, FileEntry)>, Vec<(usize, [u8; 32])>);

fn write_masters(shared: &Shared<'_>, population: &[u32]) -> Result<MasterOutput> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| StoreError::io(std::path::Path::new("tokio runtime"), e))?;
    let ctx = Ctx { world: shared.generator.world(), population };
    let (mut files, mut digests) = (Vec::new(), Vec::new());
    for (ti, t) in shared.tables.iter().enumerate().filter(|(_, t)| t.is_master()) {
        if let Some(batch) = t.master_batch(&ctx).map_err(|e| StoreError::Parquet { file: t.name().into(), reason: e.to_string() })? {
            let mut h = Sha256::new();
            hash_batch(&mut h, &batch);
            digests.push((ti, h.finalize().into()));
            let mut f = shared.open(&rt, ti, 0)?;
            shared.write(&rt, &mut f, &batch)?;
            files.push((ti, shared.close(&rt, f)?));
        }
    }
    Ok((files, digests))
}

/// Removes a dataset's generations other than `keep` (files and keys).
fn remove_other_generations(home: &Home, keyring: &mut Keyring, dataset: &str, keep: Option<&str>) -> Result<()> {
    let dir = home.data_dir().join(dataset);
    if let Ok(rd) = std::fs::read_dir(&dir) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if Some(name.as_str()) != keep {
                std::fs::remove_dir_all(e.path()).map_err(|err| StoreError::io(&e.path(), err))?;
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

/// Generates a synthetic population and writes it as an encrypted dataset, replacing any
/// previous generation of the same dataset (whose keys are destroyed). `progress` is called with
/// the number of persons finished by each chunk.
pub fn write_synthetic(home: &Home, synth: SynthConfig, opts: &WriteOptions, progress: &(dyn Fn(u64) + Sync)) -> Result<DatasetEntry> {
    let dataset = opts.dataset.as_str();
    if dataset.is_empty() || !dataset.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_') {
        return Err(StoreError::Config { path: "dataset".into(), reason: format!("'{dataset}': use lowercase letters, digits and _") });
    }
    // One writer at a time; the keys lock only for the short changes of keys and catalogue
    // (readers keep reading the previous generation meanwhile).
    let _writing = home.lock_writes()?;
    let catalog_key = home.catalog_key()?;
    // A configuration the generator refuses fails before anything changes.
    let generator = Generator::new(synth.clone(), home.platform_pseudonym_key()?)?;
    let generation = new_generation()?;
    let tables: Vec<&'static dyn AnyTable> = all_tables().to_vec();
    let (previous, keys) = {
        let _keys = home.lock_keys(true)?;
        home.finish_rotation_locked()?;
        let master = home.master_key_locked()?;
        let mut keyring = Keyring::load(&home.keyring_path())?;
        let catalog = home.catalog_locked(&catalog_key)?;
        let previous = catalog.datasets.get(dataset).map(|d| d.generation.clone());
        // Leftovers of an interrupted write.
        remove_other_generations(home, &mut keyring, dataset, previous.as_deref())?;
        let keys = create_keys(&master, &mut keyring, dataset, &generation, &tables)?;
        // Keys are durable before any data exists, so no file is ever written without its keys.
        keyring.save(&home.keyring_path())?;
        (previous, keys)
    };
    // Undoes this write: the new generation's files and keys go (the keyring read afresh, so
    // a key another process added meanwhile is kept).
    let undo = || -> Result<()> {
        let _keys = home.lock_keys(true)?;
        let mut keyring = Keyring::load(&home.keyring_path())?;
        remove_other_generations(home, &mut keyring, dataset, previous.as_deref())?;
        keyring.save(&home.keyring_path())?;
        Ok(())
    };

    let data_dir = home.data_dir();
    std::fs::create_dir_all(&data_dir).map_err(|e| StoreError::io(&data_dir, e))?;
    let store: Arc<dyn ObjectStore> = Arc::new(
        LocalFileSystem::new_with_prefix(&data_dir)
            .map_err(|e| StoreError::ObjectStore { path: data_dir.display().to_string(), reason: e.to_string() })?,
    );
    let shared = Shared {
        generator: &generator,
        tables: &tables,
        keys: &keys,
        store,
        dataset,
        generation: &generation,
        opts,
        threads: opts.threads.max(1),
        failed: AtomicBool::new(false),
        offsets: Offsets::new(generator.chunk_count()),
        progress,
    };
    let threads = shared.threads;
    let results: Vec<Result<ShardOutput>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|i| {
                s.spawn({
                    let sh = &shared;
                    move || sh.run_shard(i)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err(StoreError::Corrupt { what: "writer thread".into(), reason: "panicked".into() })))
            .collect()
    });
    let mut outputs = Vec::new();
    for r in results {
        match r {
            Ok(o) => outputs.push(o),
            Err(e) => {
                let _ = undo();
                return Err(e);
            }
        }
    }

    // Code masters and the population, written once the chunks are counted.
    let mut population = vec![0u32; POPULATION_CELLS];
    for o in &outputs {
        for (acc, n) in population.iter_mut().zip(&o.population) {
            *acc += n;
        }
    }
    let masters = write_masters(&shared, &population);
    let master_digests = match masters {
        Ok((files, digests)) => {
            outputs.push(ShardOutput { digests: Vec::new(), files, population: Vec::new() });
            digests
        }
        Err(e) => {
            let _ = undo();
            return Err(e);
        }
    };

    // Content digests, in chunk order.
    let mut chunk_digests: Vec<(u64, Vec<[u8; 32]>)> = outputs.iter_mut().flat_map(|o| std::mem::take(&mut o.digests)).collect();
    chunk_digests.sort_by_key(|(i, _)| *i);
    let mut table_entries = Vec::new();
    for (ti, t) in tables.iter().enumerate() {
        let mut h = Sha256::new();
        if t.is_master() {
            for (mi, d) in &master_digests {
                if *mi == ti {
                    h.update(d);
                }
            }
        } else {
            for (_, d) in &chunk_digests {
                h.update(d[ti]);
            }
        }
        let mut files: Vec<FileEntry> =
            outputs.iter().flat_map(|o| o.files.iter()).filter(|(i, _)| *i == ti).map(|(_, f)| f.clone()).collect();
        files.sort_by(|a, b| a.path.cmp(&b.path));
        let tk = &keys[ti];
        table_entries.push(TableEntry {
            name: t.name().to_string(),
            title_ja: t.title_ja().to_string(),
            title_en: t.title_en().to_string(),
            source_format: t.source_format().to_string(),
            rows: files.iter().map(|f| f.rows).sum(),
            content_mac: crate::catalog::keyed_digest(&catalog_key, "content", &h.finalize()),
            footer_key_id: tk.footer_id.clone(),
            files,
            columns: t
                .columns()
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
    let last = synth.start.plus(synth.months as i32 - 1);
    let entry = DatasetEntry {
        name: dataset.to_string(),
        title_ja: "合成NDB（医科・DPC・調剤レセプト、特定健診）と介護DB".into(),
        title_en: "Synthetic NDB (medical, DPC and pharmacy receipts; specific health checkups) with care DB".into(),
        description_ja: "日本の人口構成と疫学に合わせて生成した合成データ。氏名・被保険者番号は平文で保存せず、ハッシュID（ID1/ID2/ID4/ID5）のみを含む。".into(),
        description_en: "Synthetic data generated to match Japan's population structure and epidemiology. Names and insurance numbers are never stored; only hashed IDs (ID1/ID2/ID4/ID5).".into(),
        synthetic: true,
        generation: generation.clone(),
        kek_id: key_prefix(dataset, &generation),
        period_from: synth.start.yyyymm(),
        period_to: last.yyyymm(),
        persons: synth.persons,
        seed: synth.seed,
        created_at: utc_now(),
        created_by: format!("kura {}", env!("CARGO_PKG_VERSION")),
        tables: table_entries,
    };
    let _keys = home.lock_keys(true)?;
    let mut catalog = home.catalog_locked(&catalog_key)?;
    catalog.version = 1;
    catalog.datasets.insert(dataset.to_string(), entry.clone());
    home.save_catalog_locked(&mut catalog, &catalog_key)?;
    // The previous generation is no longer referenced: shred it, and replace the master key,
    // so that a copy of the old keyring is of no use with the master key from now on.
    let mut keyring = Keyring::load(&home.keyring_path())?;
    remove_other_generations(home, &mut keyring, dataset, Some(&generation))?;
    if previous.is_some() {
        home.rotate_master_locked(&mut keyring)?;
    } else {
        keyring.save(&home.keyring_path())?;
    }
    Ok(entry)
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
}
