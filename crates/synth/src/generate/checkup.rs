//! 特定健診: who is invited and attends, and the results of a checkup.

use super::*;

impl Generator {
    pub(super) fn plan_checkups(&self, person: &Person, rng: &mut ChaCha8Rng) -> Vec<i32> {
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

    pub(super) fn checkup(&self, person: &mut Person, rng: &mut ChaCha8Rng, cx: &MonthCtx<'_>, out: &mut Chunk, ids: &mut IdCounters) {
        let (m, month, age, pidx) = (cx.m, cx.month, cx.age, cx.pidx);
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
        // The base falls with age for men and rises gently for women, so that with the
        // conditions' own weight the share with BMI ≥ 25 follows 国民健康・栄養調査 (平成29年)
        // by sex and decade (docs/calibration.md).
        let base = if male { 23.3 - 0.03 * (agef.min(65.0) - 45.0) - 0.13 * (agef - 65.0).max(0.0) } else { 21.75 + 0.015 * (agef - 45.0) };
        let bmi = (base
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
}
