//! Calibration against the national figures of data.md §9, and the epidemiological shape the
//! analyses rely on. Uses a population large enough for ±2-point tolerances.

use kura_crypto::{PseudonymKey, SecretKey};
use kura_synth::model::{Id5, ReceiptKind};
use kura_synth::{Chunk, Generator, SynthConfig};
use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

const N: u64 = 40_000;

fn key() -> PseudonymKey {
    PseudonymKey::new(SecretKey::from_bytes([9; 32]))
}

fn data() -> &'static (Generator, Vec<Chunk>) {
    static DATA: OnceLock<(Generator, Vec<Chunk>)> = OnceLock::new();
    DATA.get_or_init(|| {
        let g = Generator::new(SynthConfig::new(N, 2024), key()).unwrap();
        let mut chunks = std::thread::scope(|s| {
            let hs: Vec<_> = (0..g.chunk_count())
                .map(|i| {
                    s.spawn({
                        let g = &g;
                        move || g.generate_chunk(i)
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect::<Vec<_>>()
        });
        // Dense ids across chunks, as the writer makes them.
        let mut offset = kura_synth::model::IdCounts::default();
        for c in &mut chunks {
            let counts = c.id_counts;
            c.rebase(&offset);
            offset.add(&counts);
        }
        (g, chunks)
    })
}

fn receipts() -> impl Iterator<Item = &'static kura_synth::model::Receipt> {
    data().1.iter().flat_map(|c| c.receipts.iter())
}

#[test]
fn population_structure_matches_japan() {
    // data.md §9: 0–14 / 15–64 / 65–74 / 75+ = 11.2 / 59.6 / 12.5 / 16.8 %, men 48.6 %.
    let (g, chunks) = data();
    assert_eq!(chunks.iter().map(|c| c.persons).sum::<u64>(), N);
    let mut bands = [0u64; 4];
    let mut men = 0u64;
    let mut prefs = HashSet::new();
    for i in 0..N {
        let (sex, age, pref) = g.demographics(i);
        men += u64::from(sex == 1);
        prefs.insert(pref);
        bands[match age {
            0..=14 => 0,
            15..=64 => 1,
            65..=74 => 2,
            _ => 3,
        }] += 1;
    }
    let pct = |x: u64| x as f64 * 100.0 / N as f64;
    println!("age shares {:?}, men {:.1} %", bands.map(pct), pct(men));
    for (got, want) in bands.map(pct).iter().zip([11.2, 59.6, 12.5, 16.8]) {
        assert!((got - want).abs() < 1.5, "{got} vs {want}");
    }
    assert!((pct(men) - 48.6).abs() < 1.5);
    assert_eq!(prefs.len(), 47);
}

#[test]
fn receipts_per_person_year_match_ndb_2023() {
    let (g, chunks) = data();
    let years = N as f64 * f64::from(g.config().months) / 12.0;
    let mut counts: HashMap<ReceiptKind, u64> = HashMap::new();
    for r in receipts() {
        *counts.entry(r.kind).or_default() += 1;
    }
    let out = counts[&ReceiptKind::Outpatient] as f64 / years;
    let pharm = counts[&ReceiptKind::Pharmacy] as f64 / years;
    let inpat = (counts[&ReceiptKind::Inpatient] + counts[&ReceiptKind::Dpc]) as f64 / years;
    println!("outpatient {out:.2} pharmacy {pharm:.2} inpatient {inpat:.3} per person-year");
    assert!((7.0..10.5).contains(&out), "outpatient {out}");
    assert!((4.8..7.2).contains(&pharm), "pharmacy {pharm}");
    assert!((0.17..0.30).contains(&inpat), "inpatient {inpat}");
    let deaths: u64 = chunks.iter().map(|c| c.deaths).sum();
    let rate = deaths as f64 / years * 1000.0;
    println!("deaths {rate:.1} per 1,000");
    assert!((10.0..16.5).contains(&rate), "crude death rate {rate}");
}

#[test]
fn checkup_uptake_is_near_sixty_percent() {
    let (_, chunks) = data();
    let checkups: usize = chunks.iter().map(|c| c.checkups.len()).sum();
    // Eligible: ages 40–74; about 47 % of the population.
    let eligible = 0.47 * N as f64;
    let uptake = checkups as f64 / eligible;
    println!("checkup uptake ≈ {:.1} %", uptake * 100.0);
    assert!((0.50..0.70).contains(&uptake), "uptake {uptake}");
    for c in chunks.iter().flat_map(|c| c.checkups.iter()) {
        assert!((39..=74).contains(&c.age), "checkup at age {}", c.age);
    }
}

#[test]
fn diabetes_prevalence_rises_with_age_and_hba1c_follows_diagnosis() {
    let (_, chunks) = data();
    let mut dm_receipts: HashSet<i64> = HashSet::new();
    for c in chunks {
        for d in &c.diagnoses {
            if d.disease.code == "2500015" && d.modifiers != "8002" {
                dm_receipts.insert(d.receipt_id);
            }
        }
    }
    let mut persons_by_band: HashMap<u8, HashSet<&str>> = HashMap::new();
    let mut dm_by_band: HashMap<u8, HashSet<&str>> = HashMap::new();
    let mut dm_people: HashSet<&str> = HashSet::new();
    for r in receipts() {
        if let Id5::Hash(h) = &r.ids.id5 {
            let band = (r.age / 20).min(4);
            persons_by_band.entry(band).or_default().insert(h.as_str());
            if dm_receipts.contains(&r.receipt_id) {
                dm_by_band.entry(band).or_default().insert(h.as_str());
                dm_people.insert(h.as_str());
            }
        }
    }
    let prev: Vec<f64> = (0..5).map(|b| dm_by_band.get(&b).map_or(0, |s| s.len()) as f64 / persons_by_band[&b].len() as f64).collect();
    println!("diabetes prevalence by 20-year band: {prev:?}");
    assert!(prev[0] < prev[1] && prev[1] < prev[2] && prev[2] < prev[3], "{prev:?}");

    // HbA1c at checkups: diagnosed vs not.
    let hba1c: HashMap<i64, f64> = chunks
        .iter()
        .flat_map(|c| c.checkup_items.iter())
        .filter(|i| i.item.key == "hba1c")
        .map(|i| (i.checkup_id, i.value.unwrap()))
        .collect();
    let (mut dm, mut non) = (Vec::new(), Vec::new());
    for c in chunks.iter().flat_map(|c| c.checkups.iter()) {
        if let (Some(v), Id5::Hash(h)) = (hba1c.get(&c.checkup_id), &c.ids.id5) {
            if dm_people.contains(h.as_str()) { dm.push(*v) } else { non.push(*v) }
        }
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    println!("HbA1c diagnosed {:.2} (n={}) vs not {:.2} (n={})", mean(&dm), dm.len(), mean(&non), non.len());
    assert!(mean(&dm) > mean(&non) + 1.0);
    assert!((5.4..5.9).contains(&mean(&non)));
}

#[test]
fn metformin_is_prescribed_to_diabetics() {
    let (_, chunks) = data();
    let metformin = ["621974701", "622242501", "620004480", "620005570"];
    let mut with_metformin = 0;
    let mut total = 0;
    for c in chunks {
        total += c.drugs.len();
        with_metformin += c.drugs.iter().filter(|d| metformin.contains(&d.drug.code)).count();
    }
    assert!(with_metformin > 0 && with_metformin < total / 5, "{with_metformin} of {total}");
}

#[test]
fn influenza_peaks_in_winter() {
    let (_, chunks) = data();
    let month_of: HashMap<i64, i32> = receipts().map(|r| (r.receipt_id, r.service_month % 100)).collect();
    let mut by_month = [0u32; 13];
    for d in chunks.iter().flat_map(|c| c.diagnoses.iter()) {
        if d.disease.code == "9900004" && d.modifiers.is_empty() {
            by_month[month_of[&d.receipt_id] as usize] += 1;
        }
    }
    println!("influenza by month: {by_month:?}");
    let peak = (1..=12).max_by_key(|&m| by_month[m]).unwrap();
    assert!(matches!(peak, 1 | 2), "peak in month {peak}");
    assert!(by_month[1] > 5 * by_month[7].max(1));
}

#[test]
fn care_certification_rises_with_age() {
    let (_, chunks) = data();
    let certs: Vec<_> = chunks.iter().flat_map(|c| c.care_certs.iter()).collect();
    assert!(!certs.is_empty());
    let mut levels: HashMap<&str, usize> = HashMap::new();
    for c in &certs {
        *levels.entry(c.care_level).or_default() += 1;
    }
    println!("care levels {levels:?}; {} certifications", certs.len());
    // Ages of certified people: mostly 75+.
    let old = certs.iter().filter(|c| c.age >= 75).count();
    assert!(old as f64 > 0.7 * certs.len() as f64);
    // About 6–7 % of the whole population is certified (19 % of 65+).
    let share = certs.iter().map(|c| c.ids.id4).collect::<HashSet<_>>().len() as f64 / N as f64;
    println!("certified share {share:.3}");
    assert!((0.04..0.09).contains(&share), "{share}");
}

#[test]
fn id5_is_missing_on_a_small_share() {
    let (_, _) = data();
    let (mut missing, mut nine, mut total) = (0, 0, 0);
    for r in receipts() {
        total += 1;
        match r.ids.id5 {
            Id5::Hash(_) => {}
            Id5::Null => missing += 1,
            Id5::Nine => nine += 1,
        }
    }
    let share = f64::from(missing + nine) / f64::from(total);
    assert!((0.02..0.06).contains(&share), "{share}");
    assert!(nine > 0 && missing > 0);
}

#[test]
fn same_seed_same_rows_different_seed_different_rows() {
    let g1 = Generator::new(SynthConfig::new(500, 1), key()).unwrap();
    let g2 = Generator::new(SynthConfig::new(500, 1), key()).unwrap();
    let g3 = Generator::new(SynthConfig::new(500, 2), key()).unwrap();
    let a = format!("{:?}", g1.generate_chunk(0).receipts);
    assert_eq!(a, format!("{:?}", g2.generate_chunk(0).receipts));
    assert_ne!(a, format!("{:?}", g3.generate_chunk(0).receipts));
}

#[test]
fn deaths_rise_with_age_and_most_are_75_plus() {
    // In-hospital deaths are visible as outcome 3 (死亡) on the main diagnosis.
    let (g, chunks) = data();
    let age_of: HashMap<i64, u8> = receipts().map(|r| (r.receipt_id, r.age)).collect();
    let mut deaths_by_band = [0f64; 4];
    for d in chunks.iter().flat_map(|c| c.diagnoses.iter()) {
        if d.outcome == 3 && d.main {
            let a = age_of[&d.receipt_id];
            deaths_by_band[match a {
                0..=39 => 0,
                40..=64 => 1,
                65..=74 => 2,
                _ => 3,
            }] += 1.0;
        }
    }
    let mut pop = [0f64; 4];
    for i in 0..N {
        let (_, age, _) = g.demographics(i);
        pop[match age {
            0..=39 => 0,
            40..=64 => 1,
            65..=74 => 2,
            _ => 3,
        }] += 1.0;
    }
    let rate: Vec<f64> = (0..4).map(|i| deaths_by_band[i] / pop[i]).collect();
    println!("in-hospital death rate by band {rate:?}");
    assert!(rate[0] < rate[1] && rate[1] < rate[2] && rate[2] < rate[3], "{rate:?}");
    let share_75 = deaths_by_band[3] / deaths_by_band.iter().sum::<f64>();
    assert!(share_75 > 0.7, "{share_75}");
}

/// Checkups with a value of `key`: (sex, age, value, the person's ID5).
fn checkup_values(key: &str) -> Vec<(u8, u8, f64, Option<&'static str>)> {
    let (_, chunks) = data();
    let values: HashMap<i64, f64> = chunks
        .iter()
        .flat_map(|c| c.checkup_items.iter())
        .filter(|i| i.item.key == key)
        .filter_map(|i| Some((i.checkup_id, i.value?)))
        .collect();
    chunks
        .iter()
        .flat_map(|c| c.checkups.iter())
        .filter_map(|c| {
            let id5 = match &c.ids.id5 {
                Id5::Hash(h) => Some(h.as_str()),
                _ => None,
            };
            Some((c.sex, c.age, *values.get(&c.checkup_id)?, id5))
        })
        .collect()
}

/// The 10-year band of a checkup age: 0 = 40–49 … 3 = 70–74.
fn band(age: u8) -> usize {
    usize::from(age.clamp(40, 74) - 40) / 10
}

#[test]
fn obesity_among_checkup_participants_follows_the_national_survey() {
    // 国民健康・栄養調査 (平成29年), BMI ≥ 25 by sex and age: men 40–49 35.3, 50–59 31.7,
    // 60–69 34.1, 70+ 25.7 %; women 17.4, 22.2, 25.8, 26.5 %. Checkups cover 40–74.
    let want = [[35.3, 31.7, 34.1, 25.7], [17.4, 22.2, 25.8, 26.5]];
    let mut n = [[0u32; 4]; 2];
    let mut obese = [[0u32; 4]; 2];
    for (sex, age, bmi, _) in checkup_values("bmi") {
        let s = usize::from(sex == 2);
        n[s][band(age)] += 1;
        obese[s][band(age)] += u32::from(bmi >= 25.0);
    }
    let got: Vec<Vec<f64>> = (0..2).map(|s| (0..4).map(|b| 100.0 * f64::from(obese[s][b]) / f64::from(n[s][b].max(1))).collect()).collect();
    println!("BMI ≥ 25 (%), men / women by 40s, 50s, 60s, 70–74: {got:?} (survey {want:?})");
    for s in 0..2 {
        for b in 0..4 {
            assert!(n[s][b] > 300, "enough checkups in each cell");
            assert!((got[s][b] - want[s][b]).abs() <= 7.0, "sex {s} band {b}: {:.1} % vs {:.1} %", got[s][b], want[s][b]);
        }
    }
    let all = |s: usize| 100.0 * f64::from(obese[s].iter().sum::<u32>()) / f64::from(n[s].iter().sum::<u32>());
    assert!(all(0) > all(1) + 5.0, "men more often obese than women");
}

#[test]
fn blood_pressure_rises_with_age() {
    // 国民健康・栄養調査 (平成28年): mean systolic pressure of adults men 134.3, women
    // 127.3 mmHg, higher with every decade of age (平成15年: 70+ men 143.0, women 142.6).
    let mut sum = [[0f64; 4]; 2];
    let mut n = [[0f64; 4]; 2];
    for (sex, age, sbp, _) in checkup_values("sbp") {
        let s = usize::from(sex == 2);
        sum[s][band(age)] += sbp;
        n[s][band(age)] += 1.0;
    }
    let mean: Vec<Vec<f64>> = (0..2).map(|s| (0..4).map(|b| sum[s][b] / n[s][b].max(1.0)).collect()).collect();
    println!("mean systolic (mmHg), men / women by 40s, 50s, 60s, 70–74: {mean:?}");
    for s in 0..2 {
        for b in 1..4 {
            assert!(mean[s][b] > mean[s][b - 1], "sex {s}: rises from band {} to {b}: {mean:?}", b - 1);
        }
        assert!(mean[s][3] - mean[s][0] >= 8.0, "sex {s}: a gradient of at least 8 mmHg over 30 years: {mean:?}");
        assert!((118.0..=150.0).contains(&mean[s][3]), "sex {s}: 70–74 mean {:.1}", mean[s][3]);
    }
    assert!(mean[0][0] > mean[1][0] + 3.0, "men above women in their 40s: {mean:?}");
}

#[test]
fn diabetes_by_sex_and_age_follows_the_national_survey() {
    // 国民健康・栄養調査 (平成28年), 「糖尿病が強く疑われる者」 (HbA1c ≥ 6.5 % or treated):
    // men 50–59 12.6, 60–69 21.8, 70+ 23.2 %; women 6.1, 12.0, 16.8 %. Here among checkup
    // participants: HbA1c ≥ 6.5 % at the checkup, or a diagnosis of type 2 diabetes treated
    // with a drug in the period.
    let (_, chunks) = data();
    let receipt_person: HashMap<i64, &str> = receipts()
        .filter_map(|r| match &r.ids.id5 {
            Id5::Hash(h) => Some((r.receipt_id, h.as_str())),
            _ => None,
        })
        .collect();
    let treated: HashSet<&str> = chunks
        .iter()
        .flat_map(|c| c.drugs.iter())
        .filter(|d| d.drug.efficacy_class.starts_with("396"))
        .filter_map(|d| receipt_person.get(&d.receipt_id).copied())
        .collect();
    let want = [[12.6, 21.8, 23.2], [6.1, 12.0, 16.8]];
    let mut n = [[0u32; 4]; 2];
    let mut dm = [[0u32; 4]; 2];
    for (sex, age, hba1c, id5) in checkup_values("hba1c") {
        let s = usize::from(sex == 2);
        n[s][band(age)] += 1;
        dm[s][band(age)] += u32::from(hba1c >= 6.5 || id5.is_some_and(|p| treated.contains(p)));
    }
    let got: Vec<Vec<f64>> = (0..2).map(|s| (0..4).map(|b| 100.0 * f64::from(dm[s][b]) / f64::from(n[s][b].max(1))).collect()).collect();
    println!("diabetes strongly suspected (%), men / women by 40s, 50s, 60s, 70–74: {got:?} (survey 50s–70+ {want:?})");
    for s in 0..2 {
        for b in 1..4 {
            assert!(got[s][b] >= got[s][b - 1] - 1.0, "sex {s}: rises with age: {got:?}");
            assert!((got[s][b] - want[s][b - 1]).abs() <= 7.0, "sex {s} band {b}: {:.1} % vs {:.1} %", got[s][b], want[s][b - 1]);
        }
    }
}

#[test]
fn the_first_antidiabetic_drug_follows_national_claims() {
    // Bouchi et al., J Diabetes Investig 2022;13:280–291 (NDB, 2014–2017, 1,136,723 new users):
    // DPP-4 inhibitors 65.1 %, biguanides 15.9 %, SGLT2 inhibitors 7.6 %. New users here: a
    // person whose first antidiabetic drug comes in the fourth month or later (a known patient
    // is seen every month or two).
    let (_, chunks) = data();
    let month_of: HashMap<i64, (i32, &str)> = receipts()
        .filter_map(|r| match &r.ids.id5 {
            Id5::Hash(h) => Some((r.receipt_id, (r.service_month, h.as_str()))),
            _ => None,
        })
        .collect();
    let first_month = receipts().map(|r| r.service_month).min().unwrap_or(0);
    let mut first: HashMap<&str, (i32, Vec<&str>)> = HashMap::new();
    for d in chunks.iter().flat_map(|c| c.drugs.iter()).filter(|d| d.drug.efficacy_class.starts_with("396") || d.drug.code == "699000104") {
        let Some(&(month, person)) = month_of.get(&d.receipt_id) else { continue };
        let e = first.entry(person).or_insert((month, Vec::new()));
        if month < e.0 {
            *e = (month, Vec::new());
        }
        if month == e.0 && !e.1.contains(&d.drug.code) {
            e.1.push(d.drug.code);
        }
    }
    let late = |m: i32| (m / 100 - first_month / 100) * 12 + (m % 100 - first_month % 100) >= 3;
    let new_users: Vec<&Vec<&str>> = first.values().filter(|(m, _)| late(*m)).map(|(_, d)| d).collect();
    let class = |code: &str| match code {
        "699000101" => "dpp4",
        "621974701" | "622242501" | "620004480" | "620005570" => "biguanide",
        "699000102" => "sglt2",
        _ => "other",
    };
    let mut counts: HashMap<&str, u32> = HashMap::new();
    for drugs in &new_users {
        for d in drugs.iter() {
            *counts.entry(class(d)).or_default() += 1;
        }
    }
    let total: u32 = counts.values().sum();
    let share = |c: &str| 100.0 * f64::from(counts.get(c).copied().unwrap_or(0)) / f64::from(total.max(1));
    println!(
        "first antidiabetic drug of {} new users (%): DPP-4 {:.1}, biguanide {:.1}, SGLT2 {:.1}, other {:.1}",
        new_users.len(),
        share("dpp4"),
        share("biguanide"),
        share("sglt2"),
        share("other")
    );
    assert!(new_users.len() >= 100, "enough new users: {}", new_users.len());
    let single = new_users.iter().filter(|d| d.len() == 1).count();
    assert!(single * 10 >= new_users.len() * 9, "treatment starts with one drug: {single} of {}", new_users.len());
    assert!((share("dpp4") - 65.1).abs() <= 10.0, "DPP-4 {:.1} %", share("dpp4"));
    assert!((share("biguanide") - 15.9).abs() <= 7.0, "biguanides {:.1} %", share("biguanide"));
    assert!((share("sglt2") - 7.6).abs() <= 5.0, "SGLT2 {:.1} %", share("sglt2"));
    assert!(share("dpp4") > share("biguanide") && share("biguanide") > share("sglt2"));
}
