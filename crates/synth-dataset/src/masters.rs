//! Code lists, the synthetic world and the population into the master tables.

use super::*;

/// 傷病名マスター.
pub static M_DISEASE: Extract<&'static Disease> = Extract {
    spec: &tables::M_DISEASE,
    source: Source::Master(|_| codes::DISEASES.iter().collect()),
    put: &[
        put("disease_code", |r, _, b| b.str(r.code)),
        put("name_ja", |r, _, b| b.str(r.name_ja)),
        put("name_en", |r, _, b| b.str(r.name_en)),
        put("icd10", |r, _, b| b.str(r.icd10)),
        put("provenance", |r, _, b| b.str(r.provenance.label())),
    ],
};

/// 修飾語マスター.
pub static M_MODIFIER: Extract<&'static Modifier> = Extract {
    spec: &tables::M_MODIFIER,
    source: Source::Master(|_| codes::MODIFIERS.iter().collect()),
    put: &[
        put("modifier_code", |r, _, b| b.str(r.code)),
        put("name_ja", |r, _, b| b.str(r.name_ja)),
        put("name_en", |r, _, b| b.str(r.name_en)),
        put("provenance", |r, _, b| b.str(r.provenance.label())),
    ],
};

/// 医薬品マスター.
pub static M_DRUG: Extract<&'static Drug> = Extract {
    spec: &tables::M_DRUG,
    source: Source::Master(|_| codes::DRUGS.iter().collect()),
    put: &[
        put("drug_code", |r, _, b| b.str(r.code)),
        put("name_ja", |r, _, b| b.str(r.name_ja)),
        put("generic_en", |r, _, b| b.str(r.generic_en)),
        put("efficacy_class", |r, _, b| b.str(r.efficacy_class)),
        put("yj_code", |r, _, b| b.opt_str(r.yj_code)),
        put("route", |r, _, b| b.str(route_label(r.route))),
        put("unit", |r, _, b| b.str(r.unit_ja)),
        put("price_yen", |r, _, b| b.f64(r.price_yen)),
        put("provenance", |r, _, b| b.str(r.provenance.label())),
    ],
};

/// 診療行為マスター.
pub static M_PROCEDURE: Extract<&'static Procedure> = Extract {
    spec: &tables::M_PROCEDURE,
    source: Source::Master(|_| codes::PROCEDURES.iter().collect()),
    put: &[
        put("procedure_code", |r, _, b| b.str(r.code)),
        put("name_ja", |r, _, b| b.str(r.name_ja)),
        put("name_en", |r, _, b| b.str(r.name_en)),
        put("practice_class", |r, _, b| b.str(r.practice_class)),
        put("points", |r, _, b| b.i32(r.points)),
        put("provenance", |r, _, b| b.str(r.provenance.label())),
    ],
};

/// 特定健診項目.
pub static M_LAB_ITEM: Extract<&'static LabItem> = Extract {
    spec: &tables::M_LAB_ITEM,
    source: Source::Master(|_| codes::LAB_ITEMS.iter().collect()),
    put: &[
        put("item_code", |r, _, b| b.str(r.code)),
        put("item_key", |r, _, b| b.str(r.key)),
        put("name_ja", |r, _, b| b.str(r.name_ja)),
        put("name_en", |r, _, b| b.str(r.name_en)),
        put("unit", |r, _, b| b.str(r.unit)),
        put("provenance", |r, _, b| b.str(r.provenance.label())),
    ],
};

/// サービス種類.
pub static M_CARE_SERVICE: Extract<&'static CareService> = Extract {
    spec: &tables::M_CARE_SERVICE,
    source: Source::Master(|_| codes::CARE_SERVICES.iter().collect()),
    put: &[
        put("service_type", |r, _, b| b.str(r.code)),
        put("name_ja", |r, _, b| b.str(r.name_ja)),
        put("name_en", |r, _, b| b.str(r.name_en)),
        put("provenance", |r, _, b| b.str(r.provenance.label())),
    ],
};

/// DPC 診断群分類.
pub static M_DPC: Extract<&'static DpcGroup> = Extract {
    spec: &tables::M_DPC,
    source: Source::Master(|_| codes::DPC_GROUPS.iter().collect()),
    put: &[
        put("dpc_code", |r, _, b| b.str(r.code)),
        put("name_ja", |r, _, b| b.str(r.name_ja)),
        put("name_en", |r, _, b| b.str(r.name_en)),
        put("provenance", |r, _, b| b.str(r.provenance.label())),
    ],
};

/// 都道府県.
pub static M_PREFECTURE: Extract<&'static Prefecture> = Extract {
    spec: &tables::M_PREFECTURE,
    source: Source::Master(|_| PREFECTURES.iter().collect()),
    put: &[
        put("prefecture", |r, _, b| b.i16(i16::from(r.code))),
        put("name_ja", |r, _, b| b.str(r.name_ja)),
        put("name_en", |r, _, b| b.str(r.name_en)),
    ],
};

/// 医療機関等 (synthetic).
pub static M_INSTITUTION: Extract<u32> = Extract {
    spec: &tables::M_INSTITUTION,
    source: Source::Master(|c| (0..c.world.institutions.len() as u32).collect()),
    put: &[
        put("institution_code", |r, c, b| b.str(&c.world.institution(*r).code)),
        put("kind", |r, c, b| b.str(c.world.institution(*r).kind.label())),
        put("prefecture", |r, c, b| b.i16(i16::from(c.world.institution(*r).prefecture))),
        put("name_ja", |r, c, b| b.str(&c.world.institution(*r).name_ja)),
        put("beds", |r, c, b| b.i16(c.world.institution(*r).beds as i16)),
        put("in_house_dispensing", |r, c, b| b.bool(c.world.institution(*r).in_house)),
    ],
};

/// 保険者 (synthetic).
pub static M_INSURER: Extract<u32> = Extract {
    spec: &tables::M_INSURER,
    source: Source::Master(|c| (0..c.world.insurers.len() as u32).collect()),
    put: &[
        put("insurer_number", |r, c, b| b.str(&c.world.insurer(*r).number)),
        put("kind", |r, c, b| {
            b.str(match c.world.insurer(*r).kind {
                kura_synth::reference::InsurerKind::Kyokai => "協会けんぽ",
                kura_synth::reference::InsurerKind::Kumiai => "組合健保",
                kura_synth::reference::InsurerKind::Kyosai => "共済",
                kura_synth::reference::InsurerKind::Kokuho => "国保",
                kura_synth::reference::InsurerKind::Koki => "後期高齢",
            })
        }),
        put("prefecture", |r, c, b| b.i16(i16::from(c.world.insurer(*r).prefecture))),
    ],
};

/// Population at the start of the period (the synthetic population's own census).
pub static M_POPULATION: Extract<PopulationCell> = Extract {
    spec: &tables::M_POPULATION,
    source: Source::Master(|c| {
        let mut v = Vec::new();
        for (i, &n) in c.population.iter().enumerate() {
            if n > 0 {
                v.push(PopulationCell {
                    prefecture: (i / 42 + 1) as u8,
                    sex: (i % 42 / 21 + 1) as u8,
                    age_band: (i % 21 * 5) as u8,
                    persons: n,
                });
            }
        }
        v
    }),
    put: &[
        put("prefecture", |r, _, b| b.i16(i16::from(r.prefecture))),
        put("sex", |r, _, b| b.i16(i16::from(r.sex))),
        put("age_band", |r, _, b| b.i16(i16::from(r.age_band))),
        put("persons", |r, _, b| b.i64(i64::from(r.persons))),
    ],
};
fn route_label(r: Route) -> &'static str {
    match r {
        Route::Oral => "内用 oral",
        Route::Injection => "注射 injection",
        Route::Topical => "外用 topical",
    }
}
