//! A project's workspace inside the engine (HIC-P3, HIC-S13, HIC-L1): project pseudonyms in
//! place of the platform's person IDs, and the derived tables researchers save.
//!
//! - **Project pseudonyms.** Every column the catalogue marks as a hashed person ID (ID1, ID2,
//!   ID4, ID5: [`Sensitivity::Identifier`]) is read through [`ProjectPseudonym`], the re-hash of
//!   `kura-crypto` under the project's pseudonym key ([`kura_crypto::PseudonymKey::for_project`]).
//!   The engine never shows the platform's value: the granted table is a view whose scan the
//!   SQL cannot name. Two projects get different values for one person, so their outputs cannot
//!   be joined on an ID column; inside a project, joins across tables work as before. Record
//!   identifiers (receipt, checkup, certification and claim ids) are renumbered by the project's
//!   keyed permutation ([`ProjectRecordId`]) for the same reason: a receipt id shared by two
//!   projects would link their pseudonyms.
//! - **Saved tables.** `kura workspace sql --save NAME` keeps a result in the workspace
//!   directory, sealed with AES-256-GCM under the workspace key (the associated data names the
//!   project and the table, so a file moved to another name or project does not open). A saved
//!   table is visible only in its project; destroying the workspace key (end of use) leaves every
//!   copy of these files unreadable.

use crate::{QueryError, Result};
use datafusion::arrow::array::{Array, ArrayRef, AsArray, StringViewBuilder};
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::arrow::ipc::reader::StreamReader;
use datafusion::arrow::ipc::writer::StreamWriter;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::ScalarValue;
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility};
use kura_crypto::{PseudonymKey, SecretKey};
use kura_store::Sensitivity;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The name of the function that turns a platform ID into the project's pseudonym.
pub const PSEUDONYM_FUNCTION: &str = "kura_project_pseudonym";

/// Longest saved-table name.
const MAX_NAME: usize = 63;

/// The first bytes of a saved table's file.
const MAGIC: &[u8; 8] = b"KURAWST1";

/// Most saved tables one workspace holds.
pub const MAX_SAVED_TABLES: usize = 200;

/// Most bytes all saved tables of one workspace take together: the worker loads them when it
/// starts, so a member cannot make the workspace too slow to start for everyone.
pub const MAX_SAVED_BYTES: u64 = 256 << 20;

/// What an engine needs to act as a project's workspace.
#[derive(Clone)]
pub struct WorkspaceSpec {
    /// The project (`PRJ-000001`).
    pub project: String,
    /// The workspace directory (saved tables live in `tables/` below it).
    pub dir: PathBuf,
    /// The workspace key (seals saved tables).
    pub key: SecretKey,
    /// The project's pseudonym key (derived from the platform's; never the platform key).
    pub pseudonym: PseudonymKey,
    /// The project's extract to read ([`crate::extract`]); `None` for the builder, which
    /// writes it. [`crate::worker::Session::start`] fills it in.
    pub extract: Option<crate::extract::Manifest>,
    /// The keys of the extract's hidden lineage columns ([`crate::hidden`]): all of them for
    /// the builder, the project's key for the airlock's checker, none for the worker that
    /// answers the researchers' SQL.
    pub lineage: Option<crate::hidden::LineageKeys>,
}

impl std::fmt::Debug for WorkspaceSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkspaceSpec").field("project", &self.project).field("dir", &self.dir).finish_non_exhaustive()
    }
}

/// Whether a catalogue column is a person ID that a workspace shows as a project pseudonym.
pub fn is_person_id(sensitivity: Sensitivity) -> bool {
    sensitivity == Sensitivity::Identifier
}

/// The function that re-hashes a platform pseudonym into the project's (see the module
/// documentation). Nulls stay null.
#[derive(Debug)]
pub struct ProjectPseudonym {
    project: String,
    key: PseudonymKey,
    signature: Signature,
}

impl ProjectPseudonym {
    /// The function for `project` under its pseudonym key.
    pub fn new(project: &str, key: PseudonymKey) -> Self {
        Self { project: project.to_string(), key, signature: Signature::uniform(1, vec![DataType::Utf8View], Volatility::Immutable) }
    }
}

impl ProjectPseudonym {
    /// The project's pseudonym of a platform ID. A value that is not a hashed ID (64 hex
    /// characters) — the data's placeholder for a missing ID5, `9` — is no person and stays
    /// as it is, so that researchers can still tell a missing ID.
    fn pseudonym(&self, v: &str) -> String {
        if v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()) { self.key.rehash(v) } else { v.to_string() }
    }
}

impl PartialEq for ProjectPseudonym {
    fn eq(&self, other: &Self) -> bool {
        // One function per project and engine: the project names it.
        self.project == other.project
    }
}

impl Eq for ProjectPseudonym {}

impl std::hash::Hash for ProjectPseudonym {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.project.hash(state);
    }
}

impl ScalarUDFImpl for ProjectPseudonym {
    fn name(&self) -> &str {
        PSEUDONYM_FUNCTION
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> datafusion::common::Result<DataType> {
        Ok(DataType::Utf8View)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> datafusion::common::Result<ColumnarValue> {
        let Some(arg) = args.args.into_iter().next() else {
            return Err(datafusion::error::DataFusionError::Internal(format!("{PSEUDONYM_FUNCTION} takes one argument")));
        };
        match arg {
            ColumnarValue::Scalar(s) => {
                let value = match s {
                    ScalarValue::Utf8View(v) | ScalarValue::Utf8(v) | ScalarValue::LargeUtf8(v) => v.map(|v| self.pseudonym(&v)),
                    other if other.is_null() => None,
                    other => {
                        return Err(datafusion::error::DataFusionError::Plan(format!(
                            "{PSEUDONYM_FUNCTION}: 文字列の ID のみ / string IDs only, not {}",
                            other.data_type()
                        )));
                    }
                };
                Ok(ColumnarValue::Scalar(ScalarValue::Utf8View(value)))
            }
            ColumnarValue::Array(a) => {
                let ids = a.as_string_view_opt().ok_or_else(|| {
                    datafusion::error::DataFusionError::Plan(format!(
                        "{PSEUDONYM_FUNCTION}: 文字列の ID のみ / string IDs only, not {}",
                        a.data_type()
                    ))
                })?;
                let mut out = StringViewBuilder::with_capacity(ids.len());
                for v in ids.iter() {
                    match v {
                        Some(v) => out.append_value(self.pseudonym(v)),
                        None => out.append_null(),
                    }
                }
                let out: ArrayRef = Arc::new(out.finish());
                Ok(ColumnarValue::Array(out))
            }
        }
    }
}

/// The name of the function that renumbers a record identifier for the project.
pub const RECORD_ID_FUNCTION: &str = "kura_project_record_id";

/// Whether a catalogue column is a record identifier (receipt, checkup, certification or claim
/// id: a 64-bit technical key) that a workspace renumbers for the project, so that records —
/// and through them persons — cannot be matched across projects either.
pub fn is_record_id(sensitivity: Sensitivity, data_type: &str) -> bool {
    sensitivity == Sensitivity::Internal && data_type == "Int64"
}

/// The function that renumbers a record identifier with the project's keyed permutation
/// ([`kura_crypto::IdPermutation`]): joins on it stay exact inside the project.
#[derive(Debug)]
pub struct ProjectRecordId {
    project: String,
    permutation: kura_crypto::IdPermutation,
    signature: Signature,
}

impl ProjectRecordId {
    /// The function for `project` under its pseudonym key.
    pub fn new(project: &str, key: &PseudonymKey) -> Self {
        Self {
            project: project.to_string(),
            permutation: key.id_permutation(),
            signature: Signature::uniform(1, vec![DataType::Int64], Volatility::Immutable),
        }
    }

    fn renumber(&self, v: i64) -> i64 {
        // Bits as they are: the permutation is over all 64-bit values.
        self.permutation.apply(v as u64) as i64
    }
}

impl PartialEq for ProjectRecordId {
    fn eq(&self, other: &Self) -> bool {
        self.project == other.project
    }
}

impl Eq for ProjectRecordId {}

impl std::hash::Hash for ProjectRecordId {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.project.hash(state);
    }
}

impl ScalarUDFImpl for ProjectRecordId {
    fn name(&self) -> &str {
        RECORD_ID_FUNCTION
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> datafusion::common::Result<DataType> {
        Ok(DataType::Int64)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> datafusion::common::Result<ColumnarValue> {
        let Some(arg) = args.args.into_iter().next() else {
            return Err(datafusion::error::DataFusionError::Internal(format!("{RECORD_ID_FUNCTION} takes one argument")));
        };
        match arg {
            ColumnarValue::Scalar(ScalarValue::Int64(v)) => Ok(ColumnarValue::Scalar(ScalarValue::Int64(v.map(|v| self.renumber(v))))),
            ColumnarValue::Scalar(other) => Err(datafusion::error::DataFusionError::Plan(format!(
                "{RECORD_ID_FUNCTION}: 64 ビット整数のみ / 64-bit integers only, not {}",
                other.data_type()
            ))),
            ColumnarValue::Array(a) => {
                let ids = a.as_primitive_opt::<datafusion::arrow::datatypes::Int64Type>().ok_or_else(|| {
                    datafusion::error::DataFusionError::Plan(format!("{RECORD_ID_FUNCTION}: 64 ビット整数のみ / 64-bit integers only"))
                })?;
                let out: datafusion::arrow::array::Int64Array = ids.unary(|v| self.renumber(v));
                Ok(ColumnarValue::Array(Arc::new(out)))
            }
        }
    }
}

/// Checks a saved table's name: lower-case ASCII letters, digits and `_`, starting with a
/// letter, at most 63 characters, and none of the dataset's tables (`taken`).
pub fn check_table_name(name: &str, taken: &std::collections::HashSet<String>) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME
        && name.bytes().next().is_some_and(|b| b.is_ascii_lowercase())
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if !ok {
        return Err(QueryError::BadGrant(format!(
            "保存名 '{}' は使えません：英小文字で始まり、英小文字・数字・_ の 63 文字まで / cannot save as '{}': use a lower-case letter, then letters, digits or _ (at most 63)",
            shown(name),
            shown(name)
        )));
    }
    if taken.contains(name) {
        return Err(QueryError::BadGrant(format!(
            "'{name}' はデータセットの表の名前です。別の名前にしてください / '{name}' is a table of the dataset: choose another name"
        )));
    }
    Ok(())
}

/// A name as it may be printed: control characters escaped, at most 80 characters.
fn shown(name: &str) -> String {
    name.chars().take(80).flat_map(char::escape_debug).collect()
}

fn tables_dir(dir: &Path) -> PathBuf {
    dir.join("tables")
}

fn table_path(dir: &Path, name: &str) -> PathBuf {
    tables_dir(dir).join(format!("{name}.kura-table"))
}

fn aad(project: &str, name: &str) -> Vec<u8> {
    format!("kura/workspace-table/v1\0{project}\0{name}").into_bytes()
}

/// How many saved tables there are and how many bytes they take, leaving out `except`.
fn saved_usage(dir: &Path, except: Option<&str>) -> (usize, u64) {
    let names: Vec<String> = saved_names(dir).into_iter().filter(|n| Some(n.as_str()) != except).collect();
    let bytes = names.iter().filter_map(|n| std::fs::symlink_metadata(table_path(dir, n)).ok()).map(|m| m.len()).sum();
    (names.len(), bytes)
}

/// Refuses to open a workspace whose saved tables are over the caps (the worker loads them
/// into memory when it starts): its members drop tables first (`kura workspace drop`, which
/// needs no worker).
pub fn check_saved_total(dir: &Path) -> Result<()> {
    let (count, bytes) = saved_usage(dir, None);
    if count > MAX_SAVED_TABLES || bytes > MAX_SAVED_BYTES {
        return Err(QueryError::ResultTooLarge(format!(
            "保存した表が上限を超えています（{count} 個、{} MiB）。kura workspace drop で減らしてください / the saved tables are over the limits ({count} tables, {} MiB; at most {MAX_SAVED_TABLES} and {} MiB): drop some with kura workspace drop",
            bytes >> 20,
            bytes >> 20,
            MAX_SAVED_BYTES >> 20
        )));
    }
    Ok(())
}

/// Seals a result as a saved table of the workspace (replacing one of that name). The caps
/// are checked and the file written under a lock, so that saves in parallel (two members, two
/// workers) cannot pass them together.
pub fn save_table(ws: &WorkspaceSpec, name: &str, schema: &SchemaRef, batches: &[RecordBatch]) -> Result<()> {
    let dir = tables_dir(&ws.dir);
    std::fs::create_dir_all(&dir).map_err(|e| kura_store::StoreError::io(&dir, e))?;
    let lock_path = dir.join(".lock");
    let lock = {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new().write(true).create(true).truncate(false).mode(0o600).open(&lock_path)
    }
    .map_err(|e| kura_store::StoreError::io(&lock_path, e))?;
    lock.lock().map_err(|e| kura_store::StoreError::io(&lock_path, e))?;
    let exists = table_path(&ws.dir, name).exists();
    if !exists && saved_names(&ws.dir).len() >= MAX_SAVED_TABLES {
        return Err(QueryError::ResultTooLarge(format!(
            "保存できる表は {MAX_SAVED_TABLES} 個までです / a workspace holds at most {MAX_SAVED_TABLES} saved tables"
        )));
    }
    let mut ipc = zeroize::Zeroizing::new(Vec::new());
    let written = StreamWriter::try_new(&mut *ipc, schema).and_then(|mut w| {
        for b in batches {
            w.write(b)?;
        }
        w.finish()
    });
    written.map_err(|e| QueryError::Engine(e.to_string()))?;
    let (_, others) = saved_usage(&ws.dir, Some(name));
    if others.saturating_add(ipc.len() as u64) > MAX_SAVED_BYTES {
        return Err(QueryError::ResultTooLarge(format!(
            "保存した表は作業環境ごとに合計 {} MiB までです（今 {} MiB）/ a workspace's saved tables take at most {} MiB together ({} MiB now)",
            MAX_SAVED_BYTES >> 20,
            others >> 20,
            MAX_SAVED_BYTES >> 20,
            others >> 20
        )));
    }
    let sealed = kura_crypto::seal(&ws.key, &aad(&ws.project, name), &ipc).map_err(|e| QueryError::Engine(e.to_string()))?;
    let mut file = MAGIC.to_vec();
    file.extend_from_slice(&sealed);
    let path = table_path(&ws.dir, name);
    kura_crypto::write_atomic(&path, &file, 0o600).map_err(|e| kura_store::StoreError::io(&path, e))?;
    drop(lock);
    Ok(())
}

/// The list of tables a custodian placed in the workspace (bring-in masters, issue 17 §4).
fn protected_path(dir: &Path) -> PathBuf {
    tables_dir(dir).join(".bringin")
}

/// The saved tables that are bring-in masters: read-only, never replaced or dropped.
pub fn protected_names(dir: &Path) -> std::collections::HashSet<String> {
    std::fs::read_to_string(protected_path(dir)).map(|t| t.lines().map(str::to_string).collect()).unwrap_or_default()
}

/// Refuses to replace or drop `name` when it is a bring-in master.
pub fn check_not_protected(dir: &Path, name: &str) -> Result<()> {
    if protected_names(dir).contains(name) {
        return Err(QueryError::BadGrant(format!(
            "'{name}' は持ち込まれたマスターです（読み取り専用）。別の名前にしてください / '{name}' is a master brought in (read-only): choose another name"
        )));
    }
    Ok(())
}

/// Marks saved table `name` as a bring-in master (after it was saved).
pub fn protect(dir: &Path, name: &str) -> Result<()> {
    let mut names = protected_names(dir);
    names.insert(name.to_string());
    let mut list: Vec<String> = names.into_iter().collect();
    list.sort();
    let path = protected_path(dir);
    kura_crypto::write_atomic(&path, format!("{}\n", list.join("\n")).as_bytes(), 0o600)
        .map_err(|e| kura_store::StoreError::io(&path, e).into())
}

/// The names of the workspace's saved tables, sorted.
pub fn saved_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(tables_dir(dir))
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| e.file_name().to_str().and_then(|n| n.strip_suffix(".kura-table")).map(str::to_string))
                .filter(|n| check_table_name(n, &Default::default()).is_ok())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Opens one saved table: its schema and rows. A file that does not open under this
/// workspace's key and name is an integrity error naming it.
pub fn load_table(ws: &WorkspaceSpec, name: &str) -> Result<(SchemaRef, Vec<RecordBatch>)> {
    let path = table_path(&ws.dir, name);
    let bytes =
        std::fs::read(&path).map_err(|e| QueryError::Integrity(format!("保存した表 '{name}' / saved table '{name}': {}", e.kind())))?;
    // Named as the researcher knows it, never by the home's path.
    let damaged = |why: &str| {
        QueryError::Integrity(format!(
            "保存した表 '{name}' を開けません（{why}）/ the saved table '{name}' does not open ({why}): it was altered, moved or its workspace key destroyed"
        ))
    };
    let sealed = bytes.strip_prefix(MAGIC.as_slice()).ok_or_else(|| damaged("header"))?;
    let ipc = kura_crypto::open_sealed(&ws.key, &aad(&ws.project, name), sealed).map_err(|_| damaged("authentication"))?;
    let reader = StreamReader::try_new(std::io::Cursor::new(ipc.as_slice()), None).map_err(|_| damaged("Arrow IPC"))?;
    let schema = reader.schema();
    let batches = reader.collect::<std::result::Result<Vec<_>, _>>().map_err(|_| damaged("Arrow IPC"))?;
    Ok((schema, batches))
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Int64Array, StringViewArray};
    use datafusion::arrow::datatypes::{Field, Schema};

    fn spec(dir: &Path, project: &str, key: u8) -> WorkspaceSpec {
        WorkspaceSpec {
            project: project.into(),
            dir: dir.to_path_buf(),
            key: SecretKey::from_bytes([key; 32]),
            pseudonym: PseudonymKey::new(SecretKey::from_bytes([9; 32])).for_project(project),
            extract: None,
            lineage: None,
        }
    }

    #[test]
    fn saved_tables_open_only_in_their_workspace_under_their_name() {
        let d = tempfile::tempdir().unwrap();
        let ws = spec(d.path(), "PRJ-000001", 1);
        let schema: SchemaRef =
            Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, false), Field::new("s", DataType::Utf8View, true)]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![Arc::new(Int64Array::from(vec![1, 2])), Arc::new(StringViewArray::from(vec![Some("secret-value-xyz"), None]))],
        )
        .unwrap();
        save_table(&ws, "t1", &schema, std::slice::from_ref(&batch)).unwrap();
        assert_eq!(saved_names(d.path()), vec!["t1".to_string()]);
        let (s, b) = load_table(&ws, "t1").unwrap();
        assert_eq!(s, schema);
        assert_eq!(b, vec![batch]);
        // The file holds no plain value.
        let raw = std::fs::read(table_path(d.path(), "t1")).unwrap();
        assert!(!raw.windows(16).any(|w| w == b"secret-value-xyz"), "the file is sealed");
        // Another key (another workspace, or the key destroyed and replaced): refused.
        assert!(matches!(load_table(&spec(d.path(), "PRJ-000001", 2), "t1"), Err(QueryError::Integrity(_))));
        // Moved to another name or project: refused.
        std::fs::copy(table_path(d.path(), "t1"), table_path(d.path(), "t2")).unwrap();
        assert!(matches!(load_table(&ws, "t2"), Err(QueryError::Integrity(_))));
        assert!(matches!(load_table(&spec(d.path(), "PRJ-000002", 1), "t1"), Err(QueryError::Integrity(_))));
    }

    /// Two saves at once (two members, two workers) cannot pass the cap together: the check
    /// and the write are under one lock (review finding F3).
    #[test]
    fn parallel_saves_cannot_pass_the_cap_together() {
        let d = tempfile::tempdir().unwrap();
        let schema: SchemaRef = Arc::new(Schema::new(vec![Field::new("s", DataType::Utf8View, false)]));
        let value = "a".repeat(1 << 20);
        // 140 MiB each: one fits under 256 MiB, two do not.
        let batch = RecordBatch::try_new(schema.clone(), vec![Arc::new(StringViewArray::from(vec![value.as_str(); 140]))]).unwrap();
        let outcomes: Vec<Result<()>> = std::thread::scope(|scope| {
            let handles: Vec<_> = ["big_a", "big_b"]
                .into_iter()
                .map(|name| {
                    let (ws, schema, batch) = (spec(d.path(), "PRJ-000001", 1), schema.clone(), batch.clone());
                    scope.spawn(move || save_table(&ws, name, &schema, std::slice::from_ref(&batch)))
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(outcomes.iter().filter(|o| o.is_ok()).count(), 1, "{outcomes:?}");
        assert!(outcomes.iter().any(|o| matches!(o, Err(QueryError::ResultTooLarge(_)))));
        assert_eq!(saved_names(d.path()).len(), 1);
        assert!(check_saved_total(d.path()).is_ok());
        // Tables over the cap however they came there: the workspace does not open until some
        // are dropped.
        let f = std::fs::File::create(table_path(d.path(), "planted")).unwrap();
        f.set_len(200 << 20).unwrap();
        let e = check_saved_total(d.path()).unwrap_err();
        assert!(e.to_string().contains("kura workspace drop"), "{e}");
    }

    #[test]
    fn names_are_checked() {
        let taken: std::collections::HashSet<String> = ["re".to_string()].into();
        for bad in ["", "Re", "1a", "a-b", "a.b", "../x", "re", &"a".repeat(64)] {
            assert!(check_table_name(bad, &taken).is_err(), "{bad}");
        }
        for good in ["a", "my_table_2", &"a".repeat(63)] {
            assert!(check_table_name(good, &taken).is_ok(), "{good}");
        }
    }

    #[test]
    fn pseudonyms_differ_by_project_and_keep_nulls() {
        let platform = PseudonymKey::new(SecretKey::from_bytes([9; 32]));
        let run = |project: &str| {
            let f = ProjectPseudonym::new(project, platform.for_project(project));
            let id = "ab".repeat(32);
            let ids: ArrayRef = Arc::new(StringViewArray::from(vec![Some(id.as_str()), None, Some(id.as_str()), Some("9")]));
            let field = Arc::new(Field::new("id5", DataType::Utf8View, true));
            let out = f
                .invoke_with_args(ScalarFunctionArgs {
                    args: vec![ColumnarValue::Array(ids)],
                    arg_fields: vec![field.clone()],
                    number_rows: 4,
                    return_field: field,
                    config_options: Arc::new(Default::default()),
                })
                .unwrap();
            let ColumnarValue::Array(a) = out else { panic!("array") };
            a.as_string_view().iter().map(|v| v.map(str::to_string)).collect::<Vec<_>>()
        };
        let a = run("PRJ-000001");
        let b = run("PRJ-000002");
        assert_eq!(a[0], a[2]);
        assert_eq!(a[1], None);
        assert_ne!(a[0], b[0]);
        assert_ne!(a[0], Some("ab".repeat(32)));
        assert_eq!(a[0].as_deref().map(str::len), Some(64));
        // The placeholder of a missing ID5 is no person: it stays.
        assert_eq!(a[3].as_deref(), Some("9"));
    }
}
