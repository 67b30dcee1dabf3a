//! Specific health checkup tables (特定健診): one row per checkup and one per result item.

use super::*;

/// 特定健診 headers.
pub static CHECKUP: TableSpec = TableSpec {
    name: "checkup",
    title_ja: "特定健診（受診者・実施情報）",
    title_en: "Specific health checkups (one row per checkup)",
    source_format: "特定健診 CDA (hc08) header",
    columns: &[
        col("checkup_id", ColType::I64, false, "健診ID", "Checkup id (joins checkup_item)", None, Internal),
        col("checkup_date", ColType::Date, false, "実施年月日", "Date", None, Quasi),
        col("fiscal_year", ColType::I16, false, "年度", "Fiscal year", None, Quasi),
        col("sex", ColType::I16, false, "性別", "Sex", SEX, Quasi),
        col("age", ColType::I16, false, "年齢", "Age at the checkup", None, Quasi),
        col("prefecture", ColType::I16, false, "都道府県", "Prefecture", PREF, Quasi),
        col("insurer_number", ColType::Utf8, false, "保険者番号", "Insurer number", Some("保険者番号 (m_insurer)"), Quasi),
        col("institution_code", ColType::Utf8, false, "健診機関コード", "Checkup institution", INST, Quasi),
        col("id1", ColType::Utf8, false, "ID1", "ID1", HASHED, Identifier),
        col("id2", ColType::Utf8, false, "ID2", "ID2", HASHED, Identifier),
        col("id5", ColType::Utf8, true, "ID5", "ID5", HASHED, Identifier),
    ],
};

/// 特定健診 items.
pub static CHECKUP_ITEM: TableSpec = TableSpec {
    name: "checkup_item",
    title_ja: "特定健診（検査・問診結果）",
    title_en: "Checkup results (one row per item)",
    source_format: "特定健診 CDA observation",
    columns: &[
        col("checkup_id", ColType::I64, false, "健診ID", "Checkup id", None, Internal),
        col(
            "item_code",
            ColType::Utf8,
            false,
            "項目コード（JLAC10）",
            "Item code (JLAC10, 17 characters)",
            Some("特定健診項目コード OID 1.2.392.200119.6.1005 (m_lab_item)"),
            Clinical,
        ),
        col("value", ColType::F64, true, "結果値（数値）", "Numeric result", None, Clinical),
        col("value_code", ColType::I16, true, "結果コード", "Coded result (see m_lab_item.unit)", None, Clinical),
    ],
};
