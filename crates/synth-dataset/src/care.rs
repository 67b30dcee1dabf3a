//! Care rows into the care tables.

use super::*;

/// 要介護認定.
pub static CARE_CERT: Extract<CareCert> = Extract {
    spec: &tables::CARE_CERT,
    source: Source::Chunk(|c| &c.care_certs),
    put: &[
        put("cert_id", |r, _, b| b.i64(r.cert_id)),
        put("sex", |r, _, b| b.i16(i16::from(r.sex))),
        put("birth_month", |r, _, b| b.i32(r.birth_month)),
        put("age", |r, _, b| b.i16(i16::from(r.age))),
        put("prefecture", |r, _, b| b.i16(i16::from(r.prefecture))),
        put("cert_date", |r, _, b| b.date(r.cert_date)),
        put("care_level", |r, _, b| b.str(r.care_level)),
        put("valid_from", |r, _, b| b.date(r.valid_from)),
        put("valid_to", |r, _, b| b.date(r.valid_to)),
        put("id4", |r, _, b| b.str(r.ids.id4.as_str())),
        put("id5", |r, _, b| b.opt_str(id5(&r.ids.id5))),
    ],
};

/// 介護給付費明細書.
pub static CARE_CLAIM: Extract<CareClaimLine> = Extract {
    spec: &tables::CARE_CLAIM,
    source: Source::Chunk(|c| &c.care_claims),
    put: &[
        put("claim_id", |r, _, b| b.i64(r.claim_id)),
        put("seq", |r, _, b| b.i16(r.seq as i16)),
        put("service_month", |r, _, b| b.i32(r.service_month)),
        put("provider_code", |r, ctx, b| b.str(&ctx.world.institution(r.provider).code)),
        put("sex", |r, _, b| b.i16(i16::from(r.sex))),
        put("age", |r, _, b| b.i16(i16::from(r.age))),
        put("prefecture", |r, _, b| b.i16(i16::from(r.prefecture))),
        put("care_level", |r, _, b| b.str(r.care_level)),
        put("service_type", |r, _, b| b.str(r.service_type)),
        put("service_item", |r, _, b| b.str(std::str::from_utf8(&r.service_item).unwrap_or("0000"))),
        put("units", |r, _, b| b.i32(r.units)),
        put("count", |r, _, b| b.i16(r.count)),
        put("id4", |r, _, b| b.str(r.ids.id4.as_str())),
        put("id5", |r, _, b| b.opt_str(id5(&r.ids.id5))),
    ],
};
