//! The fixed world a population lives in: institutions (clinics, hospitals, DPC hospitals,
//! pharmacies, care providers) and insurers, per prefecture, scaled to the population size.

use crate::model::{InstitutionId, InsurerId};
use crate::reference::{InsurerKind, PREFECTURES, insurer_number, luhn_digit};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::ops::Range;

/// What an institution is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InstitutionKind {
    /// 診療所 (clinic, no DPC).
    Clinic,
    /// 病院 (hospital, fee-for-service).
    Hospital,
    /// DPC対象病院.
    DpcHospital,
    /// 保険薬局.
    Pharmacy,
    /// 介護サービス事業所.
    CareProvider,
}

impl InstitutionKind {
    /// Japanese label with English.
    pub fn label(self) -> &'static str {
        match self {
            InstitutionKind::Clinic => "診療所 clinic",
            InstitutionKind::Hospital => "病院 hospital",
            InstitutionKind::DpcHospital => "DPC病院 DPC hospital",
            InstitutionKind::Pharmacy => "薬局 pharmacy",
            InstitutionKind::CareProvider => "介護事業所 care provider",
        }
    }
}

/// A synthetic institution.
#[derive(Clone, Debug)]
pub struct Institution {
    /// 10-digit code: prefecture (2) + 点数表 (1) + 7 digits; care providers: 事業所番号.
    pub code: String,
    /// Kind.
    pub kind: InstitutionKind,
    /// Prefecture (JIS code).
    pub prefecture: u8,
    /// A clearly synthetic name.
    pub name_ja: String,
    /// Beds (hospitals).
    pub beds: u16,
    /// Whether the clinic dispenses in house (院内処方) rather than issuing prescriptions.
    pub in_house: bool,
    /// Which HbA1c/glucose method its lab uses (0..3), for checkups.
    pub lab_method: u8,
}

/// A synthetic insurer.
#[derive(Clone, Debug)]
pub struct Insurer {
    /// 保険者番号 (8 digits, or 6 for 国保).
    pub number: String,
    /// Kind.
    pub kind: InsurerKind,
    /// Prefecture.
    pub prefecture: u8,
}

/// Index ranges of one prefecture's institutions and insurers.
#[derive(Clone, Debug, Default)]
pub struct PrefectureIndex {
    /// Clinics.
    pub clinics: Range<u32>,
    /// Non-DPC hospitals.
    pub hospitals: Range<u32>,
    /// DPC hospitals.
    pub dpc_hospitals: Range<u32>,
    /// Pharmacies.
    pub pharmacies: Range<u32>,
    /// Care providers.
    pub care: Range<u32>,
    /// Insurers by kind: 協会けんぽ, 組合, 共済, 国保, 後期.
    pub insurers: [Range<u32>; 5],
}

/// The institutions and insurers of the synthetic country.
#[derive(Clone, Debug)]
pub struct World {
    /// All institutions.
    pub institutions: Vec<Institution>,
    /// All insurers.
    pub insurers: Vec<Insurer>,
    /// Per prefecture (index = JIS code − 1).
    pub prefectures: Vec<PrefectureIndex>,
}

/// The order of insurer kinds in [`PrefectureIndex::insurers`].
pub const INSURER_KINDS: [InsurerKind; 5] =
    [InsurerKind::Kyokai, InsurerKind::Kumiai, InsurerKind::Kyosai, InsurerKind::Kokuho, InsurerKind::Koki];

fn scaled(persons: u64, pop_share: f64, per_100k: f64, min: u32) -> u32 {
    ((persons as f64 * pop_share * per_100k / 100_000.0).round() as u32).max(min)
}

impl World {
    /// Builds the world for a population of `persons`, deterministically from `seed`.
    pub fn build(seed: u64, persons: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5752_4c44_0000_0001);
        let total: f64 = PREFECTURES.iter().map(|p| f64::from(p.population_k)).sum();
        let mut institutions = Vec::new();
        let mut insurers = Vec::new();
        let mut prefectures = Vec::new();
        for p in &PREFECTURES {
            let share = f64::from(p.population_k) / total;
            let mut idx = PrefectureIndex::default();
            let mut add = |kind: InstitutionKind, n: u32, rng: &mut ChaCha8Rng| -> Range<u32> {
                let start = institutions.len() as u32;
                for i in 0..n {
                    let serial = institutions.len() as u32 % 10_000;
                    let (code, name) = match kind {
                        InstitutionKind::CareProvider => {
                            let body = format!("{:02}7{:06}", p.code, start + i);
                            let c = luhn_digit(&body);
                            (format!("{body}{c}"), format!("（合成）{}介護事業所{:04}", p.name_ja, i + 1))
                        }
                        _ => {
                            let table = if kind == InstitutionKind::Pharmacy { 4 } else { 1 };
                            let body = format!("{:02}{serial:04}", rng.random_range(1..=99u32));
                            let c = luhn_digit(&body);
                            let label = match kind {
                                InstitutionKind::Clinic => "診療所",
                                InstitutionKind::Hospital => "病院",
                                InstitutionKind::DpcHospital => "総合病院",
                                _ => "薬局",
                            };
                            (format!("{:02}{table}{body}{c}", p.code), format!("（合成）{}{label}{:04}", p.name_ja, i + 1))
                        }
                    };
                    let beds = match kind {
                        InstitutionKind::Hospital => rng.random_range(50..300),
                        InstitutionKind::DpcHospital => rng.random_range(200..800),
                        _ => 0,
                    };
                    institutions.push(Institution {
                        code,
                        kind,
                        prefecture: p.code,
                        name_ja: name,
                        beds,
                        in_house: kind == InstitutionKind::Clinic && rng.random_bool(0.2),
                        lab_method: rng.random_range(0..3),
                    });
                }
                start..institutions.len() as u32
            };
            idx.clinics = add(InstitutionKind::Clinic, scaled(persons, share, 84.0, 3), &mut rng);
            idx.hospitals = add(InstitutionKind::Hospital, scaled(persons, share, 5.0, 1), &mut rng);
            idx.dpc_hospitals = add(InstitutionKind::DpcHospital, scaled(persons, share, 1.4, 1), &mut rng);
            idx.pharmacies = add(InstitutionKind::Pharmacy, scaled(persons, share, 50.0, 2), &mut rng);
            idx.care = add(InstitutionKind::CareProvider, scaled(persons, share, 40.0, 2), &mut rng);
            for (k, kind) in INSURER_KINDS.iter().enumerate() {
                let n = match kind {
                    InsurerKind::Kyokai | InsurerKind::Koki => 1,
                    InsurerKind::Kumiai => scaled(persons, share, 1.1, 2),
                    InsurerKind::Kyosai => 2,
                    InsurerKind::Kokuho => scaled(persons, share, 1.4, 2),
                };
                let start = insurers.len() as u32;
                for i in 0..n {
                    insurers.push(Insurer { number: insurer_number(*kind, p.code, (i + 1) as u16), kind: *kind, prefecture: p.code });
                }
                idx.insurers[k] = start..insurers.len() as u32;
            }
            prefectures.push(idx);
        }
        World { institutions, insurers, prefectures }
    }

    /// The index of a prefecture by JIS code.
    pub fn prefecture(&self, code: u8) -> &PrefectureIndex {
        &self.prefectures[usize::from(code) - 1]
    }

    /// An institution by id.
    pub fn institution(&self, id: InstitutionId) -> &Institution {
        &self.institutions[id as usize]
    }

    /// An insurer by id.
    pub fn insurer(&self, id: InsurerId) -> &Insurer {
        &self.insurers[id as usize]
    }
}
