//! A project's extract (HIC-P3, HIC-S13, issue 16): the granted columns of the granted tables,
//! written once into the workspace as the project sees them, and read from there.
//!
//! Reading the platform's files through a view that re-hashes IDs leaves one link between
//! projects: the order of the rows. A scan returns rows in stored order, so
//! `row_number() OVER ()` would be the same number for the same receipt in every project, and
//! two projects' outputs could be joined on it. The extract removes that link and the view's
//! cost per query:
//!
//! - The first start of a workspace (and the first after the dataset or the grant changed)
//!   writes every granted table into `extract/` of the workspace: person IDs already replaced
//!   by the project's pseudonyms, record ids already renumbered, and the rows **sorted by a
//!   keyed hash of their values** under a key of the project ([`kura_crypto::RowOrder`]), so
//!   their order says nothing of the platform's order and differs between projects. Where the
//!   grant shows the person pseudonym (or the record id a detail row reaches its person by),
//!   the rows are first clustered by that value: still keyed per project, and a person's rows
//!   lie together (`clustering_column`).
//! - The files are Parquet with every column and the footer encrypted (AES-GCM) under a key
//!   derived from the workspace key and the file's path, the path bound into the associated
//!   data: a file moved, swapped or altered fails. A manifest sealed under the workspace key
//!   lists each file with its size; nothing else is read ([`kura_store::FileCheck`]).
//! - The extract is written by a **builder**: a confined worker of its own, started only when
//!   the extract is missing, damaged or out of date, which holds the keys of the approved
//!   columns, reads the platform's files and writes `extract/`, one table at a time, each held
//!   to the statement time limit and the memory limit (the sort spills to encrypted files), and
//!   then exits. A lock file keeps two builders of one project from writing at once.
//! - The parent (not the worker) seals the manifest into `extract.manifest` of the workspace
//!   directory, where the worker's user cannot write, and checks before each start that every
//!   file it lists is a plain file of its size; anything else is rebuilt.
//! - The worker that answers the researchers' SQL never receives a column key and cannot open
//!   the platform's files (Landlock: the extract read-only, its saved tables read-write): it
//!   holds only the workspace key and the project's pseudonym key. Destroying the workspace
//!   key at the end of use leaves every copy of the extract unreadable (crypto-shredding).

use crate::workspace::WorkspaceSpec;
use crate::{QueryError, Result};
use async_trait::async_trait;
use datafusion::arrow::array::{ArrayRef, UInt64Array};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::row::{RowConverter, SortField};
use datafusion::catalog::TableProvider;
use datafusion::common::TableReference;
use datafusion::common::config::{EncryptionFactoryOptions, TableParquetOptions};
use datafusion::datasource::MemTable;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl};
use datafusion::error::DataFusionError;
use datafusion::execution::parquet_encryption::EncryptionFactory;
use datafusion::logical_expr::{
    ColumnarValue, Expr, LogicalPlanBuilder, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::basic::Compression;
use datafusion::parquet::encryption::decrypt::FileDecryptionProperties;
use datafusion::parquet::encryption::encrypt::FileEncryptionProperties;
use datafusion::parquet::file::properties::WriterProperties;
use datafusion::prelude::SessionContext;
use futures::StreamExt;
use kura_crypto::SecretKey;
use kura_store::{DatasetEntry, FileCheck};
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// The id under which a workspace engine registers the extract's decryption.
pub const EXTRACT_FACTORY_ID: &str = "kura-extract";

/// The name of the keyed sort key of the extract's rows.
pub const ROW_ORDER_FUNCTION: &str = "kura_row_order";

/// The manifest's first bytes.
const MAGIC: &[u8; 8] = b"KURAEXT1";

/// The manifest's format.
const VERSION: u32 = 1;

/// Rows per extract file (files are read in parallel).
const ROWS_PER_FILE: u64 = 2 << 20;

/// Rows per row group.
const ROW_GROUP_ROWS: usize = 128 << 10;

/// The key metadata of the footer and visible columns of an extract file.
const KEY_VISIBLE: &[u8] = b"v";

/// The key metadata of the hidden lineage columns.
const KEY_HIDDEN: &[u8] = b"h";

/// Where the object store of the extract is registered.
const STORE_URL: &str = "kura-extract://workspace";

/// The extract's directory in a workspace.
pub fn extract_dir(workspace_dir: &Path) -> PathBuf {
    workspace_dir.join("extract")
}

fn manifest_path(workspace_dir: &Path) -> PathBuf {
    workspace_dir.join("extract.manifest")
}

/// Forgets the workspace's extract (its manifest): the next start builds it again.
pub fn forget(workspace_dir: &Path) {
    let _ = std::fs::remove_file(manifest_path(workspace_dir));
}

/// What the extract holds, sealed under the workspace key.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Manifest {
    /// The manifest's format.
    pub version: u32,
    /// The project.
    pub project: String,
    /// What the extract was built from ([`fingerprint`]).
    pub fingerprint: String,
    /// The generation of the dataset it was built from (a running worker whose dataset was
    /// written again since is replaced).
    pub dataset_generation: String,
    /// The directory of this build, below `extract/`.
    pub generation: String,
    /// When it was built (UTC).
    pub built_at: String,
    /// The tables, with their files.
    pub tables: Vec<ExtractTable>,
    /// Whether the tables a person stands behind carry the hidden lineage columns
    /// ([`crate::hidden`]); an extract without them is built again for the airlock's checker.
    #[serde(default)]
    pub lineage: bool,
}

/// One table of the extract.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ExtractTable {
    /// The table's name.
    pub name: String,
    /// Its rows.
    pub rows: u64,
    /// Its files.
    pub files: Vec<ExtractFile>,
    /// Whether its files hold the hidden lineage columns after the visible ones.
    #[serde(default)]
    pub hidden: bool,
}

/// One file of the extract.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ExtractFile {
    /// Its path below `extract/`.
    pub path: String,
    /// Its size in bytes.
    pub bytes: u64,
    /// Its rows.
    pub rows: u64,
}

/// A table the extract is built from: the granted table as the workspace sees it (its
/// pseudonymised view) and the schema the engine shows.
pub(crate) struct Source {
    pub name: String,
    /// The column its rows are clustered by ([`clustering_column`]).
    pub cluster: Option<String>,
    pub schema: SchemaRef,
    pub provider: Arc<dyn TableProvider>,
    /// The rows the dataset's catalogue lists for the table (checked after the build).
    pub rows: Option<u64>,
    /// Whether `provider` gives the hidden lineage columns after the schema's ones.
    pub hidden: bool,
}

fn manifest_key(ws: &WorkspaceSpec) -> SecretKey {
    ws.key.derive(format!("kura/extract/v1/manifest\0{}", ws.project).as_bytes())
}

fn manifest_aad(ws: &WorkspaceSpec) -> Vec<u8> {
    format!("kura/extract-manifest/v1\0{}", ws.project).into_bytes()
}

fn file_key(ws: &WorkspaceSpec, path: &str) -> SecretKey {
    ws.key.derive(format!("kura/extract/v1/file\0{}\0{path}", ws.project).as_bytes())
}

fn file_aad(ws: &WorkspaceSpec, path: &str) -> Vec<u8> {
    format!("kura/extract/v1:{}:{path}", ws.project).into_bytes()
}

/// What an extract of `grant`'s tables would be built from — the dataset's files (by their
/// hashes) and each granted column — keyed by the workspace key, so that an extract is rebuilt
/// when any of it changes and the value says nothing outside the workspace.
pub fn fingerprint(ws: &WorkspaceSpec, dataset: &DatasetEntry, grant: &crate::Grant) -> String {
    // "clustered": rows ordered by a clustering column first (an older extract is rebuilt).
    let mut text = format!("kura/extract/v1\nclustered\n{}\n{}\n", ws.project, dataset.name);
    for t in &dataset.tables {
        let cols = grant.columns(t);
        if cols.is_empty() || t.files.is_empty() {
            continue;
        }
        text.push_str(&format!("table {}\n", t.name));
        if let Some(c) = clustering_column(&t.name, &cols) {
            text.push_str(&format!("clustered by {c}\n"));
        }
        for c in cols {
            text.push_str(&format!("column {} {} {} {:?}\n", c.name, c.data_type, c.nullable, c.sensitivity));
        }
        for f in &t.files {
            text.push_str(&format!("file {} {} {} {}\n", f.path, f.bytes, f.rows, f.sha256));
        }
    }
    kura_store::catalog::keyed_digest(&ws.key.derive(b"kura/extract/v1/fingerprint"), "extract", text.as_bytes())
}

/// The workspace's extract if its manifest is there, opens under the workspace key, was built
/// from what `fingerprint` describes, and every file it lists is a plain file (not a link) of
/// the listed size; `None` otherwise (it is then built again).
pub fn current(ws: &WorkspaceSpec, fingerprint: &str) -> Option<Manifest> {
    let bytes = std::fs::read(manifest_path(&ws.dir)).ok()?;
    let sealed = bytes.strip_prefix(MAGIC.as_slice())?;
    let plain = kura_crypto::open_sealed(&manifest_key(ws), &manifest_aad(ws), sealed).ok()?;
    let m: Manifest = serde_json::from_slice(&plain).ok()?;
    if m.version != VERSION || m.project != ws.project || m.fingerprint != fingerprint {
        return None;
    }
    let root = extract_dir(&ws.dir);
    let intact = m.tables.iter().flat_map(|t| t.files.iter()).all(|f| {
        is_relative_name(&f.path)
            && std::fs::symlink_metadata(root.join(&f.path)).is_ok_and(|meta| meta.file_type().is_file() && meta.len() == f.bytes)
    });
    intact.then_some(m)
}

/// A path below `extract/` as the builder writes them: `g…/table/part-NNNNN.parquet`, no `..`,
/// no absolute path.
fn is_relative_name(path: &str) -> bool {
    !path.is_empty()
        && path
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != ".." && c.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b)))
}

/// Seals `manifest` into the workspace directory (the parent does this, not the worker).
pub fn save_manifest(ws: &WorkspaceSpec, manifest: &Manifest) -> Result<()> {
    if manifest.project != ws.project || manifest.version != VERSION {
        return Err(QueryError::Integrity("作業環境の抽出の目録が別のものです / the extract's manifest is of another workspace".into()));
    }
    let json = zeroize::Zeroizing::new(serde_json::to_vec(manifest).map_err(|e| QueryError::Engine(e.to_string()))?);
    let sealed = kura_crypto::seal(&manifest_key(ws), &manifest_aad(ws), &json).map_err(|e| QueryError::Engine(e.to_string()))?;
    let mut file = MAGIC.to_vec();
    file.extend_from_slice(&sealed);
    let path = manifest_path(&ws.dir);
    kura_crypto::write_atomic(&path, &file, 0o600).map_err(|e| QueryError::Engine(format!("extract.manifest: {}", e.kind())))
}

/// An I/O error, naming the file by its last components only: the message reaches
/// researchers, who are not shown the home's paths.
fn io(path: &Path) -> impl Fn(std::io::Error) -> QueryError + '_ {
    move |e| {
        let mut parts: Vec<String> = path.iter().rev().take(3).map(|c| c.to_string_lossy().to_string()).collect();
        parts.reverse();
        QueryError::Engine(format!("作業環境の抽出 / the workspace's extract: …/{}: {}", parts.join("/"), e.kind()))
    }
}

/// Turns an engine error into Kura's (the engine's own classification: memory, damaged data…).
pub(crate) type Explain<'a> = &'a (dyn Fn(DataFusionError) -> QueryError + Sync);

/// Builds the extract of `sources` (see the module documentation), each table held to
/// `timeout`, and returns its manifest for the parent to seal ([`save_manifest`]). Another
/// builder of the project is waited for.
pub(crate) async fn build(
    ctx: &SessionContext,
    ws: &WorkspaceSpec,
    sources: &[Source],
    fingerprint: &str,
    dataset_generation: &str,
    timeout: Duration,
    explain: Explain<'_>,
) -> Result<Manifest> {
    let root = extract_dir(&ws.dir);
    std::fs::create_dir_all(&root).map_err(io(&root))?;
    let lock_path = root.join("lock");
    let lock = private_file(&lock_path, false)?;
    lock.lock().map_err(io(&lock_path))?;
    let mut random = [0u8; 8];
    kura_crypto::random_bytes(&mut random).map_err(|e| QueryError::Engine(e.to_string()))?;
    let generation = format!("g{}", hex::encode(random));
    let built = build_tables(ctx, ws, sources, &root, &generation, timeout, explain).await;
    let tables = match built {
        Ok(t) => t,
        Err(e) => {
            let _ = std::fs::remove_dir_all(root.join(&generation));
            return Err(e);
        }
    };
    let manifest = Manifest {
        version: VERSION,
        project: ws.project.clone(),
        fingerprint: fingerprint.to_string(),
        dataset_generation: dataset_generation.to_string(),
        generation: generation.clone(),
        built_at: kura_store::home::utc_now(),
        lineage: ws.lineage.is_some(),
        tables,
    };
    // Earlier builds (and anything a crash or a hostile worker left) go; the lock is held, so
    // no build is running. Links are removed, never followed.
    for e in std::fs::read_dir(&root).map_err(io(&root))?.flatten() {
        let name = e.file_name();
        if name == generation.as_str() || name == "lock" {
            continue;
        }
        let p = e.path();
        let _ = if e.file_type().is_ok_and(|t| t.is_dir()) { std::fs::remove_dir_all(&p) } else { std::fs::remove_file(&p) };
    }
    drop(lock);
    Ok(manifest)
}

fn private_file(path: &Path, truncate: bool) -> Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new().write(true).create(true).truncate(truncate).mode(0o600).open(path).map_err(io(path))
}

async fn build_tables(
    ctx: &SessionContext,
    ws: &WorkspaceSpec,
    sources: &[Source],
    root: &Path,
    generation: &str,
    timeout: Duration,
    explain: Explain<'_>,
) -> Result<Vec<ExtractTable>> {
    let order = Arc::new(ScalarUDF::new_from_impl(RowOrderFunction::new(ws)));
    let mut tables = Vec::new();
    for s in sources {
        let dir = root.join(generation).join(&s.name);
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        let columns: Vec<Expr> = s
            .schema
            .fields()
            .iter()
            .map(|f| Expr::Column(datafusion::common::Column::new(Some(TableReference::bare(s.name.as_str())), f.name())))
            .collect();
        let source = datafusion::catalog::default_table_source::provider_as_source(s.provider.clone());
        // The rows' order is keyed by their visible values only: a visible person pseudonym
        // (or record id) first, then the keyed hash of the whole row.
        let mut sort = Vec::new();
        if let Some(c) = &s.cluster {
            sort.push(Expr::Column(datafusion::common::Column::new(Some(TableReference::bare(s.name.as_str())), c)).sort(true, false));
        }
        sort.push(order.call(columns).sort(true, false));
        let plan = LogicalPlanBuilder::scan(TableReference::bare(s.name.as_str()), source, None)
            .and_then(|b| b.sort(sort))
            .and_then(|b| b.build())
            .map_err(explain)?;
        let work = async {
            let mut stream = ctx.execute_logical_plan(plan).await.map_err(explain)?.execute_stream().await.map_err(explain)?;
            let hidden = s.hidden && ws.lineage.is_some();
            let mut fields: Vec<Field> = s.schema.fields().iter().map(|f| f.as_ref().clone()).collect();
            if hidden {
                fields.extend(crate::hidden::hidden_fields());
            }
            let mut out = TableWriter {
                ws,
                schema: Arc::new(Schema::new(fields)),
                visible: s.schema.fields().len(),
                prefix: format!("{generation}/{}", s.name),
                root,
                open: None,
                files: Vec::new(),
            };
            while let Some(batch) = stream.next().await {
                out.write(batch.map_err(explain)?)?;
            }
            out.finish()
        };
        let files = match tokio::time::timeout(timeout, work).await {
            Ok(files) => files?,
            Err(_) => return Err(QueryError::Timeout(timeout.as_secs())),
        };
        sync_dir(&dir)?;
        let rows: u64 = files.iter().map(|f| f.rows).sum();
        // A parent record found twice (damaged data) would repeat the rows it joins: refused
        // rather than answered wrongly.
        if let Some(expected) = s.rows
            && rows != expected
        {
            return Err(QueryError::Integrity(format!(
                "作業環境の抽出：表 {} の行数が {rows} で、データセットの {expected} と違います / the extract of table {} has {rows} rows, the dataset {expected}",
                s.name, s.name
            )));
        }
        tables.push(ExtractTable { name: s.name.clone(), rows, files, hidden: s.hidden && ws.lineage.is_some() });
    }
    sync_dir(&root.join(generation))?;
    Ok(tables)
}

/// The granted column whose value the extract's rows of `table` are clustered by: the person
/// pseudonym where the grant shows it, else the record id through which the rows reach their
/// person (a detail table's receipt). Both are replaced by the project's own values (the
/// project's pseudonym, the project's keyed renumbering: [`crate::workspace`]), so the order
/// they give links nothing across projects, and it shows nothing the column does not: where
/// the grant withholds the column, the rows are not clustered by it. Only a column the
/// catalogue marks as a person ID or a record ID qualifies (those are the ones replaced).
/// Clustering keeps a person's rows (a detail table: a receipt's rows) together, which the
/// airlock's evidence aggregate folds as they come ([`crate::evidence`]) and which compresses
/// the person's repeated values.
pub(crate) fn clustering_column(table: &str, granted: &[&kura_store::ColumnEntry]) -> Option<String> {
    let lineage = kura_store::tables::lineage(table)?;
    let find = |name: &str, ok: &dyn Fn(&kura_store::ColumnEntry) -> bool| {
        granted.iter().find(|c| c.name == name && ok(c)).map(|c| c.name.clone())
    };
    let person = lineage.person.and_then(|p| find(p, &|c| crate::workspace::is_person_id(c.sensitivity)));
    person.or_else(|| {
        let (_, key) = lineage.parent?;
        find(key, &|c| crate::workspace::is_record_id(c.sensitivity, &c.data_type))
    })
}

fn sync_dir(dir: &Path) -> Result<()> {
    std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))
}

/// Writes one table's sorted rows into files of at most [`ROWS_PER_FILE`] rows.
struct TableWriter<'a> {
    ws: &'a WorkspaceSpec,
    /// The visible columns, then the hidden ones (if any).
    schema: SchemaRef,
    /// How many of the schema's columns are visible.
    visible: usize,
    prefix: String,
    root: &'a Path,
    open: Option<(ArrowWriter<std::fs::File>, String, u64)>,
    files: Vec<ExtractFile>,
}

impl TableWriter<'_> {
    fn write(&mut self, batch: RecordBatch) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        // The schema the engine shows (non-null columns checked here).
        let batch = RecordBatch::try_new(self.schema.clone(), batch.columns().to_vec()).map_err(|e| QueryError::Engine(e.to_string()))?;
        if self.open.as_ref().is_some_and(|(_, _, rows)| *rows >= ROWS_PER_FILE) {
            self.close()?;
        }
        if self.open.is_none() {
            let rel = format!("{}/part-{:05}.parquet", self.prefix, self.files.len());
            let path = self.root.join(&rel);
            let file = private_file(&path, true)?;
            let key = file_key(self.ws, &rel);
            let mut encryption = FileEncryptionProperties::builder(key.expose().to_vec())
                .with_footer_key_metadata(KEY_VISIBLE.to_vec())
                .with_aad_prefix(file_aad(self.ws, &rel))
                .with_aad_prefix_storage(false);
            // With hidden columns, every column names its key: the visible ones the file's key,
            // the hidden ones the project's lineage key, which the answering worker lacks.
            if let Some(lineage) = self.ws.lineage.as_ref().filter(|_| self.schema.fields().len() > self.visible) {
                let hidden_key = lineage.column_key(&rel);
                for (i, f) in self.schema.fields().iter().enumerate() {
                    let (k, meta) = if i < self.visible { (&key, KEY_VISIBLE) } else { (&hidden_key, KEY_HIDDEN) };
                    encryption = encryption.with_column_key_and_metadata(f.name(), k.expose().to_vec(), meta.to_vec());
                }
            }
            let encryption = encryption.build().map_err(|e| QueryError::Engine(format!("{rel}: {e}")))?;
            let props = WriterProperties::builder()
                .set_compression(Compression::SNAPPY)
                .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
                .set_created_by("kura".into())
                .with_file_encryption_properties(encryption)
                .build();
            let writer =
                ArrowWriter::try_new(file, self.schema.clone(), Some(props)).map_err(|e| QueryError::Engine(format!("{rel}: {e}")))?;
            self.open = Some((writer, rel, 0));
        }
        if let Some((w, rel, rows)) = self.open.as_mut() {
            w.write(&batch).map_err(|e| QueryError::Engine(format!("{rel}: {e}")))?;
            *rows += batch.num_rows() as u64;
        }
        Ok(())
    }

    fn close(&mut self) -> Result<()> {
        let Some((w, rel, rows)) = self.open.take() else { return Ok(()) };
        w.close().map_err(|e| QueryError::Engine(format!("{rel}: {e}")))?;
        let path = self.root.join(&rel);
        let file = std::fs::File::open(&path).map_err(io(&path))?;
        file.sync_all().map_err(io(&path))?;
        let bytes = file.metadata().map_err(io(&path))?.len();
        self.files.push(ExtractFile { path: rel, bytes, rows });
        Ok(())
    }

    fn finish(mut self) -> Result<Vec<ExtractFile>> {
        self.close()?;
        Ok(self.files)
    }
}

/// Registers the extract's tables in `ctx` under their names, with the schemas of `sources`:
/// only the files of the manifest are read, each under its own key.
pub(crate) fn register(
    ctx: &SessionContext,
    ws: &WorkspaceSpec,
    manifest: &Manifest,
    sources: &[Source],
    mut options: TableParquetOptions,
) -> Result<()> {
    let root = extract_dir(&ws.dir);
    let store: Arc<dyn object_store::ObjectStore> = Arc::new(
        LocalFileSystem::new_with_prefix(&root)
            .map_err(|e| kura_store::StoreError::ObjectStore { path: root.display().to_string(), reason: e.to_string() })?,
    );
    let files: HashMap<String, u64> = manifest.tables.iter().flat_map(|t| t.files.iter()).map(|f| (f.path.clone(), f.bytes)).collect();
    let factory = ExtractFactory { ws: ws.clone(), files: FileCheck::new(files, store.clone()) };
    // The airlock's checker sees the hidden lineage columns; the answering worker has neither
    // their key nor their names.
    let checker = ws.lineage.is_some();
    let runtime = ctx.runtime_env();
    runtime.register_parquet_encryption_factory(EXTRACT_FACTORY_ID, Arc::new(factory));
    let url = url::Url::parse(STORE_URL).map_err(|e| QueryError::Engine(e.to_string()))?;
    runtime.register_object_store(&url, store);
    options.crypto.factory_id = Some(EXTRACT_FACTORY_ID.to_string());
    let engine_err = |e: DataFusionError| QueryError::Engine(e.to_string());
    for s in sources {
        let Some(t) = manifest.tables.iter().find(|t| t.name == s.name) else {
            return Err(QueryError::Integrity(format!(
                "作業環境の抽出に表 '{}' がありません / the workspace's extract has no table '{}'",
                s.name, s.name
            )));
        };
        let schema = if checker && t.hidden {
            let mut fields: Vec<Field> = s.schema.fields().iter().map(|f| f.as_ref().clone()).collect();
            fields.extend(crate::hidden::hidden_fields());
            Arc::new(Schema::new(fields))
        } else {
            s.schema.clone()
        };
        let provider: Arc<dyn TableProvider> = if t.files.is_empty() {
            Arc::new(MemTable::try_new(schema, vec![vec![]]).map_err(engine_err)?)
        } else {
            let format = ParquetFormat::default().with_options(options.clone());
            let listing = ListingOptions::new(Arc::new(format)).with_file_extension(".parquet");
            let urls = t
                .files
                .iter()
                .map(|f| ListingTableUrl::parse(format!("{STORE_URL}/{}", f.path)).map_err(engine_err))
                .collect::<Result<Vec<_>>>()?;
            let config = ListingTableConfig::new_with_multi_paths(urls).with_listing_options(listing).with_schema(schema);
            Arc::new(ListingTable::try_new(config).map_err(engine_err)?)
        };
        ctx.register_table(s.name.as_str(), provider).map_err(engine_err)?;
    }
    Ok(())
}

/// Decryption of the extract's files: listed in the manifest, of their size, each under the
/// key derived for its path.
struct ExtractFactory {
    ws: WorkspaceSpec,
    files: FileCheck,
}

impl std::fmt::Debug for ExtractFactory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ExtractFactory({}, {:?})", self.ws.project, self.files)
    }
}

#[async_trait]
impl EncryptionFactory for ExtractFactory {
    async fn get_file_encryption_properties(
        &self,
        _config: &EncryptionFactoryOptions,
        _schema: &SchemaRef,
        file_path: &ObjectPath,
    ) -> datafusion::error::Result<Option<Arc<FileEncryptionProperties>>> {
        Err(DataFusionError::Plan(format!("書き込みは許可されていません / writing is not allowed: {file_path}")))
    }

    async fn get_file_decryption_properties(
        &self,
        _config: &EncryptionFactoryOptions,
        file_path: &ObjectPath,
    ) -> datafusion::error::Result<Option<Arc<FileDecryptionProperties>>> {
        self.files.check(file_path).await.map_err(|e| DataFusionError::External(Box::new(e)))?;
        let rel = file_path.as_ref();
        let keys = FileKeys { visible: file_key(&self.ws, rel), hidden: self.ws.lineage.as_ref().map(|l| l.column_key(rel)) };
        let props = FileDecryptionProperties::with_key_retriever(Arc::new(keys))
            .with_aad_prefix(file_aad(&self.ws, rel))
            .build()
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
        Ok(Some(props))
    }
}

/// The keys of one extract file, by the key metadata its footer and columns carry: the hidden
/// columns' key only where this engine is the checker. A column whose key is not given is left
/// unread (its metadata stays encrypted).
struct FileKeys {
    visible: SecretKey,
    hidden: Option<SecretKey>,
}

impl datafusion::parquet::encryption::decrypt::KeyRetriever for FileKeys {
    fn retrieve_key(&self, key_metadata: &[u8]) -> datafusion::parquet::errors::Result<Vec<u8>> {
        match (key_metadata, &self.hidden) {
            // Files without hidden columns name no key (uniform encryption).
            (b"" | KEY_VISIBLE, _) => Ok(self.visible.expose().to_vec()),
            (KEY_HIDDEN, Some(k)) => Ok(k.expose().to_vec()),
            _ => Err(datafusion::parquet::errors::ParquetError::General("no key for this column".into())),
        }
    }
}

/// The keyed sort key of a row of the extract (see the module documentation).
#[derive(Debug)]
struct RowOrderFunction {
    project: String,
    order: kura_crypto::RowOrder,
    signature: Signature,
}

impl RowOrderFunction {
    fn new(ws: &WorkspaceSpec) -> Self {
        Self { project: ws.project.clone(), order: ws.pseudonym.row_order(), signature: Signature::variadic_any(Volatility::Immutable) }
    }
}

impl PartialEq for RowOrderFunction {
    fn eq(&self, other: &Self) -> bool {
        self.project == other.project
    }
}

impl Eq for RowOrderFunction {}

impl std::hash::Hash for RowOrderFunction {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.project.hash(state);
    }
}

impl ScalarUDFImpl for RowOrderFunction {
    fn name(&self) -> &str {
        ROW_ORDER_FUNCTION
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> datafusion::common::Result<DataType> {
        Ok(DataType::UInt64)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> datafusion::common::Result<ColumnarValue> {
        let n = args.number_rows;
        let arrays: Vec<ArrayRef> = args.args.iter().map(|a| a.to_array(n)).collect::<datafusion::common::Result<_>>()?;
        let fields = arrays.iter().map(|a| SortField::new(a.data_type().clone())).collect();
        let converter = RowConverter::new(fields)?;
        let rows = converter.convert_columns(&arrays)?;
        let keys: UInt64Array = (0..rows.num_rows()).map(|i| self.order.key(rows.row(i).as_ref())).collect();
        Ok(ColumnarValue::Array(Arc::new(keys)))
    }
}

#[cfg(test)]
mod tests {
    use super::clustering_column;
    use kura_store::{ColumnEntry, Sensitivity};

    fn column(name: &str, data_type: &str, sensitivity: Sensitivity) -> ColumnEntry {
        ColumnEntry {
            name: name.into(),
            data_type: data_type.into(),
            nullable: true,
            title_ja: String::new(),
            title_en: String::new(),
            code_system: None,
            sensitivity,
            key_id: String::new(),
        }
    }

    /// HIC-P3: the rows are clustered only by a granted person ID or record ID, never by a
    /// column the grant withholds, and never by a column the catalogue does not mark as one of
    /// those (its values would not be the project's own).
    #[test]
    fn rows_cluster_only_by_a_granted_id_the_project_renumbered() {
        let id5 = column("id5", "Utf8", Sensitivity::Identifier);
        let receipt = column("receipt_id", "Int64", Sensitivity::Internal);
        let sex = column("sex", "Utf8", Sensitivity::Quasi);
        assert_eq!(clustering_column("re", &[&id5, &receipt, &sex]).as_deref(), Some("id5"));
        assert_eq!(clustering_column("re", &[&receipt, &sex]), None, "re without its person ID");
        assert_eq!(clustering_column("si", &[&receipt]).as_deref(), Some("receipt_id"));
        assert_eq!(clustering_column("si", &[&sex]), None);
        let plain_id5 = column("id5", "Utf8", Sensitivity::Quasi);
        assert_eq!(clustering_column("re", &[&plain_id5]), None, "not marked as a person ID");
        assert_eq!(clustering_column("m_drug", &[&id5]), None, "a master has no person");
    }
}
