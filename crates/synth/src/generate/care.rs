//! Long-term care: certification, its level and the monthly care claims.

use super::*;

impl Generator {
    pub(super) fn care_month(
        &self,
        person: &mut Person,
        rng: &mut ChaCha8Rng,
        cx: &MonthCtx<'_>,
        inpatient_days: i32,
        out: &mut Chunk,
        ids: &mut IdCounters,
    ) {
        let (m, month, age, pidx) = (cx.m, cx.month, cx.agef, cx.pidx);
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
}

/// A care level index (0 = 要支援1 … 6 = 要介護5), heavier with age and dementia.
pub(super) fn care_level(rng: &mut ChaCha8Rng, age: f64, dementia: bool, new: bool) -> usize {
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
