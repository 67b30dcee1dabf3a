//! # kura-synth-dataset — the synthetic population as a Kura dataset
//!
//! The generator (`kura-synth`) makes rows; the store (`kura-store`) keeps tables defined by
//! their Arrow schemas. This crate is the adapter between them and the only place that knows
//! both: each standard table ([`kura_store::tables`]) gets an [`Extract`] that turns the
//! generator's rows into a [`RecordBatch`] of exactly that table's columns, and
//! [`write_synthetic`] generates on every core and writes through
//! [`kura_store::DatasetWriter`] — the same API the intake parsers of real files use.

mod care;
mod checkup;
mod claims;
mod masters;
pub mod uke;
mod write;

pub use care::*;
pub use checkup::*;
pub use claims::*;
pub use masters::*;
pub use write::write_synthetic;

use datafusion::arrow::error::ArrowError;
use datafusion::arrow::record_batch::RecordBatch;
use kura_store::schema::ColBuilder;
use kura_store::{BatchBuilder, TableSpec, tables};
use kura_synth::codes::{self, CareService, Disease, DpcGroup, Drug, LabItem, Modifier, Procedure, Route};
use kura_synth::model::*;
use kura_synth::reference::{PREFECTURES, Prefecture};
use kura_synth::{Chunk, World};

/// Errors of writing a synthetic dataset.
#[derive(Debug, thiserror::Error)]
pub enum SynthDatasetError {
    /// The generator refused its configuration.
    #[error(transparent)]
    Synth(#[from] kura_synth::SynthError),
    /// The store refused a batch or failed to write.
    #[error(transparent)]
    Store(#[from] kura_store::StoreError),
    /// A file could not be written.
    #[error("{path}: 書き込めません / cannot write: {source}")]
    Io {
        /// The path.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// A record could not be written in its file format.
    #[error(transparent)]
    Format(#[from] kura_formats::FormatError),
    /// A table's rows did not make a batch (a programming error the crate's tests rule out).
    #[error("表 {table} のバッチを作れません / cannot build a batch of table {table}: {source}")]
    Batch {
        /// The table.
        table: &'static str,
        /// Arrow's error.
        source: ArrowError,
    },
}

/// Result type of this crate.
pub type Result<T> = std::result::Result<T, SynthDatasetError>;

/// Context available when converting rows: the world (institution and insurer codes) and the
/// population counts summed over all chunks.
pub struct Ctx<'a> {
    /// Institutions and insurers.
    pub world: &'a World,
    /// Population by prefecture × sex × 5-year band (see [`kura_synth::model::population_index`]).
    pub population: &'a [u32],
}

/// One cell of the population table.
#[derive(Clone, Copy, Debug)]
pub struct PopulationCell {
    /// Prefecture.
    pub prefecture: u8,
    /// Sex.
    pub sex: u8,
    /// Lower bound of the 5-year age band.
    pub age_band: u8,
    /// Persons.
    pub persons: u32,
}

/// How one column's value is read from a row of type `R`.
pub struct Put<R> {
    /// The column (checked against the table's spec).
    pub column: &'static str,
    /// Appends this column's value of a row.
    pub put: fn(&R, &Ctx<'_>, &mut ColBuilder),
}

const fn put<R>(column: &'static str, put: fn(&R, &Ctx<'_>, &mut ColBuilder)) -> Put<R> {
    Put { column, put }
}

/// Where a table's rows come from.
pub enum Source<R: 'static> {
    /// Generated rows of each chunk.
    Chunk(fn(&Chunk) -> &[R]),
    /// Reference rows, written once.
    Master(fn(&Ctx<'_>) -> Vec<R>),
}

/// A standard table filled from generated rows: one [`Put`] per column of its spec, in order.
pub struct Extract<R: 'static> {
    /// The table.
    pub spec: &'static TableSpec,
    /// Its rows.
    pub source: Source<R>,
    /// Its columns.
    pub put: &'static [Put<R>],
}

/// An [`Extract`] of any row type, as the writer sees it.
pub trait AnyExtract: Sync {
    /// The table.
    fn spec(&self) -> &'static TableSpec;
    /// Whether it is a code master (written once, not per chunk).
    fn is_master(&self) -> bool;
    /// The rows of a chunk (fact tables) as a batch; `None` if the chunk has none.
    fn chunk_batch(&self, chunk: &Chunk, ctx: &Ctx<'_>) -> Result<Option<RecordBatch>>;
    /// The rows of a master table.
    fn master_batch(&self, ctx: &Ctx<'_>) -> Result<Option<RecordBatch>>;
    /// Whether the extractors name the spec's columns in its order; otherwise the first that
    /// differs.
    fn check(&self) -> std::result::Result<(), String>;
}

impl<R: 'static> Extract<R> {
    fn batch(&self, rows: &[R], ctx: &Ctx<'_>) -> Result<Option<RecordBatch>> {
        if rows.is_empty() {
            return Ok(None);
        }
        let mut b = BatchBuilder::new(self.spec, rows.len());
        for r in rows {
            for (p, c) in self.put.iter().zip(b.columns_mut().iter_mut()) {
                (p.put)(r, ctx, c);
            }
        }
        b.finish().map(Some).map_err(|source| SynthDatasetError::Batch { table: self.spec.name, source })
    }
}

impl<R: Sync + 'static> AnyExtract for Extract<R> {
    fn spec(&self) -> &'static TableSpec {
        self.spec
    }
    fn is_master(&self) -> bool {
        matches!(self.source, Source::Master(_))
    }
    fn chunk_batch(&self, chunk: &Chunk, ctx: &Ctx<'_>) -> Result<Option<RecordBatch>> {
        match &self.source {
            Source::Chunk(f) => self.batch(f(chunk), ctx),
            Source::Master(_) => Ok(None),
        }
    }
    fn master_batch(&self, ctx: &Ctx<'_>) -> Result<Option<RecordBatch>> {
        match &self.source {
            Source::Master(f) => self.batch(&f(ctx), ctx),
            Source::Chunk(_) => Ok(None),
        }
    }
    fn check(&self) -> std::result::Result<(), String> {
        let names: Vec<&str> = self.put.iter().map(|p| p.column).collect();
        let spec: Vec<&str> = self.spec.columns.iter().map(|c| c.name).collect();
        if names == spec {
            Ok(())
        } else {
            Err(format!("table {}: extractors {names:?} do not match the columns {spec:?}", self.spec.name))
        }
    }
}

fn id5(v: &Id5) -> Option<&str> {
    v.as_str()
}

/// Every table of the synthetic dataset, in the order of [`kura_store::tables::NDB`].
pub static ALL: [&dyn AnyExtract; 21] = [
    &RE,
    &SY,
    &SI,
    &IY,
    &DPC,
    &PHARMACY,
    &CHECKUP,
    &CHECKUP_ITEM,
    &CARE_CERT,
    &CARE_CLAIM,
    &M_DISEASE,
    &M_MODIFIER,
    &M_DRUG,
    &M_PROCEDURE,
    &M_LAB_ITEM,
    &M_CARE_SERVICE,
    &M_DPC,
    &M_PREFECTURE,
    &M_INSTITUTION,
    &M_INSURER,
    &M_POPULATION,
];

#[cfg(test)]
mod tests {
    use super::*;
    use kura_crypto::{PseudonymKey, SecretKey};
    use kura_synth::{Generator, SynthConfig};

    #[test]
    fn every_table_builds_with_its_declared_columns() {
        let g = Generator::new(SynthConfig::new(3000, 5), PseudonymKey::new(SecretKey::from_bytes([3; 32]))).unwrap();
        let chunk = g.generate_chunk(0);
        let ctx = Ctx { world: g.world(), population: &chunk.population };
        assert_eq!(ALL.len(), tables::NDB.len());
        for (t, spec) in ALL.iter().zip(tables::NDB) {
            assert!(std::ptr::eq(t.spec(), spec), "{} is out of the standard order", t.spec().name);
            t.check().unwrap();
            let batch = if t.is_master() { t.master_batch(&ctx) } else { t.chunk_batch(&chunk, &ctx) }.unwrap();
            let batch = batch.unwrap_or_else(|| panic!("{} is empty", spec.name));
            assert!(batch.num_rows() > 0);
            assert_eq!(batch.schema(), spec.schema());
            spec.check(&batch).unwrap();
        }
    }
}
