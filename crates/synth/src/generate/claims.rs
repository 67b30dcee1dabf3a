//! Claims: admissions (DPC), inpatient and outpatient months, prescriptions filled at
//! pharmacies, and the receipts a month leaves.

use super::*;

impl Generator {
    pub(super) fn admission(
        &self,
        person: &Person,
        rng: &mut ChaCha8Rng,
        age: f64,
        admit: i32,
        pidx: &crate::world::PrefectureIndex,
        m: i32,
    ) -> Stay {
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

    pub(super) fn terminal_admission(&self, rng: &mut ChaCha8Rng, death: i32, first: i32, pidx: &crate::world::PrefectureIndex) -> Stay {
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

    pub(super) fn inpatient_month(&self, person: &Person, s: &Stay, first: i32, last: i32, m: i32, rx: &mut MonthReceipts) -> i32 {
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

    pub(super) fn outpatient_month(&self, person: &mut Person, rng: &mut ChaCha8Rng, cx: &MonthCtx<'_>, rx: &mut MonthReceipts) {
        let (m, month, age, pidx) = (cx.m, cx.month, cx.agef, cx.pidx);
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

    pub(super) fn finish_month(
        &self,
        person: &Person,
        rng: &mut ChaCha8Rng,
        cx: &MonthCtx<'_>,
        rx: MonthReceipts,
        out: &mut Chunk,
        ids: &mut IdCounters,
    ) {
        let (m, month, age) = (cx.m, cx.month, cx.age);
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
            if let Some(t) = cx.text {
                let v = usize::from(person.marriage_month.is_some_and(|mm| m >= mm));
                out.written.push(WrittenIdentity {
                    name: t.name[v][style].clone(),
                    kana: t.kana[v].clone(),
                    birth_date: t.birth.clone(),
                    insurer: self.world.insurer(e.insurer).number.clone(),
                    kigo: e.kigo.clone(),
                    bango: e.bango.clone(),
                    id5: match person_ids.id5 {
                        Id5::Hash(_) => Id5Answer::Number(t.origin.clone()),
                        Id5::Nine => Id5Answer::Nine,
                        Id5::Null => Id5Answer::Null,
                    },
                });
            }
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

/// The drugs a patient takes for a condition: `new` for a diagnosis made during the period
/// (treatment starts), otherwise a condition known before it (treatment may have grown).
///
/// Type 2 diabetes starts on one drug, chosen as Japan's national claims show new users start
/// (Bouchi et al., J Diabetes Investig 2022;13:280–291, NDB 2014–2017, 1,136,723 new users of a
/// non-insulin drug): DPP-4 inhibitors 65.1 %, biguanides 15.9 % (here scaled by the
/// prefecture's metformin factor), SGLT2 inhibitors 7.6 %, the rest sulfonylureas,
/// α-glucosidase inhibitors, glinides and thiazolidinediones; fewer biguanides and SGLT2
/// inhibitors from 75 and with kidney disease. A known patient has a second drug in half the
/// cases and a third in some.
pub(super) fn regimen(
    rng: &mut ChaCha8Rng,
    kind: Chronic,
    age: f64,
    person: &Person,
    metformin_factor: f64,
    new: bool,
) -> Vec<&'static Drug> {
    let mut v = Vec::new();
    let ckd = person.conditions.iter().any(|c| c.kind == Chronic::Ckd);
    match kind {
        Chronic::Dm2 => {
            if rng.random_bool(0.12) {
                return v; // diet and exercise only
            }
            let mut bg = 0.159 * metformin_factor;
            let mut sglt2 = 0.076;
            if age >= 75.0 {
                bg *= 0.6;
                sglt2 *= 0.4;
            }
            if ckd {
                bg *= 0.35;
            }
            let classes: [(&'static Drug, f64); 10] = [
                (&codes::SITAGLIPTIN, 0.651),
                (&codes::METGLUCO_250, bg * 0.35),
                (&codes::METGLUCO_500, bg * 0.25),
                (&codes::METFORMIN_TOWA, bg * 0.3),
                (&codes::GLYCORAN_250, bg * 0.1),
                (&codes::EMPAGLIFLOZIN, sglt2),
                (&codes::GLIMEPIRIDE, 0.05),
                (&codes::VOGLIBOSE, 0.03),
                (&codes::MITIGLINIDE, 0.015),
                (&codes::PIOGLITAZONE, 0.01),
            ];
            v.push(pick(rng, &classes));
            if !new {
                // Added over the years: another class than those taken (metformin once).
                for p_more in [0.5, 0.2] {
                    if rng.random_bool(p_more) {
                        let taken = |d: &Drug| {
                            v.iter()
                                .any(|t: &&Drug| t.efficacy_class == d.efficacy_class && (t.efficacy_class == "3962" || t.code == d.code))
                        };
                        let open: Vec<(&'static Drug, f64)> = classes.iter().copied().filter(|(d, _)| !taken(d)).collect();
                        if !open.is_empty() {
                            v.push(pick(rng, &open));
                        }
                    }
                }
                if rng.random_bool(0.07) {
                    v.push(&codes::INSULIN_GLARGINE);
                }
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

#[derive(Default)]
pub(super) struct IdCounters {
    pub(super) receipt: i64,
    pub(super) checkup: i64,
    pub(super) cert: i64,
    pub(super) claim: i64,
}

pub(super) struct Dx {
    pub(super) disease: &'static Disease,
    pub(super) start: i32,
    pub(super) outcome: u8,
    pub(super) modifiers: &'static str,
    pub(super) main: bool,
    pub(super) text: Option<&'static str>,
}

pub(super) struct DpcInfo {
    pub(super) group: &'static DpcGroup,
    pub(super) admit: i32,
    pub(super) discharge: Option<i32>,
    pub(super) dies: bool,
    pub(super) main: &'static Disease,
    pub(super) emergency: bool,
}

pub(super) struct ReceiptBuilder {
    pub(super) inst: u32,
    pub(super) kind: ReceiptKind,
    pub(super) admission: Option<i32>,
    pub(super) days: u8,
    pub(super) dx: Vec<Dx>,
    pub(super) si: Vec<(&'static Procedure, i32)>,
    pub(super) iy: Vec<(&'static Drug, f64, i32)>,
    pub(super) dpc: Option<DpcInfo>,
    pub(super) prescriber: Option<u32>,
    pub(super) prescriptions: u8,
}

/// One month's receipts of one person: one per institution (and kind).
#[derive(Default)]
pub(super) struct MonthReceipts {
    pub(super) list: Vec<ReceiptBuilder>,
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
pub(super) fn prescribe(
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
