//! # kura-intake — institutions' files in, as a new encrypted dataset generation
//!
//! Flow 1 of `../shared/design/architecture.md` (issue 18 §2; HX-1, HX-2, HX-12): a UKE file
//! is parsed and validated by `kura-formats` ([`read_uke`]), each accepted receipt becomes rows
//! of the receipt tables with its hashed IDs computed in memory ([`uke`]), and [`load`] writes
//! the rows of every accepted file — after the rows of the dataset's previous generation,
//! carried over unchanged — as one new generation through `kura-store`'s dataset writer:
//! encrypted columns, the catalogue updated only at the commit, and nothing of the new
//! generation left behind if anything fails before it.
//!
//! A file is loaded whole (its accepted receipts) or not at all: a problem in its header, its
//! numbering, its `GO` record or its ID5 answers refuses the file and none of its rows are
//! written. A receipt with problems is rejected and listed ([`FileOutcome::rejected`]) while
//! the file's other receipts load. Hashing the file and its records into the ledger is the
//! caller's (the `kura` binary, which reads each file through `kura_ledger`'s record hasher so
//! that the bytes parsed are the bytes hashed).

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
#![forbid(unsafe_code)]

pub mod rows;
pub mod uke;

use datafusion::arrow::array::{Array, Int64Array};
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::record_batch::RecordBatch;
use futures::StreamExt;
use kura_crypto::PseudonymKey;
use kura_formats::Problem;
use kura_formats::uke::{FileKind, Reader, Rejected};
use kura_query::{EngineSpec, QueryEngine};
use kura_store::{DatasetEntry, DatasetMeta, DatasetWriter, Home, PartWriter, StoreError, WriteOptions};
pub use rows::Staged;
use std::io::BufRead;
pub use uke::{Billing, Id5Answers};

/// Errors of loading (a file's own problems are not errors: see [`FileOutcome`]).
#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    /// The store refused or failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The previous generation could not be read.
    #[error(transparent)]
    Query(#[from] kura_query::QueryError),
    /// Rows did not make a batch.
    #[error("バッチを作れません / cannot build a batch: {0}")]
    Batch(#[from] ArrowError),
    /// The dataset named holds data intake must not mix with.
    #[error("{0}")]
    Dataset(String),
}

/// Result type of this crate.
pub type Result<T> = std::result::Result<T, IntakeError>;

/// What became of one file.
#[derive(Debug, Clone, Default)]
pub struct FileOutcome {
    /// The file's name as given.
    pub name: String,
    /// Its kind, once its header was read.
    pub kind: Option<FileKind>,
    /// The billing institution (10-digit code), once its header was read.
    pub institution: Option<String>,
    /// Receipts accepted.
    pub accepted: u64,
    /// Receipts rejected, each with its located problems.
    pub rejected: Vec<Rejected>,
    /// Why the whole file was refused (nothing of it is loaded).
    pub refused: Option<Problem>,
    /// The receipt ids its rows received in the dataset, once loaded (first, last).
    pub receipt_ids: Option<(i64, i64)>,
}

impl FileOutcome {
    /// Whether the file is loaded (possibly with rejected receipts).
    pub fn loaded(&self) -> bool {
        self.refused.is_none()
    }
}

/// Reads one UKE file: every receipt validated and converted, or the file refused. `expect`:
/// the institution the sender may bill as (a provider's own code); a file of another is
/// refused. Rows are numbered from 1 within the file.
pub fn read_uke<R: BufRead>(name: &str, input: R, id5: &Id5Answers, key: &PseudonymKey, expect: Option<&str>) -> (FileOutcome, Staged) {
    let mut out = FileOutcome { name: name.to_string(), ..FileOutcome::default() };
    let mut staged = Staged::default();
    let mut reader = Reader::new(name, input);
    let mut billing: Option<Billing> = None;
    let mut numbers = std::collections::HashSet::new();
    loop {
        let next = match reader.next_receipt() {
            Ok(n) => n,
            Err(p) => {
                out.refused = Some(p);
                return (out, Staged::default());
            }
        };
        if billing.is_none() {
            out.kind = reader.kind();
            if let Some(k) = reader.kind().filter(|k| !matches!(k, FileKind::Medical | FileKind::Pharmacy)) {
                out.refused = Some(Problem {
                    file: name.to_string(),
                    line: 1,
                    record: reader.header().last().map(|r| r.id().to_string()),
                    field: Some((3, "点数表")),
                    message: format!(
                        "{} のファイルはまだ受け入れられません（医科・DPC・調剤のみ）/ {} files are not taken in yet: medical, DPC and pharmacy only",
                        k.name_ja(),
                        k.name_ja()
                    ),
                });
                return (out, Staged::default());
            }
            let Some(b) = Billing::from_header(reader.header()) else {
                out.refused = Some(Problem {
                    file: name.to_string(),
                    line: 1,
                    record: None,
                    field: None,
                    message: "ヘッダーに医療機関等コードがありません / the header has no institution code".into(),
                });
                return (out, Staged::default());
            };
            if let Some(e) = expect.filter(|e| *e != b.institution) {
                out.refused = Some(Problem {
                    file: name.to_string(),
                    line: 1,
                    record: reader.header().last().map(|r| r.id().to_string()),
                    field: Some((4, "医療機関コード")),
                    message: format!(
                        "このファイルは医療機関 {} の請求です。{e} として提出できるのは自機関のファイルだけです / the file bills as institution {}: as {e} you may submit only your own",
                        b.institution, b.institution
                    ),
                });
                return (out, Staged::default());
            }
            out.institution = Some(b.institution.clone());
            billing = Some(b);
        }
        let Some(next) = next else { break };
        let Some(b) = billing.as_ref() else { break };
        let number = match &next {
            Ok(r) => r.re().and_then(|re| re.number(1)),
            Err(rej) => rej.number.parse().ok(),
        };
        numbers.extend(number);
        match next {
            Ok(receipt) => {
                let conv = uke::Converter { file: name, kind: reader.kind().unwrap_or(FileKind::Medical), billing: b, key, id5 };
                let id = staged.receipts() as i64 + 1;
                match conv.convert(&receipt, id, &mut staged) {
                    Ok(()) => out.accepted += 1,
                    Err(p) => out.rejected.push(Rejected {
                        line: receipt.re().map_or(0, |r| r.line),
                        number: receipt.re().map(|r| r.field(1).to_string()).unwrap_or_default(),
                        records: receipt.records.len(),
                        problems: vec![p],
                    }),
                }
            }
            Err(rejected) => out.rejected.push(rejected),
        }
    }
    // An answer for a receipt the file does not have: the answers are another file's.
    if let Some(n) = id5.numbers().find(|n| !numbers.contains(n)) {
        out.refused = Some(Problem {
            file: name.to_string(),
            line: 0,
            record: None,
            field: None,
            message: format!(
                "ID5 の回答にこのファイルにないレセプト番号 {n} があります（別のファイルの回答）/ the ID5 answers name receipt {n}, which this file does not have: they answer another file"
            ),
        });
        return (out, Staged::default());
    }
    (out, staged)
}

/// Runs `work` on every job on up to `threads` threads and hands each result to `consume` on
/// the caller's thread **in the jobs' order** (files are recorded and numbered in the order
/// given, however the parsing is spread). At most `2 × threads` results wait at a time. The
/// first error of `consume` stops the jobs not yet started and is returned.
pub fn ordered<J: Sync, T: Send>(
    jobs: &[J],
    threads: usize,
    work: impl Fn(&J) -> T + Sync,
    mut consume: impl FnMut(T) -> Result<()>,
) -> Result<()> {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let threads = threads.clamp(1, jobs.len().max(1));
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let (tx, rx) = std::sync::mpsc::sync_channel::<(usize, T)>(threads * 2);
    std::thread::scope(|s| {
        for _ in 0..threads {
            let tx = tx.clone();
            let (next, stop, work) = (&next, &stop, &work);
            s.spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(job) = jobs.get(i) else { break };
                    if tx.send((i, work(job))).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        let mut waiting = std::collections::BTreeMap::new();
        let mut due = 0usize;
        let mut result = Ok(());
        for (i, t) in rx.iter() {
            waiting.insert(i, t);
            while let Some(t) = waiting.remove(&due) {
                due += 1;
                if result.is_ok() {
                    result = consume(t);
                    if result.is_err() {
                        stop.store(true, Ordering::Relaxed);
                    }
                }
            }
        }
        result
    })
}

/// What [`load`] published.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The new generation's catalogue entry.
    pub entry: DatasetEntry,
    /// Receipts carried over from the previous generation.
    pub carried_receipts: u64,
    /// Receipts added.
    pub added_receipts: u64,
}

/// Where [`load`]'s caller puts each accepted file's rows.
pub struct Sink<'a> {
    part: PartWriter<'a>,
    next_id: i64,
    seq: u64,
    months: Option<(i32, i32)>,
    added: u64,
    files: u64,
    /// SHA-256 of every file the dataset holds, this run's included.
    loaded: std::collections::HashSet<String>,
}

/// A file as [`Sink::add`] records it in the dataset.
#[derive(Debug, Clone)]
pub struct FileInfo<'a> {
    /// SHA-256 of the file, hex.
    pub sha256: &'a str,
    /// Its name as given.
    pub name: &'a str,
    /// Its outcome.
    pub outcome: &'a FileOutcome,
}

impl Sink<'_> {
    /// Whether a file with this SHA-256 is already in the dataset (loaded by an earlier
    /// generation or earlier in this run).
    pub fn holds(&self, sha256: &str) -> bool {
        self.loaded.contains(sha256)
    }

    /// Writes a file's rows and its record in the dataset's `intake_file` table; gives the
    /// receipt ids its rows received (first, last), `None` if it had no receipt to load. A
    /// file the dataset already holds is refused (`IntakeError::Dataset`).
    pub fn add(&mut self, staged: &Staged, file: &FileInfo<'_>) -> Result<Option<(i64, i64)>> {
        if !self.loaded.insert(file.sha256.to_string()) {
            return Err(IntakeError::Dataset(format!(
                "{}: 同じ内容のファイル（SHA-256 {}）は受け入れ済みです / a file with this content (SHA-256 {}) is already taken in",
                file.name, file.sha256, file.sha256
            )));
        }
        let base = self.next_id - 1;
        let n = staged.receipts() as i64;
        let ids = (n > 0).then_some((base + 1, base + n));
        let row = rows::FileRow {
            sha256: file.sha256.to_string(),
            name: file.name.to_string(),
            institution_code: file.outcome.institution.clone().unwrap_or_default(),
            receipts: n,
            rejected: file.outcome.rejected.len() as i64,
            first_receipt_id: ids.map(|i| i.0),
            last_receipt_id: ids.map(|i| i.1),
        };
        if let Some(b) = rows::file_batch(&row)? {
            self.part.write(rows::INTAKE_FILE.name, self.seq, &b)?;
        }
        self.files += 1;
        for (table, batch) in staged.batches(base)? {
            self.part.write(table, self.seq, &batch)?;
        }
        self.seq += 1;
        for r in &staged.re {
            let (lo, hi) = self.months.unwrap_or((r.service_month, r.service_month));
            self.months = Some((lo.min(r.service_month), hi.max(r.service_month)));
        }
        self.next_id += n;
        self.added += n as u64;
        Ok(ids)
    }
}

/// The dataset title intake gives.
const TITLE_JA: &str = "受け入れたレセプト（UKE）";
const TITLE_EN: &str = "Receipts received (UKE files)";

/// Writes a new generation of `dataset`: the previous generation's rows carried over (they
/// keep their receipt ids), then whatever `f` adds through the [`Sink`], numbered after them.
/// Published only if `f` succeeds and something was added; otherwise the previous generation
/// stays as it was. A dataset that holds synthetic data is refused: received files are never
/// mixed with generated ones.
pub fn load<T>(home: &Home, dataset: &str, f: impl FnOnce(&mut Sink<'_>) -> Result<T>) -> Result<(T, Option<Loaded>)> {
    let refuse = |p: &DatasetEntry| {
        IntakeError::Dataset(format!(
            "データセット {} は受け入れたレセプトではありません（{}）。別の名前を --dataset で指定してください / dataset {} does not hold received receipts ({}): give another name with --dataset",
            p.name, p.title_ja, p.name, p.title_en
        ))
    };
    // A first look, so that a wrong target is refused before any key is made.
    if let Some(p) = home.catalog()?.datasets.get(dataset).filter(|p| p.synthetic || p.title_en != TITLE_EN) {
        return Err(refuse(p));
    }
    let opts = WriteOptions::from_home(home, dataset);
    let writer = DatasetWriter::begin(home, &rows::TABLES, &opts)?;
    // The previous generation as it is now that this writer holds the home's write lock: an
    // intake that finished meanwhile is carried over, not replaced.
    let previous = home.catalog()?.datasets.get(dataset).cloned();
    if let Some(p) = previous.as_ref().filter(|p| p.synthetic || p.title_en != TITLE_EN) {
        return Err(refuse(p));
    }
    let mut parts = Vec::new();
    let mut carried = Carried::default();
    if let Some(p) = &previous {
        let mut part = writer.part(0)?;
        carried = carry(home, p, &mut part)?;
        parts.push(part.finish()?);
    }
    // Sequence numbers go on after the carried batches': the tables' content MACs follow them.
    let mut sink = Sink {
        part: writer.part(1)?,
        next_id: carried.max_id + 1,
        seq: carried.batches,
        months: None,
        added: 0,
        files: 0,
        loaded: carried.files,
    };
    let value = f(&mut sink)?;
    let Sink { part, months, added, files, .. } = sink;
    parts.push(part.finish()?);
    if files == 0 {
        return Ok((value, None)); // dropping the writer removes the unused generation
    }
    let carried = carried.receipts;
    let (lo, hi) = months.unwrap_or((0, 0));
    let (lo, hi) = match &previous {
        Some(p) => (lo.min(p.period_from), hi.max(p.period_to)),
        None => (lo, hi),
    };
    let meta = DatasetMeta {
        title_ja: TITLE_JA.into(),
        title_en: TITLE_EN.into(),
        description_ja: "医療機関・薬局から受け入れたUKEファイルのレセプト。氏名・被保険者番号は保存せず、ハッシュID（ID1/ID2/ID4/ID5）のみ。".into(),
        description_en: "Receipts from the UKE files institutions and pharmacies sent. Names and insurance numbers are never stored; only hashed IDs (ID1/ID2/ID4/ID5).".into(),
        synthetic: false,
        period_from: lo,
        period_to: hi,
        persons: 0,
        seed: 0,
    };
    let entry = writer.commit(meta, parts)?;
    Ok((value, Some(Loaded { entry, carried_receipts: carried, added_receipts: added })))
}

/// What a new generation took over from the previous one.
#[derive(Debug, Default)]
struct Carried {
    receipts: u64,
    max_id: i64,
    batches: u64,
    /// SHA-256 of every file it holds.
    files: std::collections::HashSet<String>,
}

/// Copies every row of the previous generation into `part`, in file order.
fn carry(home: &Home, previous: &DatasetEntry, part: &mut PartWriter<'_>) -> Result<Carried> {
    let mut spec = EngineSpec::from_home(home, &previous.name, None)?;
    spec.limits.target_partitions = 1;
    spec.limits.max_result_rows = usize::MAX;
    spec.limits.max_result_bytes = usize::MAX;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| StoreError::io(std::path::Path::new("tokio runtime"), e))?;
    let engine = QueryEngine::new(spec)?;
    let (mut receipts, mut max_id, mut seq) = (0u64, 0i64, 0u64);
    let mut files = std::collections::HashSet::new();
    for table in rows::TABLES {
        if previous.table(table.name).is_none_or(|t| t.files.is_empty()) {
            continue;
        }
        let mut stream = rt.block_on(engine.scan(table.name))?;
        let schema = table.schema();
        while let Some(batch) = rt.block_on(stream.next()) {
            let batch = batch.map_err(|e| kura_query::QueryError::Engine(e.to_string()))?;
            // The engine reads text as views; the files keep the table's own types.
            let columns = schema
                .fields()
                .iter()
                .map(|f| {
                    let c = batch
                        .column_by_name(f.name())
                        .ok_or_else(|| ArrowError::SchemaError(format!("{}: no column {}", table.name, f.name())))?;
                    datafusion::arrow::compute::cast(c, f.data_type())
                })
                .collect::<std::result::Result<Vec<_>, ArrowError>>()?;
            let batch = RecordBatch::try_new(schema.clone(), columns)?;
            if table.name == kura_store::tables::RE.name {
                receipts += batch.num_rows() as u64;
                if let Some(ids) = batch.column(0).as_any().downcast_ref::<Int64Array>() {
                    max_id = max_id.max(datafusion::arrow::compute::max(ids).unwrap_or(0));
                }
            }
            if table.name == rows::INTAKE_FILE.name
                && let Some(shas) = batch.column(0).as_any().downcast_ref::<datafusion::arrow::array::StringArray>()
            {
                files.extend(shas.iter().flatten().map(str::to_string));
            }
            part.write(table.name, seq, &batch)?;
            seq += 1;
        }
    }
    Ok(Carried { receipts, max_id, batches: seq, files })
}
