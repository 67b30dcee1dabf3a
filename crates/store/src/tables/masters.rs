//! Code masters and reference tables: written once per dataset, public content.

use super::*;

/// 傷病名マスター.
pub static M_DISEASE: TableSpec = TableSpec {
    name: "m_disease",
    title_ja: "傷病名マスター",
    title_en: "Disease master",
    source_format: "SSK 傷病名マスター (subset)",
    columns: &[
        col("disease_code", ColType::Utf8, false, "傷病名コード", "Disease code", None, Public),
        col("name_ja", ColType::Utf8, false, "基本名称", "Name (Japanese)", None, Public),
        col("name_en", ColType::Utf8, false, "英語名", "Name (English)", None, Public),
        col("icd10", ColType::Utf8, false, "ICD-10", "ICD-10", Some("ICD-10"), Public),
        col("provenance", ColType::Utf8, false, "コードの出典", "Code provenance", PROVENANCE, Public),
    ],
};

/// 修飾語マスター.
pub static M_MODIFIER: TableSpec = TableSpec {
    name: "m_modifier",
    title_ja: "修飾語マスター",
    title_en: "Modifier master",
    source_format: "SSK 修飾語マスター (subset)",
    columns: &[
        col("modifier_code", ColType::Utf8, false, "修飾語コード", "Modifier code", None, Public),
        col("name_ja", ColType::Utf8, false, "名称", "Name (Japanese)", None, Public),
        col("name_en", ColType::Utf8, false, "英語名", "Name (English)", None, Public),
        col("provenance", ColType::Utf8, false, "コードの出典", "Code provenance", PROVENANCE, Public),
    ],
};

/// 医薬品マスター.
pub static M_DRUG: TableSpec = TableSpec {
    name: "m_drug",
    title_ja: "医薬品マスター",
    title_en: "Drug master",
    source_format: "SSK 医薬品マスター (subset)",
    columns: &[
        col("drug_code", ColType::Utf8, false, "医薬品コード", "Drug code", None, Public),
        col("name_ja", ColType::Utf8, false, "漢字名称", "Name (Japanese)", None, Public),
        col("generic_en", ColType::Utf8, false, "一般名（英語）", "Generic name (English)", None, Public),
        col("efficacy_class", ColType::Utf8, false, "薬効分類", "Therapeutic class (4 digits)", None, Public),
        col("yj_code", ColType::Utf8, true, "YJコード", "YJ code", None, Public),
        col("route", ColType::Utf8, false, "投与経路", "Route", None, Public),
        col("unit", ColType::Utf8, false, "単位", "Unit", None, Public),
        col("price_yen", ColType::F64, false, "薬価（円、参考値）", "Price per unit (yen, illustrative)", None, Public),
        col("provenance", ColType::Utf8, false, "コードの出典", "Code provenance", PROVENANCE, Public),
    ],
};

/// 診療行為マスター.
pub static M_PROCEDURE: TableSpec = TableSpec {
    name: "m_procedure",
    title_ja: "診療行為マスター",
    title_en: "Procedure master",
    source_format: "SSK 診療行為マスター (subset)",
    columns: &[
        col("procedure_code", ColType::Utf8, false, "診療行為コード", "Procedure code", None, Public),
        col("name_ja", ColType::Utf8, false, "名称", "Name (Japanese)", None, Public),
        col("name_en", ColType::Utf8, false, "英語名", "Name (English)", None, Public),
        col("practice_class", ColType::Utf8, false, "診療識別", "Practice class", None, Public),
        col("points", ColType::I32, false, "点数（参考値）", "Points (illustrative)", None, Public),
        col("provenance", ColType::Utf8, false, "コードの出典", "Code provenance", PROVENANCE, Public),
    ],
};

/// 特定健診項目.
pub static M_LAB_ITEM: TableSpec = TableSpec {
    name: "m_lab_item",
    title_ja: "特定健診項目マスター（JLAC10）",
    title_en: "Checkup item master (JLAC10)",
    source_format: "特定健診項目コード表 (subset)",
    columns: &[
        col("item_code", ColType::Utf8, false, "項目コード（JLAC10）", "Item code", None, Public),
        col("item_key", ColType::Utf8, false, "項目キー", "Short key shared by methods (hba1c, sbp, …)", None, Public),
        col("name_ja", ColType::Utf8, false, "名称", "Name (Japanese)", None, Public),
        col("name_en", ColType::Utf8, false, "英語名", "Name (English)", None, Public),
        col("unit", ColType::Utf8, false, "単位・コード", "Unit or answer codes", None, Public),
        col("provenance", ColType::Utf8, false, "コードの出典", "Code provenance", PROVENANCE, Public),
    ],
};

/// サービス種類.
pub static M_CARE_SERVICE: TableSpec = TableSpec {
    name: "m_care_service",
    title_ja: "介護サービス種類マスター",
    title_en: "Care service type master",
    source_format: "サービス種類コード (subset)",
    columns: &[
        col("service_type", ColType::Utf8, false, "サービス種類コード", "Service type", None, Public),
        col("name_ja", ColType::Utf8, false, "名称", "Name (Japanese)", None, Public),
        col("name_en", ColType::Utf8, false, "英語名", "Name (English)", None, Public),
        col("provenance", ColType::Utf8, false, "コードの出典", "Code provenance", PROVENANCE, Public),
    ],
};

/// DPC 診断群分類.
pub static M_DPC: TableSpec = TableSpec {
    name: "m_dpc",
    title_ja: "DPC診断群分類マスター",
    title_en: "DPC group master",
    source_format: "診断群分類 (subset)",
    columns: &[
        col("dpc_code", ColType::Utf8, false, "診断群分類番号", "DPC code", None, Public),
        col("name_ja", ColType::Utf8, false, "名称", "Name (Japanese)", None, Public),
        col("name_en", ColType::Utf8, false, "英語名", "Name (English)", None, Public),
        col("provenance", ColType::Utf8, false, "コードの出典", "Code provenance", PROVENANCE, Public),
    ],
};

/// 都道府県.
pub static M_PREFECTURE: TableSpec = TableSpec {
    name: "m_prefecture",
    title_ja: "都道府県マスター",
    title_en: "Prefecture master",
    source_format: "JIS X 0401",
    columns: &[
        col("prefecture", ColType::I16, false, "都道府県コード", "Prefecture code", PREF, Public),
        col("name_ja", ColType::Utf8, false, "名称", "Name (Japanese)", None, Public),
        col("name_en", ColType::Utf8, false, "英語名", "Name (English)", None, Public),
    ],
};

/// 医療機関等 (synthetic).
pub static M_INSTITUTION: TableSpec = TableSpec {
    name: "m_institution",
    title_ja: "医療機関・薬局・介護事業所マスター（合成）",
    title_en: "Institution master (synthetic)",
    source_format: "医療機関等コード (synthetic)",
    columns: &[
        col("institution_code", ColType::Utf8, false, "医療機関等コード", "Institution code", None, Public),
        col("kind", ColType::Utf8, false, "種別", "Kind", None, Public),
        col("prefecture", ColType::I16, false, "都道府県", "Prefecture", PREF, Public),
        col("name_ja", ColType::Utf8, false, "名称（合成）", "Name (synthetic)", None, Public),
        col("beds", ColType::I16, false, "病床数", "Beds", None, Public),
        col("in_house_dispensing", ColType::Bool, false, "院内処方", "Dispenses in house", None, Public),
    ],
};

/// 保険者 (synthetic).
pub static M_INSURER: TableSpec = TableSpec {
    name: "m_insurer",
    title_ja: "保険者マスター（合成）",
    title_en: "Insurer master (synthetic)",
    source_format: "保険者番号 (synthetic)",
    columns: &[
        col("insurer_number", ColType::Utf8, false, "保険者番号", "Insurer number", None, Public),
        col("kind", ColType::Utf8, false, "保険者種別", "Insurer kind", Some("協会けんぽ / 組合健保 / 共済 / 国保 / 後期高齢"), Public),
        col("prefecture", ColType::I16, false, "都道府県", "Prefecture", PREF, Public),
    ],
};

/// Population at the start of the period (the synthetic population's own census).
pub static M_POPULATION: TableSpec = TableSpec {
    name: "m_population",
    title_ja: "人口（期間開始時点、都道府県・性・5歳階級）",
    title_en: "Population at the start of the period by prefecture, sex and 5-year age band",
    source_format: "住民基本台帳人口に相当 (synthetic)",
    columns: &[
        col("prefecture", ColType::I16, false, "都道府県", "Prefecture", PREF, Public),
        col("sex", ColType::I16, false, "性別", "Sex", SEX, Public),
        col("age_band", ColType::I16, false, "年齢階級（5歳、下限）", "Age band (5 years, lower bound; 100 = 100+)", None, Public),
        col("persons", ColType::I64, false, "人口", "Persons", None, Public),
    ],
};
