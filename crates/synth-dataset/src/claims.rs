//! Receipt rows (claims) into the receipt tables.

use super::*;

/// RE: レセプト共通レコード.
pub static RE: Extract<Receipt> = Extract {
    spec: &tables::RE,
    source: Source::Chunk(|c| &c.receipts),
    put: &[
        put("receipt_id", |r, _, b| b.i64(r.receipt_id)),
        put("receipt_kind", |r, _, b| b.str(r.kind.label())),
        put("receipt_type", |r, _, b| b.str(std::str::from_utf8(&r.receipt_type).unwrap_or("0000"))),
        put("service_month", |r, _, b| b.i32(r.service_month)),
        put("institution_code", |r, ctx, b| b.str(&ctx.world.institution(r.institution).code)),
        put("prefecture", |r, _, b| b.i16(i16::from(r.prefecture))),
        put("sex", |r, _, b| b.i16(i16::from(r.sex))),
        put("birth_month", |r, _, b| b.i32(r.birth_month)),
        put("age", |r, _, b| b.i16(i16::from(r.age))),
        put("insurer_number", |r, ctx, b| b.str(&ctx.world.insurer(r.insurer).number)),
        put("benefit_ratio", |r, _, b| b.i16(i16::from(r.benefit_ratio))),
        put("admission_date", |r, _, b| b.opt_date(r.admission_date)),
        put("actual_days", |r, _, b| b.i16(i16::from(r.actual_days))),
        put("total_points", |r, _, b| b.i32(r.total_points)),
        put("id1", |r, _, b| b.str(r.ids.id1.as_str())),
        put("id2", |r, _, b| b.str(r.ids.id2.as_str())),
        put("id4", |r, _, b| b.str(r.ids.id4.as_str())),
        put("id5", |r, _, b| b.opt_str(id5(&r.ids.id5))),
    ],
};

/// SY: 傷病名レコード.
pub static SY: Extract<Diagnosis> = Extract {
    spec: &tables::SY,
    source: Source::Chunk(|c| &c.diagnoses),
    put: &[
        put("receipt_id", |r, _, b| b.i64(r.receipt_id)),
        put("seq", |r, _, b| b.i16(r.seq as i16)),
        put("disease_code", |r, _, b| b.str(r.disease.code)),
        put("start_date", |r, _, b| b.date(r.start_date)),
        put("outcome", |r, _, b| b.i16(i16::from(r.outcome))),
        put("modifiers", |r, _, b| b.opt_str((!r.modifiers.is_empty()).then_some(r.modifiers))),
        put("suspected", |r, _, b| b.bool(r.modifiers.as_bytes().chunks(4).any(|c| c == b"8002"))),
        put("main", |r, _, b| b.bool(r.main)),
        put("disease_name", |r, _, b| b.opt_str(r.name_text)),
    ],
};

/// SI: 診療行為レコード.
pub static SI: Extract<ProcedureLine> = Extract {
    spec: &tables::SI,
    source: Source::Chunk(|c| &c.procedures),
    put: &[
        put("receipt_id", |r, _, b| b.i64(r.receipt_id)),
        put("seq", |r, _, b| b.i16(r.seq as i16)),
        put("practice_class", |r, _, b| b.str(r.procedure.practice_class)),
        put("procedure_code", |r, _, b| b.str(r.procedure.code)),
        put("points", |r, _, b| b.i32(r.procedure.points)),
        put("count", |r, _, b| b.i32(r.count)),
    ],
};

/// IY: 医薬品レコード (医科 and 調剤).
pub static IY: Extract<DrugLine> = Extract {
    spec: &tables::IY,
    source: Source::Chunk(|c| &c.drugs),
    put: &[
        put("receipt_id", |r, _, b| b.i64(r.receipt_id)),
        put("seq", |r, _, b| b.i16(r.seq as i16)),
        put("practice_class", |r, _, b| b.str(r.drug.route.practice_class())),
        put("drug_code", |r, _, b| b.str(r.drug.code)),
        put("quantity", |r, _, b| b.f64(r.quantity)),
        put("points", |r, _, b| b.i32(r.points)),
        put("count", |r, _, b| b.i32(r.count)),
    ],
};

/// DPC: BU (診断群分類) with SB main disease.
pub static DPC: Extract<DpcRecord> = Extract {
    spec: &tables::DPC,
    source: Source::Chunk(|c| &c.dpc),
    put: &[
        put("receipt_id", |r, _, b| b.i64(r.receipt_id)),
        put("dpc_code", |r, _, b| b.str(r.group.code)),
        put("admission_date", |r, _, b| b.date(r.admission_date)),
        put("discharge_date", |r, _, b| b.opt_date(r.discharge_date)),
        put("dpc_outcome", |r, _, b| b.i16(i16::from(r.outcome))),
        put("main_disease_code", |r, _, b| b.str(r.main_disease.code)),
        put("main_icd10", |r, _, b| b.str(r.main_disease.icd10)),
        put("emergency", |r, _, b| b.bool(r.emergency)),
    ],
};

/// 調剤 receipt details.
pub static PHARMACY: Extract<PharmacyRecord> = Extract {
    spec: &tables::PHARMACY,
    source: Source::Chunk(|c| &c.pharmacy),
    put: &[
        put("receipt_id", |r, _, b| b.i64(r.receipt_id)),
        put("prescriber_code", |r, ctx, b| b.str(&ctx.world.institution(r.prescriber).code)),
        put("prescriptions", |r, _, b| b.i16(i16::from(r.prescriptions))),
        put("dispensing_points", |r, _, b| b.i32(r.dispensing_points)),
        put("drug_points", |r, _, b| b.i32(r.drug_points)),
    ],
};
