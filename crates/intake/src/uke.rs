//! UKE receipts into rows of the receipt tables (RE, SY, SI, IY, DPC, 調剤), with the hashed IDs
//! computed in memory from the clear identity the receipt carries (data.md §3; HX-2).
//!
//! The clear text (氏名, カタカナ氏名, 記号・番号, 生年月日, the 履歴照会's number) is read into
//! memory only to be hashed: no row, log line or error message holds it. A problem names file,
//! line, record and field, never the value of an identifying field.

use crate::rows::{DpcRow, IyRow, PharmacyRow, ReRow, SiRow, Staged, SyRow};
use kura_crypto::{IdKind, PseudonymKey, canonical_id_input, normalise_id_field};
use kura_formats::Problem;
use kura_formats::uke::date::{Date, parse_date, parse_month};
use kura_formats::uke::{FileKind, Receipt, Record};
use std::collections::HashMap;

/// What the header of a file says about the institution billing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Billing {
    /// The 10-digit 医療機関等コード: 都道府県 (2) + 点数表 (1) + the 7-digit code.
    pub institution: String,
    /// The prefecture (JIS code).
    pub prefecture: i16,
}

impl Billing {
    /// From a file's header records (`IR` or `YK`; for 歯科 the `IR` after `UK`).
    pub fn from_header(header: &[Record]) -> Option<Billing> {
        let h = header.iter().rev().find(|r| r.id() == "IR" || r.id() == "YK")?;
        let (pref, table, code) = (h.field(2), h.field(3), h.field(4));
        let prefecture = pref.parse::<i16>().ok()?;
        Some(Billing { institution: format!("{pref}{table}{code}"), prefecture })
    }
}

/// ID5 answers of the 履歴照会・回答システム for a file's receipts, by レセプト番号
/// (`NAME.ID5.CSV` beside `NAME.UKE`: `レセプト番号,番号` per line; the number empty or `9`
/// where the answer recorded none, data.md §3).
#[derive(Debug, Default, Clone)]
pub struct Id5Answers {
    by_receipt: HashMap<u64, String>,
}

impl Id5Answers {
    /// The receipt numbers answered.
    pub fn numbers(&self) -> impl Iterator<Item = u64> + '_ {
        self.by_receipt.keys().copied()
    }

    /// Reads the answer file; problems name its line.
    pub fn parse(file: &str, text: &str) -> Result<Id5Answers, Problem> {
        let mut by_receipt = HashMap::new();
        for (i, line) in text.lines().enumerate() {
            let n = i as u64 + 1;
            let bad = |m: &str| Problem { file: file.to_string(), line: n, record: None, field: None, message: m.to_string() };
            let (number, answer) =
                line.split_once(',').ok_or_else(|| bad("「レセプト番号,番号」の形ではありません / not 'receipt number,insured number'"))?;
            let number: u64 =
                number.trim().parse().map_err(|_| bad("レセプト番号が数字ではありません / the receipt number is not a number"))?;
            let answer = answer.trim();
            if answer.len() > 64 || !answer.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
                return Err(bad("番号は英数字64文字以内です / the insured number must be at most 64 letters and digits"));
            }
            if by_receipt.insert(number, answer.to_string()).is_some() {
                return Err(bad("同じレセプト番号が2回あります / the receipt number is answered twice"));
            }
        }
        Ok(Id5Answers { by_receipt })
    }
}

fn problem(file: &str, r: &Record, field: usize, name: &'static str, message: String) -> Problem {
    Problem { file: file.to_string(), line: r.line, record: Some(r.id().to_string()), field: Some((field, name)), message }
}

/// Days since 1970-01-01 (Arrow's Date32) of a date.
pub fn epoch_days(d: &Date) -> i32 {
    let (y, m, day) = (i64::from(d.year), i64::from(d.month), i64::from(d.day));
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    (era * 146_097 + doe - 719_468) as i32
}

/// Converts one receipt: its rows are appended to `out` with receipt id `id`, or nothing is
/// appended and the problem is returned (the receipt is then rejected, listed for the sender).
pub struct Converter<'a> {
    /// The file's name, for problems.
    pub file: &'a str,
    /// The file's kind.
    pub kind: FileKind,
    /// The billing institution.
    pub billing: &'a Billing,
    /// The platform pseudonym key.
    pub key: &'a PseudonymKey,
    /// ID5 answers.
    pub id5: &'a Id5Answers,
}

impl Converter<'_> {
    fn hash(&self, kind: IdKind, fields: &[&str]) -> String {
        let normal: Vec<String> = fields.iter().map(|f| normalise_id_field(f)).collect();
        let refs: Vec<&str> = normal.iter().map(String::as_str).collect();
        self.key.hash_id(kind, &canonical_id_input(&refs))
    }

    fn date(&self, r: &Record, n: usize, name: &'static str) -> Result<Date, Problem> {
        parse_date(r.field(n)).map_err(|m| problem(self.file, r, n, name, m))
    }

    fn opt_date(&self, r: &Record, n: usize, name: &'static str) -> Result<Option<i32>, Problem> {
        if r.field(n).is_empty() { Ok(None) } else { self.date(r, n, name).map(|d| Some(epoch_days(&d))) }
    }

    /// A field of digits only (no sign, no spaces), in `T`'s range.
    fn int<T: std::str::FromStr>(&self, r: &Record, n: usize, name: &'static str) -> Result<T, Problem> {
        let v = r.field(n);
        if v.is_empty() || v.len() > 12 || !v.bytes().all(|b| b.is_ascii_digit()) {
            return Err(problem(self.file, r, n, name, "数字のはず（符号・空白なし）/ digits expected (no sign, no spaces)".into()));
        }
        v.parse::<T>().map_err(|_| problem(self.file, r, n, name, "数値が大きすぎます / the number is out of range".into()))
    }

    fn int_or_zero<T: std::str::FromStr + Default>(&self, r: &Record, n: usize, name: &'static str) -> Result<T, Problem> {
        if r.field(n).is_empty() { Ok(T::default()) } else { self.int(r, n, name) }
    }

    /// The next line number of a table of the receipt (at most 32,767 lines of one kind).
    fn seq(&self, r: &Record, len: usize) -> Result<i16, Problem> {
        i16::try_from(len + 1).map_err(|_| {
            problem(
                self.file,
                r,
                0,
                "",
                "1枚のレセプトに同じ種類の行が多すぎます（32,767まで）/ too many lines of one kind in a receipt (at most 32,767)".into(),
            )
        })
    }

    fn decimal(&self, r: &Record, n: usize, name: &'static str) -> Result<f64, Problem> {
        let s = r.field(n).trim();
        if s.is_empty() {
            return Ok(0.0);
        }
        s.parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .ok_or_else(|| problem(self.file, r, n, name, "数値ではありません / not a decimal number".into()))
    }

    /// The rows of `receipt`, as receipt `id`.
    pub fn convert(&self, receipt: &Receipt, id: i64, out: &mut Staged) -> Result<(), Problem> {
        let mut rows = Staged::default();
        let re = receipt.re().ok_or_else(|| Problem {
            file: self.file.to_string(),
            line: 0,
            record: None,
            field: None,
            message: "RE のないレセプト / a receipt without RE".into(),
        })?;
        let pharmacy = self.kind == FileKind::Pharmacy;
        let ho = receipt.of("HO").next();
        let receipt_type = re.field(2).to_string();
        let service_month = parse_month(re.field(3)).map_err(|m| problem(self.file, re, 3, "診療年月", m))?;
        let birth = self.date(re, 6, "生年月日")?;
        let sex = re.field(5);
        let bdate = birth.seireki();
        // Age at the first day of the service month.
        let (sy, sm) = ((service_month / 100) as i32, (service_month % 100) as i32);
        let mut age = sy - i32::from(birth.year);
        if (sm, 1) < (i32::from(birth.month), i32::from(birth.day)) {
            age -= 1;
        }
        // A child born during the service month is -1 on its first day.
        let born_that_month = (sy, sm) == (i32::from(birth.year), i32::from(birth.month));
        if !((0..=150).contains(&age) || (age == -1 && born_that_month)) {
            return Err(problem(
                self.file,
                re,
                6,
                "生年月日",
                "生年月日が診療年月より後か150年以上前です（値は表示しません）/ the birth date is after the service month or 150 years before it (its value is not shown)".into(),
            ));
        }
        let kind = if pharmacy {
            "調剤"
        } else if receipt.dpc {
            "DPC"
        } else if receipt_type.as_bytes().get(3).is_some_and(|d| (d - b'0') % 2 == 1) {
            "医科入院"
        } else {
            "医科入院外"
        };
        let (insurer, kigo, bango) = ho.map_or(("", "", ""), |h| (h.field(1), h.field(2), h.field(3)));
        // No insurer or card number (ORCA writes such HO records): unlinkable by ID1, never a
        // hash of empty strings shared by every such receipt (data.md §3).
        let card = !kigo.trim().is_empty() || !bango.trim().is_empty();
        let id1 = (!insurer.trim().is_empty() && card).then(|| self.hash(IdKind::Id1, &[insurer, kigo, bango, &bdate, sex]));
        let name = re.field(4);
        let kana = re.field(if pharmacy { 41 } else { 36 });
        let id2 = self.hash(IdKind::Id2, &[name, &bdate, sex]);
        let id4 = (!kana.trim().is_empty()).then(|| self.hash(IdKind::Id4, &[kana, &bdate, sex]));
        let number: u64 = self.int(re, 1, "レセプト番号")?;
        let id5 = match self.id5.by_receipt.get(&number).map(String::as_str) {
            None | Some("") => None,
            Some("9") => Some("9".to_string()),
            Some(n) => Some(self.hash(IdKind::Id5, &[n])),
        };
        let (days, total) = match ho {
            Some(h) => (self.int::<i16>(h, 4, "診療実日数")?, self.int::<i32>(h, 5, "合計点数")?),
            None => {
                let ko = receipt.of("KO").next();
                match ko {
                    Some(k) => (self.int_or_zero::<i16>(k, 4, "診療実日数")?, self.int_or_zero::<i32>(k, 5, "合計点数")?),
                    None => (0, 0),
                }
            }
        };
        rows.re.push(ReRow {
            receipt_id: id,
            receipt_kind: kind,
            receipt_type,
            service_month: service_month as i32,
            institution_code: self.billing.institution.clone(),
            prefecture: self.billing.prefecture,
            sex: self.int(re, 5, "男女区分")?,
            birth_month: i32::from(birth.year) * 100 + i32::from(birth.month),
            age: age.clamp(0, 150) as i16,
            insurer_number: normalise_id_field(insurer),
            benefit_ratio: if re.field(7).trim().is_empty() { None } else { Some(self.int(re, 7, "給付割合")?) },
            admission_date: if pharmacy { None } else { self.opt_date(re, 8, "入院年月日")? },
            actual_days: days,
            total_points: total,
            id1,
            id2,
            id4,
            id5,
        });
        if pharmacy {
            self.pharmacy(receipt, re, id, total, &mut rows)?;
        } else {
            self.medical(receipt, id, &mut rows)?;
        }
        out.append(rows);
        Ok(())
    }

    fn medical(&self, receipt: &Receipt, id: i64, rows: &mut Staged) -> Result<(), Problem> {
        let mut class = String::new();
        for r in &receipt.records {
            match r.id() {
                "SY" => {
                    let modifiers = r.field(4);
                    rows.sy.push(SyRow {
                        receipt_id: id,
                        seq: self.seq(r, rows.sy.len())?,
                        disease_code: r.field(1).to_string(),
                        start_date: epoch_days(&self.date(r, 2, "診療開始日")?),
                        outcome: self.int(r, 3, "転帰区分")?,
                        modifiers: (!modifiers.is_empty()).then(|| modifiers.to_string()),
                        suspected: modifiers.as_bytes().chunks(4).any(|c| c == b"8002"),
                        main: r.field(6) == "01",
                        disease_name: (!r.field(5).is_empty()).then(|| r.field(5).to_string()),
                    });
                }
                "SI" | "IY" | "TO" | "CO" => {
                    // A blank 診療識別 is the one of the record before (data.md §1.3).
                    if !r.field(1).is_empty() {
                        class = r.field(1).to_string();
                    }
                    if r.id() == "SI" {
                        rows.si.push(SiRow {
                            receipt_id: id,
                            seq: self.seq(r, rows.si.len())?,
                            practice_class: class.clone(),
                            procedure_code: r.field(3).to_string(),
                            points: self.int_or_zero(r, 5, "点数")?,
                            count: self.int(r, 6, "回数")?,
                        });
                    } else if r.id() == "IY" {
                        rows.iy.push(IyRow {
                            receipt_id: id,
                            seq: self.seq(r, rows.iy.len())?,
                            practice_class: class.clone(),
                            drug_code: r.field(3).to_string(),
                            quantity: self.decimal(r, 4, "使用量")?,
                            points: self.int_or_zero(r, 5, "点数")?,
                            count: self.int(r, 6, "回数")?,
                        });
                    }
                }
                _ => {}
            }
        }
        if receipt.dpc {
            let bu = receipt.of("BU").next();
            let sb = receipt.of("SB").find(|r| r.field(5) == "01").or_else(|| receipt.of("SB").next());
            let (Some(bu), Some(sb)) = (bu, sb) else {
                let at = receipt.re().map_or(0, |r| r.line);
                return Err(Problem {
                    file: self.file.to_string(),
                    line: at,
                    record: Some("SB".into()),
                    field: None,
                    message: "DPC レセプトに医療資源を最も投入した傷病（SB）がありません / a DPC receipt without its main disease (SB)"
                        .into(),
                });
            };
            let kk = receipt.of("KK").next();
            rows.dpc.push(DpcRow {
                receipt_id: id,
                dpc_code: bu.field(1).to_string(),
                admission_date: epoch_days(&self.date(bu, 2, "今回入院日")?),
                discharge_date: self.opt_date(bu, 3, "今回退院日")?,
                dpc_outcome: self.int_or_zero(bu, 4, "DPC転帰区分")?,
                main_disease_code: sb.field(1).to_string(),
                main_icd10: sb.field(4).to_string(),
                emergency: kk.is_some_and(|k| k.field(1) == "2"),
            });
        }
        Ok(())
    }

    fn pharmacy(&self, receipt: &Receipt, re: &Record, id: i64, total: i32, rows: &mut Staged) -> Result<(), Problem> {
        // SH (単位薬剤料, 剤形) and CZ (調剤数量) price the IY that follows them.
        let (mut points, mut days, mut form) = (0i32, 0i32, String::new());
        let mut drug_points = 0i64;
        for r in &receipt.records {
            match r.id() {
                "SH" => {
                    points = self.int_or_zero(r, 5, "単位薬剤料")?;
                    form = r.field(2).to_string();
                }
                "CZ" => days = self.int_or_zero(r, 5, "調剤数量")?,
                "IY" => {
                    drug_points = drug_points.saturating_add(i64::from(points) * i64::from(days));
                    rows.iy.push(IyRow {
                        receipt_id: id,
                        seq: self.seq(r, rows.iy.len())?,
                        practice_class: match form.as_str() {
                            "4" => "31",
                            "5" => "23",
                            _ => "21",
                        }
                        .to_string(),
                        drug_code: r.field(2).to_string(),
                        quantity: self.decimal(r, 3, "使用量")?,
                        points,
                        count: days,
                    });
                }
                _ => {}
            }
        }
        let ho = receipt.of("HO").next();
        let drug_points = i32::try_from(drug_points)
            .map_err(|_| problem(self.file, re, 0, "", "薬剤料が大きすぎます / drug points out of range".into()))?;
        rows.pharmacy.push(PharmacyRow {
            receipt_id: id,
            prescriber_code: format!("{}{}{}", re.field(9), re.field(10), re.field(11)),
            prescriptions: ho.map_or(Ok(0), |h| self.int(h, 4, "処方箋受付回数"))?,
            dispensing_points: total.checked_sub(drug_points).filter(|d| *d >= 0).ok_or_else(|| {
                problem(self.file, re, 0, "", "薬剤料が合計点数を超えています / the drug points exceed the receipt's total".into())
            })?,
            drug_points,
        });
        Ok(())
    }
}
