//! The hidden lineage columns of a project's extract (issue 17 §2, issue 22 §1, §6–§8).
//!
//! The airlock's checker must know who stands behind each row — the platform's person, and the
//! institution, pharmacy and insurer — even where the project's grant holds none of those
//! columns, while the researcher's worker must never see them. So the extract's builder
//! ([`crate::extract`]) writes, beside the granted columns of every table a person stands
//! behind ([`kura_store::tables::lineage`]), four hidden columns:
//!
//! | column | value |
//! |---|---|
//! | `__kura_person` | a keyed 64-bit hash of the row's ID5 (through its parent record for detail tables); null where the ID is missing or invalid (`9`, empty), which never counts as a person |
//! | `__kura_institution` | a keyed hash of the medical institution's code |
//! | `__kura_pharmacy` | a keyed hash of the pharmacy's code (an RE row of a 調剤 receipt) |
//! | `__kura_insurer` | a keyed hash of the insurer's number |
//!
//! The hash is keyed by a key derived from the platform's airlock key, the same for every
//! project: the differencing memory follows a person across projects (issue 22 §1), while the
//! values say nothing to anyone without that key. The hidden columns are encrypted with a
//! Parquet column key derived from the airlock key for this project and file, which only the
//! builder and the checker receive; the worker that answers the researchers' SQL gets the
//! keys of the visible columns only and its tables do not list the hidden ones, so neither SQL
//! nor the worker's memory reaches them.

use crate::{QueryError, Result};
use datafusion::arrow::array::{Array, ArrayRef, AsArray, Int64Array};
use datafusion::arrow::datatypes::{DataType, Field};
use datafusion::common::{Column, TableReference};
use datafusion::logical_expr::{ColumnarValue, Expr, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility, lit, when};
use kura_crypto::{PseudonymKey, RowOrder, SecretKey};
use kura_store::tables::{Lineage, is_valid_person_id};
use std::sync::Arc;

/// The hidden columns, in the order the extract stores them.
pub const HIDDEN_COLUMNS: [&str; 4] = [crate::lineage::PERSON, "__kura_institution", "__kura_pharmacy", "__kura_insurer"];

/// The unit kind of each hidden unit column.
const UNIT_KINDS: [(&str, &str); 3] =
    [("institution", "__kura_institution"), ("pharmacy", "__kura_pharmacy"), ("insurer", "__kura_insurer")];

/// The keys of a project's hidden columns.
#[derive(Clone)]
pub struct LineageKeys {
    /// Encrypts (builder) and decrypts (checker) the project's hidden columns.
    pub project: SecretKey,
    /// Keys the person and unit hashes: the builder's only (the checker reads hashes).
    pub hashing: Option<SecretKey>,
}

impl std::fmt::Debug for LineageKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LineageKeys(<redacted>)")
    }
}

impl LineageKeys {
    /// The builder's keys for `project`, derived from the platform's airlock key.
    pub fn for_builder(airlock: &SecretKey, project: &str) -> LineageKeys {
        LineageKeys {
            project: airlock.derive(format!("kura/lineage/v1/extract\0{project}").as_bytes()),
            hashing: Some(airlock.derive(b"kura/lineage/v1/hash")),
        }
    }

    /// The same keys without the hashing key: what the checker receives.
    pub fn for_checker(&self) -> LineageKeys {
        LineageKeys { project: self.project.clone(), hashing: None }
    }

    /// The Parquet column key of the hidden columns of the extract's file at `path`.
    pub(crate) fn column_key(&self, path: &str) -> SecretKey {
        self.project.derive(format!("kura/lineage/v1/column\0{path}").as_bytes())
    }
}

/// The hidden columns' fields (all nullable 64-bit integers).
pub fn hidden_fields() -> Vec<Field> {
    HIDDEN_COLUMNS.iter().map(|n| Field::new(*n, DataType::Int64, true)).collect()
}

/// The keyed hash of a person's or a unit's code, as a scalar function of one text column.
#[derive(Debug)]
struct LineageHash {
    name: String,
    kind: &'static str,
    hash: RowOrder,
    signature: Signature,
}

impl PartialEq for LineageHash {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for LineageHash {}

impl std::hash::Hash for LineageHash {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.name.hash(state);
    }
}

impl ScalarUDFImpl for LineageHash {
    fn name(&self) -> &str {
        &self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> datafusion::common::Result<DataType> {
        Ok(DataType::Int64)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> datafusion::common::Result<ColumnarValue> {
        let n = args.number_rows;
        let Some(arg) = args.args.first() else { return Ok(ColumnarValue::Array(Arc::new(Int64Array::new_null(n)))) };
        let values = datafusion::arrow::compute::cast(&arg.to_array(n)?, &DataType::Utf8)?;
        let values = values.as_string::<i32>();
        let mut input = Vec::with_capacity(80);
        let hashed: Int64Array = (0..values.len())
            .map(|i| {
                if values.is_null(i) {
                    return None;
                }
                let v = values.value(i).trim();
                let valid = if self.kind == "person" { is_valid_person_id(v) } else { !v.is_empty() };
                valid.then(|| {
                    input.clear();
                    input.extend_from_slice(self.kind.as_bytes());
                    input.push(0);
                    // Case does not make another person.
                    input.extend(v.bytes().map(|b| b.to_ascii_lowercase()));
                    i64::from_be_bytes(self.hash.key(&input).to_be_bytes())
                })
            })
            .collect();
        Ok(ColumnarValue::Array(Arc::new(hashed) as ArrayRef))
    }
}

fn hash_fn(hashing: &SecretKey, kind: &'static str) -> Arc<ScalarUDF> {
    // A keyed 64-bit hash: HMAC-SHA-256 under a key of its own, its first 64 bits.
    let hash = PseudonymKey::new(hashing.derive(b"kura/lineage/v1/hmac")).row_order();
    Arc::new(ScalarUDF::new_from_impl(LineageHash {
        name: format!("kura_lineage_{kind}"),
        kind,
        hash,
        signature: Signature::any(1, Volatility::Immutable),
    }))
}

fn col(table: &str, name: &str) -> Expr {
    Expr::Column(Column::new(Some(TableReference::bare(table)), name))
}

/// The expressions of the hidden columns of `table`'s rows: the person (from `person` of the
/// table, or `parent_person` already hashed), and each unit kind from the table's own column or
/// else the parent's (already hashed). In [`HIDDEN_COLUMNS`] order, aliased.
pub(crate) fn hidden_exprs(hashing: &SecretKey, table: &str, lineage: &Lineage, parent: Option<(&str, &Lineage)>) -> Vec<Expr> {
    let person = match (lineage.person, parent) {
        (Some(p), _) => hash_fn(hashing, "person").call(vec![col(table, p)]),
        (None, Some((alias, _))) => col(alias, crate::lineage::PERSON),
        (None, None) => lit(datafusion::common::ScalarValue::Int64(None)),
    };
    let mut out = vec![person.alias(crate::lineage::PERSON)];
    for (kind, name) in UNIT_KINDS {
        let own = unit_expr(hashing, table, lineage, kind);
        let inherited = parent.map(|(alias, _)| col(alias, name));
        let e = match (own, inherited) {
            (Some(o), Some(i)) => datafusion::functions::expr_fn::coalesce(vec![o, i]),
            (Some(o), None) => o,
            (None, Some(i)) => i,
            (None, None) => lit(datafusion::common::ScalarValue::Int64(None)),
        };
        out.push(e.alias(name));
    }
    out
}

/// A unit kind's hash from the table's own columns, if any column gives that kind.
fn unit_expr(hashing: &SecretKey, table: &str, lineage: &Lineage, kind: &str) -> Option<Expr> {
    let mut exprs = Vec::new();
    for u in lineage.units {
        let hashed = hash_fn(hashing, "unit").call(vec![col(table, u.column)]);
        match (u.pharmacy_when, kind) {
            (None, k) if k == u.kind => exprs.push(hashed),
            (Some((c, v)), "pharmacy") => exprs.push(when(col(table, c).eq(lit(v)), hashed).end().ok()?),
            (Some((c, v)), k) if k == u.kind => {
                exprs.push(when(col(table, c).eq(lit(v)), lit(datafusion::common::ScalarValue::Int64(None))).otherwise(hashed).ok()?)
            }
            _ => {}
        }
    }
    match exprs.len() {
        0 => None,
        1 => exprs.pop(),
        _ => Some(datafusion::functions::expr_fn::coalesce(exprs)),
    }
}

/// The columns of `table` the hidden columns are computed from.
pub(crate) fn source_columns(lineage: &Lineage) -> Vec<&'static str> {
    let mut cols: Vec<&'static str> = Vec::new();
    cols.extend(lineage.person);
    cols.extend(lineage.parent.map(|(_, key)| key));
    for u in lineage.units {
        cols.push(u.column);
        cols.extend(u.pharmacy_when.map(|(c, _)| c));
    }
    cols.sort_unstable();
    cols.dedup();
    cols
}

/// Refuses a parent table that itself reaches its persons through a parent (one level only).
pub(crate) fn check_parent(parent: &str, lineage: &Lineage) -> Result<()> {
    if lineage.parent.is_some() || lineage.person.is_none() {
        return Err(QueryError::Engine(format!("lineage: the parent table '{parent}' must hold the person itself")));
    }
    Ok(())
}
