//! The query engine: a DataFusion session holding only the granted tables.

use crate::grant::Grant;
use crate::policy::{self, Allowed};
use crate::{QueryError, Result};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::view::ViewTable;
use datafusion::common::TableReference;
use datafusion::common::config::TableParquetOptions;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl};
use datafusion::error::DataFusionError;
use datafusion::execution::disk_manager::DiskManagerBuilder;
use datafusion::execution::memory_pool::{GreedyMemoryPool, TrackConsumersPool};
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::logical_expr::{DdlStatement, Expr, LogicalPlan};
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion::sql::parser::{DFParserBuilder, Statement as DFStatement};
use datafusion::sql::sqlparser::ast::Statement;
use datafusion::sql::sqlparser::dialect::GenericDialect;
use futures::StreamExt;
use kura_store::keys::FACTORY_ID;
use kura_store::{DatasetEntry, GrantedKeys, Home, KuraEncryptionFactory};
use object_store::local::LocalFileSystem;
use std::collections::HashSet;
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Resource limits of one engine.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Limits {
    /// Memory pool size in bytes (operators spill or fail beyond it).
    pub memory_bytes: usize,
    /// Wall-clock limit per statement.
    pub timeout: Duration,
    /// Spill directory (inside the home, owner-only).
    pub spill_dir: PathBuf,
    /// Spill space limit in bytes.
    pub spill_bytes: u64,
    /// Parallelism (0 = CPUs).
    pub target_partitions: usize,
    /// Most rows a statement may return.
    pub max_result_rows: usize,
    /// Most bytes (in memory) a statement may return.
    pub max_result_bytes: usize,
    /// Whether Kura's plan rewrites are applied.
    pub rewrites: bool,
    /// Operator-set DataFusion options (from `kura.toml`).
    pub settings: std::collections::BTreeMap<String, String>,
    /// Confinement mechanisms the worker may run without ([`crate::confine`]).
    pub allow_without: Vec<crate::confine::Mechanism>,
}

impl Limits {
    /// Limits from a home's configuration (`[query]`).
    pub fn from_home(home: &Home) -> Result<Self> {
        let q: crate::config::QueryConfig = home.section("query")?;
        if let Some(bad) = q.allow_without.iter().find(|m| crate::confine::Mechanism::parse(m).is_none()) {
            return Err(crate::QueryError::Config(format!(
                "kura.toml [query] allow_without: '{bad}' は隔離の仕組みの名前ではありません / is not a mechanism (landlock, seccomp, network namespace, memory limit, cpu limit)"
            )));
        }
        Ok(Self::new(home, &q))
    }

    /// Limits from a query configuration; spill files go to the home's temporary directory.
    pub fn new(home: &Home, q: &crate::config::QueryConfig) -> Self {
        Self {
            memory_bytes: if q.memory_limit_mb == 0 {
                default_memory_limit()
            } else {
                (q.memory_limit_mb as usize).saturating_mul(1 << 20)
            },
            timeout: Duration::from_secs(q.timeout_secs.max(1)),
            spill_dir: home.tmp_dir(),
            spill_bytes: q.spill_limit_mb.saturating_mul(1 << 20),
            target_partitions: q.target_partitions,
            max_result_rows: 1_000_000,
            max_result_bytes: 512 << 20,
            rewrites: q.rewrites,
            settings: q.datafusion.clone(),
            allow_without: q.allow_without.iter().filter_map(|m| crate::confine::Mechanism::parse(m)).collect(),
        }
    }
}

/// Tables up to this many rows count as small (code masters) for join ordering.
const SMALL_TABLE_ROWS: u64 = 100_000;

/// Half of the machine's physical memory (or 4 GiB when it cannot be read): the default when
/// `memory_limit_mb = 0`.
pub fn default_memory_limit() -> usize {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("MemTotal:")).and_then(|l| l.split_whitespace().nth(1)).and_then(|kb| kb.parse::<usize>().ok())
        })
        .map_or(4 << 30, |kb| kb * 1024 / 2)
}

/// Everything an engine needs: a dataset's catalogue entry, the grant, exactly the granted keys,
/// the data root and the limits.
pub struct EngineSpec {
    /// The dataset.
    pub dataset: DatasetEntry,
    /// The grant.
    pub grant: Grant,
    /// The unwrapped keys of the grant.
    pub keys: GrantedKeys,
    /// The root of the data files.
    pub data_root: PathBuf,
    /// Limits.
    pub limits: Limits,
    /// The project's workspace, when the engine is one (project pseudonyms, saved tables).
    pub workspace: Option<crate::workspace::WorkspaceSpec>,
}

impl EngineSpec {
    /// Builds a spec from a home: looks the dataset up and unwraps only the granted keys.
    pub fn from_home(home: &Home, dataset: &str, grant: Option<Grant>) -> Result<Self> {
        // One consistent view of keys and catalogue, even while a dataset is being rewritten.
        let (master, keyring, catalog) = home.snapshot()?;
        let entry = catalog.datasets.get(dataset).cloned().ok_or_else(|| kura_store::StoreError::UnknownDataset(dataset.into()))?;
        let grant = grant.unwrap_or_else(|| Grant::everything(&entry));
        let ids = grant.key_ids(&entry);
        let keys = GrantedKeys::unwrap(&master, &keyring, ids.iter().map(String::as_str))?;
        Ok(Self { dataset: entry, grant, keys, data_root: home.data_dir(), limits: Limits::from_home(home)?, workspace: None })
    }

    /// Gives a workspace's spec what its extract's builder needs for the hidden lineage columns
    /// ([`crate::hidden`]): the lineage keys of the project, and the keys of the columns the
    /// persons and units are read from. The worker that answers SQL receives neither.
    pub fn with_lineage(mut self, home: &Home) -> Result<Self> {
        let Some(ws) = self.workspace.as_mut() else {
            return Err(QueryError::Engine("lineage belongs to a workspace's spec".into()));
        };
        let (master, keyring, _) = home.snapshot()?;
        let ids = self.grant.lineage_key_ids(&self.dataset);
        let extra = GrantedKeys::unwrap(&master, &keyring, ids.iter().map(String::as_str))?;
        drop(master);
        let mut keys: std::collections::HashMap<String, zeroize::Zeroizing<Vec<u8>>> = self.keys.to_raw().into_iter().collect();
        keys.extend(extra.to_raw());
        self.keys = GrantedKeys::from_raw(keys);
        ws.lineage = Some(crate::hidden::LineageKeys::for_builder(&home.airlock_key()?, &ws.project));
        Ok(self)
    }
}

/// What a statement was.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StatementKind {
    /// A query.
    Query,
    /// EXPLAIN.
    Explain,
    /// A temporary view was created.
    View(String),
    /// SHOW / DESCRIBE.
    Introspection,
}

/// The result of one statement.
#[derive(Debug)]
pub struct StatementOutput {
    /// The statement as parsed.
    pub sql: String,
    /// Kind.
    pub kind: StatementKind,
    /// Result schema.
    pub schema: SchemaRef,
    /// Result rows.
    pub batches: Vec<RecordBatch>,
    /// Wall-clock time.
    pub elapsed: Duration,
}

impl StatementOutput {
    /// Number of result rows.
    pub fn rows(&self) -> usize {
        self.batches.iter().map(RecordBatch::num_rows).sum()
    }
}

/// A DataFusion session over one grant.
pub struct QueryEngine {
    ctx: SessionContext,
    dataset: DatasetEntry,
    grant: Grant,
    limits: Limits,
    granted_tables: HashSet<String>,
    /// Temporary views of this session, with how many relations each expands to.
    views: std::sync::Mutex<std::collections::HashMap<String, u64>>,
    data_root: PathBuf,
    workspace: Option<crate::workspace::WorkspaceSpec>,
    /// The manifest of the extract this engine wrote, if it was a workspace's builder.
    built: Option<crate::extract::Manifest>,
    /// The workspace's saved tables now registered.
    saved: std::sync::Mutex<HashSet<String>>,
}

fn view_type(t: &DataType) -> DataType {
    match t {
        DataType::Utf8 => DataType::Utf8View,
        other => other.clone(),
    }
}

fn parse_type(name: &str) -> Result<DataType> {
    Ok(match name {
        "Int64" => DataType::Int64,
        "Int32" => DataType::Int32,
        "Int16" => DataType::Int16,
        "Float64" => DataType::Float64,
        "Utf8" => DataType::Utf8,
        "Date32" => DataType::Date32,
        "Boolean" => DataType::Boolean,
        other => return Err(QueryError::Engine(format!("unknown column type in catalogue: {other}"))),
    })
}

impl QueryEngine {
    /// Builds the session: runtime with limits, the encryption factory with the granted keys,
    /// and one table per granted table with only its granted columns. A workspace's engine is
    /// opened with [`QueryEngine::open`].
    pub fn new(spec: EngineSpec) -> Result<Self> {
        if spec.workspace.is_some() {
            return Err(QueryError::Engine("a workspace's engine is opened with QueryEngine::open".into()));
        }
        Self::build(spec).map(|(engine, _)| engine)
    }

    /// Opens an engine. For a workspace with its extract (crate::extract) the granted tables
    /// are the extract's; for a workspace without one (the builder) the extract is written
    /// first and its manifest kept ([`QueryEngine::built_extract`]).
    pub async fn open(spec: EngineSpec) -> Result<Self> {
        let (mut engine, sources) = Self::build(spec)?;
        if let Some(ws) = &engine.workspace {
            let manifest = match &ws.extract {
                Some(m) => m.clone(),
                None => {
                    let fingerprint = crate::extract::fingerprint(ws, &engine.dataset, &engine.grant);
                    let explain = |e: DataFusionError| engine.explain_error(e);
                    let generation = engine.dataset.generation.clone();
                    crate::extract::build(&engine.ctx, ws, &sources, &fingerprint, &generation, engine.limits.timeout, &explain).await?
                }
            };
            let options = engine.ctx.copied_table_options().parquet;
            crate::extract::register(&engine.ctx, ws, &manifest, &sources, options)?;
            if ws.extract.is_none() {
                engine.built = Some(manifest);
            }
        }
        Ok(engine)
    }

    /// Every row of a granted table as a stream, in file order when the engine runs one
    /// partition (`Limits::target_partitions = 1`): how a new generation carries the previous
    /// one's rows over (`kura intake`). Not for workspaces: their tables are the extract's.
    pub async fn scan(&self, table: &str) -> Result<datafusion::physical_plan::SendableRecordBatchStream> {
        if self.workspace.is_some() || !self.granted_tables.contains(table) {
            return Err(QueryError::Engine(format!("table {table} is not granted to this engine")));
        }
        let df = self.ctx.table(table).await.map_err(engine_err)?;
        df.execute_stream().await.map_err(engine_err)
    }

    /// The manifest of the extract this engine wrote (the builder's), for the parent to seal.
    pub fn built_extract(&self) -> Option<&crate::extract::Manifest> {
        self.built.as_ref()
    }

    /// The session and, for a workspace, the granted tables as its extract is built from them
    /// (not registered: the workspace reads its extract).
    fn build(spec: EngineSpec) -> Result<(Self, Vec<crate::extract::Source>)> {
        let EngineSpec { dataset, grant, keys, data_root, limits, workspace } = spec;
        std::fs::create_dir_all(&limits.spill_dir).map_err(|e| kura_store::StoreError::io(&limits.spill_dir, e))?;
        let store: Arc<dyn object_store::ObjectStore> = Arc::new(
            LocalFileSystem::new_with_prefix(&data_root)
                .map_err(|e| kura_store::StoreError::ObjectStore { path: data_root.display().to_string(), reason: e.to_string() })?,
        );
        let factory = KuraEncryptionFactory::new(keys, &[&dataset], store.clone());
        let pool = TrackConsumersPool::new(
            GreedyMemoryPool::new(limits.memory_bytes.max(1 << 20)),
            NonZeroUsize::new(3).unwrap_or(NonZeroUsize::MIN),
        );
        // Spill files: encrypted, nameless, capped (crate::spill). Directories of spill files
        // written in the clear by earlier versions are removed here.
        remove_plain_spills(&limits.spill_dir);
        let spills = crate::spill::EncryptedSpills::new(&limits.spill_dir, limits.spill_bytes)
            .map_err(|e| kura_store::StoreError::io(&limits.spill_dir, e))?;
        let runtime = RuntimeEnvBuilder::new()
            .with_memory_pool(Arc::new(pool))
            .with_disk_manager_builder(DiskManagerBuilder::default().with_temp_file_factory(Arc::new(spills)))
            .build_arc()
            .map_err(engine_err)?;
        runtime.register_parquet_encryption_factory(FACTORY_ID, Arc::new(factory));
        let url = url::Url::parse("kura://data").map_err(|e| QueryError::Engine(e.to_string()))?;
        runtime.register_object_store(&url, store);
        let partitions = if limits.target_partitions == 0 {
            std::thread::available_parallelism().map_or(2, |n| n.get())
        } else {
            limits.target_partitions
        };
        let mut config = SessionConfig::new()
            .with_target_partitions(partitions)
            .with_information_schema(true)
            .with_default_catalog_and_schema("kura", dataset.name.clone())
            .with_create_default_catalog_and_schema(true);
        config.options_mut().sql_parser.enable_ident_normalization = true;
        // Build sides up to a few million rows are collected once rather than hash-partitioned:
        // the large probe side (receipts) is then scanned without being repartitioned.
        config.options_mut().optimizer.hash_join_single_partition_threshold = 256 << 20;
        config.options_mut().optimizer.hash_join_single_partition_threshold_rows = 4_000_000;
        // The page index is read for every column of a file, granted or not; without the keys
        // of the others that read fails. Row-group statistics still prune.
        config.options_mut().execution.parquet.enable_page_index = false;
        for (k, v) in &limits.settings {
            config.options_mut().set(k, v).map_err(|e| QueryError::Engine(format!("kura.toml [query.datafusion] {k} = {v}: {e}")))?;
        }
        let ctx = SessionContext::new_with_config_rt(config, runtime);
        // Functions that can build values much larger than their input check what they are
        // asked to build first (crate::bounds).
        let functions: std::collections::HashMap<String, Arc<datafusion::logical_expr::ScalarUDF>> =
            ctx.state().scalar_functions().iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        for f in crate::bounds::bounded_functions(&functions) {
            ctx.register_udf(f);
        }
        if limits.rewrites {
            ctx.add_optimizer_rule(Arc::new(crate::rules::DistinctWithCountToGroupBy));
            ctx.add_optimizer_rule(Arc::new(crate::rules::PushSemiJoinBelowInnerJoin));
            let small_tables: datafusion::common::HashSet<String> =
                dataset.tables.iter().filter(|t| t.rows <= SMALL_TABLE_ROWS).map(|t| t.name.clone()).collect();
            ctx.add_optimizer_rule(Arc::new(crate::rules::JoinFilteredSmallTableFirst { small_tables: small_tables.clone() }));
            let table_rows = dataset.tables.iter().map(|t| (t.name.clone(), t.rows)).collect();
            ctx.add_optimizer_rule(Arc::new(crate::rules::AggregateBeforeJoiningSmallTable { small_tables, table_rows }));
        }

        let mut parquet_options = ctx.copied_table_options().parquet;
        parquet_options.crypto.factory_id = Some(FACTORY_ID.to_string());
        let mut granted_tables = HashSet::new();
        let mut sources = Vec::new();
        for t in &dataset.tables {
            let cols = grant.columns(t);
            if cols.is_empty() || t.files.is_empty() {
                continue;
            }
            let (table, schema) = listing(t, &cols, &parquet_options)?;
            match &workspace {
                // In a workspace, the extract is built from the table with person IDs read
                // through the project's pseudonym (crate::workspace, crate::extract); no SQL
                // ever names the scan. The builder adds the hidden lineage columns
                // (crate::hidden) where a person stands behind the rows.
                Some(ws) => {
                    let lineage = ws
                        .lineage
                        .as_ref()
                        .and_then(|l| l.hashing.as_ref())
                        .and_then(|h| kura_store::tables::lineage(&t.name).map(|l| (h, l)));
                    let provider: Arc<dyn datafusion::catalog::TableProvider> = if let Some((hashing, l)) = &lineage {
                        with_lineage(t, &cols, ws, hashing, l, &dataset, &parquet_options)?
                    } else if cols.iter().any(|c| {
                        crate::workspace::is_person_id(c.sensitivity) || crate::workspace::is_record_id(c.sensitivity, &c.data_type)
                    }) {
                        pseudonymised(&t.name, table, &cols, ws)?
                    } else {
                        table
                    };
                    sources.push(crate::extract::Source {
                        name: t.name.clone(),
                        cluster: crate::extract::clustering_column(&t.name, &cols),
                        schema,
                        provider,
                        rows: Some(t.rows),
                        hidden: lineage.is_some(),
                    });
                }
                None => {
                    ctx.register_table(t.name.as_str(), table).map_err(engine_err)?;
                }
            }
            granted_tables.insert(t.name.clone());
        }
        let engine = Self {
            ctx,
            dataset,
            grant,
            limits,
            granted_tables,
            views: std::sync::Mutex::new(Default::default()),
            data_root,
            workspace,
            saved: std::sync::Mutex::new(HashSet::new()),
            built: None,
        };
        // The builder (no extract yet) has no use for the saved tables.
        if let Some(ws) = engine.workspace.as_ref().filter(|ws| ws.extract.is_some()) {
            crate::workspace::check_saved_total(&ws.dir)?;
            for name in crate::workspace::saved_names(&ws.dir) {
                if engine.dataset.table(&name).is_some() {
                    continue;
                }
                let (schema, batches) = crate::workspace::load_table(ws, &name)?;
                // A table with a column named as Kura's own is never read (see `run_each`).
                if schema.fields().iter().any(|f| f.name().to_ascii_lowercase().starts_with(crate::lineage::HIDDEN_PREFIX)) {
                    continue;
                }
                engine.register_saved(&name, schema, batches)?;
            }
        }
        Ok((engine, sources))
    }

    /// Registers (or replaces) a saved table of the workspace.
    fn register_saved(&self, name: &str, schema: SchemaRef, batches: Vec<RecordBatch>) -> Result<()> {
        let table = datafusion::datasource::MemTable::try_new(schema, vec![batches]).map_err(engine_err)?;
        let reference = TableReference::bare(name);
        let _ = self.ctx.deregister_table(reference.clone());
        self.ctx.register_table(reference, Arc::new(table)).map_err(engine_err)?;
        if let Ok(mut s) = self.saved.lock() {
            s.insert(name.to_string());
        }
        Ok(())
    }

    /// The workspace's saved tables (none outside a workspace).
    pub fn saved_tables(&self) -> Vec<String> {
        let mut v: Vec<String> = self.saved.lock().map(|s| s.iter().cloned().collect()).unwrap_or_default();
        v.sort();
        v
    }

    /// Saves a query's result as a table of the workspace, sealed under the workspace key, and
    /// makes it readable at once (crate::workspace). Only a query's result is saved.
    pub fn save(&self, name: &str, output: &StatementOutput) -> Result<()> {
        let Some(ws) = &self.workspace else {
            return Err(QueryError::BadGrant(
                "表の保存はプロジェクトの作業環境でのみ / tables can be saved only in a project's workspace (kura workspace sql --save)"
                    .into(),
            ));
        };
        if output.kind != StatementKind::Query {
            return Err(QueryError::BadGrant(
                "保存できるのは問い合わせ（SELECT）の結果だけです / only a query's (SELECT) result can be saved".into(),
            ));
        }
        let mut taken: HashSet<String> = self.dataset.tables.iter().map(|t| t.name.clone()).collect();
        if let Ok(v) = self.views.lock() {
            taken.extend(v.keys().cloned());
        }
        crate::workspace::check_table_name(name, &taken)?;
        crate::workspace::check_not_protected(&ws.dir, name)?;
        crate::workspace::save_table(ws, name, &output.schema, &output.batches)?;
        self.register_saved(name, output.schema.clone(), output.batches.clone())
    }

    /// The grant.
    pub fn grant(&self) -> &Grant {
        &self.grant
    }

    /// Runs a script of `;`-separated statements, each checked, planned, verified and executed
    /// under the limits. Stops at the first error.
    pub async fn run(&self, sql: &str) -> Result<Vec<StatementOutput>> {
        self.run_each(sql, &|_| {}).await
    }

    /// [`QueryEngine::run`], telling `starting` the number of each statement as it begins (a
    /// worker reports it, so that its parent can hold each statement to its own time limit).
    pub async fn run_each(&self, sql: &str, starting: &(dyn Fn(usize) + Sync)) -> Result<Vec<StatementOutput>> {
        // In a workspace no statement names Kura's own columns: a saved table or view with a
        // column called `__kura_person` would pose as the platform's persons to the airlock's
        // checker (issue 22 §8).
        if self.workspace.is_some() {
            crate::lineage::refuse_hidden(sql)?;
        }
        let statements = parse(sql)?;
        let mut out = Vec::new();
        for (i, stmt) in statements.into_iter().enumerate() {
            starting(i);
            out.push(self.run_statement(stmt).await?);
        }
        Ok(out)
    }

    /// Runs one SELECT as the airlock's checker (issue 17 §2): the workspace's statement policy
    /// and limits as for any statement, then the plan rewritten to carry the evidence of every
    /// cell ([`crate::lineage::evidence`]). Only an engine over a project's extract with its
    /// hidden lineage columns (the checker) can; anywhere else the evidence would be missing.
    pub async fn evidence(&self, sql: &str) -> Result<crate::lineage::Evidenced> {
        let checker = self.workspace.as_ref().is_some_and(|ws| ws.lineage.is_some() && ws.extract.as_ref().is_some_and(|m| m.lineage));
        if !checker {
            return Err(QueryError::Engine("evidence is computed only by the airlock's checker".into()));
        }
        crate::lineage::refuse_hidden(sql)?;
        let mut statements = parse(sql)?;
        let (Some(stmt), None) = (statements.pop_front(), statements.front()) else {
            return Err(QueryError::Refused {
                class: "output".into(),
                reason: "出力は SELECT 文一つから作ります / an output is made from exactly one SELECT".into(),
            });
        };
        let mut taken: HashSet<String> = self.dataset.tables.iter().map(|t| t.name.clone()).collect();
        taken.extend(self.granted_tables.iter().cloned());
        if let Ok(saved) = self.saved.lock() {
            taken.extend(saved.iter().cloned());
        }
        policy::check_expressions(&stmt)?;
        policy::check_select_lists(&stmt)?;
        if policy::check(&stmt, &taken)? != Allowed::Query {
            return Err(QueryError::Refused {
                class: "output".into(),
                reason: "出力は SELECT 文一つから作ります / an output is made from exactly one SELECT".into(),
            });
        }
        let relations = policy::expanded_relations(&stmt, &Default::default());
        if relations > crate::bounds::MAX_RELATIONS {
            return Err(QueryError::Refused {
                class: "PLAN".into(),
                reason: format!("展開すると {relations} 個の表の参照になります / the plan would read {relations} tables"),
            });
        }
        let timeout = self.limits.timeout;
        match tokio::time::timeout(timeout, crate::lineage::evidence(&self.ctx, &stmt.to_string())).await {
            Ok(r) => r,
            Err(_) => Err(QueryError::Timeout(timeout.as_secs())),
        }
    }

    /// The files of the granted tables whose size or SHA-256 differ from the catalogue.
    pub fn damaged_files(&self) -> Vec<kura_store::verify::Finding> {
        let files = self.dataset.tables.iter().filter(|t| self.granted_tables.contains(&t.name)).flat_map(|t| t.files.iter());
        kura_store::verify::verify_files(&self.data_root, files)
    }

    async fn run_statement(&self, stmt: DFStatement) -> Result<StatementOutput> {
        let views = self.views.lock().map(|v| v.clone()).unwrap_or_default();
        let mut taken: HashSet<String> = self.dataset.tables.iter().map(|t| t.name.clone()).collect();
        taken.extend(self.granted_tables.iter().cloned());
        if let Ok(saved) = self.saved.lock() {
            taken.extend(saved.iter().cloned());
        }
        // Expressions first: it stops at the first level too deep, before anything recurses
        // over all of them.
        policy::check_expressions(&stmt)?;
        policy::check_select_lists(&stmt)?;
        let allowed = policy::check(&stmt, &taken)?;
        // In a workspace the plan's detail (the files, and the smallest and largest value of
        // each column of each file) is not shown: it serves no analysis, and it showed the
        // platform's IDs before workspaces read extracts. Only the plain EXPLAIN and EXPLAIN
        // ANALYZE are answered there.
        if self.workspace.is_some() && !plain_explain(&stmt) {
            return Err(QueryError::Refused {
                class: "EXPLAIN".into(),
                reason: "作業環境では EXPLAIN の VERBOSE・統計・書式の指定は使えません（計画の詳細はファイルの配置と統計を示すため）。EXPLAIN か EXPLAIN ANALYZE を使ってください / EXPLAIN with VERBOSE, statistics or a format is not available in a workspace (a plan's detail shows the files and their statistics): use EXPLAIN or EXPLAIN ANALYZE".into(),
            });
        }
        if let Allowed::TempView { name, or_replace } = &allowed
            && views.contains_key(name)
            && !or_replace
        {
            return Err(QueryError::Engine(format!(
                "ビュー '{name}' は既にあります（OR REPLACE を使えます）/ view '{name}' exists: use CREATE OR REPLACE TEMPORARY VIEW"
            )));
        }
        // The plan the planner would build, counted before it builds it: common table
        // expressions and views are written out in full, so a chain of self-joins doubles at
        // every step (crate::bounds).
        let relations = policy::expanded_relations(&stmt, &views);
        if relations > crate::bounds::MAX_RELATIONS {
            return Err(QueryError::Refused {
                class: "PLAN".into(),
                reason: format!(
                    "展開すると {relations} 個の表の参照になります（上限 {}）。共通表式の重ね合わせを減らしてください / the plan would read {relations} tables once CTEs and views are expanded (at most {}): nest fewer self-joined CTEs",
                    crate::bounds::MAX_RELATIONS,
                    crate::bounds::MAX_RELATIONS
                ),
            });
        }
        let sql = stmt.to_string();
        // What the statement names, for explaining a planning error by structure (a table
        // outside the grant, or none of that name) rather than by the planner's wording.
        let references = self.ctx.state().resolve_table_references(&stmt).unwrap_or_default();
        let started = Instant::now();
        let timeout = self.limits.timeout;
        let work = async {
            if let Allowed::TempView { name, .. } = &allowed {
                self.create_view(name, stmt, &references).await?;
                return Ok((Arc::new(Schema::empty()), Vec::new()));
            }
            let plan = self.ctx.state().statement_to_plan(stmt).await.map_err(|e| self.explain_plan_error(e, &references))?;
            verify_plan(&plan, &allowed)?;
            bound_plan(&plan)?;
            let df = self.ctx.execute_logical_plan(plan).await.map_err(|e| self.explain_error(e))?;
            let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
            let mut stream = df.execute_stream().await.map_err(|e| self.explain_error(e))?;
            let (mut batches, mut rows, mut bytes) = (Vec::new(), 0usize, 0usize);
            while let Some(b) = stream.next().await {
                let (b, size) = compact(b.map_err(|e| self.explain_error(e))?)?;
                rows += b.num_rows();
                bytes += size;
                if rows > self.limits.max_result_rows {
                    return Err(QueryError::ResultTooLarge(format!("> {} 行 rows", self.limits.max_result_rows)));
                }
                if bytes > self.limits.max_result_bytes {
                    return Err(QueryError::ResultTooLarge(format!("> {} MiB", self.limits.max_result_bytes >> 20)));
                }
                batches.push(b);
            }
            Ok::<_, QueryError>((schema, batches))
        };
        let (schema, batches) = match tokio::time::timeout(timeout, work).await {
            Err(_) => return Err(QueryError::Timeout(timeout.as_secs())),
            Ok(Err(QueryError::Integrity(m))) => return Err(QueryError::Integrity(self.locate_damage(m))),
            Ok(r) => r?,
        };
        let kind = match allowed {
            Allowed::Query => StatementKind::Query,
            Allowed::Explain => StatementKind::Explain,
            Allowed::Introspection => StatementKind::Introspection,
            Allowed::TempView { name, .. } => {
                if let Ok(mut v) = self.views.lock() {
                    v.insert(name.clone(), relations);
                }
                StatementKind::View(name)
            }
        };
        Ok(StatementOutput { sql, kind, schema, batches, elapsed: started.elapsed() })
    }

    /// Plans the view's query (checked like any query) and registers it for this session only.
    async fn create_view(&self, name: &str, stmt: DFStatement, references: &[TableReference]) -> Result<()> {
        let DFStatement::Statement(s) = stmt else {
            return Err(QueryError::Refused { class: "CREATE VIEW".into(), reason: "一時ビューのみ / temporary views only".into() });
        };
        let Statement::CreateView(v) = *s else {
            return Err(QueryError::Refused { class: "CREATE VIEW".into(), reason: "一時ビューのみ / temporary views only".into() });
        };
        let definition = v.query.to_string();
        let query = DFStatement::Statement(Box::new(Statement::Query(v.query)));
        let plan = self.ctx.state().statement_to_plan(query).await.map_err(|e| self.explain_plan_error(e, references))?;
        verify_plan(&plan, &Allowed::Query)?;
        bound_plan(&plan)?;
        // A bare name: never read as schema.table, so a view can only ever be itself.
        let reference = datafusion::common::TableReference::bare(name);
        let _ = self.ctx.deregister_table(reference.clone());
        let view = ViewTable::new(plan, Some(definition));
        self.ctx.register_table(reference, Arc::new(view)).map_err(engine_err)?;
        Ok(())
    }

    /// After a failed decryption, names the damaged files: checks the size and SHA-256 of every
    /// file of the granted tables against the catalogue.
    fn locate_damage(&self, message: String) -> String {
        // A workspace reads its extract, not the platform's files (which its worker cannot
        // open): its parent rebuilds a damaged extract (crate::worker::Session::run).
        if self.workspace.is_some() {
            return format!("{message}（{EXTRACT_DAMAGED}）");
        }
        let findings = self.damaged_files();
        if findings.is_empty() {
            return format!("{message}（ファイルは目録と一致：鍵の不一致の可能性 / files match the catalogue: a key may be wrong）");
        }
        let list: Vec<String> = findings.iter().map(|f| format!("{}: {}", f.file, f.problem)).collect();
        format!("{message}; 損傷ファイル / damaged file(s): {}", list.join("; "))
    }

    /// A planning error explained by what the statement reads: a table it names that this
    /// session does not have is outside the grant (if it is one of the dataset's, named bare or
    /// as `kura.<dataset>.<table>`) or does not exist (anything else, named in full). Table
    /// functions (`range`, `generate_series`) are not tables.
    fn explain_plan_error(&self, e: DataFusionError, references: &[TableReference]) -> QueryError {
        let state = self.ctx.state();
        for r in references {
            if r.schema().is_none() && state.table_functions().contains_key(r.table()) {
                continue;
            }
            if self.ctx.table_exist(r.clone()).unwrap_or(true) {
                continue;
            }
            let in_dataset = r.catalog().is_none_or(|c| c == "kura") && r.schema().is_none_or(|s| s == self.dataset.name);
            let name = r.table().to_string();
            if in_dataset && self.dataset.table(&name).is_some() {
                return QueryError::NotGranted { kind_ja: "テーブル", kind_en: "table", name };
            }
            let full = r.to_string();
            return QueryError::Engine(format!(
                "テーブル '{full}' はありません（`kura catalog` で一覧）/ no table '{full}' (see `kura catalog`)"
            ));
        }
        self.explain_error(e)
    }

    /// Turns an engine error into a clear one by its kind, never its wording: memory, damaged
    /// or undecryptable data (Parquet, the store, truncated reads — wherever in the chain of
    /// causes), columns outside the grant.
    fn explain_error(&self, e: DataFusionError) -> QueryError {
        let root = e.find_root();
        let text = root.to_string();
        if let DataFusionError::ResourcesExhausted(m) = root {
            return QueryError::Memory(m.clone());
        }
        if let DataFusionError::External(inner) = root
            && let Some(se) = inner.downcast_ref::<kura_store::StoreError>()
        {
            return QueryError::Integrity(se.to_string());
        }
        if let DataFusionError::SchemaError(err, _) = root
            && let datafusion::common::SchemaError::FieldNotFound { field, .. } = err.as_ref()
        {
            let name = field.name.clone();
            let in_catalogue = match &field.relation {
                Some(r) => self.dataset.table(r.table()).is_some_and(|t| t.column(&name).is_some()),
                None => self.dataset.tables.iter().any(|t| self.granted_tables.contains(&t.name) && t.column(&name).is_some()),
            };
            if in_catalogue {
                return QueryError::NotGranted { kind_ja: "列", kind_en: "column", name };
            }
            return QueryError::Engine(format!("列 '{name}' はありません / no column '{name}'"));
        }
        let parquet = matches!(root, DataFusionError::ParquetError(_))
            || matches!(root, DataFusionError::ArrowError(a, _) if matches!(a.as_ref(), datafusion::arrow::error::ArrowError::ParquetError(_) | datafusion::arrow::error::ArrowError::ExternalError(_)));
        if parquet || damaged_data(&e) {
            return QueryError::Integrity(text);
        }
        QueryError::Engine(text)
    }
}

/// What a workspace's integrity error says besides: the parent recognises it and rebuilds the
/// extract before the next script.
pub(crate) const EXTRACT_DAMAGED: &str = "作業環境の抽出または保存した表が損傷しています。抽出は次の要求で作り直されます / the workspace's extract or a saved table is damaged: the extract is rebuilt at the next request";

/// A granted table as a workspace sees it: a view over its scan in which every person ID
/// column is replaced by the project's pseudonym (crate::workspace). The scan is not
/// registered anywhere, so no SQL can read the platform's IDs around the view.
/// A listing table of `t`'s files with the columns `cols` (decrypted by the engine's factory),
/// and its schema.
fn listing(
    t: &kura_store::TableEntry,
    cols: &[&kura_store::ColumnEntry],
    options: &TableParquetOptions,
) -> Result<(Arc<ListingTable>, SchemaRef)> {
    let fields: Vec<Field> =
        cols.iter().map(|c| Ok(Field::new(&c.name, view_type(&parse_type(&c.data_type)?), c.nullable))).collect::<Result<_>>()?;
    let schema: SchemaRef = Arc::new(Schema::new(fields));
    let format = ParquetFormat::default().with_options(options.clone());
    let listing = ListingOptions::new(Arc::new(format)).with_file_extension(".parquet");
    let urls = t
        .files
        .iter()
        .map(|f| ListingTableUrl::parse(format!("kura://data/{}", f.path)).map_err(engine_err))
        .collect::<Result<Vec<_>>>()?;
    let config = ListingTableConfig::new_with_multi_paths(urls).with_listing_options(listing).with_schema(schema.clone());
    Ok((Arc::new(ListingTable::try_new(config).map_err(engine_err)?), schema))
}

/// The builder's source of a table a person stands behind (crate::hidden): its granted columns
/// as the project sees them, then the hidden lineage columns, computed from the table's own
/// person and unit columns or, for a detail table, from its parent record's (a left join on
/// the key: a row without its parent has no known person). The columns read for lineage need
/// not be granted; they are never shown.
fn with_lineage(
    t: &kura_store::TableEntry,
    cols: &[&kura_store::ColumnEntry],
    ws: &crate::workspace::WorkspaceSpec,
    hashing: &kura_crypto::SecretKey,
    lineage: &kura_store::tables::Lineage,
    dataset: &DatasetEntry,
    options: &TableParquetOptions,
) -> Result<Arc<dyn datafusion::catalog::TableProvider>> {
    use datafusion::catalog::default_table_source::provider_as_source;
    use datafusion::logical_expr::{JoinType, LogicalPlanBuilder};
    const PARENT: &str = "__kura_parent";
    const PARENT_KEY: &str = "__kura_parent_key";
    fn column<'a>(t: &'a kura_store::TableEntry, name: &str) -> Result<&'a kura_store::ColumnEntry> {
        t.columns
            .iter()
            .find(|c| c.name == name)
            .ok_or_else(|| QueryError::Engine(format!("lineage: {}.{name} is not in the catalogue", t.name)))
    }
    let mut read: Vec<&kura_store::ColumnEntry> = cols.to_vec();
    for name in crate::hidden::source_columns(lineage) {
        if !read.iter().any(|c| c.name == name) {
            read.push(column(t, name)?);
        }
    }
    let (raw, _) = listing(t, &read, options)?;
    let mut plan = LogicalPlanBuilder::scan(TableReference::bare(t.name.as_str()), provider_as_source(raw), None).map_err(engine_err)?;
    let parent = match lineage.parent {
        None => None,
        Some((name, key)) => {
            let p = dataset.table(name).ok_or_else(|| QueryError::Engine(format!("lineage: no parent table '{name}'")))?;
            let pl = kura_store::tables::lineage(name).ok_or_else(|| QueryError::Engine(format!("lineage: '{name}' has none")))?;
            crate::hidden::check_parent(name, &pl)?;
            let mut pread = vec![column(p, key)?];
            for c in crate::hidden::source_columns(&pl) {
                if c != key {
                    pread.push(column(p, c)?);
                }
            }
            let (praw, _) = listing(p, &pread, options)?;
            let mut exprs = vec![Expr::Column(datafusion::common::Column::new(Some(TableReference::bare(name)), key)).alias(PARENT_KEY)];
            exprs.extend(crate::hidden::hidden_exprs(hashing, name, &pl, None));
            let side = LogicalPlanBuilder::scan(TableReference::bare(name), provider_as_source(praw), None)
                .and_then(|b| b.project(exprs))
                .and_then(|b| b.alias(PARENT))
                .and_then(|b| b.build())
                .map_err(engine_err)?;
            let keys = (
                vec![datafusion::common::Column::new(Some(TableReference::bare(t.name.as_str())), key)],
                vec![datafusion::common::Column::new(Some(TableReference::bare(PARENT)), PARENT_KEY)],
            );
            plan = plan.join(side, JoinType::Left, keys, None).map_err(engine_err)?;
            Some((PARENT, pl))
        }
    };
    let mut exprs = shown_exprs(&t.name, cols, ws);
    exprs.extend(crate::hidden::hidden_exprs(hashing, &t.name, lineage, parent.as_ref().map(|(a, l)| (*a, l))));
    let plan = plan.project(exprs).and_then(|b| b.build()).map_err(engine_err)?;
    Ok(Arc::new(ViewTable::new(plan, None)))
}

/// The granted columns of `name` as the project sees them: person IDs as project pseudonyms,
/// record ids renumbered, the rest as they are.
fn shown_exprs(name: &str, cols: &[&kura_store::ColumnEntry], ws: &crate::workspace::WorkspaceSpec) -> Vec<Expr> {
    use datafusion::logical_expr::ScalarUDF;
    let udf = Arc::new(ScalarUDF::new_from_impl(crate::workspace::ProjectPseudonym::new(&ws.project, ws.pseudonym.clone())));
    let renumber = Arc::new(ScalarUDF::new_from_impl(crate::workspace::ProjectRecordId::new(&ws.project, &ws.pseudonym)));
    cols.iter()
        .map(|c| {
            // Quoted: a column name is never parsed as an expression.
            let column = Expr::Column(datafusion::common::Column::new(Some(TableReference::bare(name)), c.name.clone()));
            if crate::workspace::is_person_id(c.sensitivity) {
                udf.call(vec![column]).alias(&c.name)
            } else if crate::workspace::is_record_id(c.sensitivity, &c.data_type) {
                renumber.call(vec![column]).alias(&c.name)
            } else {
                column
            }
        })
        .collect()
}

fn pseudonymised(
    name: &str,
    table: Arc<ListingTable>,
    cols: &[&kura_store::ColumnEntry],
    ws: &crate::workspace::WorkspaceSpec,
) -> Result<Arc<dyn datafusion::catalog::TableProvider>> {
    use datafusion::logical_expr::LogicalPlanBuilder;
    let source = datafusion::catalog::default_table_source::provider_as_source(table);
    let exprs = shown_exprs(name, cols, ws);
    let plan = LogicalPlanBuilder::scan(TableReference::bare(name), source, None)
        .and_then(|b| b.project(exprs))
        .and_then(|b| b.build())
        .map_err(engine_err)?;
    Ok(Arc::new(ViewTable::new(plan, None)))
}

/// Whether a statement is not an EXPLAIN, or a plain `EXPLAIN` / `EXPLAIN ANALYZE` with no
/// other option (no VERBOSE, statistics, format or metric level).
fn plain_explain(stmt: &DFStatement) -> bool {
    use datafusion::common::format::ExplainStatementOptions;
    match stmt {
        DFStatement::Explain(e) => e.options == ExplainStatementOptions { analyze: e.options.analyze, ..Default::default() },
        DFStatement::Statement(s) => !matches!(s.as_ref(), Statement::Explain { .. } | Statement::ExplainTable { .. }),
        _ => true,
    }
}

/// A result batch that holds only its own rows (string views copied out of the pages they
/// point into), and the bytes it takes: what the result cap counts. A batch's buffer sizes
/// would count the pages every sliced batch shares, again and again.
fn compact(batch: RecordBatch) -> Result<(RecordBatch, usize)> {
    use datafusion::arrow::array::{Array, ArrayRef, StringViewArray};
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(batch.num_columns());
    let mut size = 0usize;
    for c in batch.columns() {
        let c: ArrayRef = match c.as_any().downcast_ref::<StringViewArray>() {
            Some(sv) => Arc::new(sv.gc()),
            None => c.clone(),
        };
        size += c.to_data().get_slice_memory_size().map_err(|e| QueryError::Engine(e.to_string()))?;
        if let Some(sv) = c.as_any().downcast_ref::<StringViewArray>() {
            size += sv.data_buffers().iter().map(|b| b.len()).sum::<usize>();
        }
        columns.push(c);
    }
    let batch = RecordBatch::try_new(batch.schema(), columns).map_err(|e| QueryError::Engine(e.to_string()))?;
    Ok((batch, size))
}

/// Removes the `datafusion-*` spill directories that versions before the encrypted spill
/// backend left in the clear (they survived a killed process).
fn remove_plain_spills(dir: &std::path::Path) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        if e.file_name().to_string_lossy().starts_with("datafusion-") {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// Parses a script: at most [`crate::bounds::MAX_SQL_BYTES`], nesting at most 64 deep, at
/// least one statement.
fn parse(sql: &str) -> Result<std::collections::VecDeque<DFStatement>> {
    if sql.len() > crate::bounds::MAX_SQL_BYTES {
        return Err(QueryError::Syntax(format!(
            "SQL が長すぎます（{} バイト、上限 {}）/ the SQL is too long ({} bytes, at most {})",
            sql.len(),
            crate::bounds::MAX_SQL_BYTES,
            sql.len(),
            crate::bounds::MAX_SQL_BYTES
        )));
    }
    let statements = DFParserBuilder::new(sql)
        .with_dialect(&GenericDialect {})
        .with_recursion_limit(64)
        .build()
        .and_then(|mut p| p.parse_statements())
        .map_err(|e| QueryError::Syntax(e.to_string()))?;
    if statements.is_empty() {
        return Err(QueryError::Syntax("文がありません / no statement".into()));
    }
    Ok(statements)
}

/// How many statements a script holds (checked as [`QueryEngine::run`] would).
pub(crate) fn count_statements(sql: &str) -> Result<usize> {
    parse(sql).map(|s| s.len())
}

/// Whether the chain of causes of an engine error holds a sign of damaged or undecryptable
/// data: a Parquet error (a footer or page that does not decrypt or parse, a key not granted),
/// the store's own integrity error, a read cut short or invalid.
fn damaged_data(e: &DataFusionError) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        if c.is::<datafusion::parquet::errors::ParquetError>() || c.is::<kura_store::StoreError>() {
            return true;
        }
        if let Some(io) = c.downcast_ref::<std::io::Error>()
            && matches!(io.kind(), std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::InvalidData)
        {
            return true;
        }
        if let Some(a) = c.downcast_ref::<datafusion::arrow::error::ArrowError>()
            && matches!(a, datafusion::arrow::error::ArrowError::ParquetError(_))
        {
            return true;
        }
        cause = c.source();
    }
    false
}

fn engine_err(e: DataFusionError) -> QueryError {
    QueryError::Engine(e.to_string())
}

/// A plan of more than [`crate::bounds::MAX_PLAN_NODES`] nodes is refused before it runs.
fn bound_plan(plan: &LogicalPlan) -> Result<()> {
    use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
    let mut nodes = 0usize;
    let _ = plan.apply(|_| {
        nodes += 1;
        Ok(if nodes > crate::bounds::MAX_PLAN_NODES { TreeNodeRecursion::Stop } else { TreeNodeRecursion::Continue })
    });
    if nodes > crate::bounds::MAX_PLAN_NODES {
        return Err(QueryError::Refused {
            class: "PLAN".into(),
            reason: format!(
                "計画が大きすぎます（{} ノード超）/ the plan is too large (over {} nodes)",
                crate::bounds::MAX_PLAN_NODES,
                crate::bounds::MAX_PLAN_NODES
            ),
        });
    }
    Ok(())
}

/// The plan must match what the parsed statement was allowed to be: no DML, no DDL except the
/// temporary view, no statements (SET, transactions, prepared statements), no COPY.
fn verify_plan(plan: &LogicalPlan, allowed: &Allowed) -> Result<()> {
    let bad = |what: &str| {
        Err(QueryError::Refused {
            class: what.to_string(), reason: "計画の検査で拒否されました / refused by plan verification".into()
        })
    };
    match plan {
        LogicalPlan::Dml(_) => bad("DML"),
        LogicalPlan::Copy(_) => bad("COPY"),
        LogicalPlan::Statement(_) => bad("STATEMENT"),
        LogicalPlan::Ddl(DdlStatement::CreateView(v)) => match allowed {
            Allowed::TempView { .. } if v.temporary => Ok(()),
            _ => bad("CREATE VIEW"),
        },
        LogicalPlan::Ddl(_) => bad("DDL"),
        LogicalPlan::Explain(_) | LogicalPlan::Analyze(_) if *allowed != Allowed::Explain => bad("EXPLAIN"),
        _ => Ok(()),
    }
}
