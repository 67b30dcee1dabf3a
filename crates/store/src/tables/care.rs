//! Care tables (介護DB): certifications and care claim lines.

use super::*;

/// 要介護認定.
pub static CARE_CERT: TableSpec = TableSpec {
    name: "care_cert",
    title_ja: "要介護認定",
    title_en: "Care-need certifications",
    source_format: "介護DB 認定情報",
    columns: &[
        col("cert_id", ColType::I64, false, "認定ID", "Certification id", None, Internal),
        col("sex", ColType::I16, false, "性別", "Sex", SEX, Quasi),
        col("birth_month", ColType::I32, false, "生年月", "Birth year-month", YYYYMM, Quasi),
        col("age", ColType::I16, false, "年齢（認定時）", "Age at certification", None, Quasi),
        col("prefecture", ColType::I16, false, "都道府県", "Prefecture", PREF, Quasi),
        col("cert_date", ColType::Date, false, "認定年月日", "Certification date", None, Quasi),
        col("care_level", ColType::Utf8, false, "要介護状態区分", "Care level", CARE_LEVEL, Clinical),
        col("valid_from", ColType::Date, false, "認定有効期間（開始）", "Valid from", None, Quasi),
        col("valid_to", ColType::Date, false, "認定有効期間（終了）", "Valid to", None, Quasi),
        col("id4", ColType::Utf8, false, "ID4", "ID4 (links to the NDB)", HASHED, Identifier),
        col("id5", ColType::Utf8, true, "ID5", "ID5 (links to the NDB)", HASHED, Identifier),
    ],
};

/// 介護給付費明細書.
pub static CARE_CLAIM: TableSpec = TableSpec {
    name: "care_claim",
    title_ja: "介護給付費明細（基本・明細）",
    title_en: "Care claims (basic and detail records, one row per service line)",
    source_format: "介護レセプト 01 基本情報 + 02 明細情報",
    columns: &[
        col("claim_id", ColType::I64, false, "介護レセプトID", "Care claim id", None, Internal),
        col("seq", ColType::I16, false, "明細行番号", "Line number", None, Internal),
        col("service_month", ColType::I32, false, "サービス提供年月", "Service month", YYYYMM, Quasi),
        col("provider_code", ColType::Utf8, false, "事業所番号", "Care provider number", INST, Quasi),
        col("sex", ColType::I16, false, "性別", "Sex", SEX, Quasi),
        col("age", ColType::I16, false, "年齢", "Age", None, Quasi),
        col("prefecture", ColType::I16, false, "都道府県", "Prefecture", PREF, Quasi),
        col("care_level", ColType::Utf8, false, "要介護状態区分", "Care level", CARE_LEVEL, Clinical),
        col(
            "service_type",
            ColType::Utf8,
            false,
            "サービス種類コード",
            "Service type",
            Some("サービス種類コード (m_care_service)"),
            Clinical,
        ),
        col("service_item", ColType::Utf8, false, "サービス項目コード", "Service item (synthetic)", None, Clinical),
        col("units", ColType::I32, false, "単位数", "Units", None, Clinical),
        col("count", ColType::I16, false, "日数・回数", "Days or visits", None, Clinical),
        col("id4", ColType::Utf8, false, "ID4", "ID4 (links to the NDB)", HASHED, Identifier),
        col("id5", ColType::Utf8, true, "ID5", "ID5 (links to the NDB)", HASHED, Identifier),
    ],
};
