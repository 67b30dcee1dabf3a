//! Checkup rows into the checkup tables.

use super::*;

/// 特定健診 headers.
pub static CHECKUP: Extract<Checkup> = Extract {
    spec: &tables::CHECKUP,
    source: Source::Chunk(|c| &c.checkups),
    put: &[
        put("checkup_id", |r, _, b| b.i64(r.checkup_id)),
        put("checkup_date", |r, _, b| b.date(r.date)),
        put("fiscal_year", |r, _, b| b.i16(r.fiscal_year as i16)),
        put("sex", |r, _, b| b.i16(i16::from(r.sex))),
        put("age", |r, _, b| b.i16(i16::from(r.age))),
        put("prefecture", |r, _, b| b.i16(i16::from(r.prefecture))),
        put("insurer_number", |r, ctx, b| b.str(&ctx.world.insurer(r.insurer).number)),
        put("institution_code", |r, ctx, b| b.str(&ctx.world.institution(r.institution).code)),
        put("id1", |r, _, b| b.str(r.ids.id1.as_str())),
        put("id2", |r, _, b| b.str(r.ids.id2.as_str())),
        put("id5", |r, _, b| b.opt_str(id5(&r.ids.id5))),
    ],
};

/// 特定健診 items.
pub static CHECKUP_ITEM: Extract<CheckupItem> = Extract {
    spec: &tables::CHECKUP_ITEM,
    source: Source::Chunk(|c| &c.checkup_items),
    put: &[
        put("checkup_id", |r, _, b| b.i64(r.checkup_id)),
        put("item_code", |r, _, b| b.str(r.item.code)),
        put("value", |r, _, b| b.opt_f64(r.value)),
        put("value_code", |r, _, b| b.opt_i16(r.code.map(i16::from))),
    ],
};
