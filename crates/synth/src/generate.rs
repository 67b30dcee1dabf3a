//! The generator: persons, their identities and conditions, and month by month their receipts,
//! checkups and care records.
//!
//! Every person has their own random stream, seeded from the run's seed and the person's number,
//! so a chunk of persons can be generated on any thread in any order and the data depend only on
//! `--seed` and `--persons`. Memory is bounded by one chunk.

use crate::calendar::{Month, civil_from_days, days_from_civil, yyyymmdd};
use crate::codes::{self, Disease, DpcGroup, Drug, LabItem, Procedure};
use crate::model::*;
use crate::reference::{AGE_BANDS, InsurerKind, MEN_K, MEN_NAMES, PREFECTURES, SURNAMES, WOMEN_K, WOMEN_NAMES};
use crate::world::{INSURER_KINDS, World};
use kura_crypto::{IdKind, PseudonymKey, canonical_id_input, normalise_id_field};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::ops::Range;

mod care;
mod checkup;
mod claims;
mod identity;
mod person;

use care::care_level;
use claims::{IdCounters, MonthReceipts, regimen};

/// One month of one person's life as the month functions see it: the month (as an index from
/// the period's start and as a calendar month), the person's age in whole years and as a
/// number, and where they live.
#[derive(Clone, Copy)]
struct MonthCtx<'a> {
    /// Months since the period's start.
    m: i32,
    /// The calendar month.
    month: Month,
    /// Age in whole years.
    age: u8,
    /// Age as a number (for the rate curves).
    agef: f64,
    /// The institutions of the person's prefecture.
    pidx: &'a crate::world::PrefectureIndex,
    /// The person's clear text as receipts write it, when asked for
    /// ([`Generator::generate_chunk_written`]).
    text: Option<&'a PersonText>,
}

/// Errors of the generator's configuration.
#[derive(Debug, thiserror::Error)]
pub enum SynthError {
    /// A configuration value is out of range.
    #[error("合成データの設定 {field} が不正です: {reason} / invalid synthetic-data setting {field}: {reason}")]
    Config {
        /// The setting.
        field: &'static str,
        /// What is wrong and what is allowed.
        reason: String,
    },
}

/// Shares of linkage noise; see data.md §3. Configurable because several are ⚠️ estimates.
#[derive(Clone, Debug)]
pub struct LinkageNoise {
    /// Share of 医科入院 receipts without ID5 (data.md: 8 %).
    pub id5_missing_inpatient: f64,
    /// Share of 医科入院外 receipts without ID5 (data.md: 3 %).
    pub id5_missing_outpatient: f64,
    /// Share of DPC receipts without ID5 (data.md: 5 %).
    pub id5_missing_dpc: f64,
    /// Share of 調剤 receipts without ID5 (not in data.md; assumed 3 %).
    pub id5_missing_pharmacy: f64,
    /// Of the receipts without ID5, the share holding `9` rather than null.
    pub id5_nine_share: f64,
    /// Annual probability of changing insurer (job change) at working age.
    pub job_change_per_year: f64,
    /// Annual probability that a woman aged 22–40 marries and changes her surname.
    pub marriage_per_year: f64,
    /// Share of institutions that write the name without the space (changes ID2).
    pub name_without_space: f64,
}

impl Default for LinkageNoise {
    fn default() -> Self {
        Self {
            id5_missing_inpatient: 0.08,
            id5_missing_outpatient: 0.03,
            id5_missing_dpc: 0.05,
            id5_missing_pharmacy: 0.03,
            id5_nine_share: 0.4,
            job_change_per_year: 0.06,
            marriage_per_year: 0.05,
            name_without_space: 0.1,
        }
    }
}

/// What to generate.
#[derive(Clone, Debug)]
pub struct SynthConfig {
    /// Number of persons.
    pub persons: u64,
    /// Random seed: the same seed (and pseudonym key) gives the same data.
    pub seed: u64,
    /// First month of the period.
    pub start: Month,
    /// Number of months (1–120).
    pub months: u32,
    /// Persons per chunk (the unit of parallel work and of memory).
    pub chunk_persons: u32,
    /// Linkage noise.
    pub noise: LinkageNoise,
}

impl SynthConfig {
    /// The default period is fiscal year 2024 (April 2024 – March 2025), when ID5 is on receipts
    /// and planned for checkups.
    pub fn new(persons: u64, seed: u64) -> Self {
        Self { persons, seed, start: Month::new(2024, 4), months: 12, chunk_persons: 2048, noise: LinkageNoise::default() }
    }

    /// Checks ranges.
    pub fn validate(&self) -> Result<(), SynthError> {
        if self.persons == 0 || self.persons > 200_000_000 {
            return Err(SynthError::Config { field: "persons", reason: format!("{} (1–200,000,000)", self.persons) });
        }
        if self.months == 0 || self.months > 120 {
            return Err(SynthError::Config { field: "months", reason: format!("{} (1–120)", self.months) });
        }
        if !(2009..=2100).contains(&self.start.year()) {
            return Err(SynthError::Config { field: "start", reason: format!("{} (2009–2100)", self.start.yyyymm()) });
        }
        if self.chunk_persons == 0 || self.chunk_persons > 1 << 20 {
            return Err(SynthError::Config { field: "chunk_persons", reason: format!("{} (1–1,048,576)", self.chunk_persons) });
        }
        Ok(())
    }
}

/// Clear identifying text of one person, for verification only (e.g. proving that none of it
/// reaches disk). The generator itself never writes these.
#[derive(Clone, Debug)]
pub struct ClearIdentity {
    /// Kanji names as written on receipts (before and after a marriage).
    pub names: Vec<String>,
    /// Kana names.
    pub kana_names: Vec<String>,
    /// Insurer number + 記号 + 番号 of every insurance held during the period, and the oldest
    /// individual insured number (with 枝番).
    pub insurance_numbers: Vec<String>,
    /// The canonical input of every hashed ID of the person ([`canonical_id_input`]).
    pub id_inputs: Vec<(IdKind, String)>,
    /// The same text structured as receipts write it.
    pub(crate) text: PersonText,
}

/// A person's clear text as receipts write it, for [`Generator::generate_chunk_written`].
#[derive(Clone, Debug, Default)]
pub(crate) struct PersonText {
    /// [surname variant][style]: 氏名 with a full-width space (style 0) or without (style 1).
    name: [[String; 2]; 2],
    /// [surname variant]: カタカナ氏名 with a full-width space.
    kana: [String; 2],
    /// 生年月日 YYYYMMDD.
    birth: String,
    /// The oldest individual insured number (ID5's input).
    origin: String,
}

// ---------------------------------------------------------------------------------------------
// Small numeric helpers.

fn gauss(rng: &mut ChaCha8Rng) -> f64 {
    let u1: f64 = rng.random::<f64>().max(1e-300);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// Piecewise-linear interpolation over (x, y) points sorted by x.
fn interp(x: f64, pts: &[(f64, f64)]) -> f64 {
    if x <= pts[0].0 {
        return pts[0].1;
    }
    for w in pts.windows(2) {
        let ((x0, y0), (x1, y1)) = (w[0], w[1]);
        if x <= x1 {
            return y0 + (y1 - y0) * (x - x0) / (x1 - x0);
        }
    }
    pts[pts.len() - 1].1
}

fn pick<T: Copy>(rng: &mut ChaCha8Rng, items: &[(T, f64)]) -> T {
    let total: f64 = items.iter().map(|(_, w)| w).sum();
    let mut x = rng.random::<f64>() * total;
    for (t, w) in items {
        if x < *w {
            return *t;
        }
        x -= w;
    }
    items[items.len() - 1].0
}

fn pick_in(rng: &mut ChaCha8Rng, r: &Range<u32>) -> u32 {
    if r.is_empty() { r.start } else { rng.random_range(r.clone()) }
}

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

fn annual_to_monthly(p: f64) -> f64 {
    1.0 - (1.0 - p.clamp(0.0, 0.999)).powf(1.0 / 12.0)
}

// ---------------------------------------------------------------------------------------------
// Epidemiology (diagnosed prevalence by age; men's curves with a women's factor).

const DM2_MEN: &[(f64, f64)] =
    &[(0.0, 0.0), (20.0, 0.002), (30.0, 0.01), (40.0, 0.03), (50.0, 0.075), (60.0, 0.13), (70.0, 0.18), (80.0, 0.17), (100.0, 0.14)];
const HT_MEN: &[(f64, f64)] =
    &[(0.0, 0.0), (20.0, 0.005), (30.0, 0.03), (40.0, 0.10), (50.0, 0.22), (60.0, 0.38), (70.0, 0.52), (80.0, 0.60), (100.0, 0.60)];
const HT_WOMEN_FACTOR: &[(f64, f64)] = &[(0.0, 0.6), (50.0, 0.7), (70.0, 0.95), (100.0, 1.0)];
const DL_ALL: &[(f64, f64)] =
    &[(0.0, 0.0), (20.0, 0.005), (30.0, 0.03), (40.0, 0.09), (50.0, 0.18), (60.0, 0.27), (70.0, 0.30), (80.0, 0.26), (100.0, 0.2)];
const DL_WOMEN_FACTOR: &[(f64, f64)] = &[(0.0, 0.7), (50.0, 0.8), (60.0, 1.2), (100.0, 1.1)];
const CKD_ALL: &[(f64, f64)] = &[(0.0, 0.0), (40.0, 0.004), (50.0, 0.01), (60.0, 0.025), (70.0, 0.05), (80.0, 0.09), (100.0, 0.12)];
const DEMENTIA_ALL: &[(f64, f64)] =
    &[(0.0, 0.0), (60.0, 0.002), (65.0, 0.01), (70.0, 0.025), (75.0, 0.06), (80.0, 0.14), (85.0, 0.27), (90.0, 0.42), (100.0, 0.55)];
const OSTEO_WOMEN: &[(f64, f64)] = &[(0.0, 0.0), (50.0, 0.02), (60.0, 0.08), (70.0, 0.18), (80.0, 0.28), (100.0, 0.30)];
const GERD_ALL: &[(f64, f64)] = &[(0.0, 0.0), (20.0, 0.01), (40.0, 0.03), (70.0, 0.06), (100.0, 0.06)];
const RHINITIS_ALL: &[(f64, f64)] = &[(0.0, 0.02), (5.0, 0.10), (40.0, 0.10), (70.0, 0.03), (100.0, 0.02)];

/// Care certification rate by age (data.md §9, Sep 2020).
const CARE_RATE: &[(f64, f64)] = &[
    (0.0, 0.0),
    (39.9, 0.0),
    (40.0, 0.003),
    (64.9, 0.003),
    (65.0, 0.028),
    (67.0, 0.028),
    (72.0, 0.055),
    (77.0, 0.124),
    (82.0, 0.264),
    (87.0, 0.481),
    (92.0, 0.727),
    (100.0, 0.80),
];
/// Care level mix 要支援1, 要支援2, 要介護1–5 (end FY2022).
const CARE_MIX: [f64; 7] = [14.3, 13.8, 20.9, 16.6, 13.2, 12.8, 8.4];
const CARE_LEVELS: [&str; 7] = ["12", "13", "21", "22", "23", "24", "25"];

/// Annual probability of death: a Gompertz curve fitted to Japan's life table (≈13 deaths per
/// 1,000 a year for the whole population, about 80 % of them at 75+).
fn death_rate(age: f64, sex: u8) -> f64 {
    let base = 1.25e-5 * (0.0988 * age).exp() + if age < 1.0 { 0.0018 } else { 0.0 };
    let sex_factor = if sex == 1 { 1.3 } else { 0.75 };
    (base * sex_factor).min(0.6)
}

/// Monthly influenza incidence by calendar month (peak late January – early February).
const FLU_BY_MONTH: [f64; 12] = [0.027, 0.021, 0.007, 0.002, 0.0006, 0.0003, 0.0003, 0.0003, 0.0006, 0.0012, 0.003, 0.012];

// ---------------------------------------------------------------------------------------------
// Persons.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Chronic {
    Dm2,
    Dm1,
    Ht,
    Dl,
    Ckd,
    Esrd,
    Dementia,
    Osteo,
    Gerd,
    Rhinitis,
}

#[derive(Clone, Debug)]
struct Condition {
    kind: Chronic,
    disease: &'static Disease,
    /// 診療開始日.
    onset_day: i32,
    /// First month index (0-based within the period) in which it is diagnosed.
    from_month: i32,
    drugs: Vec<&'static Drug>,
}

#[derive(Clone, Debug)]
struct Episode {
    from_month: i32,
    insurer: u32,
    kind: InsurerKind,
    kigo: String,
    bango: String,
}

#[derive(Clone, Debug)]
struct Stay {
    inst: u32,
    dpc: bool,
    group: &'static DpcGroup,
    reason: &'static Disease,
    admit: i32,
    discharge: i32,
    emergency: bool,
    surgery: Option<&'static Procedure>,
    dies: bool,
}

#[derive(Clone, Debug)]
struct CareState {
    level: usize,
    cert_day: i32,
    valid_to: i32,
    facility: bool,
    provider: u32,
}

struct Person {
    sex: u8,
    pref: u8,
    birth: i32,
    birth_ym: i32,
    dependant: bool,
    episodes: Vec<Episode>,
    /// Surname change: month index from which the new surname is used.
    marriage_month: Option<i32>,
    id1: Vec<HexId>,
    /// [surname variant][style]: style 0 with a full-width space, 1 without.
    id2: [[HexId; 2]; 2],
    id4: [HexId; 2],
    id5: HexId,
    conditions: Vec<Condition>,
    latent_dm: Option<i32>,
    latent_ht: Option<i32>,
    latent_dl: Option<i32>,
    ht_code: &'static Disease,
    home_clinic: u32,
    specialist: u32,
    home_pharmacy: u32,
    death_day: Option<i32>,
    care: Option<CareState>,
    smoker: bool,
    /// Personal offsets for checkup values (stable across years).
    bmi_z: f64,
    bp_z: f64,
}

impl Person {
    fn age_on(&self, day: i32) -> u8 {
        let (by, bm, bd) = civil_from_days(self.birth);
        let (y, m, d) = civil_from_days(day);
        let mut age = y - by;
        if (m, d) < (bm, bd) {
            age -= 1;
        }
        age.clamp(0, 120) as u8
    }

    fn episode_at(&self, m: i32) -> usize {
        self.episodes.iter().rposition(|e| e.from_month <= m).unwrap_or(0)
    }

    fn has(&self, kind: Chronic, m: i32) -> bool {
        self.conditions.iter().any(|c| c.kind == kind && c.from_month <= m)
    }

    fn treated(&self, kind: Chronic, m: i32) -> bool {
        self.conditions.iter().any(|c| c.kind == kind && c.from_month <= m && !c.drugs.is_empty())
    }
}

/// The synthetic-data generator. Build it once; call [`Generator::generate_chunk`] for each
/// chunk (from any thread).
pub struct Generator {
    cfg: SynthConfig,
    world: World,
    key: PseudonymKey,
    pref_cum: Vec<f64>,
    /// Per prefecture, cumulative weights of (sex, age band) cells: 21 bands × 2 sexes.
    cells: Vec<Vec<f64>>,
    /// Regional practice variation in metformin prescribing, per prefecture.
    metformin_factor: Vec<f64>,
}

impl Generator {
    /// Prepares a generator. `key` is the platform pseudonym key used for the hashed IDs.
    pub fn new(cfg: SynthConfig, key: PseudonymKey) -> Result<Self, SynthError> {
        cfg.validate()?;
        let world = World::build(cfg.seed, cfg.persons);
        let mut pref_cum = Vec::with_capacity(47);
        let mut acc = 0.0;
        for p in &PREFECTURES {
            acc += f64::from(p.population_k);
            pref_cum.push(acc);
        }
        let men: f64 = MEN_K.iter().map(|&x| f64::from(x)).sum();
        let women: f64 = WOMEN_K.iter().map(|&x| f64::from(x)).sum();
        let old: f64 =
            MEN_K.iter().zip(WOMEN_K.iter()).zip(AGE_BANDS.iter()).filter(|(_, a)| **a >= 65).map(|((m, w), _)| f64::from(*m + *w)).sum();
        let national_old = old / (men + women);
        let mut cells = Vec::with_capacity(47);
        for p in &PREFECTURES {
            let s = p.aged_pct / 100.0;
            let (f_old, f_young) = (s / national_old, (1.0 - s) / (1.0 - national_old));
            let mut c = Vec::with_capacity(42);
            let mut acc = 0.0;
            for sex in 0..2 {
                for (b, &lo) in AGE_BANDS.iter().enumerate() {
                    let w = f64::from(if sex == 0 { MEN_K[b] } else { WOMEN_K[b] });
                    acc += w * if lo >= 65 { f_old } else { f_young };
                    c.push(acc);
                }
            }
            cells.push(c);
        }
        let metformin_factor =
            (0..47u64).map(|i| 0.75 + 0.5 * (splitmix(cfg.seed ^ (i << 8) ^ 0x4d45_5446) % 1000) as f64 / 1000.0).collect();
        Ok(Self { cfg, world, key, pref_cum, cells, metformin_factor })
    }

    /// The configuration.
    pub fn config(&self) -> &SynthConfig {
        &self.cfg
    }

    /// The world (institutions, insurers).
    pub fn world(&self) -> &World {
        &self.world
    }

    /// Number of chunks.
    pub fn chunk_count(&self) -> u64 {
        self.cfg.persons.div_ceil(u64::from(self.cfg.chunk_persons))
    }

    /// The persons (by number) in a chunk.
    pub fn chunk_persons(&self, index: u64) -> Range<u64> {
        let n = u64::from(self.cfg.chunk_persons);
        (index * n)..((index + 1) * n).min(self.cfg.persons)
    }

    fn person_rng(&self, person: u64, stream: u64) -> ChaCha8Rng {
        ChaCha8Rng::seed_from_u64(splitmix(self.cfg.seed ^ splitmix(person.wrapping_mul(4).wrapping_add(stream))))
    }

    fn id(&self, kind: IdKind, fields: &[&str]) -> HexId {
        HexId::from_hex(&self.key.hash_id(kind, &canonical_id_input(fields)))
    }

    fn period_start(&self) -> i32 {
        self.cfg.start.first_day()
    }

    fn month(&self, m: i32) -> Month {
        self.cfg.start.plus(m)
    }

    /// Generates all rows of one chunk.
    pub fn generate_chunk(&self, index: u64) -> Chunk {
        self.chunk(index, false)
    }

    /// Generates all rows of one chunk and, for each receipt, the clear identity its
    /// institution writes ([`Chunk::written`]): the input of `kura synth --format uke`. The
    /// rows are exactly those of [`Generator::generate_chunk`].
    pub fn generate_chunk_written(&self, index: u64) -> Chunk {
        self.chunk(index, true)
    }

    fn chunk(&self, index: u64, written: bool) -> Chunk {
        let mut out = Chunk { index, population: vec![0; POPULATION_CELLS], ..Chunk::default() };
        let mut ids = IdCounters::default();
        for p in self.chunk_persons(index) {
            let (person, clear) = self.person(p);
            out.persons += 1;
            out.population[population_index(person.pref, person.sex, person.age_on(self.period_start()))] += 1;
            if person.death_day.is_some() {
                out.deaths += 1;
            }
            self.life(p, person, written.then_some(&clear.text), &mut out, &mut ids);
        }
        out.id_counts = IdCounts { receipts: ids.receipt, checkups: ids.checkup, certs: ids.cert, claims: ids.claim };
        out
    }

    /// Generates one person's months.
    fn life(&self, idx: u64, mut person: Person, text: Option<&PersonText>, out: &mut Chunk, ids: &mut IdCounters) {
        let mut rng = self.person_rng(idx, 1);
        let months = self.cfg.months as i32;
        let pidx = self.world.prefecture(person.pref).clone();
        let mut stay: Option<Stay> = None;
        let checkup_months = self.plan_checkups(&person, &mut rng);
        for m in 0..months {
            let month = self.month(m);
            let first = month.first_day();
            let last = first + month.days() as i32 - 1;
            if person.death_day.is_some_and(|d| d < first) {
                break;
            }
            let age = person.age_on(first);
            let agef = f64::from(age);
            // Latent disease found this month becomes a diagnosis.
            for (slot, kind, disease) in [
                (person.latent_dm, Chronic::Dm2, &codes::DM2),
                (person.latent_ht, Chronic::Ht, person.ht_code),
                (person.latent_dl, Chronic::Dl, &codes::DL),
            ] {
                if slot == Some(m) {
                    let drugs = regimen(&mut rng, kind, agef, &person, self.metformin_factor[usize::from(person.pref) - 1], true);
                    person.conditions.push(Condition { kind, disease, onset_day: first + rng.random_range(0..28), from_month: m, drugs });
                }
            }
            let mut month_rx = MonthReceipts::default();

            // Hospital stays.
            if stay.as_ref().is_some_and(|s| s.discharge < first) {
                stay = None;
            }
            if stay.is_none() {
                let mut h = interp(
                    agef,
                    &[
                        (0.0, 0.005),
                        (5.0, 0.0025),
                        (15.0, 0.0025),
                        (40.0, 0.004),
                        (60.0, 0.009),
                        (70.0, 0.016),
                        (80.0, 0.029),
                        (90.0, 0.042),
                        (100.0, 0.045),
                    ],
                );
                if person.has(Chronic::Dm2, m) || person.has(Chronic::Ckd, m) {
                    h *= 1.3;
                }
                if rng.random_bool(h) {
                    let admit = first + rng.random_range(0..month.days() as i32);
                    stay = Some(self.admission(&person, &mut rng, agef, admit, &pidx, m));
                }
            }
            if let Some(dd) = person.death_day.filter(|d| (first..=last).contains(d)) {
                match stay.as_mut() {
                    Some(s) if s.admit <= dd && s.discharge >= dd => {
                        s.discharge = dd;
                        s.dies = true;
                    }
                    _ if rng.random_bool(0.65) => {
                        let mut s = self.terminal_admission(&mut rng, dd, first, &pidx);
                        s.dies = true;
                        stay = Some(s);
                    }
                    _ => {}
                }
            }
            let mut inpatient_days = 0;
            if let Some(s) = stay.as_ref().filter(|s| s.admit <= last && s.discharge >= first) {
                inpatient_days = self.inpatient_month(&person, s, first, last, m, &mut month_rx);
            }
            let alive_days = person.death_day.map_or(month.days() as i32, |d| (d - first + 1).clamp(0, month.days() as i32));

            let cx = MonthCtx { m, month, age, agef, pidx: &pidx, text };

            // Outpatient care (not while in hospital most of the month).
            if inpatient_days < 15 && alive_days > 7 {
                self.outpatient_month(&mut person, &mut rng, &cx, &mut month_rx);
            }

            // Care: renewal, new certifications, monthly claims.
            self.care_month(&mut person, &mut rng, &cx, inpatient_days, out, ids);

            // Checkups.
            if checkup_months.contains(&m) && alive_days > 15 && inpatient_days == 0 {
                self.checkup(&mut person, &mut rng, &cx, out, ids);
            }

            self.finish_month(&person, &mut rng, &cx, month_rx, out, ids);
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum AcuteKind {
    Influenza,
    Urti,
    Gastro,
    BackPain,
    Eczema,
    Bronchitis,
}
