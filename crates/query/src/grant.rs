//! Grants: the datasets, tables and columns a query may see.

use crate::{QueryError, Result};
use kura_store::{ColumnEntry, DatasetEntry, TableEntry};
use std::collections::{BTreeMap, BTreeSet};

/// What one table of a grant exposes.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum TableGrant {
    /// Every column.
    All,
    /// Only these columns.
    Columns(BTreeSet<String>),
}

/// A set of tables and columns of one dataset. Only granted columns exist for a query, and only
/// their keys (plus the footer keys of their tables) are unwrapped.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Grant {
    dataset: String,
    tables: BTreeMap<String, TableGrant>,
}

impl Grant {
    /// Everything in the dataset (the home owner's view).
    pub fn everything(dataset: &DatasetEntry) -> Self {
        Self { dataset: dataset.name.clone(), tables: dataset.tables.iter().map(|t| (t.name.clone(), TableGrant::All)).collect() }
    }

    /// Parses `TABLE`, `TABLE.COLUMN` or `DATASET.TABLE[.COLUMN]` specifications; every name must
    /// exist in the catalogue.
    pub fn parse<S: AsRef<str>>(dataset: &DatasetEntry, specs: &[S]) -> Result<Self> {
        let mut tables: BTreeMap<String, TableGrant> = BTreeMap::new();
        for spec in specs {
            let spec = spec.as_ref().trim();
            let all: Vec<&str> = spec.split('.').collect();
            // A leading dataset name is taken off when it is one: always with three parts, and
            // with two when the first names this dataset and the second one of its tables.
            let parts = match all.as_slice() {
                [d, rest @ ..] if rest.len() == 2 => {
                    if *d != dataset.name {
                        return Err(QueryError::BadGrant(format!("'{spec}': データセット '{d}' はありません / no dataset '{d}'")));
                    }
                    rest
                }
                [d, rest @ ..] if rest.len() == 1 && *d == dataset.name && rest.iter().all(|t| dataset.table(t).is_some()) => rest,
                whole => whole,
            };
            let (table, column) = match parts {
                [t] if !t.is_empty() => (*t, None),
                [t, c] if !t.is_empty() && !c.is_empty() => (*t, Some(*c)),
                _ => {
                    return Err(QueryError::BadGrant(format!(
                        "'{spec}': TABLE または TABLE.COLUMN の形で指定してください / use TABLE or TABLE.COLUMN"
                    )));
                }
            };
            let t = dataset.table(table).ok_or_else(|| {
                QueryError::BadGrant(format!("'{spec}': テーブル '{table}' はありません / no table '{table}' (see `kura catalog`)"))
            })?;
            match column {
                None => {
                    tables.insert(table.to_string(), TableGrant::All);
                }
                Some(c) => {
                    if t.column(c).is_none() {
                        return Err(QueryError::BadGrant(format!(
                            "'{spec}': 列 '{c}' はテーブル '{table}' にありません / table '{table}' has no column '{c}'"
                        )));
                    }
                    match tables.entry(table.to_string()).or_insert_with(|| TableGrant::Columns(BTreeSet::new())) {
                        TableGrant::All => {}
                        TableGrant::Columns(cols) => {
                            cols.insert(c.to_string());
                        }
                    }
                }
            }
        }
        if tables.is_empty() {
            return Err(QueryError::BadGrant("空の許可 / empty grant".into()));
        }
        Ok(Self { dataset: dataset.name.clone(), tables })
    }

    /// The dataset.
    pub fn dataset(&self) -> &str {
        &self.dataset
    }

    /// Granted table names.
    pub fn tables(&self) -> impl Iterator<Item = &str> {
        self.tables.keys().map(String::as_str)
    }

    /// Whether a table is granted (any column).
    pub fn has_table(&self, table: &str) -> bool {
        self.tables.contains_key(table)
    }

    /// The granted columns of a catalogue table, in catalogue order.
    pub fn columns<'a>(&self, table: &'a TableEntry) -> Vec<&'a ColumnEntry> {
        match self.tables.get(&table.name) {
            None => Vec::new(),
            Some(TableGrant::All) => table.columns.iter().collect(),
            Some(TableGrant::Columns(c)) => table.columns.iter().filter(|col| c.contains(&col.name)).collect(),
        }
    }

    /// The key ids a reader under this grant needs: each granted table's footer key and the keys
    /// of its granted columns.
    pub fn key_ids(&self, dataset: &DatasetEntry) -> Vec<String> {
        let mut ids = Vec::new();
        for t in &dataset.tables {
            let cols = self.columns(t);
            if !cols.is_empty() {
                ids.push(t.footer_key_id.clone());
                ids.extend(cols.iter().map(|c| c.key_id.clone()));
            }
        }
        ids
    }

    /// The further key ids the builder of a project's extract needs for its hidden lineage
    /// columns ([`crate::hidden`]): the columns each granted table's persons and units are read
    /// from, its own and its parent's, whether granted or not (issue 22 §8).
    pub fn lineage_key_ids(&self, dataset: &DatasetEntry) -> Vec<String> {
        let mut ids = Vec::new();
        let mut add = |table: &TableEntry, cols: &[&str]| {
            ids.push(table.footer_key_id.clone());
            ids.extend(table.columns.iter().filter(|c| cols.contains(&c.name.as_str())).map(|c| c.key_id.clone()));
        };
        for t in &dataset.tables {
            let Some(lineage) = kura_store::tables::lineage(&t.name) else { continue };
            if self.columns(t).is_empty() {
                continue;
            }
            add(t, &crate::hidden::source_columns(&lineage));
            if let Some((parent, _)) = lineage.parent
                && let (Some(p), Some(pl)) = (dataset.table(parent), kura_store::tables::lineage(parent))
            {
                add(p, &crate::hidden::source_columns(&pl));
            }
        }
        ids.sort();
        ids.dedup();
        ids
    }
}
