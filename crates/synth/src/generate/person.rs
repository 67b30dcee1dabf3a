//! A person: sex, birth, prefecture, insurer, conditions and their course, death, and the
//! clear identity that only the pseudonymised IDs are made from.

use super::*;

impl Generator {
    /// Samples a person's demographics, identities and conditions (deterministic per number).
    /// The clear identity is returned for verification; the [`Person`] keeps only hashes.
    pub(super) fn person(&self, idx: u64) -> (Person, ClearIdentity) {
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
            text: PersonText { birth: bdate.clone(), origin: origin.clone(), ..PersonText::default() },
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
            // As receipts write them; the IDs hash the normalised text (data.md §3), which
            // keeps one space where the receipt has one.
            let spaced = format!("{sk}\u{3000}{gk}");
            let unspaced = format!("{sk}{gk}");
            let kana = format!("{sn}\u{3000}{gn}");
            let inputs = [normalise_id_field(&spaced), normalise_id_field(&unspaced), normalise_id_field(&kana)];
            id2[v][0] = self.id(IdKind::Id2, &[&inputs[0], &bdate, sex_s]);
            id2[v][1] = self.id(IdKind::Id2, &[&inputs[1], &bdate, sex_s]);
            id4[v] = self.id(IdKind::Id4, &[&inputs[2], &bdate, sex_s]);
            clear.id_inputs.push((IdKind::Id2, canonical_id_input(&[&inputs[0], &bdate, sex_s])));
            clear.id_inputs.push((IdKind::Id2, canonical_id_input(&[&inputs[1], &bdate, sex_s])));
            clear.id_inputs.push((IdKind::Id4, canonical_id_input(&[&inputs[2], &bdate, sex_s])));
            clear.text.name[v] = [spaced.clone(), unspaced];
            clear.text.kana[v] = kana.clone();
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
            regimens.push(regimen(&mut rng, c.kind, age, &person, pf, false));
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
}
