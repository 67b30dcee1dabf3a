//! Rows staged from accepted receipts, and their Arrow batches in the standard tables' column
//! order ([`kura_store::tables`]). Receipt ids are numbered from 1 within a file and shifted
//! when the batches are built, so that a file's rows can be staged before its place among the
//! others is known.

use datafusion::arrow::error::ArrowError;
use datafusion::arrow::record_batch::RecordBatch;
use kura_store::schema::ColBuilder;
use kura_store::{BatchBuilder, ColType, ColumnSpec, Sensitivity, TableSpec, tables};

/// RE.
#[derive(Debug, Clone, PartialEq)]
pub struct ReRow {
    /// Receipt id (within the file until shifted).
    pub receipt_id: i64,
    /// 医科入院 / 医科入院外 / DPC / 調剤.
    pub receipt_kind: &'static str,
    /// レセプト種別.
    pub receipt_type: String,
    /// 診療年月 YYYYMM.
    pub service_month: i32,
    /// 10-digit institution code.
    pub institution_code: String,
    /// The billing institution's prefecture.
    pub prefecture: i16,
    /// 1 male, 2 female.
    pub sex: i16,
    /// Birth YYYYMM.
    pub birth_month: i32,
    /// Age on the first day of the service month.
    pub age: i16,
    /// 保険者番号.
    pub insurer_number: String,
    /// 給付割合.
    pub benefit_ratio: Option<i16>,
    /// 入院年月日.
    pub admission_date: Option<i32>,
    /// 診療実日数 (調剤: 処方箋受付回数).
    pub actual_days: i16,
    /// 合計点数.
    pub total_points: i32,
    /// ID1.
    pub id1: Option<String>,
    /// ID2.
    pub id2: String,
    /// ID4.
    pub id4: Option<String>,
    /// ID5 (`9` as recorded where the answer had none).
    pub id5: Option<String>,
}

/// SY.
#[derive(Debug, Clone, PartialEq)]
pub struct SyRow {
    /// Receipt id.
    pub receipt_id: i64,
    /// Line number among the receipt's SY.
    pub seq: i16,
    /// 傷病名コード.
    pub disease_code: String,
    /// 診療開始日.
    pub start_date: i32,
    /// 転帰区分.
    pub outcome: i16,
    /// 修飾語コード.
    pub modifiers: Option<String>,
    /// 疑い (修飾語 8002).
    pub suspected: bool,
    /// 主傷病.
    pub main: bool,
    /// 傷病名称 (uncoded names).
    pub disease_name: Option<String>,
}

/// SI.
#[derive(Debug, Clone, PartialEq)]
pub struct SiRow {
    /// Receipt id.
    pub receipt_id: i64,
    /// Line number among the receipt's SI.
    pub seq: i16,
    /// 診療識別.
    pub practice_class: String,
    /// 診療行為コード.
    pub procedure_code: String,
    /// 点数 (blank inside a unit: 0).
    pub points: i32,
    /// 回数.
    pub count: i32,
}

/// IY.
#[derive(Debug, Clone, PartialEq)]
pub struct IyRow {
    /// Receipt id.
    pub receipt_id: i64,
    /// Line number among the receipt's IY.
    pub seq: i16,
    /// 診療識別.
    pub practice_class: String,
    /// 医薬品コード.
    pub drug_code: String,
    /// 使用量.
    pub quantity: f64,
    /// 点数.
    pub points: i32,
    /// 回数.
    pub count: i32,
}

/// DPC (BU with the SB main disease).
#[derive(Debug, Clone, PartialEq)]
pub struct DpcRow {
    /// Receipt id.
    pub receipt_id: i64,
    /// 診断群分類.
    pub dpc_code: String,
    /// 今回入院日.
    pub admission_date: i32,
    /// 今回退院日.
    pub discharge_date: Option<i32>,
    /// DPC転帰区分.
    pub dpc_outcome: i16,
    /// 医療資源を最も投入した傷病.
    pub main_disease_code: String,
    /// Its ICD-10.
    pub main_icd10: String,
    /// 緊急入院.
    pub emergency: bool,
}

/// 調剤 details.
#[derive(Debug, Clone, PartialEq)]
pub struct PharmacyRow {
    /// Receipt id.
    pub receipt_id: i64,
    /// 処方医療機関.
    pub prescriber_code: String,
    /// 処方箋受付回数.
    pub prescriptions: i16,
    /// 調剤技術料・薬学管理料.
    pub dispensing_points: i32,
    /// 薬剤料.
    pub drug_points: i32,
}

/// Rows of accepted receipts, per table.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Staged {
    /// RE.
    pub re: Vec<ReRow>,
    /// SY.
    pub sy: Vec<SyRow>,
    /// SI.
    pub si: Vec<SiRow>,
    /// IY.
    pub iy: Vec<IyRow>,
    /// DPC.
    pub dpc: Vec<DpcRow>,
    /// 調剤.
    pub pharmacy: Vec<PharmacyRow>,
}

/// One file taken in: what the dataset itself remembers of it, written in the same generation
/// as its rows (so a file is never loaded twice, and every receipt's file can be found).
#[derive(Debug, Clone, PartialEq)]
pub struct FileRow {
    /// SHA-256 of the file, hex.
    pub sha256: String,
    /// Its name as given.
    pub name: String,
    /// The billing institution.
    pub institution_code: String,
    /// Receipts loaded from it.
    pub receipts: i64,
    /// Receipts rejected in it.
    pub rejected: i64,
    /// Its first receipt id (none where nothing loaded).
    pub first_receipt_id: Option<i64>,
    /// Its last receipt id.
    pub last_receipt_id: Option<i64>,
}

const fn column(name: &'static str, ty: ColType, nullable: bool, title_ja: &'static str, title_en: &'static str) -> ColumnSpec {
    ColumnSpec { name, ty, nullable, title_ja, title_en, code_system: None, sensitivity: Sensitivity::Internal }
}

/// 受け入れたファイル: the files taken in, with the receipt ids their rows received.
pub static INTAKE_FILE: TableSpec = TableSpec {
    name: "intake_file",
    title_ja: "受け入れたファイル",
    title_en: "Files taken in",
    source_format: "kura intake",
    columns: &[
        column("sha256", ColType::Utf8, false, "ファイルのSHA-256", "SHA-256 of the file"),
        column("name", ColType::Utf8, false, "ファイル名", "File name as given"),
        column("institution_code", ColType::Utf8, false, "医療機関等コード", "Billing institution"),
        column("receipts", ColType::I64, false, "受け入れたレセプト数", "Receipts loaded"),
        column("rejected", ColType::I64, false, "差し戻したレセプト数", "Receipts rejected"),
        column("first_receipt_id", ColType::I64, true, "最初のレセプトID", "First receipt id"),
        column("last_receipt_id", ColType::I64, true, "最後のレセプトID", "Last receipt id"),
    ],
};

/// The tables intake of UKE files writes.
pub static TABLES: [&TableSpec; 7] = [&tables::RE, &tables::SY, &tables::SI, &tables::IY, &tables::DPC, &tables::PHARMACY, &INTAKE_FILE];

const FILE_PUT: &[Put<FileRow>] = &[
    ("sha256", |r, _, b| b.str(&r.sha256)),
    ("name", |r, _, b| b.str(&r.name)),
    ("institution_code", |r, _, b| b.str(&r.institution_code)),
    ("receipts", |r, _, b| b.i64(r.receipts)),
    ("rejected", |r, _, b| b.i64(r.rejected)),
    ("first_receipt_id", |r, _, b| b.opt_i64(r.first_receipt_id)),
    ("last_receipt_id", |r, _, b| b.opt_i64(r.last_receipt_id)),
];

/// The batch of one file's row.
pub fn file_batch(row: &FileRow) -> Result<Option<RecordBatch>, ArrowError> {
    batch(&INTAKE_FILE, FILE_PUT, std::slice::from_ref(row), 0)
}

type Put<R> = (&'static str, fn(&R, i64, &mut ColBuilder));

const RE_PUT: &[Put<ReRow>] = &[
    ("receipt_id", |r, base, b| b.i64(r.receipt_id + base)),
    ("receipt_kind", |r, _, b| b.str(r.receipt_kind)),
    ("receipt_type", |r, _, b| b.str(&r.receipt_type)),
    ("service_month", |r, _, b| b.i32(r.service_month)),
    ("institution_code", |r, _, b| b.str(&r.institution_code)),
    ("prefecture", |r, _, b| b.i16(r.prefecture)),
    ("sex", |r, _, b| b.i16(r.sex)),
    ("birth_month", |r, _, b| b.i32(r.birth_month)),
    ("age", |r, _, b| b.i16(r.age)),
    ("insurer_number", |r, _, b| b.str(&r.insurer_number)),
    ("benefit_ratio", |r, _, b| b.opt_i16(r.benefit_ratio)),
    ("admission_date", |r, _, b| b.opt_date(r.admission_date)),
    ("actual_days", |r, _, b| b.i16(r.actual_days)),
    ("total_points", |r, _, b| b.i32(r.total_points)),
    ("id1", |r, _, b| b.opt_str(r.id1.as_deref())),
    ("id2", |r, _, b| b.str(&r.id2)),
    ("id4", |r, _, b| b.opt_str(r.id4.as_deref())),
    ("id5", |r, _, b| b.opt_str(r.id5.as_deref())),
];

const SY_PUT: &[Put<SyRow>] = &[
    ("receipt_id", |r, base, b| b.i64(r.receipt_id + base)),
    ("seq", |r, _, b| b.i16(r.seq)),
    ("disease_code", |r, _, b| b.str(&r.disease_code)),
    ("start_date", |r, _, b| b.date(r.start_date)),
    ("outcome", |r, _, b| b.i16(r.outcome)),
    ("modifiers", |r, _, b| b.opt_str(r.modifiers.as_deref())),
    ("suspected", |r, _, b| b.bool(r.suspected)),
    ("main", |r, _, b| b.bool(r.main)),
    ("disease_name", |r, _, b| b.opt_str(r.disease_name.as_deref())),
];

const SI_PUT: &[Put<SiRow>] = &[
    ("receipt_id", |r, base, b| b.i64(r.receipt_id + base)),
    ("seq", |r, _, b| b.i16(r.seq)),
    ("practice_class", |r, _, b| b.str(&r.practice_class)),
    ("procedure_code", |r, _, b| b.str(&r.procedure_code)),
    ("points", |r, _, b| b.i32(r.points)),
    ("count", |r, _, b| b.i32(r.count)),
];

const IY_PUT: &[Put<IyRow>] = &[
    ("receipt_id", |r, base, b| b.i64(r.receipt_id + base)),
    ("seq", |r, _, b| b.i16(r.seq)),
    ("practice_class", |r, _, b| b.str(&r.practice_class)),
    ("drug_code", |r, _, b| b.str(&r.drug_code)),
    ("quantity", |r, _, b| b.f64(r.quantity)),
    ("points", |r, _, b| b.i32(r.points)),
    ("count", |r, _, b| b.i32(r.count)),
];

const DPC_PUT: &[Put<DpcRow>] = &[
    ("receipt_id", |r, base, b| b.i64(r.receipt_id + base)),
    ("dpc_code", |r, _, b| b.str(&r.dpc_code)),
    ("admission_date", |r, _, b| b.date(r.admission_date)),
    ("discharge_date", |r, _, b| b.opt_date(r.discharge_date)),
    ("dpc_outcome", |r, _, b| b.i16(r.dpc_outcome)),
    ("main_disease_code", |r, _, b| b.str(&r.main_disease_code)),
    ("main_icd10", |r, _, b| b.str(&r.main_icd10)),
    ("emergency", |r, _, b| b.bool(r.emergency)),
];

const PHARMACY_PUT: &[Put<PharmacyRow>] = &[
    ("receipt_id", |r, base, b| b.i64(r.receipt_id + base)),
    ("prescriber_code", |r, _, b| b.str(&r.prescriber_code)),
    ("prescriptions", |r, _, b| b.i16(r.prescriptions)),
    ("dispensing_points", |r, _, b| b.i32(r.dispensing_points)),
    ("drug_points", |r, _, b| b.i32(r.drug_points)),
];

fn batch<R>(spec: &'static TableSpec, put: &[Put<R>], rows: &[R], base: i64) -> Result<Option<RecordBatch>, ArrowError> {
    if rows.is_empty() {
        return Ok(None);
    }
    let names: Vec<&str> = spec.columns.iter().map(|c| c.name).collect();
    let ours: Vec<&str> = put.iter().map(|p| p.0).collect();
    if names != ours {
        return Err(ArrowError::SchemaError(format!("table {}: intake writes {ours:?}, the table has {names:?}", spec.name)));
    }
    let mut b = BatchBuilder::new(spec, rows.len());
    for r in rows {
        for (p, c) in put.iter().zip(b.columns_mut().iter_mut()) {
            (p.1)(r, base, c);
        }
    }
    b.finish().map(Some)
}

impl Staged {
    /// Moves another file's (or receipt's) rows to the end of these.
    pub fn append(&mut self, mut o: Staged) {
        self.re.append(&mut o.re);
        self.sy.append(&mut o.sy);
        self.si.append(&mut o.si);
        self.iy.append(&mut o.iy);
        self.dpc.append(&mut o.dpc);
        self.pharmacy.append(&mut o.pharmacy);
    }

    /// Receipts staged.
    pub fn receipts(&self) -> usize {
        self.re.len()
    }

    /// Rows staged over all tables.
    pub fn rows(&self) -> usize {
        self.re.len() + self.sy.len() + self.si.len() + self.iy.len() + self.dpc.len() + self.pharmacy.len()
    }

    /// The batches, receipt ids shifted by `base`, as (table, batch) for the tables with rows.
    pub fn batches(&self, base: i64) -> Result<Vec<(&'static str, RecordBatch)>, ArrowError> {
        let all = [
            (tables::RE.name, batch(&tables::RE, RE_PUT, &self.re, base)?),
            (tables::SY.name, batch(&tables::SY, SY_PUT, &self.sy, base)?),
            (tables::SI.name, batch(&tables::SI, SI_PUT, &self.si, base)?),
            (tables::IY.name, batch(&tables::IY, IY_PUT, &self.iy, base)?),
            (tables::DPC.name, batch(&tables::DPC, DPC_PUT, &self.dpc, base)?),
            (tables::PHARMACY.name, batch(&tables::PHARMACY, PHARMACY_PUT, &self.pharmacy, base)?),
        ];
        Ok(all.into_iter().filter_map(|(t, b)| b.map(|b| (t, b))).collect())
    }
}
