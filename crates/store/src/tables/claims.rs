//! Receipt tables (レセプト): the UKE records of medical, DPC and pharmacy claims.

use super::*;

/// RE: レセプト共通レコード.
pub static RE: TableSpec = TableSpec {
    name: "re",
    title_ja: "レセプト共通（RE）",
    title_en: "Receipts (RE record, with IR/HO fields)",
    source_format: "UKE RE/IR/HO (医科・DPC・調剤)",
    columns: &[
        col("receipt_id", ColType::I64, false, "レセプトID", "Receipt id (joins SY/SI/IY/DPC/pharmacy)", None, Internal),
        col("receipt_kind", ColType::Utf8, false, "レセプト区分", "Receipt kind", Some("医科入院 / 医科入院外 / DPC / 調剤"), Quasi),
        col("receipt_type", ColType::Utf8, false, "レセプト種別", "Receipt type (4 digits)", Some("レセプト種別コード"), Quasi),
        col("service_month", ColType::I32, false, "診療年月", "Service month", YYYYMM, Quasi),
        col("institution_code", ColType::Utf8, false, "医療機関等コード", "Institution code", INST, Quasi),
        col("prefecture", ColType::I16, false, "都道府県", "Prefecture", PREF, Quasi),
        col("sex", ColType::I16, false, "男女区分", "Sex", SEX, Quasi),
        col("birth_month", ColType::I32, false, "生年月", "Birth year-month", YYYYMM, Quasi),
        col("age", ColType::I16, false, "年齢（診療月初日）", "Age at the first day of the service month", None, Quasi),
        col("insurer_number", ColType::Utf8, false, "保険者番号", "Insurer number", Some("保険者番号 (m_insurer)"), Quasi),
        col(
            "benefit_ratio",
            ColType::I16,
            true,
            "給付割合（記載がなければnull）",
            "Benefit ratio (%); null where the receipt leaves it blank",
            None,
            Clinical,
        ),
        col("admission_date", ColType::Date, true, "入院年月日", "Admission date", None, Quasi),
        col("actual_days", ColType::I16, false, "診療実日数", "Days of care in the month", None, Clinical),
        col("total_points", ColType::I32, false, "合計点数", "Total points", None, Clinical),
        col(
            "id1",
            ColType::Utf8,
            true,
            "ID1（保険者番号・記号番号・生年月日・性別のハッシュ；保険者番号・記号番号のない受診はnull）",
            "ID1: hash of insurer number, card number, birth date, sex; null where the receipt has no insurer or card number",
            HASHED,
            Identifier,
        ),
        col("id2", ColType::Utf8, false, "ID2（氏名・生年月日・性別のハッシュ）", "ID2: hash of name, birth date, sex", HASHED, Identifier),
        col(
            "id4",
            ColType::Utf8,
            true,
            "ID4（カナ氏名・生年月日・性別のハッシュ；カナ氏名のない旧様式はnull）",
            "ID4: hash of kana name, birth date, sex; null where an older receipt has no kana name",
            HASHED,
            Identifier,
        ),
        col(
            "id5",
            ColType::Utf8,
            true,
            "ID5（最古の個人単位被保険者番号のハッシュ；欠損はnullまたは'9'）",
            "ID5: hash of the oldest individual insured number; missing as null or '9'",
            HASHED,
            Identifier,
        ),
    ],
};

/// SY: 傷病名レコード.
pub static SY: TableSpec = TableSpec {
    name: "sy",
    title_ja: "傷病名（SY）",
    title_en: "Diagnoses (SY record)",
    source_format: "UKE SY",
    columns: &[
        col("receipt_id", ColType::I64, false, "レセプトID", "Receipt id", None, Internal),
        col("seq", ColType::I16, false, "行番号", "Line number", None, Internal),
        col("disease_code", ColType::Utf8, false, "傷病名コード", "Disease code (7 digits; 0000999 = uncoded)", DISEASE, Clinical),
        col("start_date", ColType::Date, false, "診療開始日", "Start of care", None, Quasi),
        col("outcome", ColType::I16, false, "転帰区分", "Outcome", Some("1:継続 2:治ゆ 3:死亡 4:中止"), Clinical),
        col(
            "modifiers",
            ColType::Utf8,
            true,
            "修飾語コード（4桁の連結）",
            "Modifier codes, 4-digit codes concatenated (8002 = suspected)",
            Some("修飾語コード (m_modifier)"),
            Clinical,
        ),
        col(
            "suspected",
            ColType::Bool,
            false,
            "疑い病名（修飾語8002を含む；派生）",
            "Suspected diagnosis (modifier 8002 present; derived)",
            None,
            Clinical,
        ),
        col("main", ColType::Bool, false, "主傷病", "Main diagnosis", None, Clinical),
        col(
            "disease_name",
            ColType::Utf8,
            true,
            "傷病名称（未コード化傷病名のみ）",
            "Free-text name (uncoded diagnoses only)",
            None,
            Clinical,
        ),
    ],
};

/// SI: 診療行為レコード.
pub static SI: TableSpec = TableSpec {
    name: "si",
    title_ja: "診療行為（SI）",
    title_en: "Procedures (SI record)",
    source_format: "UKE SI",
    columns: &[
        col("receipt_id", ColType::I64, false, "レセプトID", "Receipt id", None, Internal),
        col("seq", ColType::I16, false, "行番号", "Line number", None, Internal),
        col("practice_class", ColType::Utf8, false, "診療識別", "Practice class", Some("診療識別コード (11 初診 … 90 入院)"), Clinical),
        col("procedure_code", ColType::Utf8, false, "診療行為コード", "Procedure code (9 digits)", PROC, Clinical),
        col("points", ColType::I32, false, "点数", "Points per unit", None, Clinical),
        col("count", ColType::I32, false, "回数", "Count", None, Clinical),
    ],
};

/// IY: 医薬品レコード (医科 and 調剤).
pub static IY: TableSpec = TableSpec {
    name: "iy",
    title_ja: "医薬品（IY）",
    title_en: "Drugs (IY record, medical and pharmacy receipts)",
    source_format: "UKE IY",
    columns: &[
        col("receipt_id", ColType::I64, false, "レセプトID", "Receipt id", None, Internal),
        col("seq", ColType::I16, false, "行番号", "Line number", None, Internal),
        col(
            "practice_class",
            ColType::Utf8,
            false,
            "診療識別",
            "Practice class",
            Some("診療識別コード (21 内服, 23 外用, 31 注射 …)"),
            Clinical,
        ),
        col("drug_code", ColType::Utf8, false, "医薬品コード", "Drug code (9 digits)", DRUG, Clinical),
        col("quantity", ColType::F64, false, "使用量（1日量）", "Quantity per day", None, Clinical),
        col("points", ColType::I32, false, "点数（1日分）", "Points per day", None, Clinical),
        col("count", ColType::I32, false, "回数（日数）", "Count (days supplied)", None, Clinical),
    ],
};

/// DPC: BU (診断群分類) with SB main disease.
pub static DPC: TableSpec = TableSpec {
    name: "dpc",
    title_ja: "DPC 診断群分類（BU/SB）",
    title_en: "DPC diagnosis groups (BU/SB records)",
    source_format: "UKE DPC BU/SB",
    columns: &[
        col("receipt_id", ColType::I64, false, "レセプトID", "Receipt id", None, Internal),
        col("dpc_code", ColType::Utf8, false, "診断群分類番号", "DPC code (14 characters)", Some("DPCコード (m_dpc)"), Clinical),
        col("admission_date", ColType::Date, false, "今回入院日", "Admission date", None, Quasi),
        col("discharge_date", ColType::Date, true, "今回退院日", "Discharge date (null while in hospital)", None, Quasi),
        col("dpc_outcome", ColType::I16, false, "DPC転帰区分", "DPC outcome", Some("0:入院中 1:治癒 2:軽快 4:不変 6:死亡"), Clinical),
        col("main_disease_code", ColType::Utf8, false, "医療資源を最も投入した傷病名", "Main disease code", DISEASE, Clinical),
        col("main_icd10", ColType::Utf8, false, "ICD-10コード", "ICD-10 of the main disease", Some("ICD-10"), Clinical),
        col("emergency", ColType::Bool, false, "緊急入院", "Emergency admission", None, Clinical),
    ],
};

/// 調剤 receipt details.
pub static PHARMACY: TableSpec = TableSpec {
    name: "pharmacy",
    title_ja: "調剤レセプト情報",
    title_en: "Pharmacy receipt details",
    source_format: "UKE 調剤 YK/RE/CZ",
    columns: &[
        col("receipt_id", ColType::I64, false, "レセプトID", "Receipt id", None, Internal),
        col("prescriber_code", ColType::Utf8, false, "処方医療機関コード", "Prescribing institution", INST, Quasi),
        col("prescriptions", ColType::I16, false, "処方箋受付回数", "Prescriptions received", None, Clinical),
        col(
            "dispensing_points",
            ColType::I32,
            false,
            "調剤技術料・薬学管理料",
            "Dispensing and pharmaceutical care points",
            None,
            Clinical,
        ),
        col("drug_points", ColType::I32, false, "薬剤料", "Drug points", None, Clinical),
    ],
};
