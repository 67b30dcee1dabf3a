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
use kura_crypto::{IdKind, PseudonymKey, canonical_id_input};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::ops::Range;

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

    /// Samples a person's demographics, identities and conditions (deterministic per number).
    /// The clear identity is returned for verification; the [`Person`] keeps only hashes.
    fn person(&self, idx: u64) -> (Person, ClearIdentity) {
        let mut rng = self.person_rng(idx, 0);
        let start = self.period_start();
        let months = self.cfg.months as i32;
        let x = rng.random::<f64>() * self.pref_cum[46];
        let pi = self.pref_cum.iter().position(|&c| x < c).unwrap_or(46);
        let pref = PREFECTURES[pi].code;
        let cells = &self.cells[pi];
        let y = rng.random::<f64>() * cells[41];
        let ci = cells.iter().position(|&c| y < c).unwrap_or(41);
        let sex = if ci < 21 { 1u8 } else { 2u8 };
        let band = ci % 21;
        let age0 = u32::from(AGE_BANDS[band]) + rng.random_range(0..5u32);
        let birth = start - (age0 as i32 * 365 + age0 as i32 / 4) - rng.random_range(0..365);
        let (by, bm, _) = civil_from_days(birth);
        let birth_ym = by * 100 + bm as i32;
        let age = f64::from(age0);
        let bdate = yyyymmdd(birth);
        let sex_s = if sex == 1 { "1" } else { "2" };

        // Names (never stored).
        let surname = rng.random_range(0..SURNAMES.len());
        let given = rng.random_range(0..20usize);
        let (gk, gn) = if sex == 1 { MEN_NAMES[given] } else { WOMEN_NAMES[given] };
        let np = &self.cfg.noise;
        let marriage_month = if months > 0
            && ((sex == 2 && (22.0..40.0).contains(&age) && rng.random_bool(np.marriage_per_year * f64::from(months) / 12.0))
                || (sex == 1 && (24.0..42.0).contains(&age) && rng.random_bool(0.003)))
        {
            Some(rng.random_range(0..months))
        } else {
            None
        };
        let new_surname = (surname + 1 + rng.random_range(0..SURNAMES.len() - 1)) % SURNAMES.len();
        let surnames = [surname, if marriage_month.is_some() { new_surname } else { surname }];

        // Insurance episodes.
        let kind_at = |age: f64, rng: &mut ChaCha8Rng| -> InsurerKind {
            if age >= 75.0 {
                return InsurerKind::Koki;
            }
            let w: [f64; 4] = if age < 20.0 {
                [0.40, 0.27, 0.08, 0.25]
            } else if age < 60.0 {
                [0.40, 0.30, 0.08, 0.22]
            } else if age < 65.0 {
                [0.32, 0.20, 0.06, 0.42]
            } else {
                [0.12, 0.06, 0.03, 0.79]
            };
            pick(rng, &[(InsurerKind::Kyokai, w[0]), (InsurerKind::Kumiai, w[1]), (InsurerKind::Kyosai, w[2]), (InsurerKind::Kokuho, w[3])])
        };
        let pidx = self.world.prefecture(pref);
        let new_episode = |from: i32, kind: InsurerKind, rng: &mut ChaCha8Rng| -> Episode {
            let k = INSURER_KINDS.iter().position(|x| *x == kind).unwrap_or(0);
            Episode {
                from_month: from,
                insurer: pick_in(rng, &pidx.insurers[k]),
                kind,
                kigo: format!("{}", rng.random_range(10_000..99_999u32)),
                bango: format!("{}", rng.random_range(1..9_999_999u32)),
            }
        };
        let mut episodes = vec![new_episode(i32::MIN / 2, kind_at(age, &mut rng), &mut rng)];
        if (20.0..65.0).contains(&age) && rng.random_bool((np.job_change_per_year * f64::from(months) / 12.0).min(1.0)) {
            let m = rng.random_range(0..months);
            let k = kind_at(age, &mut rng);
            episodes.push(new_episode(m, k, &mut rng));
        }
        // Turning 75 moves everyone to the 後期高齢者医療 scheme from the next month.
        if age0 < 75 {
            let d75 = days_from_civil(by + 75, bm, 1);
            let m75 = (0..months).find(|&m| self.month(m).first_day() > d75);
            if let Some(m) = m75 {
                episodes.retain(|e| e.from_month < m);
                episodes.push(new_episode(m, InsurerKind::Koki, &mut rng));
            }
        }
        let edaban = if rng.random_bool(0.6) { "00" } else { "01" };
        let origin = if age >= 25.0 && rng.random_bool(0.5) {
            format!(
                "{}{}{}{edaban}",
                self.world.insurer(pick_in(&mut rng, &pidx.insurers[0])).number,
                rng.random_range(10_000..99_999u32),
                rng.random_range(1..9_999_999u32)
            )
        } else {
            let e = &episodes[0];
            format!("{}{}{}{edaban}", self.world.insurer(e.insurer).number, e.kigo, e.bango)
        };

        let mut clear = ClearIdentity {
            names: Vec::new(),
            kana_names: Vec::new(),
            insurance_numbers: vec![origin.clone()],
            id_inputs: vec![(IdKind::Id5, canonical_id_input(&[&origin]))],
        };
        let id1 = episodes
            .iter()
            .map(|e| {
                let ins = &self.world.insurer(e.insurer).number;
                clear.insurance_numbers.push(format!("{ins}{}{}", e.kigo, e.bango));
                clear.id_inputs.push((IdKind::Id1, canonical_id_input(&[ins, &e.kigo, &e.bango, &bdate, sex_s])));
                self.id(IdKind::Id1, &[ins, &e.kigo, &e.bango, &bdate, sex_s])
            })
            .collect();
        let mut id2 = [[HexId([b'0'; 64]); 2]; 2];
        let mut id4 = [HexId([b'0'; 64]); 2];
        for (v, &s) in surnames.iter().enumerate() {
            let (sk, sn) = SURNAMES[s];
            let spaced = format!("{sk}\u{3000}{gk}");
            let unspaced = format!("{sk}{gk}");
            id2[v][0] = self.id(IdKind::Id2, &[&spaced, &bdate, sex_s]);
            id2[v][1] = self.id(IdKind::Id2, &[&unspaced, &bdate, sex_s]);
            let kana = format!("{sn} {gn}");
            id4[v] = self.id(IdKind::Id4, &[&kana, &bdate, sex_s]);
            clear.id_inputs.push((IdKind::Id2, canonical_id_input(&[&spaced, &bdate, sex_s])));
            clear.id_inputs.push((IdKind::Id2, canonical_id_input(&[&unspaced, &bdate, sex_s])));
            clear.id_inputs.push((IdKind::Id4, canonical_id_input(&[&kana, &bdate, sex_s])));
            clear.names.push(spaced);
            clear.kana_names.push(kana);
        }
        let id5 = self.id(IdKind::Id5, &[&origin]);

        // Conditions.
        let male = sex == 1;
        let mut conditions = Vec::new();
        let add = |kind: Chronic, disease: &'static Disease, p: f64, rng: &mut ChaCha8Rng, conds: &mut Vec<Condition>| -> bool {
            if rng.random_bool(p.clamp(0.0, 1.0)) {
                let years_ago = rng.random_range(0..(age as i32 - 15).clamp(1, 15));
                conds.push(Condition {
                    kind,
                    disease,
                    onset_day: start - years_ago * 365 - rng.random_range(0..365),
                    from_month: i32::MIN / 2,
                    drugs: Vec::new(),
                });
                true
            } else {
                false
            }
        };
        let p_dm = interp(age, DM2_MEN) * if male { 1.0 } else { 0.55 };
        let p_ht = interp(age, HT_MEN) * if male { 1.0 } else { interp(age, HT_WOMEN_FACTOR) };
        let p_dl = interp(age, DL_ALL) * if male { 1.0 } else { interp(age, DL_WOMEN_FACTOR) };
        let dm = add(Chronic::Dm2, &codes::DM2, p_dm, &mut rng, &mut conditions);
        if !dm && age > 5.0 {
            add(Chronic::Dm1, &codes::DM1, 0.001, &mut rng, &mut conditions);
        }
        let ht_code = if rng.random_bool(0.6) { &codes::HT } else { &codes::EHT };
        let ht = add(Chronic::Ht, ht_code, p_ht, &mut rng, &mut conditions);
        add(Chronic::Dl, &codes::DL, p_dl, &mut rng, &mut conditions);
        let ckd_factor = (1.0 + if dm { 1.5 } else { 0.0 } + if ht { 0.7 } else { 0.0 }) / 1.5;
        if add(Chronic::Ckd, &codes::CKD, interp(age, CKD_ALL) * ckd_factor, &mut rng, &mut conditions) && age >= 30.0 {
            add(Chronic::Esrd, &codes::ESRD, 0.08, &mut rng, &mut conditions);
        }
        let p_dem = interp(age, DEMENTIA_ALL) * if male { 0.9 } else { 1.1 };
        let dem_code = if rng.random_bool(0.6) { &codes::ALZHEIMER } else { &codes::DEMENTIA };
        let dementia = add(Chronic::Dementia, dem_code, p_dem, &mut rng, &mut conditions);
        add(Chronic::Osteo, &codes::OSTEOPOROSIS, interp(age, OSTEO_WOMEN) * if male { 0.2 } else { 1.0 }, &mut rng, &mut conditions);
        add(Chronic::Gerd, &codes::GERD, interp(age, GERD_ALL), &mut rng, &mut conditions);
        add(Chronic::Rhinitis, &codes::RHINITIS, interp(age, RHINITIS_ALL), &mut rng, &mut conditions);

        // Undiagnosed disease, found later (monthly) or after a checkup.
        let latent = |p: f64, rng: &mut ChaCha8Rng| -> Option<i32> {
            if rng.random_bool(p.clamp(0.0, 1.0)) {
                // 18 % a year are diagnosed during the period.
                let m = (0..months).find(|_| rng.random_bool(0.016));
                Some(m.unwrap_or(i32::MAX))
            } else {
                None
            }
        };
        let latent_dm = if dm { None } else { latent(p_dm * 0.35, &mut rng) };
        let latent_ht = if ht { None } else { latent(p_ht * 0.45, &mut rng) };
        let latent_dl = if conditions.iter().any(|c| c.kind == Chronic::Dl) { None } else { latent(p_dl * 0.5, &mut rng) };

        let home_clinic = pick_in(&mut rng, &pidx.clinics);
        let specialist = pick_in(&mut rng, &pidx.clinics);
        let home_pharmacy = pick_in(&mut rng, &pidx.pharmacies);

        // Care certification at the start of the period.
        let care = {
            let p = interp(age, CARE_RATE);
            let f = interp(age, DEMENTIA_ALL);
            let p_dem = (2.0 * p).min(0.97);
            let p_non = ((p - f * p_dem) / (1.0 - f).max(1e-9)).max(0.0);
            let certified = rng.random_bool(if dementia { p_dem } else { p_non }.clamp(0.0, 1.0));
            certified.then(|| {
                let level = care_level(&mut rng, age, dementia, false);
                let cert_day = start - rng.random_range(0..900);
                let valid_to = cert_day + [365, 730, 1095][rng.random_range(0..3)];
                CareState {
                    level,
                    cert_day,
                    valid_to,
                    facility: level >= 5 && rng.random_bool(0.4) || level == 4 && rng.random_bool(0.2),
                    provider: pick_in(&mut rng, &pidx.care),
                }
            })
        };

        let mut person = Person {
            sex,
            pref,
            birth,
            birth_ym,
            dependant: rng.random_bool(0.35),
            episodes,
            marriage_month,
            id1,
            id2,
            id4,
            id5,
            conditions,
            latent_dm,
            latent_ht,
            latent_dl,
            ht_code,
            home_clinic,
            specialist,
            home_pharmacy,
            death_day: None,
            care,
            smoker: rng.random_bool(if male { 0.26 } else { 0.08 }),
            bmi_z: gauss(&mut rng),
            bp_z: gauss(&mut rng),
        };
        // Treatment regimens.
        let pf = self.metformin_factor[pi];
        let mut regimens = Vec::new();
        for c in &person.conditions {
            regimens.push(regimen(&mut rng, c.kind, age, &person, pf));
        }
        for (c, r) in person.conditions.iter_mut().zip(regimens) {
            c.drugs = r;
        }
        // Death during the period.
        for m in 0..months {
            let a = f64::from(person.age_on(self.month(m).first_day()));
            let mut q = death_rate(a, sex);
            if person.has(Chronic::Dementia, 0) {
                q *= 1.3;
            }
            if person.has(Chronic::Ckd, 0) {
                q *= 1.2;
            }
            if person.care.is_some() {
                q *= 1.3;
            }
            if rng.random_bool(annual_to_monthly(q)) {
                let mm = self.month(m);
                person.death_day = Some(mm.first_day() + rng.random_range(0..mm.days() as i32));
                break;
            }
        }
        (person, clear)
    }

    /// Sex (1/2), age at the start of the period and prefecture of person `idx`.
    pub fn demographics(&self, idx: u64) -> (u8, u8, u8) {
        let (p, _) = self.person(idx);
        (p.sex, p.age_on(self.period_start()), p.pref)
    }

    /// The clear identifying text of person `idx` (for tests that prove it never reaches disk).
    pub fn clear_identity(&self, idx: u64) -> ClearIdentity {
        self.person(idx).1
    }

    /// Generates all rows of one chunk.
    pub fn generate_chunk(&self, index: u64) -> Chunk {
        let mut out = Chunk { index, population: vec![0; POPULATION_CELLS], ..Chunk::default() };
        let mut ids = IdCounters::default();
        for p in self.chunk_persons(index) {
            let (person, _) = self.person(p);
            out.persons += 1;
            out.population[population_index(person.pref, person.sex, person.age_on(self.period_start()))] += 1;
            if person.death_day.is_some() {
                out.deaths += 1;
            }
            self.life(p, person, &mut out, &mut ids);
        }
        out.id_counts = IdCounts { receipts: ids.receipt, checkups: ids.checkup, certs: ids.cert, claims: ids.claim };
        out
    }

    /// Generates one person's months.
    fn life(&self, idx: u64, mut person: Person, out: &mut Chunk, ids: &mut IdCounters) {
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
                    let drugs = regimen(&mut rng, kind, agef, &person, self.metformin_factor[usize::from(person.pref) - 1]);
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

            // Outpatient care (not while in hospital most of the month).
            if inpatient_days < 15 && alive_days > 7 {
                self.outpatient_month(&mut person, &mut rng, m, month, agef, &pidx, &mut month_rx);
            }

            // Care: renewal, new certifications, monthly claims.
            self.care_month(&mut person, &mut rng, m, month, agef, &pidx, inpatient_days, out, ids);

            // Checkups.
            if checkup_months.contains(&m) && alive_days > 15 && inpatient_days == 0 {
                self.checkup(&mut person, &mut rng, m, month, age, &pidx, out, ids);
            }

            self.finish_month(&person, &mut rng, m, month, age, month_rx, out, ids);
        }
    }

    fn plan_checkups(&self, person: &Person, rng: &mut ChaCha8Rng) -> Vec<i32> {
        const WEIGHTS: [f64; 12] = [0.03, 0.07, 0.12, 0.12, 0.10, 0.12, 0.14, 0.14, 0.08, 0.04, 0.03, 0.01]; // April..March
        let mut out = Vec::new();
        let first_fy = self.cfg.start.fiscal_year();
        let last_fy = self.month(self.cfg.months as i32 - 1).fiscal_year();
        for fy in first_fy..=last_fy {
            let fy_end = days_from_civil(fy + 1, 3, 31);
            let age = person.age_on(fy_end);
            if !(40..=74).contains(&age) {
                continue;
            }
            let start_m = Month::new(fy, 4).0 - self.cfg.start.0;
            let e = &person.episodes[person.episode_at(start_m.max(0))];
            let p = match e.kind {
                InsurerKind::Kokuho => 0.40,
                InsurerKind::Koki => 0.0,
                _ => 0.70,
            };
            let months: Vec<(usize, f64)> = WEIGHTS.iter().copied().enumerate().collect();
            let k = pick(rng, &months);
            if rng.random_bool(p) {
                let m = start_m + k as i32;
                if (0..self.cfg.months as i32).contains(&m) {
                    out.push(m);
                }
            }
        }
        out
    }

    fn admission(&self, person: &Person, rng: &mut ChaCha8Rng, age: f64, admit: i32, pidx: &crate::world::PrefectureIndex, m: i32) -> Stay {
        let female = person.sex == 2;
        let male = !female;
        let mut reasons: Vec<(usize, f64)> = vec![
            (0, interp(age, &[(0.0, 1.0), (15.0, 0.3), (60.0, 0.6), (80.0, 2.0), (100.0, 3.0)])),
            (1, interp(age, &[(0.0, 0.0), (50.0, 0.1), (70.0, 0.8), (90.0, 2.0)])),
            (2, interp(age, &[(0.0, 0.0), (40.0, 0.1), (60.0, 0.6), (80.0, 1.2)])),
            (3, interp(age, &[(0.0, 0.0), (60.0, 0.1), (80.0, 1.0), (90.0, 1.8)]) * if female { 2.5 } else { 1.0 }),
            (4, interp(age, &[(0.0, 0.0), (40.0, 0.1), (60.0, 0.5), (75.0, 0.7), (90.0, 0.4)]) * if male { 2.0 } else { 1.0 }),
            (5, interp(age, &[(0.0, 0.0), (40.0, 0.15), (60.0, 0.5), (75.0, 0.6), (90.0, 0.4)])),
            (6, interp(age, &[(0.0, 0.0), (50.0, 0.1), (70.0, 0.6), (90.0, 0.4)]) * if male { 2.0 } else { 1.0 }),
            (7, interp(age, &[(0.0, 0.2), (10.0, 1.0), (30.0, 0.6), (60.0, 0.2), (90.0, 0.1)])),
            (9, interp(age, &[(0.0, 1.5), (10.0, 0.5), (20.0, 0.2), (100.0, 0.2)])),
        ];
        if person.has(Chronic::Dm2, m) {
            reasons.push((8, 0.5));
        }
        if person.has(Chronic::Ckd, m) {
            reasons.push((10, 0.6));
        }
        let r = pick(rng, &reasons);
        let (reason, group, los, surgery): (&Disease, &DpcGroup, f64, Option<(&Procedure, f64)>) = match r {
            0 => (&codes::PNEUMONIA, &codes::DPC_PNEUMONIA, 16.0, None),
            1 => (&codes::HEART_FAILURE, &codes::DPC_HEART_FAILURE, 18.0, None),
            2 => (&codes::STROKE, &codes::DPC_STROKE, 20.0, None),
            3 => (&codes::HIP_FRACTURE, &codes::DPC_HIP_FRACTURE, 25.0, Some((&codes::HIP_ARTHROPLASTY, 0.8))),
            4 => (&codes::STOMACH_CANCER, &codes::DPC_STOMACH_CANCER, 9.0, Some((&codes::ESD, 0.5))),
            5 => (&codes::COLON_CANCER, &codes::DPC_COLON_CANCER, 12.0, Some((&codes::COLECTOMY, 0.6))),
            6 => (&codes::LUNG_CANCER, &codes::DPC_LUNG_CANCER, 12.0, None),
            7 => (&codes::APPENDICITIS, &codes::DPC_APPENDICITIS, 5.0, Some((&codes::APPENDECTOMY, 0.9))),
            8 => (&codes::DM2, &codes::DPC_DIABETES, 12.0, None),
            10 => (&codes::CKD, &codes::DPC_CKD, 12.0, None),
            _ => (&codes::GASTROENTERITIS, &codes::DPC_PNEUMONIA, 4.0, None),
        };
        let dpc = !pidx.dpc_hospitals.is_empty() && rng.random_bool(0.55);
        let inst = if dpc { pick_in(rng, &pidx.dpc_hospitals) } else { pick_in(rng, &pidx.hospitals) };
        let mean = if dpc { los } else { los * 1.6 };
        let days = (mean * (0.5 * gauss(rng)).exp()).round().clamp(1.0, 180.0) as i32;
        Stay {
            inst,
            dpc,
            group,
            reason,
            admit,
            discharge: admit + days - 1,
            emergency: !matches!(r, 4 | 5 | 8),
            surgery: surgery.and_then(|(p, prob)| rng.random_bool(prob).then_some(p)),
            dies: false,
        }
    }

    fn terminal_admission(&self, rng: &mut ChaCha8Rng, death: i32, first: i32, pidx: &crate::world::PrefectureIndex) -> Stay {
        let r = pick(rng, &[(0, 0.35), (1, 0.25), (2, 0.15), (3, 0.25)]);
        let (reason, group) = match r {
            0 => (&codes::PNEUMONIA, &codes::DPC_PNEUMONIA),
            1 => (&codes::HEART_FAILURE, &codes::DPC_HEART_FAILURE),
            2 => (&codes::STROKE, &codes::DPC_STROKE),
            _ => match rng.random_range(0..3) {
                0 => (&codes::STOMACH_CANCER, &codes::DPC_STOMACH_CANCER),
                1 => (&codes::COLON_CANCER, &codes::DPC_COLON_CANCER),
                _ => (&codes::LUNG_CANCER, &codes::DPC_LUNG_CANCER),
            },
        };
        let dpc = !pidx.dpc_hospitals.is_empty() && rng.random_bool(0.55);
        let inst = if dpc { pick_in(rng, &pidx.dpc_hospitals) } else { pick_in(rng, &pidx.hospitals) };
        let admit = (death - rng.random_range(0..20)).max(first);
        Stay { inst, dpc, group, reason, admit, discharge: death, emergency: true, surgery: None, dies: true }
    }

    fn inpatient_month(&self, person: &Person, s: &Stay, first: i32, last: i32, m: i32, rx: &mut MonthReceipts) -> i32 {
        let from = s.admit.max(first);
        let to = s.discharge.min(last);
        let days = to - from + 1;
        let kind = if s.dpc { ReceiptKind::Dpc } else { ReceiptKind::Inpatient };
        let b = rx.get(s.inst, kind);
        b.admission = Some(s.admit);
        b.days = days.clamp(0, 31) as u8;
        let discharged = s.discharge <= last;
        let outcome = if discharged { if s.dies { 3 } else { 2 } } else { 1 };
        b.dx.push(Dx { disease: s.reason, start: s.admit, outcome, modifiers: "", main: true, text: None });
        for c in person.conditions.iter().filter(|c| c.from_month <= m).take(4) {
            b.dx.push(Dx { disease: c.disease, start: c.onset_day, outcome: 1, modifiers: "", main: false, text: None });
        }
        let ward = if s.dpc || s.reason.code != codes::STROKE.code { &codes::ACUTE_WARD_DAY } else { &codes::CHRONIC_WARD_DAY };
        b.si.push((ward, days));
        if s.admit >= first {
            b.si.push((if matches!(s.reason.code, "9900010" | "9900011" | "9900016") { &codes::CHEST_XRAY } else { &codes::CT_SCAN }, 1));
            if let Some(p) = s.surgery {
                b.si.push((p, 1));
            }
        }
        b.si.push((&codes::DRIP_INFUSION, days.min(7)));
        if s.reason.code == codes::PNEUMONIA.code {
            b.iy.push((&codes::CEFTRIAXONE, 2.0, days.min(7)));
            b.si.push((&codes::OXYGEN, days.min(5)));
        }
        if s.reason.code == codes::HIP_FRACTURE.code || s.reason.code == codes::STROKE.code {
            b.si.push((&codes::REHAB, days));
        }
        for c in person.conditions.iter().filter(|c| c.from_month <= m) {
            for d in &c.drugs {
                b.iy.push((d, d.daily_units, days));
            }
        }
        if s.dpc {
            b.dpc = Some(DpcInfo {
                group: s.group,
                admit: s.admit,
                discharge: discharged.then_some(s.discharge),
                dies: s.dies,
                main: s.reason,
                emergency: s.emergency,
            });
        }
        days
    }

    #[allow(clippy::too_many_arguments)]
    fn outpatient_month(
        &self,
        person: &mut Person,
        rng: &mut ChaCha8Rng,
        m: i32,
        month: Month,
        age: f64,
        pidx: &crate::world::PrefectureIndex,
        rx: &mut MonthReceipts,
    ) {
        let first = month.first_day();
        let day = |rng: &mut ChaCha8Rng| first + rng.random_range(0..month.days() as i32);
        let cal = month.month();
        let winter = matches!(cal, 12 | 1 | 2);
        // Dialysis three times a week at a hospital.
        if person.has(Chronic::Esrd, m) {
            let inst = if pidx.hospitals.is_empty() {
                person.home_clinic
            } else {
                pidx.hospitals.start + (person.home_clinic % pidx.hospitals.len().max(1) as u32)
            };
            let b = rx.get(inst, ReceiptKind::Outpatient);
            b.days = 13;
            for (i, c) in person
                .conditions
                .iter()
                .filter(|c| matches!(c.kind, Chronic::Esrd | Chronic::Ckd | Chronic::Dm2 | Chronic::Ht) && c.from_month <= m)
                .enumerate()
            {
                b.dx.push(Dx { disease: c.disease, start: c.onset_day, outcome: 1, modifiers: "", main: i == 0, text: None });
            }
            b.si.push((&codes::REVISIT, 13));
            b.si.push((&codes::DIALYSIS, 13));
        }
        // Chronic follow-up at the home clinic.
        let chronic: Vec<usize> = person
            .conditions
            .iter()
            .enumerate()
            .filter(|(_, c)| c.from_month <= m && !matches!(c.kind, Chronic::Esrd | Chronic::Osteo | Chronic::Rhinitis))
            .map(|(i, _)| i)
            .collect();
        if !chronic.is_empty() && rng.random_bool(0.88) {
            let inst = person.home_clinic;
            let in_house = self.world.institution(inst).in_house;
            let new = chronic.iter().any(|&i| person.conditions[i].from_month == m);
            let b = rx.get(inst, ReceiptKind::Outpatient);
            b.days = b.days.max(1);
            for (k, &i) in chronic.iter().enumerate() {
                let c = &person.conditions[i];
                b.dx.push(Dx { disease: c.disease, start: c.onset_day, outcome: 1, modifiers: "", main: k == 0, text: None });
            }
            b.si.push((if new { &codes::FIRST_VISIT } else { &codes::REVISIT }, 1));
            b.si.push((&codes::OUTPATIENT_MGMT, 1));
            let has = |k: Chronic| chronic.iter().any(|&i| person.conditions[i].kind == k);
            if has(Chronic::Dm2) || has(Chronic::Ht) || has(Chronic::Dl) {
                b.si.push((&codes::CHRONIC_MGMT, 1));
            }
            let mut tested = false;
            if (has(Chronic::Dm2) || has(Chronic::Dm1)) && rng.random_bool(0.6) {
                b.si.push((&codes::HBA1C_TEST, 1));
                tested = true;
            } else if !has(Chronic::Dm2) && age >= 40.0 && rng.random_bool(0.05) {
                // Rule-out: a suspected diagnosis (修飾語 8002) justifies the test.
                b.dx.push(Dx { disease: &codes::DM2, start: first, outcome: 1, modifiers: codes::MOD_SUSPECTED, main: false, text: None });
                b.si.push((&codes::HBA1C_TEST, 1));
                tested = true;
            }
            if has(Chronic::Dl) && rng.random_bool(0.3) {
                b.si.push((&codes::LDL_TEST, 1));
                tested = true;
            }
            if tested {
                b.si.push((&codes::BLOOD_DRAW, 1));
                b.si.push((&codes::BIOCHEM_JUDGEMENT, 1));
            }
            let mut drugs = Vec::new();
            for &i in &chronic {
                for d in &person.conditions[i].drugs {
                    drugs.push((*d, d.daily_units, 28 + 2 * rng.random_range(0..2)));
                }
            }
            if !drugs.is_empty() {
                prescribe(rx, inst, in_house, drugs, person.home_pharmacy, rng, pidx);
            }
        }
        // Dementia and CKD are often followed at a hospital's outpatient department as well.
        let hospital_followup: Vec<usize> = person
            .conditions
            .iter()
            .enumerate()
            .filter(|(_, c)| c.from_month <= m && matches!(c.kind, Chronic::Dementia | Chronic::Ckd))
            .map(|(i, _)| i)
            .collect();
        if !hospital_followup.is_empty() && !pidx.hospitals.is_empty() && rng.random_bool(0.5) {
            let inst = pidx.hospitals.start + person.specialist % pidx.hospitals.len() as u32;
            let b = rx.get(inst, ReceiptKind::Outpatient);
            b.days = b.days.max(1);
            for (k, &i) in hospital_followup.iter().enumerate() {
                let c = &person.conditions[i];
                b.dx.push(Dx { disease: c.disease, start: c.onset_day, outcome: 1, modifiers: "", main: k == 0, text: None });
            }
            b.si.push((&codes::REVISIT, 1));
            if rng.random_bool(0.2) {
                b.si.push((&codes::CT_SCAN, 1));
            }
        }
        // Orthopaedics, ophthalmology and other follow-ups of the elderly.
        let specialist_p = interp(age, &[(0.0, 0.03), (40.0, 0.07), (65.0, 0.22), (75.0, 0.36), (100.0, 0.30)]);
        if rng.random_bool(specialist_p) {
            let inst = person.specialist;
            let in_house = self.world.institution(inst).in_house;
            let osteo = person.conditions.iter().find(|c| c.kind == Chronic::Osteo && c.from_month <= m).cloned();
            let b = rx.get(inst, ReceiptKind::Outpatient);
            b.days = b.days.max(1);
            let (disease, start) = match &osteo {
                Some(c) => (c.disease, c.onset_day),
                None => (&codes::BACK_PAIN, first - 200),
            };
            b.dx.push(Dx { disease, start, outcome: 1, modifiers: "", main: b.dx.is_empty(), text: None });
            b.si.push((&codes::REVISIT, 1));
            if rng.random_bool(0.3) {
                b.si.push((&codes::REHAB, rng.random_range(1..5)));
            }
            let mut drugs = vec![(&codes::LOXOPROFEN_TAPE, 1.0, 28)];
            if let Some(c) = &osteo {
                drugs.extend(c.drugs.iter().map(|d| (*d, d.daily_units, 28)));
            }
            prescribe(rx, inst, in_house, drugs, person.home_pharmacy, rng, pidx);
        }
        // Allergic rhinitis in spring.
        if person.has(Chronic::Rhinitis, m) && matches!(cal, 2..=5) && rng.random_bool(0.6) {
            let inst = person.specialist;
            let in_house = self.world.institution(inst).in_house;
            let b = rx.get(inst, ReceiptKind::Outpatient);
            b.days = b.days.max(1);
            b.dx.push(Dx { disease: &codes::RHINITIS, start: first, outcome: 1, modifiers: "", main: b.dx.is_empty(), text: None });
            b.si.push((&codes::REVISIT, 1));
            prescribe(rx, inst, in_house, vec![(&codes::FEXOFENADINE, 2.0, 28)], person.home_pharmacy, rng, pidx);
        }
        // Influenza.
        let flu = FLU_BY_MONTH[cal as usize - 1]
            * if age < 15.0 {
                2.0
            } else if age >= 65.0 {
                0.7
            } else {
                1.0
            };
        let had_flu = rng.random_bool(flu);
        // Other acute illness.
        let acute_p =
            interp(age, &[(0.0, 0.62), (5.0, 0.40), (15.0, 0.17), (25.0, 0.18), (45.0, 0.20), (65.0, 0.23), (75.0, 0.25), (100.0, 0.25)])
                * if winter {
                    1.25
                } else if matches!(cal, 6..=9) {
                    0.85
                } else {
                    1.0
                };
        let acute = if had_flu {
            Some(AcuteKind::Influenza)
        } else if rng.random_bool(acute_p.min(0.95)) {
            let urti = 4.0 * if winter { 1.4 } else { 0.75 };
            Some(pick(
                rng,
                &[
                    (AcuteKind::Urti, urti),
                    (AcuteKind::Gastro, if winter { 1.3 } else { 0.9 }),
                    (
                        AcuteKind::BackPain,
                        if age < 15.0 {
                            0.0
                        } else if age >= 40.0 {
                            1.8
                        } else {
                            1.2
                        },
                    ),
                    (AcuteKind::Eczema, if age < 10.0 { 1.5 } else { 0.8 }),
                    (AcuteKind::Bronchitis, if winter { 0.8 } else { 0.5 }),
                ],
            ))
        } else {
            None
        };
        if let Some(kind) = acute {
            let inst = if rng.random_bool(0.4) { person.home_clinic } else { pick_in(rng, &pidx.clinics) };
            let in_house = self.world.institution(inst).in_house;
            let d = day(rng);
            let known = rx.contains(inst) || inst == person.home_clinic && !person.conditions.is_empty();
            let b = rx.get(inst, ReceiptKind::Outpatient);
            b.days = b.days.saturating_add(1 + u8::from(rng.random_bool(0.2)));
            let outcome = pick(rng, &[(2u8, 0.6), (1, 0.35), (4, 0.05)]);
            let (disease, drugs): (&Disease, Vec<(&'static Drug, f64, i32)>) = match kind {
                AcuteKind::Influenza => {
                    b.si.push((&codes::FLU_ANTIGEN, 1));
                    let drug = if rng.random_bool(0.25) { (&codes::BALOXAVIR, 2.0, 1) } else { (&codes::OSELTAMIVIR, 2.0, 5) };
                    let mut v = vec![drug];
                    if rng.random_bool(0.5) {
                        v.push((&codes::ACETAMINOPHEN, 3.0, 5));
                    }
                    (&codes::INFLUENZA, v)
                }
                AcuteKind::Urti => {
                    if winter && rng.random_bool(0.12) {
                        // Tested for influenza and negative: a suspected diagnosis stays on the receipt.
                        b.dx.push(Dx {
                            disease: &codes::INFLUENZA,
                            start: d,
                            outcome: 4,
                            modifiers: codes::MOD_SUSPECTED,
                            main: false,
                            text: None,
                        });
                        b.si.push((&codes::FLU_ANTIGEN, 1));
                    }
                    let mut v = vec![(&codes::CARBOCISTEINE, 3.0, 5)];
                    if rng.random_bool(0.5) {
                        v.push((&codes::ACETAMINOPHEN, 3.0, 5));
                    }
                    if rng.random_bool(0.15) {
                        v.push((&codes::CLARITHROMYCIN, 2.0, 5));
                    }
                    (&codes::URTI, v)
                }
                AcuteKind::Gastro => (&codes::GASTROENTERITIS, vec![(&codes::PROBIOTIC, 3.0, 5)]),
                AcuteKind::BackPain => (&codes::BACK_PAIN, vec![(&codes::LOXOPROFEN, 3.0, 14), (&codes::REBAMIPIDE, 3.0, 14)]),
                AcuteKind::Eczema => (&codes::ECZEMA, vec![(&codes::HEPARINOID, 5.0, 1)]),
                AcuteKind::Bronchitis => {
                    if rng.random_bool(0.3) {
                        b.si.push((&codes::CHEST_XRAY, 1));
                    }
                    (&codes::BRONCHITIS, vec![(&codes::CLARITHROMYCIN, 2.0, 5), (&codes::CARBOCISTEINE, 3.0, 5)])
                }
            };
            // About 1 % of diagnoses are written as uncoded free text (傷病名コード 0000999).
            if rng.random_bool(0.01) {
                b.dx.push(Dx {
                    disease: &codes::UNCODED,
                    start: d,
                    outcome,
                    modifiers: "",
                    main: b.dx.is_empty(),
                    text: Some("かぜ症候群"),
                });
            } else {
                b.dx.push(Dx { disease, start: d, outcome, modifiers: "", main: b.dx.is_empty(), text: None });
            }
            b.si.push((if known { &codes::REVISIT } else { &codes::FIRST_VISIT }, 1));
            prescribe(rx, inst, in_house, drugs, person.home_pharmacy, rng, pidx);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn care_month(
        &self,
        person: &mut Person,
        rng: &mut ChaCha8Rng,
        m: i32,
        month: Month,
        age: f64,
        pidx: &crate::world::PrefectureIndex,
        inpatient_days: i32,
        out: &mut Chunk,
        ids: &mut IdCounters,
    ) {
        let first = month.first_day();
        let dementia = person.has(Chronic::Dementia, m);
        let state = self.identity(person, m, 0, None);
        let alive_end = person.death_day.is_none_or(|d| d >= first + 14);
        // Renewal of an expiring certification, or a first certification.
        let mut new_cert = None;
        match &person.care {
            Some(c) if c.valid_to < first => {
                let level = if rng.random_bool(0.3) { (c.level + 1).min(6) } else { c.level };
                new_cert = Some(level);
            }
            None if age >= 65.0 && alive_end => {
                let annual = interp(age, &[(65.0, 0.004), (75.0, 0.015), (80.0, 0.03), (85.0, 0.06), (90.0, 0.10), (100.0, 0.12)])
                    * if dementia { 2.0 } else { 1.0 };
                if rng.random_bool(annual_to_monthly(annual)) {
                    new_cert = Some(care_level(rng, age, dementia, true));
                }
            }
            _ => {}
        }
        if let Some(level) = new_cert {
            let cert_day = first + rng.random_range(0..month.days() as i32);
            let valid_to = cert_day + [365, 730, 1095][rng.random_range(0..3)];
            let provider = person.care.as_ref().map_or_else(|| pick_in(rng, &pidx.care), |c| c.provider);
            let facility = level >= 5 && rng.random_bool(0.4) || level == 4 && rng.random_bool(0.2);
            person.care = Some(CareState { level, cert_day, valid_to, facility, provider });
            ids.cert += 1;
            out.care_certs.push(CareCert {
                cert_id: ids.cert,
                ids: state,
                sex: person.sex,
                birth_month: person.birth_ym,
                age: age as u8,
                prefecture: person.pref,
                cert_date: cert_day,
                care_level: CARE_LEVELS[level],
                valid_from: cert_day,
                valid_to,
            });
        } else if m == 0
            && let Some(c) = &person.care
        {
            // The certification in force at the start of the period.
            ids.cert += 1;
            out.care_certs.push(CareCert {
                cert_id: ids.cert,
                ids: state,
                sex: person.sex,
                birth_month: person.birth_ym,
                age: person.age_on(c.cert_day),
                prefecture: person.pref,
                cert_date: c.cert_day,
                care_level: CARE_LEVELS[c.level],
                valid_from: c.cert_day,
                valid_to: c.valid_to,
            });
        }
        let Some(c) = person.care.clone() else { return };
        if c.cert_day > first + month.days() as i32 - 1 || inpatient_days > 20 || !alive_end {
            return;
        }
        let use_p = if c.level < 2 { 0.6 } else { 0.87 };
        if !rng.random_bool(use_p) {
            return;
        }
        let level_factor = [0.35, 0.5, 0.7, 0.85, 1.0, 1.15, 1.3][c.level];
        let mut services: Vec<&'static codes::CareService> = Vec::new();
        if c.facility {
            services.push(if rng.random_bool(0.6) { &codes::NURSING_HOME } else { &codes::HEALTH_FACILITY });
        } else if dementia && c.level >= 3 && rng.random_bool(0.1) {
            services.push(&codes::GROUP_HOME);
        } else if c.level < 2 {
            services.push(&codes::PREVENTIVE_PLANNING);
            services.push(if rng.random_bool(0.6) { &codes::DAY_CARE } else { &codes::COMMUNITY_DAY_CARE });
            if rng.random_bool(0.3) {
                services.push(&codes::EQUIPMENT);
            }
        } else {
            services.push(&codes::CARE_PLANNING);
            let options = [
                (&codes::DAY_CARE, 0.5),
                (&codes::HOME_HELP, 0.35),
                (&codes::EQUIPMENT, 0.5),
                (&codes::DAY_REHAB, 0.2),
                (&codes::HOME_NURSING, 0.12),
                (&codes::SHORT_STAY, 0.08),
                (&codes::COMMUNITY_DAY_CARE, 0.15),
            ];
            for (s, p) in options {
                if rng.random_bool(p) {
                    services.push(s);
                }
            }
        }
        ids.claim += 1;
        let claim_id = ids.claim;
        for (seq, s) in services.iter().enumerate() {
            let units =
                (f64::from(s.monthly_units) * if matches!(s.code, "43" | "46") { 1.0 } else { level_factor } * (0.2 * gauss(rng)).exp())
                    .round() as i32;
            let per = (s.monthly_units / 8).max(1);
            let count = if matches!(s.code, "51" | "52" | "32") { month.days() as i16 } else { (units / per).clamp(1, 31) as i16 };
            let item = format!("{:04}", 1000 + c.level * 100 + seq * 10 + rng.random_range(0..10));
            let mut service_item = [b'0'; 4];
            service_item.copy_from_slice(&item.as_bytes()[..4]);
            out.care_claims.push(CareClaimLine {
                claim_id,
                seq: seq as u16 + 1,
                service_month: month.yyyymm(),
                provider: c.provider,
                ids: state,
                sex: person.sex,
                age: age as u8,
                prefecture: person.pref,
                care_level: CARE_LEVELS[c.level],
                service_type: s.code,
                service_item,
                units,
                count,
            });
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn checkup(
        &self,
        person: &mut Person,
        rng: &mut ChaCha8Rng,
        m: i32,
        month: Month,
        age: u8,
        pidx: &crate::world::PrefectureIndex,
        out: &mut Chunk,
        ids: &mut IdCounters,
    ) {
        let date = month.first_day() + rng.random_range(0..month.days() as i32);
        let agef = f64::from(age);
        let male = person.sex == 1;
        let inst = pick_in(rng, &pidx.clinics);
        let method = self.world.institution(inst).lab_method;
        let dm = person.has(Chronic::Dm2, m) || person.has(Chronic::Dm1, m);
        let dm_latent = !dm && person.latent_dm.is_some();
        let ht = person.has(Chronic::Ht, m);
        let ht_latent = !ht && person.latent_ht.is_some();
        let dl = person.has(Chronic::Dl, m);
        let dl_latent = !dl && person.latent_dl.is_some();
        let ckd = person.has(Chronic::Ckd, m);
        let sglt2 = person.conditions.iter().any(|c| c.from_month <= m && c.drugs.iter().any(|d| d.code == codes::EMPAGLIFLOZIN.code));
        let noise = |rng: &mut ChaCha8Rng, sd: f64| gauss(rng) * sd;

        let height = if male { 171.0 - 0.12 * (agef - 40.0) + noise(rng, 6.0) } else { 158.0 - 0.12 * (agef - 40.0) + noise(rng, 5.5) };
        let bmi = (if male { 24.0 } else { 22.3 }
            + person.bmi_z * 3.2
            + noise(rng, 0.4)
            + if dm || dm_latent { 1.8 } else { 0.0 }
            + if ht || ht_latent { 1.0 } else { 0.0 }
            + if dl || dl_latent { 0.6 } else { 0.0 })
        .clamp(14.0, 50.0);
        let weight = bmi * (height / 100.0).powi(2);
        let waist = (if male { 85.0 + (bmi - 24.0) * 2.5 } else { 82.0 + (bmi - 22.3) * 2.5 } + noise(rng, 4.0)).clamp(55.0, 150.0);
        let mut sbp =
            112.0 + 0.55 * (agef - 40.0) + if male { 4.0 } else { 0.0 } + 0.9 * (bmi - 23.0) + person.bp_z * 11.0 + noise(rng, 6.0);
        if ht_latent {
            sbp += 22.0;
        } else if ht {
            sbp += 12.0;
        }
        let sbp2 = sbp + noise(rng, 4.0) - 2.0;
        let dbp = 35.0 + 0.33 * sbp + noise(rng, 7.0);
        let dbp2 = dbp + noise(rng, 3.0) - 1.0;
        let hba1c = if person.has(Chronic::Dm1, m) {
            7.8 + noise(rng, 1.0)
        } else if dm {
            (7.0 + noise(rng, 0.9)).max(5.8)
        } else if dm_latent {
            6.5 + noise(rng, 0.7).abs()
        } else {
            5.45 + 0.006 * (agef - 40.0) + 0.03 * (bmi - 23.0) + noise(rng, 0.28)
        }
        .clamp(4.0, 14.0);
        let fbg = (18.0 * hba1c - 7.0 + noise(rng, 8.0)).clamp(60.0, 400.0);
        let tg = (if male { 105.0 } else { 80.0 }
            * if dl || dl_latent { 1.3 } else { 1.0 }
            * if dm { 1.2 } else { 1.0 }
            * (0.45 * gauss(rng)).exp())
        .clamp(20.0, 2000.0);
        let hdl = (if male { 55.0 } else { 67.0 } - (bmi - 23.0) + noise(rng, 13.0)).clamp(15.0, 150.0);
        let ldl = if dl_latent {
            165.0 + noise(rng, 25.0)
        } else if dl {
            110.0 + noise(rng, 28.0)
        } else {
            120.0 + 0.3 * (agef - 40.0) + if !male && agef >= 50.0 { 10.0 } else { 0.0 } + noise(rng, 28.0)
        }
        .clamp(20.0, 400.0);
        let ast = (21.0 * (0.3 * gauss(rng)).exp()).clamp(5.0, 500.0);
        let alt = ((if male { 22.0 } else { 15.0 } + 1.5 * (bmi - 23.0)).max(5.0) * (0.4 * gauss(rng)).exp()).clamp(3.0, 500.0);
        let ggt = (if male { 30.0 } else { 18.0 } * (0.55 * gauss(rng)).exp()).clamp(5.0, 1000.0);
        let urine_glucose = if sglt2 {
            4 + u8::from(rng.random_bool(0.5))
        } else if hba1c > 7.5 && rng.random_bool(0.4) {
            3
        } else {
            1
        };
        let urine_protein = if ckd && rng.random_bool(0.45) {
            3 + u8::from(rng.random_bool(0.3))
        } else if rng.random_bool(0.06) {
            2
        } else {
            1
        };
        let yes_no = |b: bool, rng: &mut ChaCha8Rng| -> u8 { if b ^ rng.random_bool(0.03) { 1 } else { 2 } };
        let med_bp = yes_no(person.treated(Chronic::Ht, m), rng);
        let med_glucose = yes_no(person.treated(Chronic::Dm2, m) || person.has(Chronic::Dm1, m), rng);
        let med_lipid = yes_no(person.treated(Chronic::Dl, m), rng);
        // メタボ判定 (Japanese criteria): waist plus two or more risks.
        let big_waist = waist >= if male { 85.0 } else { 90.0 };
        let risks = u8::from(tg >= 150.0 || hdl < 40.0 || med_lipid == 1)
            + u8::from(sbp >= 130.0 || dbp >= 85.0 || med_bp == 1)
            + u8::from(fbg >= 110.0 || hba1c >= 6.0 || med_glucose == 1);
        let metabo = match (big_waist, risks) {
            (true, 2..) => 1,
            (true, 1) => 2,
            _ => 3,
        };
        let on_meds = med_bp == 1 || med_glucose == 1 || med_lipid == 1;
        let guidance = if on_meds || metabo == 3 {
            3
        } else if metabo == 1 && agef < 65.0 {
            1
        } else {
            2
        };
        // A very high HbA1c leads to a diagnosis within three months.
        if dm_latent && hba1c >= 6.5 && rng.random_bool(0.35) {
            let when = m + rng.random_range(1..4);
            person.latent_dm = Some(person.latent_dm.unwrap_or(i32::MAX).min(when));
        }

        ids.checkup += 1;
        let checkup_id = ids.checkup;
        let episode = &person.episodes[person.episode_at(m)];
        out.checkups.push(Checkup {
            checkup_id,
            ids: self.identity(person, m, 0, None),
            date,
            fiscal_year: month.fiscal_year(),
            sex: person.sex,
            age,
            prefecture: person.pref,
            insurer: episode.insurer,
            institution: inst,
        });
        let mut item = |it: &'static LabItem, value: Option<f64>, code: Option<u8>| {
            out.checkup_items.push(CheckupItem { checkup_id, item: it, value, code })
        };
        let r1 = |x: f64| (x * 10.0).round() / 10.0;
        item(&codes::HEIGHT, Some(r1(height)), None);
        item(&codes::WEIGHT, Some(r1(weight)), None);
        item(&codes::BMI, Some(r1(bmi)), None);
        item(&codes::WAIST, Some(r1(waist)), None);
        item(&codes::SBP1, Some(sbp.round()), None);
        item(&codes::SBP2, Some(sbp2.round()), None);
        item(&codes::DBP1, Some(dbp.round()), None);
        item(&codes::DBP2, Some(dbp2.round()), None);
        if rng.random_bool(0.6) {
            let it = [&codes::FBG_ELECTRODE, &codes::FBG_VISIBLE, &codes::FBG_UV][usize::from(method)];
            item(it, Some(fbg.round()), None);
        }
        if rng.random_bool(0.92) {
            let it = [&codes::HBA1C_IMMUNO, &codes::HBA1C_HPLC, &codes::HBA1C_ENZYME][usize::from(method)];
            item(it, Some(r1(hba1c)), None);
        }
        item(&codes::TG, Some(tg.round()), None);
        item(&codes::HDL, Some(hdl.round()), None);
        item(&codes::LDL, Some(ldl.round()), None);
        item(&codes::AST, Some(ast.round()), None);
        item(&codes::ALT, Some(alt.round()), None);
        item(&codes::GGT, Some(ggt.round()), None);
        item(&codes::URINE_GLUCOSE, None, Some(urine_glucose));
        item(&codes::URINE_PROTEIN, None, Some(urine_protein));
        item(&codes::MED_BP, None, Some(med_bp));
        item(&codes::MED_GLUCOSE, None, Some(med_glucose));
        item(&codes::MED_LIPID, None, Some(med_lipid));
        item(&codes::SMOKING, None, Some(if person.smoker { 1 } else { 2 }));
        item(&codes::METABO, None, Some(metabo));
        item(&codes::GUIDANCE_LEVEL, None, Some(guidance));
    }

    /// The hashed IDs of a person in month `m`, as written by an institution with a name style.
    fn identity(&self, person: &Person, m: i32, style: usize, kind: Option<(ReceiptKind, &mut ChaCha8Rng)>) -> PersonIds {
        let e = person.episode_at(m);
        let v = usize::from(person.marriage_month.is_some_and(|mm| m >= mm));
        let noise = &self.cfg.noise;
        let id5 = match kind {
            None => Id5::Hash(person.id5),
            Some((k, rng)) => {
                let p = match k {
                    ReceiptKind::Inpatient => noise.id5_missing_inpatient,
                    ReceiptKind::Outpatient => noise.id5_missing_outpatient,
                    ReceiptKind::Dpc => noise.id5_missing_dpc,
                    ReceiptKind::Pharmacy => noise.id5_missing_pharmacy,
                };
                if !rng.random_bool(p) {
                    Id5::Hash(person.id5)
                } else if rng.random_bool(noise.id5_nine_share) {
                    Id5::Nine
                } else {
                    Id5::Null
                }
            }
        };
        PersonIds { id1: person.id1[e], id2: person.id2[v][style], id4: person.id4[v], id5 }
    }

    #[allow(clippy::too_many_arguments)]
    fn finish_month(
        &self,
        person: &Person,
        rng: &mut ChaCha8Rng,
        m: i32,
        month: Month,
        age: u8,
        rx: MonthReceipts,
        out: &mut Chunk,
        ids: &mut IdCounters,
    ) {
        let e = &person.episodes[person.episode_at(m)];
        let koki = e.kind == InsurerKind::Koki;
        let benefit_ratio = if age < 6 {
            80
        } else if age < 70 {
            70
        } else if age < 75 {
            80
        } else {
            90
        };
        for b in rx.list {
            if b.dx.is_empty() && b.iy.is_empty() && b.si.is_empty() {
                continue;
            }
            ids.receipt += 1;
            let receipt_id = ids.receipt;
            let style = usize::from((b.inst as f64 * 0.618_033_988_7).fract() < self.cfg.noise.name_without_space);
            let person_ids = self.identity(person, m, style, Some((b.kind, rng)));
            let inpatient = b.kind.is_inpatient();
            let class = if age < 6 {
                3
            } else if age >= 70 || koki {
                7
            } else if age < 20 || person.dependant {
                5
            } else {
                1
            };
            let d4 = if inpatient { class } else { (class + 1) % 10 };
            let receipt_type = [if b.kind == ReceiptKind::Pharmacy { b'4' } else { b'1' }, if koki { b'3' } else { b'1' }, b'1', b'0' + d4];
            let mut total = 0i32;
            for (seq, dx) in b.dx.iter().enumerate() {
                out.diagnoses.push(Diagnosis {
                    receipt_id,
                    seq: seq as u16 + 1,
                    disease: dx.disease,
                    start_date: dx.start,
                    outcome: dx.outcome,
                    modifiers: dx.modifiers,
                    main: dx.main,
                    name_text: dx.text,
                });
            }
            for (seq, (p, count)) in b.si.iter().enumerate() {
                total += p.points * count;
                out.procedures.push(ProcedureLine { receipt_id, seq: seq as u16 + 1, procedure: p, count: *count });
            }
            let mut drug_points = 0;
            for (seq, (d, qty, days)) in b.iy.iter().enumerate() {
                let points = ((d.price_yen * qty / 10.0).round() as i32).max(1);
                drug_points += points * days;
                out.drugs.push(DrugLine { receipt_id, seq: seq as u16 + 1, drug: d, quantity: *qty, count: *days, points });
            }
            total += drug_points;
            if let Some(dpc) = &b.dpc {
                let per_diem = 2600 + (rng.random_range(0..800));
                total = total.max(per_diem * i32::from(b.days));
                out.dpc.push(DpcRecord {
                    receipt_id,
                    group: dpc.group,
                    admission_date: dpc.admit,
                    discharge_date: dpc.discharge,
                    outcome: match dpc.discharge {
                        None => 0,
                        Some(_) if dpc.dies => 6,
                        Some(_) => pick(rng, &[(2u8, 0.8), (1, 0.15), (4, 0.05)]),
                    },
                    main_disease: dpc.main,
                    emergency: dpc.emergency,
                });
            }
            if b.kind == ReceiptKind::Pharmacy {
                let dispensing = 45 + 24 * b.iy.len().min(3) as i32 + 45;
                total += dispensing;
                out.pharmacy.push(PharmacyRecord {
                    receipt_id,
                    prescriber: b.prescriber.unwrap_or(b.inst),
                    prescriptions: b.prescriptions.max(1),
                    dispensing_points: dispensing,
                    drug_points,
                });
            }
            out.receipts.push(Receipt {
                receipt_id,
                kind: b.kind,
                receipt_type,
                service_month: month.yyyymm(),
                institution: b.inst,
                prefecture: person.pref,
                sex: person.sex,
                birth_month: person.birth_ym,
                age,
                insurer: e.insurer,
                benefit_ratio,
                admission_date: b.admission,
                actual_days: b.days.max(1),
                total_points: total,
                ids: person_ids,
            });
        }
    }
}

/// A care level index (0 = 要支援1 … 6 = 要介護5), heavier with age and dementia.
fn care_level(rng: &mut ChaCha8Rng, age: f64, dementia: bool, new: bool) -> usize {
    let shift = ((age - 86.0) / 25.0).clamp(-0.5, 0.4) - if new { 0.3 } else { 0.0 };
    let weights: Vec<(usize, f64)> = CARE_MIX
        .iter()
        .enumerate()
        .map(|(i, w)| {
            let mut w = w * (1.0 + shift * (i as f64 - 3.0) / 3.0).max(0.05);
            if dementia && i < 2 {
                w *= 0.3;
            }
            (i, w)
        })
        .collect();
    pick(rng, &weights)
}

/// The drugs a newly diagnosed (or prevalent) patient takes for a condition.
fn regimen(rng: &mut ChaCha8Rng, kind: Chronic, age: f64, person: &Person, metformin_factor: f64) -> Vec<&'static Drug> {
    let mut v = Vec::new();
    let ckd = person.conditions.iter().any(|c| c.kind == Chronic::Ckd);
    match kind {
        Chronic::Dm2 => {
            if rng.random_bool(0.12) {
                return v; // diet and exercise only
            }
            let mut p_met = 0.58 * metformin_factor;
            if age >= 75.0 {
                p_met *= 0.6;
            }
            if ckd {
                p_met *= 0.35;
            }
            if rng.random_bool(p_met.clamp(0.0, 0.95)) {
                v.push(pick(
                    rng,
                    &[
                        (&codes::METGLUCO_250, 0.35),
                        (&codes::METGLUCO_500, 0.25),
                        (&codes::METFORMIN_TOWA, 0.3),
                        (&codes::GLYCORAN_250, 0.1),
                    ],
                ));
            }
            if rng.random_bool(0.55) {
                v.push(&codes::SITAGLIPTIN);
            }
            if rng.random_bool(if age < 75.0 { 0.28 } else { 0.12 }) {
                v.push(&codes::EMPAGLIFLOZIN);
            }
            if rng.random_bool(0.08) {
                v.push(&codes::GLIMEPIRIDE);
            }
            if rng.random_bool(0.07) {
                v.push(&codes::INSULIN_GLARGINE);
            }
            if v.is_empty() {
                v.push(&codes::SITAGLIPTIN);
            }
        }
        Chronic::Dm1 => v.push(&codes::INSULIN_GLARGINE),
        Chronic::Ht => {
            if rng.random_bool(0.87) {
                let amlo = rng.random_bool(0.6);
                if amlo {
                    v.push(&codes::AMLODIPINE);
                }
                if !amlo || rng.random_bool(0.4) {
                    v.push(if rng.random_bool(0.5) { &codes::OLMESARTAN } else { &codes::TELMISARTAN });
                }
            }
        }
        Chronic::Dl => {
            if rng.random_bool(0.72) {
                v.push(if rng.random_bool(0.55) { &codes::ROSUVASTATIN } else { &codes::ATORVASTATIN });
                if rng.random_bool(0.15) {
                    v.push(&codes::EZETIMIBE);
                }
            }
        }
        Chronic::Ckd => {
            if rng.random_bool(0.1) {
                v.push(&codes::FUROSEMIDE);
            }
        }
        Chronic::Dementia => {
            if rng.random_bool(0.45) {
                v.push(&codes::DONEPEZIL);
            }
            if rng.random_bool(0.2) {
                v.push(&codes::MEMANTINE);
            }
        }
        Chronic::Osteo => {
            if rng.random_bool(0.5) {
                v.push(&codes::ALENDRONATE);
            }
        }
        Chronic::Gerd => {
            if rng.random_bool(0.8) {
                v.push(&codes::VONOPRAZAN);
            }
        }
        Chronic::Esrd | Chronic::Rhinitis => {}
    }
    v
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

#[derive(Default)]
struct IdCounters {
    receipt: i64,
    checkup: i64,
    cert: i64,
    claim: i64,
}

struct Dx {
    disease: &'static Disease,
    start: i32,
    outcome: u8,
    modifiers: &'static str,
    main: bool,
    text: Option<&'static str>,
}

struct DpcInfo {
    group: &'static DpcGroup,
    admit: i32,
    discharge: Option<i32>,
    dies: bool,
    main: &'static Disease,
    emergency: bool,
}

struct ReceiptBuilder {
    inst: u32,
    kind: ReceiptKind,
    admission: Option<i32>,
    days: u8,
    dx: Vec<Dx>,
    si: Vec<(&'static Procedure, i32)>,
    iy: Vec<(&'static Drug, f64, i32)>,
    dpc: Option<DpcInfo>,
    prescriber: Option<u32>,
    prescriptions: u8,
}

/// One month's receipts of one person: one per institution (and kind).
#[derive(Default)]
struct MonthReceipts {
    list: Vec<ReceiptBuilder>,
}

impl MonthReceipts {
    fn contains(&self, inst: u32) -> bool {
        self.list.iter().any(|b| b.inst == inst)
    }

    fn get(&mut self, inst: u32, kind: ReceiptKind) -> &mut ReceiptBuilder {
        let pos = match self.list.iter().position(|b| b.inst == inst && b.kind == kind) {
            Some(p) => p,
            None => {
                self.list.push(ReceiptBuilder {
                    inst,
                    kind,
                    admission: None,
                    days: 0,
                    dx: Vec::new(),
                    si: Vec::new(),
                    iy: Vec::new(),
                    dpc: None,
                    prescriber: None,
                    prescriptions: 0,
                });
                self.list.len() - 1
            }
        };
        &mut self.list[pos]
    }
}

/// Puts drugs on the clinic's receipt (院内処方) or issues a prescription filled at a pharmacy
/// (院外処方), which becomes a 調剤 receipt.
fn prescribe(
    rx: &mut MonthReceipts,
    inst: u32,
    in_house: bool,
    drugs: Vec<(&'static Drug, f64, i32)>,
    home_pharmacy: u32,
    rng: &mut ChaCha8Rng,
    pidx: &crate::world::PrefectureIndex,
) {
    if in_house {
        let b = rx.get(inst, ReceiptKind::Outpatient);
        b.si.push((&codes::PRESCRIBING_IN_HOUSE, 1));
        b.iy.extend(drugs);
    } else {
        rx.get(inst, ReceiptKind::Outpatient).si.push((&codes::PRESCRIPTION_SLIP, 1));
        let pharmacy = if rng.random_bool(0.8) { home_pharmacy } else { pick_in(rng, &pidx.pharmacies) };
        let b = rx.get(pharmacy, ReceiptKind::Pharmacy);
        b.prescriber.get_or_insert(inst);
        b.prescriptions = b.prescriptions.saturating_add(1);
        b.days = b.days.saturating_add(1);
        b.iy.extend(drugs);
    }
}
