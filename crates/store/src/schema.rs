//! Table definitions by their Arrow schemas: a [`TableSpec`] lists every column with its type,
//! Japanese and English description, code system and sensitivity class. The catalogue, the
//! Parquet schema, the encryption keys and the check of every written batch are all derived from
//! it. Nothing here knows where rows come from: the synthetic generator, and later the intake
//! parsers, build [`RecordBatch`]es with a [`BatchBuilder`] and write them through
//! [`crate::writer::DatasetWriter`].

use datafusion::arrow::array::{
    ArrayRef, BooleanBuilder, Date32Builder, Float64Builder, Int16Builder, Int32Builder, Int64Builder, StringBuilder,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::record_batch::RecordBatch;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// How sensitive a column is; decides default grants and how a reviewer treats it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Sensitivity {
    /// Code masters and other public reference data.
    Public,
    /// Technical keys with no meaning outside the dataset (receipt id, line number).
    Internal,
    /// Clinical content: codes, values, points.
    Clinical,
    /// Quasi-identifiers: age, sex, dates, places, institutions, insurers.
    Quasi,
    /// Hashed person identifiers (ID1, ID2, ID4, ID5): linkage keys.
    Identifier,
}

impl Sensitivity {
    /// Japanese and English label.
    pub fn label(self) -> &'static str {
        match self {
            Sensitivity::Public => "公開 public",
            Sensitivity::Internal => "内部キー internal",
            Sensitivity::Clinical => "診療情報 clinical",
            Sensitivity::Quasi => "準識別子 quasi-identifier",
            Sensitivity::Identifier => "ハッシュID identifier",
        }
    }
}

/// A column's physical type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColType {
    /// 64-bit integer.
    I64,
    /// 32-bit integer.
    I32,
    /// 16-bit integer.
    I16,
    /// Double.
    F64,
    /// UTF-8 text.
    Utf8,
    /// Date (days since 1970-01-01).
    Date,
    /// Boolean.
    Bool,
}

impl ColType {
    /// The Arrow data type.
    pub fn data_type(self) -> DataType {
        match self {
            ColType::I64 => DataType::Int64,
            ColType::I32 => DataType::Int32,
            ColType::I16 => DataType::Int16,
            ColType::F64 => DataType::Float64,
            ColType::Utf8 => DataType::Utf8,
            ColType::Date => DataType::Date32,
            ColType::Bool => DataType::Boolean,
        }
    }
}

/// A column builder of one of the [`ColType`]s.
pub enum ColBuilder {
    /// Int64.
    I64(Int64Builder),
    /// Int32.
    I32(Int32Builder),
    /// Int16.
    I16(Int16Builder),
    /// Float64.
    F64(Float64Builder),
    /// Utf8.
    Utf8(StringBuilder),
    /// Date32.
    Date(Date32Builder),
    /// Boolean.
    Bool(BooleanBuilder),
}

macro_rules! typed_push {
    ($name:ident, $opt:ident, $variant:ident, $t:ty) => {
        /// Appends a value (the column must be of this type; checked by the crate's tests).
        pub fn $name(&mut self, v: $t) {
            match self {
                ColBuilder::$variant(b) => b.append_value(v),
                _ => unreachable!(concat!("column is not ", stringify!($variant))),
            }
        }
        /// Appends a value or null.
        pub fn $opt(&mut self, v: Option<$t>) {
            match self {
                ColBuilder::$variant(b) => b.append_option(v),
                _ => unreachable!(concat!("column is not ", stringify!($variant))),
            }
        }
    };
}

impl ColBuilder {
    /// An empty builder of a column of type `t` with room for `cap` values.
    pub fn new(t: ColType, cap: usize) -> Self {
        match t {
            ColType::I64 => ColBuilder::I64(Int64Builder::with_capacity(cap)),
            ColType::I32 => ColBuilder::I32(Int32Builder::with_capacity(cap)),
            ColType::I16 => ColBuilder::I16(Int16Builder::with_capacity(cap)),
            ColType::F64 => ColBuilder::F64(Float64Builder::with_capacity(cap)),
            ColType::Utf8 => ColBuilder::Utf8(StringBuilder::with_capacity(cap, cap.saturating_mul(8))),
            ColType::Date => ColBuilder::Date(Date32Builder::with_capacity(cap)),
            ColType::Bool => ColBuilder::Bool(BooleanBuilder::with_capacity(cap)),
        }
    }

    /// The finished array.
    pub fn finish(self) -> ArrayRef {
        match self {
            ColBuilder::I64(mut b) => Arc::new(b.finish()),
            ColBuilder::I32(mut b) => Arc::new(b.finish()),
            ColBuilder::I16(mut b) => Arc::new(b.finish()),
            ColBuilder::F64(mut b) => Arc::new(b.finish()),
            ColBuilder::Utf8(mut b) => Arc::new(b.finish()),
            ColBuilder::Date(mut b) => Arc::new(b.finish()),
            ColBuilder::Bool(mut b) => Arc::new(b.finish()),
        }
    }

    typed_push!(i64, opt_i64, I64, i64);
    typed_push!(i32, opt_i32, I32, i32);
    typed_push!(i16, opt_i16, I16, i16);
    typed_push!(f64, opt_f64, F64, f64);
    typed_push!(date, opt_date, Date, i32);
    typed_push!(bool, opt_bool, Bool, bool);

    /// Appends text.
    pub fn str(&mut self, v: &str) {
        match self {
            ColBuilder::Utf8(b) => b.append_value(v),
            _ => unreachable!("column is not Utf8"),
        }
    }

    /// Appends text or null.
    pub fn opt_str(&mut self, v: Option<&str>) {
        match self {
            ColBuilder::Utf8(b) => b.append_option(v),
            _ => unreachable!("column is not Utf8"),
        }
    }
}

/// One column of a table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ColumnSpec {
    /// Column name (SQL identifier).
    pub name: &'static str,
    /// Type.
    pub ty: ColType,
    /// Whether nulls occur.
    pub nullable: bool,
    /// Japanese description.
    pub title_ja: &'static str,
    /// English description.
    pub title_en: &'static str,
    /// Code system or format, if coded.
    pub code_system: Option<&'static str>,
    /// Sensitivity class.
    pub sensitivity: Sensitivity,
}

impl ColumnSpec {
    /// The Arrow field.
    pub fn field(&self) -> Field {
        Field::new(self.name, self.ty.data_type(), self.nullable)
    }
}

/// A table: name, descriptions and columns, in file order.
#[derive(Debug, PartialEq, Eq)]
pub struct TableSpec {
    /// Table name (SQL identifier).
    pub name: &'static str,
    /// Japanese title.
    pub title_ja: &'static str,
    /// English title.
    pub title_en: &'static str,
    /// The source record or master it mirrors.
    pub source_format: &'static str,
    /// Columns.
    pub columns: &'static [ColumnSpec],
}

impl TableSpec {
    /// The Arrow schema (no metadata).
    pub fn schema(&self) -> SchemaRef {
        Arc::new(Schema::new(self.columns.iter().map(ColumnSpec::field).collect::<Vec<_>>()))
    }

    /// A column by name.
    pub fn column(&self, name: &str) -> Option<&'static ColumnSpec> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// Whether a batch has exactly this table's columns (names, types, nullability, order);
    /// otherwise what differs first, naming the column.
    pub fn check(&self, batch: &RecordBatch) -> Result<(), String> {
        let fields = batch.schema_ref().fields().clone();
        if fields.len() != self.columns.len() {
            return Err(format!("{} columns, expected {}", fields.len(), self.columns.len()));
        }
        for (f, c) in fields.iter().zip(self.columns) {
            if f.name() != c.name {
                return Err(format!("column '{}' where '{}' was expected", f.name(), c.name));
            }
            if f.data_type() != &c.ty.data_type() {
                return Err(format!("column '{}' is {}, expected {}", c.name, f.data_type(), c.ty.data_type()));
            }
            // A field declared nullable is fine for a column that is not: the writer rebuilds
            // the batch under the table's schema, which refuses any actual null.
        }
        Ok(())
    }
}

/// Builds one [`RecordBatch`] of a table, column by column in the table's order.
pub struct BatchBuilder {
    spec: &'static TableSpec,
    columns: Vec<ColBuilder>,
}

impl BatchBuilder {
    /// An empty batch of `spec` with room for `rows` rows.
    pub fn new(spec: &'static TableSpec, rows: usize) -> Self {
        Self { spec, columns: spec.columns.iter().map(|c| ColBuilder::new(c.ty, rows)).collect() }
    }

    /// The column builders, in the table's column order.
    pub fn columns_mut(&mut self) -> &mut [ColBuilder] {
        &mut self.columns
    }

    /// The finished batch; fails if the columns differ in length or a non-nullable column
    /// received a null.
    pub fn finish(self) -> Result<RecordBatch, ArrowError> {
        let arrays: Vec<ArrayRef> = self.columns.into_iter().map(ColBuilder::finish).collect();
        RecordBatch::try_new(self.spec.schema(), arrays)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_standard_table_has_unique_documented_columns() {
        let mut names = std::collections::HashSet::new();
        for t in crate::tables::NDB {
            assert!(names.insert(t.name), "duplicate table {}", t.name);
            let mut cols = std::collections::HashSet::new();
            for c in t.columns {
                assert!(cols.insert(c.name), "duplicate column {}.{}", t.name, c.name);
                assert!(!c.title_ja.is_empty() && !c.title_en.is_empty(), "{}.{}", t.name, c.name);
            }
        }
    }

    #[test]
    fn a_batch_of_another_shape_is_named() {
        let spec = &crate::tables::M_PREFECTURE;
        let mut b = BatchBuilder::new(spec, 1);
        let cols = b.columns_mut();
        cols[0].i16(13);
        cols[1].str("東京都");
        cols[2].str("Tokyo");
        let batch = b.finish().unwrap();
        assert_eq!(spec.check(&batch), Ok(()));
        assert_eq!(crate::tables::M_DPC.check(&batch).unwrap_err(), "3 columns, expected 4");
        let mut short = BatchBuilder::new(&crate::tables::M_DISEASE, 1);
        short.columns_mut()[0].str("x");
        assert!(short.finish().is_err(), "columns of unequal length make no batch");
    }
}
