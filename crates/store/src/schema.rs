//! Table definitions: every column of every dataset table, with its Arrow type, Japanese and
//! English description, code system, sensitivity class, and how it is read from a generated row.
//! This is the single place that lists columns; the catalogue, the Parquet schema and the
//! encryption keys are all derived from it.

use datafusion::arrow::array::{
    ArrayRef, BooleanBuilder, Date32Builder, Float64Builder, Int16Builder, Int32Builder, Int64Builder, StringBuilder,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::record_batch::RecordBatch;
use kura_synth::codes::{self, CareService, Disease, DpcGroup, Drug, LabItem, Modifier, Procedure, Route};
use kura_synth::model::*;
use kura_synth::reference::{PREFECTURES, Prefecture};
use kura_synth::{Chunk, World};
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
    fn new(t: ColType, cap: usize) -> Self {
        match t {
            ColType::I64 => ColBuilder::I64(Int64Builder::with_capacity(cap)),
            ColType::I32 => ColBuilder::I32(Int32Builder::with_capacity(cap)),
            ColType::I16 => ColBuilder::I16(Int16Builder::with_capacity(cap)),
            ColType::F64 => ColBuilder::F64(Float64Builder::with_capacity(cap)),
            ColType::Utf8 => ColBuilder::Utf8(StringBuilder::with_capacity(cap, cap * 8)),
            ColType::Date => ColBuilder::Date(Date32Builder::with_capacity(cap)),
            ColType::Bool => ColBuilder::Bool(BooleanBuilder::with_capacity(cap)),
        }
    }

    fn finish(self) -> ArrayRef {
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

/// One column of a table: metadata plus how to read it from a row of type `R`.
pub struct Column<R> {
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
    /// Appends this column's value of a row.
    pub put: fn(&R, &Ctx<'_>, &mut ColBuilder),
}

/// Where a table's rows come from.
pub enum Source<R: 'static> {
    /// Generated rows of each chunk.
    Chunk(fn(&Chunk) -> &[R]),
    /// Reference rows, written once.
    Master(fn(&Ctx<'_>) -> Vec<R>),
}

/// A table: name, descriptions, columns, row source.
pub struct TableDef<R: 'static> {
    /// Table name (SQL identifier).
    pub name: &'static str,
    /// Japanese title.
    pub title_ja: &'static str,
    /// English title.
    pub title_en: &'static str,
    /// The source record or master it mirrors.
    pub source_format: &'static str,
    /// Columns.
    pub columns: &'static [Column<R>],
    /// Rows.
    pub source: Source<R>,
}

/// Metadata of a column, independent of the row type.
#[derive(Clone, Debug)]
pub struct ColumnInfo {
    /// Name.
    pub name: &'static str,
    /// Type.
    pub ty: ColType,
    /// Nullable.
    pub nullable: bool,
    /// Japanese description.
    pub title_ja: &'static str,
    /// English description.
    pub title_en: &'static str,
    /// Code system.
    pub code_system: Option<&'static str>,
    /// Sensitivity.
    pub sensitivity: Sensitivity,
}

/// A table of any row type, as the writer and the catalogue see it.
pub trait AnyTable: Sync {
    /// Name.
    fn name(&self) -> &'static str;
    /// Japanese title.
    fn title_ja(&self) -> &'static str;
    /// English title.
    fn title_en(&self) -> &'static str;
    /// Source record description.
    fn source_format(&self) -> &'static str;
    /// Whether it is a code master (written once, not per chunk).
    fn is_master(&self) -> bool;
    /// Columns.
    fn columns(&self) -> Vec<ColumnInfo>;
    /// The Arrow schema.
    fn schema(&self) -> SchemaRef {
        Arc::new(Schema::new(self.columns().iter().map(|c| Field::new(c.name, c.ty.data_type(), c.nullable)).collect::<Vec<_>>()))
    }
    /// The rows of a chunk (fact tables) as a batch; `None` if the chunk has none.
    fn chunk_batch(&self, chunk: &Chunk, ctx: &Ctx<'_>) -> Result<Option<RecordBatch>, ArrowError>;
    /// The rows of a master table.
    fn master_batch(&self, ctx: &Ctx<'_>) -> Result<Option<RecordBatch>, ArrowError>;
}

impl<R: 'static> TableDef<R> {
    fn batch(&self, rows: &[R], ctx: &Ctx<'_>) -> Result<Option<RecordBatch>, ArrowError> {
        if rows.is_empty() {
            return Ok(None);
        }
        let mut builders: Vec<ColBuilder> = self.columns.iter().map(|c| ColBuilder::new(c.ty, rows.len())).collect();
        for r in rows {
            for (c, b) in self.columns.iter().zip(builders.iter_mut()) {
                (c.put)(r, ctx, b);
            }
        }
        let arrays: Vec<ArrayRef> = builders.into_iter().map(ColBuilder::finish).collect();
        let schema =
            Arc::new(Schema::new(self.columns.iter().map(|c| Field::new(c.name, c.ty.data_type(), c.nullable)).collect::<Vec<_>>()));
        RecordBatch::try_new(schema, arrays).map(Some)
    }
}

impl<R: Sync + 'static> AnyTable for TableDef<R> {
    fn name(&self) -> &'static str {
        self.name
    }
    fn title_ja(&self) -> &'static str {
        self.title_ja
    }
    fn title_en(&self) -> &'static str {
        self.title_en
    }
    fn source_format(&self) -> &'static str {
        self.source_format
    }
    fn is_master(&self) -> bool {
        matches!(self.source, Source::Master(_))
    }
    fn columns(&self) -> Vec<ColumnInfo> {
        self.columns
            .iter()
            .map(|c| ColumnInfo {
                name: c.name,
                ty: c.ty,
                nullable: c.nullable,
                title_ja: c.title_ja,
                title_en: c.title_en,
                code_system: c.code_system,
                sensitivity: c.sensitivity,
            })
            .collect()
    }
    fn chunk_batch(&self, chunk: &Chunk, ctx: &Ctx<'_>) -> Result<Option<RecordBatch>, ArrowError> {
        match &self.source {
            Source::Chunk(f) => self.batch(f(chunk), ctx),
            Source::Master(_) => Ok(None),
        }
    }
    fn master_batch(&self, ctx: &Ctx<'_>) -> Result<Option<RecordBatch>, ArrowError> {
        match &self.source {
            Source::Master(f) => self.batch(&f(ctx), ctx),
            Source::Chunk(_) => Ok(None),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Column constructors, to keep each table a readable list.

use Sensitivity::{Clinical, Identifier, Internal, Public, Quasi};

#[allow(clippy::too_many_arguments)] // one argument per catalogue field keeps each column a single readable line
const fn col<R>(
    name: &'static str,
    ty: ColType,
    nullable: bool,
    title_ja: &'static str,
    title_en: &'static str,
    code_system: Option<&'static str>,
    sensitivity: Sensitivity,
    put: fn(&R, &Ctx<'_>, &mut ColBuilder),
) -> Column<R> {
    Column { name, ty, nullable, title_ja, title_en, code_system, sensitivity, put }
}

const HASHED: Option<&str> = Some("64桁16進 HMAC-SHA-256 / 64 hex characters");
const YYYYMM: Option<&str> = Some("YYYYMM");
const PREF: Option<&str> = Some("JIS X 0401 都道府県コード");
const SEX: Option<&str> = Some("1:男 male 2:女 female");
const DISEASE: Option<&str> = Some("傷病名コード (m_disease)");
const DRUG: Option<&str> = Some("医薬品コード (m_drug)");
const PROC: Option<&str> = Some("診療行為コード (m_procedure)");
const INST: Option<&str> = Some("医療機関等コード 10桁 (m_institution)");
const CARE_LEVEL: Option<&str> = Some("12:要支援1 13:要支援2 21-25:要介護1-5 (01:非該当)");

fn id5(v: &Id5) -> Option<&str> {
    v.as_str()
}

/// RE: レセプト共通レコード.
pub static RE: TableDef<Receipt> = TableDef {
    name: "re",
    title_ja: "レセプト共通（RE）",
    title_en: "Receipts (RE record, with IR/HO fields)",
    source_format: "UKE RE/IR/HO (医科・DPC・調剤)",
    source: Source::Chunk(|c| &c.receipts),
    columns: &[
        col("receipt_id", ColType::I64, false, "レセプトID", "Receipt id (joins SY/SI/IY/DPC/pharmacy)", None, Internal, |r, _, b| {
            b.i64(r.receipt_id)
        }),
        col(
            "receipt_kind",
            ColType::Utf8,
            false,
            "レセプト区分",
            "Receipt kind",
            Some("医科入院 / 医科入院外 / DPC / 調剤"),
            Quasi,
            |r, _, b| b.str(r.kind.label()),
        ),
        col(
            "receipt_type",
            ColType::Utf8,
            false,
            "レセプト種別",
            "Receipt type (4 digits)",
            Some("レセプト種別コード"),
            Quasi,
            |r, _, b| b.str(std::str::from_utf8(&r.receipt_type).unwrap_or("0000")),
        ),
        col("service_month", ColType::I32, false, "診療年月", "Service month", YYYYMM, Quasi, |r, _, b| b.i32(r.service_month)),
        col("institution_code", ColType::Utf8, false, "医療機関等コード", "Institution code", INST, Quasi, |r, ctx, b| {
            b.str(&ctx.world.institution(r.institution).code)
        }),
        col("prefecture", ColType::I16, false, "都道府県", "Prefecture", PREF, Quasi, |r, _, b| b.i16(i16::from(r.prefecture))),
        col("sex", ColType::I16, false, "男女区分", "Sex", SEX, Quasi, |r, _, b| b.i16(i16::from(r.sex))),
        col("birth_month", ColType::I32, false, "生年月", "Birth year-month", YYYYMM, Quasi, |r, _, b| b.i32(r.birth_month)),
        col(
            "age",
            ColType::I16,
            false,
            "年齢（診療月初日）",
            "Age at the first day of the service month",
            None,
            Quasi,
            |r, _, b| b.i16(i16::from(r.age)),
        ),
        col(
            "insurer_number",
            ColType::Utf8,
            false,
            "保険者番号",
            "Insurer number",
            Some("保険者番号 (m_insurer)"),
            Quasi,
            |r, ctx, b| b.str(&ctx.world.insurer(r.insurer).number),
        ),
        col("benefit_ratio", ColType::I16, false, "給付割合", "Benefit ratio (%)", None, Clinical, |r, _, b| {
            b.i16(i16::from(r.benefit_ratio))
        }),
        col("admission_date", ColType::Date, true, "入院年月日", "Admission date", None, Quasi, |r, _, b| {
            b.opt_date(r.admission_date)
        }),
        col("actual_days", ColType::I16, false, "診療実日数", "Days of care in the month", None, Clinical, |r, _, b| {
            b.i16(i16::from(r.actual_days))
        }),
        col("total_points", ColType::I32, false, "合計点数", "Total points", None, Clinical, |r, _, b| b.i32(r.total_points)),
        col(
            "id1",
            ColType::Utf8,
            false,
            "ID1（保険者番号・記号番号・生年月日・性別のハッシュ）",
            "ID1: hash of insurer number, card number, birth date, sex",
            HASHED,
            Identifier,
            |r, _, b| b.str(r.ids.id1.as_str()),
        ),
        col(
            "id2",
            ColType::Utf8,
            false,
            "ID2（氏名・生年月日・性別のハッシュ）",
            "ID2: hash of name, birth date, sex",
            HASHED,
            Identifier,
            |r, _, b| b.str(r.ids.id2.as_str()),
        ),
        col(
            "id4",
            ColType::Utf8,
            false,
            "ID4（カナ氏名・生年月日・性別のハッシュ）",
            "ID4: hash of kana name, birth date, sex",
            HASHED,
            Identifier,
            |r, _, b| b.str(r.ids.id4.as_str()),
        ),
        col(
            "id5",
            ColType::Utf8,
            true,
            "ID5（最古の個人単位被保険者番号のハッシュ；欠損はnullまたは'9'）",
            "ID5: hash of the oldest individual insured number; missing as null or '9'",
            HASHED,
            Identifier,
            |r, _, b| b.opt_str(id5(&r.ids.id5)),
        ),
    ],
};

/// SY: 傷病名レコード.
pub static SY: TableDef<Diagnosis> = TableDef {
    name: "sy",
    title_ja: "傷病名（SY）",
    title_en: "Diagnoses (SY record)",
    source_format: "UKE SY",
    source: Source::Chunk(|c| &c.diagnoses),
    columns: &[
        col("receipt_id", ColType::I64, false, "レセプトID", "Receipt id", None, Internal, |r, _, b| b.i64(r.receipt_id)),
        col("seq", ColType::I16, false, "行番号", "Line number", None, Internal, |r, _, b| b.i16(r.seq as i16)),
        col(
            "disease_code",
            ColType::Utf8,
            false,
            "傷病名コード",
            "Disease code (7 digits; 0000999 = uncoded)",
            DISEASE,
            Clinical,
            |r, _, b| b.str(r.disease.code),
        ),
        col("start_date", ColType::Date, false, "診療開始日", "Start of care", None, Quasi, |r, _, b| b.date(r.start_date)),
        col("outcome", ColType::I16, false, "転帰区分", "Outcome", Some("1:継続 2:治ゆ 3:死亡 4:中止"), Clinical, |r, _, b| {
            b.i16(i16::from(r.outcome))
        }),
        col(
            "modifiers",
            ColType::Utf8,
            true,
            "修飾語コード（4桁の連結）",
            "Modifier codes, 4-digit codes concatenated (8002 = suspected)",
            Some("修飾語コード (m_modifier)"),
            Clinical,
            |r, _, b| b.opt_str((!r.modifiers.is_empty()).then_some(r.modifiers)),
        ),
        col(
            "suspected",
            ColType::Bool,
            false,
            "疑い病名（修飾語8002を含む；派生）",
            "Suspected diagnosis (modifier 8002 present; derived)",
            None,
            Clinical,
            |r, _, b| b.bool(r.modifiers.as_bytes().chunks(4).any(|c| c == b"8002")),
        ),
        col("main", ColType::Bool, false, "主傷病", "Main diagnosis", None, Clinical, |r, _, b| b.bool(r.main)),
        col(
            "disease_name",
            ColType::Utf8,
            true,
            "傷病名称（未コード化傷病名のみ）",
            "Free-text name (uncoded diagnoses only)",
            None,
            Clinical,
            |r, _, b| b.opt_str(r.name_text),
        ),
    ],
};

/// SI: 診療行為レコード.
pub static SI: TableDef<ProcedureLine> = TableDef {
    name: "si",
    title_ja: "診療行為（SI）",
    title_en: "Procedures (SI record)",
    source_format: "UKE SI",
    source: Source::Chunk(|c| &c.procedures),
    columns: &[
        col("receipt_id", ColType::I64, false, "レセプトID", "Receipt id", None, Internal, |r, _, b| b.i64(r.receipt_id)),
        col("seq", ColType::I16, false, "行番号", "Line number", None, Internal, |r, _, b| b.i16(r.seq as i16)),
        col(
            "practice_class",
            ColType::Utf8,
            false,
            "診療識別",
            "Practice class",
            Some("診療識別コード (11 初診 … 90 入院)"),
            Clinical,
            |r, _, b| b.str(r.procedure.practice_class),
        ),
        col("procedure_code", ColType::Utf8, false, "診療行為コード", "Procedure code (9 digits)", PROC, Clinical, |r, _, b| {
            b.str(r.procedure.code)
        }),
        col("points", ColType::I32, false, "点数", "Points per unit", None, Clinical, |r, _, b| b.i32(r.procedure.points)),
        col("count", ColType::I32, false, "回数", "Count", None, Clinical, |r, _, b| b.i32(r.count)),
    ],
};

/// IY: 医薬品レコード (医科 and 調剤).
pub static IY: TableDef<DrugLine> = TableDef {
    name: "iy",
    title_ja: "医薬品（IY）",
    title_en: "Drugs (IY record, medical and pharmacy receipts)",
    source_format: "UKE IY",
    source: Source::Chunk(|c| &c.drugs),
    columns: &[
        col("receipt_id", ColType::I64, false, "レセプトID", "Receipt id", None, Internal, |r, _, b| b.i64(r.receipt_id)),
        col("seq", ColType::I16, false, "行番号", "Line number", None, Internal, |r, _, b| b.i16(r.seq as i16)),
        col(
            "practice_class",
            ColType::Utf8,
            false,
            "診療識別",
            "Practice class",
            Some("診療識別コード (21 内服, 23 外用, 31 注射 …)"),
            Clinical,
            |r, _, b| b.str(r.drug.route.practice_class()),
        ),
        col("drug_code", ColType::Utf8, false, "医薬品コード", "Drug code (9 digits)", DRUG, Clinical, |r, _, b| b.str(r.drug.code)),
        col("quantity", ColType::F64, false, "使用量（1日量）", "Quantity per day", None, Clinical, |r, _, b| b.f64(r.quantity)),
        col("points", ColType::I32, false, "点数（1日分）", "Points per day", None, Clinical, |r, _, b| b.i32(r.points)),
        col("count", ColType::I32, false, "回数（日数）", "Count (days supplied)", None, Clinical, |r, _, b| b.i32(r.count)),
    ],
};

/// DPC: BU (診断群分類) with SB main disease.
pub static DPC: TableDef<DpcRecord> = TableDef {
    name: "dpc",
    title_ja: "DPC 診断群分類（BU/SB）",
    title_en: "DPC diagnosis groups (BU/SB records)",
    source_format: "UKE DPC BU/SB",
    source: Source::Chunk(|c| &c.dpc),
    columns: &[
        col("receipt_id", ColType::I64, false, "レセプトID", "Receipt id", None, Internal, |r, _, b| b.i64(r.receipt_id)),
        col(
            "dpc_code",
            ColType::Utf8,
            false,
            "診断群分類番号",
            "DPC code (14 characters)",
            Some("DPCコード (m_dpc)"),
            Clinical,
            |r, _, b| b.str(r.group.code),
        ),
        col("admission_date", ColType::Date, false, "今回入院日", "Admission date", None, Quasi, |r, _, b| b.date(r.admission_date)),
        col("discharge_date", ColType::Date, true, "今回退院日", "Discharge date (null while in hospital)", None, Quasi, |r, _, b| {
            b.opt_date(r.discharge_date)
        }),
        col(
            "dpc_outcome",
            ColType::I16,
            false,
            "DPC転帰区分",
            "DPC outcome",
            Some("0:入院中 1:治癒 2:軽快 4:不変 6:死亡"),
            Clinical,
            |r, _, b| b.i16(i16::from(r.outcome)),
        ),
        col(
            "main_disease_code",
            ColType::Utf8,
            false,
            "医療資源を最も投入した傷病名",
            "Main disease code",
            DISEASE,
            Clinical,
            |r, _, b| b.str(r.main_disease.code),
        ),
        col("main_icd10", ColType::Utf8, false, "ICD-10コード", "ICD-10 of the main disease", Some("ICD-10"), Clinical, |r, _, b| {
            b.str(r.main_disease.icd10)
        }),
        col("emergency", ColType::Bool, false, "緊急入院", "Emergency admission", None, Clinical, |r, _, b| b.bool(r.emergency)),
    ],
};

/// 調剤 receipt details.
pub static PHARMACY: TableDef<PharmacyRecord> = TableDef {
    name: "pharmacy",
    title_ja: "調剤レセプト情報",
    title_en: "Pharmacy receipt details",
    source_format: "UKE 調剤 YK/RE/CZ",
    source: Source::Chunk(|c| &c.pharmacy),
    columns: &[
        col("receipt_id", ColType::I64, false, "レセプトID", "Receipt id", None, Internal, |r, _, b| b.i64(r.receipt_id)),
        col("prescriber_code", ColType::Utf8, false, "処方医療機関コード", "Prescribing institution", INST, Quasi, |r, ctx, b| {
            b.str(&ctx.world.institution(r.prescriber).code)
        }),
        col("prescriptions", ColType::I16, false, "処方箋受付回数", "Prescriptions received", None, Clinical, |r, _, b| {
            b.i16(i16::from(r.prescriptions))
        }),
        col(
            "dispensing_points",
            ColType::I32,
            false,
            "調剤技術料・薬学管理料",
            "Dispensing and pharmaceutical care points",
            None,
            Clinical,
            |r, _, b| b.i32(r.dispensing_points),
        ),
        col("drug_points", ColType::I32, false, "薬剤料", "Drug points", None, Clinical, |r, _, b| b.i32(r.drug_points)),
    ],
};

/// 特定健診 headers.
pub static CHECKUP: TableDef<Checkup> = TableDef {
    name: "checkup",
    title_ja: "特定健診（受診者・実施情報）",
    title_en: "Specific health checkups (one row per checkup)",
    source_format: "特定健診 CDA (hc08) header",
    source: Source::Chunk(|c| &c.checkups),
    columns: &[
        col("checkup_id", ColType::I64, false, "健診ID", "Checkup id (joins checkup_item)", None, Internal, |r, _, b| {
            b.i64(r.checkup_id)
        }),
        col("checkup_date", ColType::Date, false, "実施年月日", "Date", None, Quasi, |r, _, b| b.date(r.date)),
        col("fiscal_year", ColType::I16, false, "年度", "Fiscal year", None, Quasi, |r, _, b| b.i16(r.fiscal_year as i16)),
        col("sex", ColType::I16, false, "性別", "Sex", SEX, Quasi, |r, _, b| b.i16(i16::from(r.sex))),
        col("age", ColType::I16, false, "年齢", "Age at the checkup", None, Quasi, |r, _, b| b.i16(i16::from(r.age))),
        col("prefecture", ColType::I16, false, "都道府県", "Prefecture", PREF, Quasi, |r, _, b| b.i16(i16::from(r.prefecture))),
        col(
            "insurer_number",
            ColType::Utf8,
            false,
            "保険者番号",
            "Insurer number",
            Some("保険者番号 (m_insurer)"),
            Quasi,
            |r, ctx, b| b.str(&ctx.world.insurer(r.insurer).number),
        ),
        col("institution_code", ColType::Utf8, false, "健診機関コード", "Checkup institution", INST, Quasi, |r, ctx, b| {
            b.str(&ctx.world.institution(r.institution).code)
        }),
        col("id1", ColType::Utf8, false, "ID1", "ID1", HASHED, Identifier, |r, _, b| b.str(r.ids.id1.as_str())),
        col("id2", ColType::Utf8, false, "ID2", "ID2", HASHED, Identifier, |r, _, b| b.str(r.ids.id2.as_str())),
        col("id5", ColType::Utf8, true, "ID5", "ID5", HASHED, Identifier, |r, _, b| b.opt_str(id5(&r.ids.id5))),
    ],
};

/// 特定健診 items.
pub static CHECKUP_ITEM: TableDef<CheckupItem> = TableDef {
    name: "checkup_item",
    title_ja: "特定健診（検査・問診結果）",
    title_en: "Checkup results (one row per item)",
    source_format: "特定健診 CDA observation",
    source: Source::Chunk(|c| &c.checkup_items),
    columns: &[
        col("checkup_id", ColType::I64, false, "健診ID", "Checkup id", None, Internal, |r, _, b| b.i64(r.checkup_id)),
        col(
            "item_code",
            ColType::Utf8,
            false,
            "項目コード（JLAC10）",
            "Item code (JLAC10, 17 characters)",
            Some("特定健診項目コード OID 1.2.392.200119.6.1005 (m_lab_item)"),
            Clinical,
            |r, _, b| b.str(r.item.code),
        ),
        col("value", ColType::F64, true, "結果値（数値）", "Numeric result", None, Clinical, |r, _, b| b.opt_f64(r.value)),
        col("value_code", ColType::I16, true, "結果コード", "Coded result (see m_lab_item.unit)", None, Clinical, |r, _, b| {
            b.opt_i16(r.code.map(i16::from))
        }),
    ],
};

/// 要介護認定.
pub static CARE_CERT: TableDef<CareCert> = TableDef {
    name: "care_cert",
    title_ja: "要介護認定",
    title_en: "Care-need certifications",
    source_format: "介護DB 認定情報",
    source: Source::Chunk(|c| &c.care_certs),
    columns: &[
        col("cert_id", ColType::I64, false, "認定ID", "Certification id", None, Internal, |r, _, b| b.i64(r.cert_id)),
        col("sex", ColType::I16, false, "性別", "Sex", SEX, Quasi, |r, _, b| b.i16(i16::from(r.sex))),
        col("birth_month", ColType::I32, false, "生年月", "Birth year-month", YYYYMM, Quasi, |r, _, b| b.i32(r.birth_month)),
        col("age", ColType::I16, false, "年齢（認定時）", "Age at certification", None, Quasi, |r, _, b| b.i16(i16::from(r.age))),
        col("prefecture", ColType::I16, false, "都道府県", "Prefecture", PREF, Quasi, |r, _, b| b.i16(i16::from(r.prefecture))),
        col("cert_date", ColType::Date, false, "認定年月日", "Certification date", None, Quasi, |r, _, b| b.date(r.cert_date)),
        col("care_level", ColType::Utf8, false, "要介護状態区分", "Care level", CARE_LEVEL, Clinical, |r, _, b| b.str(r.care_level)),
        col("valid_from", ColType::Date, false, "認定有効期間（開始）", "Valid from", None, Quasi, |r, _, b| {
            b.date(r.valid_from)
        }),
        col("valid_to", ColType::Date, false, "認定有効期間（終了）", "Valid to", None, Quasi, |r, _, b| b.date(r.valid_to)),
        col("id4", ColType::Utf8, false, "ID4", "ID4 (links to the NDB)", HASHED, Identifier, |r, _, b| b.str(r.ids.id4.as_str())),
        col("id5", ColType::Utf8, true, "ID5", "ID5 (links to the NDB)", HASHED, Identifier, |r, _, b| b.opt_str(id5(&r.ids.id5))),
    ],
};

/// 介護給付費明細書.
pub static CARE_CLAIM: TableDef<CareClaimLine> = TableDef {
    name: "care_claim",
    title_ja: "介護給付費明細（基本・明細）",
    title_en: "Care claims (basic and detail records, one row per service line)",
    source_format: "介護レセプト 01 基本情報 + 02 明細情報",
    source: Source::Chunk(|c| &c.care_claims),
    columns: &[
        col("claim_id", ColType::I64, false, "介護レセプトID", "Care claim id", None, Internal, |r, _, b| b.i64(r.claim_id)),
        col("seq", ColType::I16, false, "明細行番号", "Line number", None, Internal, |r, _, b| b.i16(r.seq as i16)),
        col("service_month", ColType::I32, false, "サービス提供年月", "Service month", YYYYMM, Quasi, |r, _, b| {
            b.i32(r.service_month)
        }),
        col("provider_code", ColType::Utf8, false, "事業所番号", "Care provider number", INST, Quasi, |r, ctx, b| {
            b.str(&ctx.world.institution(r.provider).code)
        }),
        col("sex", ColType::I16, false, "性別", "Sex", SEX, Quasi, |r, _, b| b.i16(i16::from(r.sex))),
        col("age", ColType::I16, false, "年齢", "Age", None, Quasi, |r, _, b| b.i16(i16::from(r.age))),
        col("prefecture", ColType::I16, false, "都道府県", "Prefecture", PREF, Quasi, |r, _, b| b.i16(i16::from(r.prefecture))),
        col("care_level", ColType::Utf8, false, "要介護状態区分", "Care level", CARE_LEVEL, Clinical, |r, _, b| b.str(r.care_level)),
        col(
            "service_type",
            ColType::Utf8,
            false,
            "サービス種類コード",
            "Service type",
            Some("サービス種類コード (m_care_service)"),
            Clinical,
            |r, _, b| b.str(r.service_type),
        ),
        col("service_item", ColType::Utf8, false, "サービス項目コード", "Service item (synthetic)", None, Clinical, |r, _, b| {
            b.str(std::str::from_utf8(&r.service_item).unwrap_or("0000"))
        }),
        col("units", ColType::I32, false, "単位数", "Units", None, Clinical, |r, _, b| b.i32(r.units)),
        col("count", ColType::I16, false, "日数・回数", "Days or visits", None, Clinical, |r, _, b| b.i16(r.count)),
        col("id4", ColType::Utf8, false, "ID4", "ID4 (links to the NDB)", HASHED, Identifier, |r, _, b| b.str(r.ids.id4.as_str())),
        col("id5", ColType::Utf8, true, "ID5", "ID5 (links to the NDB)", HASHED, Identifier, |r, _, b| b.opt_str(id5(&r.ids.id5))),
    ],
};

// ---------------------------------------------------------------------------------------------
// Code masters.

const PROVENANCE: Option<&str> = Some("確認済 confirmed / 未確認 unverified / 合成 synthetic");

/// 傷病名マスター.
pub static M_DISEASE: TableDef<&'static Disease> = TableDef {
    name: "m_disease",
    title_ja: "傷病名マスター",
    title_en: "Disease master",
    source_format: "SSK 傷病名マスター (subset)",
    source: Source::Master(|_| codes::DISEASES.iter().collect()),
    columns: &[
        col("disease_code", ColType::Utf8, false, "傷病名コード", "Disease code", None, Public, |r, _, b| b.str(r.code)),
        col("name_ja", ColType::Utf8, false, "基本名称", "Name (Japanese)", None, Public, |r, _, b| b.str(r.name_ja)),
        col("name_en", ColType::Utf8, false, "英語名", "Name (English)", None, Public, |r, _, b| b.str(r.name_en)),
        col("icd10", ColType::Utf8, false, "ICD-10", "ICD-10", Some("ICD-10"), Public, |r, _, b| b.str(r.icd10)),
        col("provenance", ColType::Utf8, false, "コードの出典", "Code provenance", PROVENANCE, Public, |r, _, b| {
            b.str(r.provenance.label())
        }),
    ],
};

/// 修飾語マスター.
pub static M_MODIFIER: TableDef<&'static Modifier> = TableDef {
    name: "m_modifier",
    title_ja: "修飾語マスター",
    title_en: "Modifier master",
    source_format: "SSK 修飾語マスター (subset)",
    source: Source::Master(|_| codes::MODIFIERS.iter().collect()),
    columns: &[
        col("modifier_code", ColType::Utf8, false, "修飾語コード", "Modifier code", None, Public, |r, _, b| b.str(r.code)),
        col("name_ja", ColType::Utf8, false, "名称", "Name (Japanese)", None, Public, |r, _, b| b.str(r.name_ja)),
        col("name_en", ColType::Utf8, false, "英語名", "Name (English)", None, Public, |r, _, b| b.str(r.name_en)),
        col("provenance", ColType::Utf8, false, "コードの出典", "Code provenance", PROVENANCE, Public, |r, _, b| {
            b.str(r.provenance.label())
        }),
    ],
};

fn route_label(r: Route) -> &'static str {
    match r {
        Route::Oral => "内用 oral",
        Route::Injection => "注射 injection",
        Route::Topical => "外用 topical",
    }
}

/// 医薬品マスター.
pub static M_DRUG: TableDef<&'static Drug> = TableDef {
    name: "m_drug",
    title_ja: "医薬品マスター",
    title_en: "Drug master",
    source_format: "SSK 医薬品マスター (subset)",
    source: Source::Master(|_| codes::DRUGS.iter().collect()),
    columns: &[
        col("drug_code", ColType::Utf8, false, "医薬品コード", "Drug code", None, Public, |r, _, b| b.str(r.code)),
        col("name_ja", ColType::Utf8, false, "漢字名称", "Name (Japanese)", None, Public, |r, _, b| b.str(r.name_ja)),
        col("generic_en", ColType::Utf8, false, "一般名（英語）", "Generic name (English)", None, Public, |r, _, b| {
            b.str(r.generic_en)
        }),
        col("efficacy_class", ColType::Utf8, false, "薬効分類", "Therapeutic class (4 digits)", None, Public, |r, _, b| {
            b.str(r.efficacy_class)
        }),
        col("yj_code", ColType::Utf8, true, "YJコード", "YJ code", None, Public, |r, _, b| b.opt_str(r.yj_code)),
        col("route", ColType::Utf8, false, "投与経路", "Route", None, Public, |r, _, b| b.str(route_label(r.route))),
        col("unit", ColType::Utf8, false, "単位", "Unit", None, Public, |r, _, b| b.str(r.unit_ja)),
        col(
            "price_yen",
            ColType::F64,
            false,
            "薬価（円、参考値）",
            "Price per unit (yen, illustrative)",
            None,
            Public,
            |r, _, b| b.f64(r.price_yen),
        ),
        col("provenance", ColType::Utf8, false, "コードの出典", "Code provenance", PROVENANCE, Public, |r, _, b| {
            b.str(r.provenance.label())
        }),
    ],
};

/// 診療行為マスター.
pub static M_PROCEDURE: TableDef<&'static Procedure> = TableDef {
    name: "m_procedure",
    title_ja: "診療行為マスター",
    title_en: "Procedure master",
    source_format: "SSK 診療行為マスター (subset)",
    source: Source::Master(|_| codes::PROCEDURES.iter().collect()),
    columns: &[
        col("procedure_code", ColType::Utf8, false, "診療行為コード", "Procedure code", None, Public, |r, _, b| b.str(r.code)),
        col("name_ja", ColType::Utf8, false, "名称", "Name (Japanese)", None, Public, |r, _, b| b.str(r.name_ja)),
        col("name_en", ColType::Utf8, false, "英語名", "Name (English)", None, Public, |r, _, b| b.str(r.name_en)),
        col("practice_class", ColType::Utf8, false, "診療識別", "Practice class", None, Public, |r, _, b| b.str(r.practice_class)),
        col("points", ColType::I32, false, "点数（参考値）", "Points (illustrative)", None, Public, |r, _, b| b.i32(r.points)),
        col("provenance", ColType::Utf8, false, "コードの出典", "Code provenance", PROVENANCE, Public, |r, _, b| {
            b.str(r.provenance.label())
        }),
    ],
};

/// 特定健診項目.
pub static M_LAB_ITEM: TableDef<&'static LabItem> = TableDef {
    name: "m_lab_item",
    title_ja: "特定健診項目マスター（JLAC10）",
    title_en: "Checkup item master (JLAC10)",
    source_format: "特定健診項目コード表 (subset)",
    source: Source::Master(|_| codes::LAB_ITEMS.iter().collect()),
    columns: &[
        col("item_code", ColType::Utf8, false, "項目コード（JLAC10）", "Item code", None, Public, |r, _, b| b.str(r.code)),
        col("item_key", ColType::Utf8, false, "項目キー", "Short key shared by methods (hba1c, sbp, …)", None, Public, |r, _, b| {
            b.str(r.key)
        }),
        col("name_ja", ColType::Utf8, false, "名称", "Name (Japanese)", None, Public, |r, _, b| b.str(r.name_ja)),
        col("name_en", ColType::Utf8, false, "英語名", "Name (English)", None, Public, |r, _, b| b.str(r.name_en)),
        col("unit", ColType::Utf8, false, "単位・コード", "Unit or answer codes", None, Public, |r, _, b| b.str(r.unit)),
        col("provenance", ColType::Utf8, false, "コードの出典", "Code provenance", PROVENANCE, Public, |r, _, b| {
            b.str(r.provenance.label())
        }),
    ],
};

/// サービス種類.
pub static M_CARE_SERVICE: TableDef<&'static CareService> = TableDef {
    name: "m_care_service",
    title_ja: "介護サービス種類マスター",
    title_en: "Care service type master",
    source_format: "サービス種類コード (subset)",
    source: Source::Master(|_| codes::CARE_SERVICES.iter().collect()),
    columns: &[
        col("service_type", ColType::Utf8, false, "サービス種類コード", "Service type", None, Public, |r, _, b| b.str(r.code)),
        col("name_ja", ColType::Utf8, false, "名称", "Name (Japanese)", None, Public, |r, _, b| b.str(r.name_ja)),
        col("name_en", ColType::Utf8, false, "英語名", "Name (English)", None, Public, |r, _, b| b.str(r.name_en)),
        col("provenance", ColType::Utf8, false, "コードの出典", "Code provenance", PROVENANCE, Public, |r, _, b| {
            b.str(r.provenance.label())
        }),
    ],
};

/// DPC 診断群分類.
pub static M_DPC: TableDef<&'static DpcGroup> = TableDef {
    name: "m_dpc",
    title_ja: "DPC診断群分類マスター",
    title_en: "DPC group master",
    source_format: "診断群分類 (subset)",
    source: Source::Master(|_| codes::DPC_GROUPS.iter().collect()),
    columns: &[
        col("dpc_code", ColType::Utf8, false, "診断群分類番号", "DPC code", None, Public, |r, _, b| b.str(r.code)),
        col("name_ja", ColType::Utf8, false, "名称", "Name (Japanese)", None, Public, |r, _, b| b.str(r.name_ja)),
        col("name_en", ColType::Utf8, false, "英語名", "Name (English)", None, Public, |r, _, b| b.str(r.name_en)),
        col("provenance", ColType::Utf8, false, "コードの出典", "Code provenance", PROVENANCE, Public, |r, _, b| {
            b.str(r.provenance.label())
        }),
    ],
};

/// 都道府県.
pub static M_PREFECTURE: TableDef<&'static Prefecture> = TableDef {
    name: "m_prefecture",
    title_ja: "都道府県マスター",
    title_en: "Prefecture master",
    source_format: "JIS X 0401",
    source: Source::Master(|_| PREFECTURES.iter().collect()),
    columns: &[
        col("prefecture", ColType::I16, false, "都道府県コード", "Prefecture code", PREF, Public, |r, _, b| {
            b.i16(i16::from(r.code))
        }),
        col("name_ja", ColType::Utf8, false, "名称", "Name (Japanese)", None, Public, |r, _, b| b.str(r.name_ja)),
        col("name_en", ColType::Utf8, false, "英語名", "Name (English)", None, Public, |r, _, b| b.str(r.name_en)),
    ],
};

/// 医療機関等 (synthetic).
pub static M_INSTITUTION: TableDef<u32> = TableDef {
    name: "m_institution",
    title_ja: "医療機関・薬局・介護事業所マスター（合成）",
    title_en: "Institution master (synthetic)",
    source_format: "医療機関等コード (synthetic)",
    source: Source::Master(|c| (0..c.world.institutions.len() as u32).collect()),
    columns: &[
        col("institution_code", ColType::Utf8, false, "医療機関等コード", "Institution code", None, Public, |r, c, b| {
            b.str(&c.world.institution(*r).code)
        }),
        col("kind", ColType::Utf8, false, "種別", "Kind", None, Public, |r, c, b| b.str(c.world.institution(*r).kind.label())),
        col("prefecture", ColType::I16, false, "都道府県", "Prefecture", PREF, Public, |r, c, b| {
            b.i16(i16::from(c.world.institution(*r).prefecture))
        }),
        col("name_ja", ColType::Utf8, false, "名称（合成）", "Name (synthetic)", None, Public, |r, c, b| {
            b.str(&c.world.institution(*r).name_ja)
        }),
        col("beds", ColType::I16, false, "病床数", "Beds", None, Public, |r, c, b| b.i16(c.world.institution(*r).beds as i16)),
        col("in_house_dispensing", ColType::Bool, false, "院内処方", "Dispenses in house", None, Public, |r, c, b| {
            b.bool(c.world.institution(*r).in_house)
        }),
    ],
};

/// 保険者 (synthetic).
pub static M_INSURER: TableDef<u32> = TableDef {
    name: "m_insurer",
    title_ja: "保険者マスター（合成）",
    title_en: "Insurer master (synthetic)",
    source_format: "保険者番号 (synthetic)",
    source: Source::Master(|c| (0..c.world.insurers.len() as u32).collect()),
    columns: &[
        col("insurer_number", ColType::Utf8, false, "保険者番号", "Insurer number", None, Public, |r, c, b| {
            b.str(&c.world.insurer(*r).number)
        }),
        col(
            "kind",
            ColType::Utf8,
            false,
            "保険者種別",
            "Insurer kind",
            Some("協会けんぽ / 組合健保 / 共済 / 国保 / 後期高齢"),
            Public,
            |r, c, b| {
                b.str(match c.world.insurer(*r).kind {
                    kura_synth::reference::InsurerKind::Kyokai => "協会けんぽ",
                    kura_synth::reference::InsurerKind::Kumiai => "組合健保",
                    kura_synth::reference::InsurerKind::Kyosai => "共済",
                    kura_synth::reference::InsurerKind::Kokuho => "国保",
                    kura_synth::reference::InsurerKind::Koki => "後期高齢",
                })
            },
        ),
        col("prefecture", ColType::I16, false, "都道府県", "Prefecture", PREF, Public, |r, c, b| {
            b.i16(i16::from(c.world.insurer(*r).prefecture))
        }),
    ],
};

/// Population at the start of the period (the synthetic population's own census).
pub static M_POPULATION: TableDef<PopulationCell> = TableDef {
    name: "m_population",
    title_ja: "人口（期間開始時点、都道府県・性・5歳階級）",
    title_en: "Population at the start of the period by prefecture, sex and 5-year age band",
    source_format: "住民基本台帳人口に相当 (synthetic)",
    source: Source::Master(|c| {
        let mut v = Vec::new();
        for (i, &n) in c.population.iter().enumerate() {
            if n > 0 {
                v.push(PopulationCell {
                    prefecture: (i / 42 + 1) as u8,
                    sex: (i % 42 / 21 + 1) as u8,
                    age_band: (i % 21 * 5) as u8,
                    persons: n,
                });
            }
        }
        v
    }),
    columns: &[
        col("prefecture", ColType::I16, false, "都道府県", "Prefecture", PREF, Public, |r, _, b| b.i16(i16::from(r.prefecture))),
        col("sex", ColType::I16, false, "性別", "Sex", SEX, Public, |r, _, b| b.i16(i16::from(r.sex))),
        col(
            "age_band",
            ColType::I16,
            false,
            "年齢階級（5歳、下限）",
            "Age band (5 years, lower bound; 100 = 100+)",
            None,
            Public,
            |r, _, b| b.i16(i16::from(r.age_band)),
        ),
        col("persons", ColType::I64, false, "人口", "Persons", None, Public, |r, _, b| b.i64(i64::from(r.persons))),
    ],
};

/// Every table of the synthetic NDB-like dataset, fact tables first.
pub fn all_tables() -> [&'static dyn AnyTable; 21] {
    [
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
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use kura_crypto::{PseudonymKey, SecretKey};
    use kura_synth::{Generator, SynthConfig};

    #[test]
    fn every_table_builds_with_its_declared_types() {
        let g = Generator::new(SynthConfig::new(3000, 5), PseudonymKey::new(SecretKey::from_bytes([3; 32]))).unwrap();
        let chunk = g.generate_chunk(0);
        let ctx = Ctx { world: g.world(), population: &chunk.population };
        let mut names = std::collections::HashSet::new();
        for t in all_tables() {
            assert!(names.insert(t.name()), "duplicate table {}", t.name());
            let batch = if t.is_master() { t.master_batch(&ctx) } else { t.chunk_batch(&chunk, &ctx) }.unwrap();
            let batch = batch.unwrap_or_else(|| panic!("{} is empty", t.name()));
            assert!(batch.num_rows() > 0);
            assert_eq!(batch.schema(), t.schema());
            for c in t.columns() {
                assert!(!c.title_ja.is_empty() && !c.title_en.is_empty(), "{}.{}", t.name(), c.name);
            }
        }
    }
}
