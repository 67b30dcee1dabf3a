//! The standard tables of the national databases (NDB receipts and checkups, DPC, the care DB)
//! and their code masters, as Kura stores them. The synthetic generator writes these tables; the
//! intake parsers of real UKE, CDA and care files write the same ones, so that a query does not
//! know where its rows came from.

mod care;
mod checkup;
mod claims;
mod lineage;
mod masters;

pub use care::*;
pub use checkup::*;
pub use claims::*;
pub use lineage::{Lineage, UnitColumn, is_valid_person_id, lineage};
pub use masters::*;

use crate::schema::Sensitivity::{Clinical, Identifier, Internal, Public, Quasi};
use crate::schema::{ColType, ColumnSpec, Sensitivity, TableSpec};

#[allow(clippy::too_many_arguments)] // one argument per catalogue field keeps each column a single readable line
const fn col(
    name: &'static str,
    ty: ColType,
    nullable: bool,
    title_ja: &'static str,
    title_en: &'static str,
    code_system: Option<&'static str>,
    sensitivity: Sensitivity,
) -> ColumnSpec {
    ColumnSpec { name, ty, nullable, title_ja, title_en, code_system, sensitivity }
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
const PROVENANCE: Option<&str> = Some("確認済 confirmed / 未確認 unverified / 合成 synthetic");

/// Every standard table, fact tables first (the order of the catalogue).
pub static NDB: [&TableSpec; 21] = [
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
