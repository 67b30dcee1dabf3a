//! The generated rows. Each type mirrors one record of the source formats (UKE receipts, 特定健診
//! CDA, 介護給付費明細書) closely enough that a later writer can emit those files from it; fields
//! that identify a person in clear never appear here — only their keyed hashes ([`HexId`]).

use crate::codes::{Disease, DpcGroup, Drug, LabItem, Procedure};

/// A hashed person ID (ID1, ID2, ID4 or ID5): 64 lowercase hex characters, inline.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct HexId(pub [u8; 64]);

impl HexId {
    /// From a 64-character hex string.
    pub fn from_hex(s: &str) -> Self {
        let mut b = [b'0'; 64];
        b.copy_from_slice(&s.as_bytes()[..64]);
        HexId(b)
    }
    /// The ID as text.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).expect("hex is ASCII")
    }
}

impl std::fmt::Debug for HexId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HexId({}…)", &self.as_str()[..8])
    }
}

/// The value written where ID5 could not be obtained (data.md §3: "null or `9`").
pub const ID5_MISSING: &str = "9";

/// The hashed IDs carried by a receipt (NDB adds them to RE).
#[derive(Clone, Copy, Debug)]
pub struct PersonIds {
    /// ID1: insurer number + 記号・番号 + birth date + sex.
    pub id1: HexId,
    /// ID2: name + birth date + sex.
    pub id2: HexId,
    /// ID4: kana name + birth date + sex.
    pub id4: HexId,
    /// ID5: oldest individual insured number, or missing on this record.
    pub id5: Id5,
}

/// ID5 as found on a record: present, null, or the placeholder `9` (data.md §3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Id5 {
    /// The hashed ID.
    Hash(HexId),
    /// Missing, stored as null.
    Null,
    /// Missing, stored as `9`.
    Nine,
}

impl Id5 {
    /// The stored text, if any.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Id5::Hash(h) => Some(h.as_str()),
            Id5::Null => None,
            Id5::Nine => Some(ID5_MISSING),
        }
    }
}

/// ID5 as the 履歴照会・回答システム answers for one receipt (data.md §3): the person's oldest
/// 個人単位被保険者番号, or no answer (the NDB then holds null or the placeholder `9`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Id5Answer {
    /// The oldest individual insured number (保険者番号 + 記号 + 番号 + 枝番), as answered.
    Number(String),
    /// No answer, recorded as `9`.
    Nine,
    /// No answer, recorded as null.
    Null,
}

/// A person's identity as one institution writes it on one receipt: the clear text a UKE file
/// carries (`kura synth --format uke`), from which the intake computes the same hashed IDs as
/// the generator's direct path. Only [`crate::Generator::generate_chunk_written`] makes these;
/// the datasets never hold them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WrittenIdentity {
    /// 氏名 as written by the institution (with or without the full-width space).
    pub name: String,
    /// カタカナ氏名, full-width, a full-width space between 姓 and 名.
    pub kana: String,
    /// 生年月日, YYYYMMDD.
    pub birth_date: String,
    /// 保険者番号 (8 digits, 6 for 国保).
    pub insurer: String,
    /// 被保険者証 記号 (ASCII digits; a writer may widen them).
    pub kigo: String,
    /// 被保険者証 番号.
    pub bango: String,
    /// What the 履歴照会 answers for ID5.
    pub id5: Id5Answer,
}

/// Index of an institution in [`crate::World::institutions`].
pub type InstitutionId = u32;
/// Index of an insurer in [`crate::World::insurers`].
pub type InsurerId = u32;

/// The kind of a receipt (レセプト).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReceiptKind {
    /// 医科入院 (fee-for-service inpatient).
    Inpatient,
    /// 医科入院外 (outpatient).
    Outpatient,
    /// DPC (per-diem inpatient at DPC hospitals).
    Dpc,
    /// 調剤 (pharmacy).
    Pharmacy,
}

impl ReceiptKind {
    /// The label stored in the data (Japanese, as the NDB names its tables).
    pub fn label(self) -> &'static str {
        match self {
            ReceiptKind::Inpatient => "医科入院",
            ReceiptKind::Outpatient => "医科入院外",
            ReceiptKind::Dpc => "DPC",
            ReceiptKind::Pharmacy => "調剤",
        }
    }
    /// Whether the receipt is for a hospital stay.
    pub fn is_inpatient(self) -> bool {
        matches!(self, ReceiptKind::Inpatient | ReceiptKind::Dpc)
    }
}

/// RE (レセプト共通) with the IR/HO fields an analyst needs: one patient × one facility × one month.
#[derive(Clone, Debug)]
pub struct Receipt {
    /// Unique receipt id within the dataset.
    pub receipt_id: i64,
    /// Kind.
    pub kind: ReceiptKind,
    /// レセプト種別 (4 digits).
    pub receipt_type: [u8; 4],
    /// 診療年月 (YYYYMM).
    pub service_month: i32,
    /// The billing institution (医療機関 or 薬局).
    pub institution: InstitutionId,
    /// The patient's prefecture of residence (JIS code).
    pub prefecture: u8,
    /// 男女区分: 1 male, 2 female.
    pub sex: u8,
    /// Birth year-month (YYYYMM); the NDB keeps year-month, not the full date (⚠️ data.md §1.6).
    pub birth_month: i32,
    /// Age in whole years at the start of the service month.
    pub age: u8,
    /// The insurer (HO 保険者番号).
    pub insurer: InsurerId,
    /// 給付割合 (percent paid by insurance).
    pub benefit_ratio: u8,
    /// 入院年月日 for inpatient receipts.
    pub admission_date: Option<i32>,
    /// 診療実日数.
    pub actual_days: u8,
    /// 合計点数.
    pub total_points: i32,
    /// Hashed person IDs.
    pub ids: PersonIds,
}

/// SY (傷病名): one diagnosis line of a receipt.
#[derive(Clone, Debug)]
pub struct Diagnosis {
    /// The receipt.
    pub receipt_id: i64,
    /// Line number within the receipt.
    pub seq: u16,
    /// 傷病名コード.
    pub disease: &'static Disease,
    /// 診療開始日.
    pub start_date: i32,
    /// 転帰区分: 1 継続, 2 治ゆ, 3 死亡, 4 中止.
    pub outcome: u8,
    /// 修飾語コード, 4-digit codes joined (`"8002"` = suspected).
    pub modifiers: &'static str,
    /// 主傷病 flag.
    pub main: bool,
    /// 傷病名称 (only for the uncoded name 0000999).
    pub name_text: Option<&'static str>,
}

/// SI (診療行為): one procedure line.
#[derive(Clone, Debug)]
pub struct ProcedureLine {
    /// The receipt.
    pub receipt_id: i64,
    /// Line number within the receipt.
    pub seq: u16,
    /// The procedure (its 診療識別, code and points).
    pub procedure: &'static Procedure,
    /// 回数.
    pub count: i32,
}

/// IY (医薬品): one drug line, on a 医科 or 調剤 receipt.
#[derive(Clone, Debug)]
pub struct DrugLine {
    /// The receipt.
    pub receipt_id: i64,
    /// Line number within the receipt.
    pub seq: u16,
    /// The drug.
    pub drug: &'static Drug,
    /// 使用量 per day (units).
    pub quantity: f64,
    /// 回数 (days supplied).
    pub count: i32,
    /// 点数 per day (drug price × quantity / 10, rounded as the fee schedule does).
    pub points: i32,
}

/// DPC BU/SB: the diagnosis group and admission of a DPC receipt.
#[derive(Clone, Debug)]
pub struct DpcRecord {
    /// The receipt.
    pub receipt_id: i64,
    /// 診断群分類.
    pub group: &'static DpcGroup,
    /// 今回入院日.
    pub admission_date: i32,
    /// 今回退院日, if discharged within this month.
    pub discharge_date: Option<i32>,
    /// DPC転帰区分 (⚠️): 1 治癒, 2 軽快, 4 不変, 6 死亡 (main disease), 7 死亡 (other); 0 while in hospital.
    pub outcome: u8,
    /// 医療資源を最も投入した傷病.
    pub main_disease: &'static Disease,
    /// 予定・緊急入院区分: true = emergency.
    pub emergency: bool,
}

/// 調剤 receipt details (YK/RE/CZ): where the prescription came from and the fees.
#[derive(Clone, Debug)]
pub struct PharmacyRecord {
    /// The receipt.
    pub receipt_id: i64,
    /// 処方医療機関.
    pub prescriber: InstitutionId,
    /// 処方箋受付回数.
    pub prescriptions: u8,
    /// 調剤技術料 and 薬学管理料 points.
    pub dispensing_points: i32,
    /// 薬剤料 points.
    pub drug_points: i32,
}

/// 特定健診 header: one checkup of one person.
#[derive(Clone, Debug)]
pub struct Checkup {
    /// Unique id.
    pub checkup_id: i64,
    /// Hashed IDs (ID1, ID2, ID5; ID4 unused here).
    pub ids: PersonIds,
    /// 実施日.
    pub date: i32,
    /// Fiscal year.
    pub fiscal_year: i32,
    /// 1 male, 2 female.
    pub sex: u8,
    /// Age at the checkup.
    pub age: u8,
    /// Prefecture of residence.
    pub prefecture: u8,
    /// The insurer that ordered it.
    pub insurer: InsurerId,
    /// The 健診機関.
    pub institution: InstitutionId,
}

/// One observation of a checkup (CDA observation): JLAC10 item and value.
#[derive(Clone, Debug)]
pub struct CheckupItem {
    /// The checkup.
    pub checkup_id: i64,
    /// The item.
    pub item: &'static LabItem,
    /// Numeric result.
    pub value: Option<f64>,
    /// Coded result (questionnaire, qualitative tests, judgements).
    pub code: Option<u8>,
}

/// 要介護認定: one certification decision.
#[derive(Clone, Debug)]
pub struct CareCert {
    /// Unique id.
    pub cert_id: i64,
    /// Hashed IDs (ID4 and ID5 link to the NDB).
    pub ids: PersonIds,
    /// 1 male, 2 female.
    pub sex: u8,
    /// Birth year-month.
    pub birth_month: i32,
    /// Age at certification.
    pub age: u8,
    /// Prefecture.
    pub prefecture: u8,
    /// 認定年月日.
    pub cert_date: i32,
    /// 要介護状態区分: 01 非該当, 12/13 要支援1/2, 21–25 要介護1–5.
    pub care_level: &'static str,
    /// 認定有効期間 start.
    pub valid_from: i32,
    /// 認定有効期間 end.
    pub valid_to: i32,
}

/// 介護給付費明細書 (基本 + 明細): one service line of one month's claim.
#[derive(Clone, Debug)]
pub struct CareClaimLine {
    /// The claim (one person × one provider × one month).
    pub claim_id: i64,
    /// Line number.
    pub seq: u16,
    /// サービス提供年月 (YYYYMM).
    pub service_month: i32,
    /// 事業所.
    pub provider: InstitutionId,
    /// Hashed IDs.
    pub ids: PersonIds,
    /// 1 male, 2 female.
    pub sex: u8,
    /// Age.
    pub age: u8,
    /// Prefecture.
    pub prefecture: u8,
    /// 要介護状態区分.
    pub care_level: &'static str,
    /// サービス種類コード.
    pub service_type: &'static str,
    /// サービス項目コード (4 digits, synthetic).
    pub service_item: [u8; 4],
    /// 単位数 for the line.
    pub units: i32,
    /// 日数・回数.
    pub count: i16,
}

/// All rows generated for one chunk of persons.
#[derive(Debug, Default)]
pub struct Chunk {
    /// Chunk number.
    pub index: u64,
    /// Persons generated.
    pub persons: u64,
    /// Deaths during the period.
    pub deaths: u64,
    /// RE.
    pub receipts: Vec<Receipt>,
    /// SY.
    pub diagnoses: Vec<Diagnosis>,
    /// SI.
    pub procedures: Vec<ProcedureLine>,
    /// IY.
    pub drugs: Vec<DrugLine>,
    /// DPC.
    pub dpc: Vec<DpcRecord>,
    /// 調剤.
    pub pharmacy: Vec<PharmacyRecord>,
    /// 特定健診.
    pub checkups: Vec<Checkup>,
    /// 特定健診 items.
    pub checkup_items: Vec<CheckupItem>,
    /// 要介護認定.
    pub care_certs: Vec<CareCert>,
    /// 介護レセプト lines.
    pub care_claims: Vec<CareClaimLine>,
    /// How many ids of each kind the chunk used (its ids are 1..=count until rebased).
    pub id_counts: IdCounts,
    /// The clear identity written on each receipt, parallel to `receipts`: filled only by
    /// [`crate::Generator::generate_chunk_written`], empty otherwise.
    pub written: Vec<WrittenIdentity>,
    /// Persons alive at the start of the period by prefecture × sex × 5-year age band
    /// (index `(pref − 1) × 42 + (sex − 1) × 21 + band`, bands 0–4 … 100+); the denominators
    /// researchers take from population statistics.
    pub population: Vec<u32>,
}

/// Numbers of ids (or id offsets) of each kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IdCounts {
    /// Receipts.
    pub receipts: i64,
    /// Checkups.
    pub checkups: i64,
    /// Care certifications.
    pub certs: i64,
    /// Care claims.
    pub claims: i64,
}

impl IdCounts {
    /// Adds another count.
    pub fn add(&mut self, o: &IdCounts) {
        self.receipts += o.receipts;
        self.checkups += o.checkups;
        self.certs += o.certs;
        self.claims += o.claims;
    }
}

impl Chunk {
    /// Shifts the chunk's ids (1-based within the chunk) by the totals of all earlier chunks, so
    /// that ids are dense across the dataset: 1, 2, … with no gaps. Dense keys let the query
    /// engine join receipts to their lines by array lookup rather than hashing.
    pub fn rebase(&mut self, offset: &IdCounts) {
        let r = offset.receipts;
        self.receipts.iter_mut().for_each(|x| x.receipt_id += r);
        self.diagnoses.iter_mut().for_each(|x| x.receipt_id += r);
        self.procedures.iter_mut().for_each(|x| x.receipt_id += r);
        self.drugs.iter_mut().for_each(|x| x.receipt_id += r);
        self.dpc.iter_mut().for_each(|x| x.receipt_id += r);
        self.pharmacy.iter_mut().for_each(|x| x.receipt_id += r);
        self.checkups.iter_mut().for_each(|x| x.checkup_id += offset.checkups);
        self.checkup_items.iter_mut().for_each(|x| x.checkup_id += offset.checkups);
        self.care_certs.iter_mut().for_each(|x| x.cert_id += offset.certs);
        self.care_claims.iter_mut().for_each(|x| x.claim_id += offset.claims);
    }
}

/// Index into [`Chunk::population`].
pub fn population_index(prefecture: u8, sex: u8, age: u8) -> usize {
    (usize::from(prefecture) - 1) * 42 + (usize::from(sex) - 1) * 21 + usize::from(age / 5).min(20)
}

/// Length of [`Chunk::population`].
pub const POPULATION_CELLS: usize = 47 * 42;

impl Chunk {
    /// Total rows across all tables.
    pub fn rows(&self) -> u64 {
        (self.receipts.len()
            + self.diagnoses.len()
            + self.procedures.len()
            + self.drugs.len()
            + self.dpc.len()
            + self.pharmacy.len()
            + self.checkups.len()
            + self.checkup_items.len()
            + self.care_certs.len()
            + self.care_claims.len()) as u64
    }
}
