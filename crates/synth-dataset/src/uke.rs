//! The synthetic receipts as the UKE files institutions send (`kura synth --format uke`;
//! issue 18 §1, HX-1): the source files of the same population whose rows
//! [`crate::write_synthetic`] writes directly, so that intake can be tested end to end
//! (synth → files → intake → the same rows).
//!
//! One file per institution, service month and 審査支払機関 (支払基金 for employees' schemes,
//! 国保連 for 国保 and 後期高齢者医療), as institutions bill:
//! `uke/YYYYMM/<10-digit institution code>-<1|2>/RECEIPTC.UKE` (医科), `RECEIPTD.UKE` (DPC) or
//! `RECEIPTY.UKE` (調剤). Beside each file, `<name>.ID5.CSV` holds what the 履歴照会・回答システム
//! answered for each receipt (data.md §3: ID5 is not in the UKE file): `レセプト番号,番号`, the
//! number being the oldest 個人単位被保険者番号, `9` or empty where the answer recorded none.
//!
//! The records follow data.md §1.3–1.5 (field positions, 西暦 dates, CP932, CRLF, full-width
//! 記号・番号 and カタカナ氏名, right-aligned 6-digit 国保 numbers). Where the layout leaves a
//! 調剤 record's fields unnamed, Kura reads them so (and its intake reads them back the same
//! way): `SH` 1 No, 2 剤形コード (1 内服, 4 注射, 5 外用), 5 単位薬剤料 (points per day);
//! `CZ` 1 No, 5 調剤数量 (days), each pair before the `IY` it prices. DPC receipts carry `BU`
//! (1 診断群分類, 2 今回入院日, 3 今回退院日, 4 DPC転帰区分), `SB` (1 傷病名コード, 4 ICD10,
//! 5 傷病名区分 `01` = 医療資源を最も投入した傷病) and `KK` (1 予定・緊急入院区分: 1 予定, 2 緊急).
//!
//! Memory stays bounded by one month of receipts: chunks are generated in order and each
//! receipt's records go to a spill file of its service month; each month is then grouped by
//! file and written.

use crate::{Result, SynthDatasetError};
use kura_formats::uke::Writer;
use kura_synth::Generator;
use kura_synth::calendar::yyyymmdd;
use kura_synth::codes::Route;
use kura_synth::model::*;
use kura_synth::reference::InsurerKind;
use kura_synth::world::World;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

/// What [`write_uke`] wrote.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct UkeExport {
    /// UKE files written.
    pub files: u64,
    /// Receipts written.
    pub receipts: u64,
    /// Bytes of the UKE files.
    pub bytes: u64,
    /// The files, relative to the output directory, in the order written.
    pub paths: Vec<PathBuf>,
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> SynthDatasetError + '_ {
    move |source| SynthDatasetError::Io { path: path.display().to_string(), source }
}

/// Full-width digits and letters, as receipts write 記号・番号.
fn wide(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '0'..='9' | 'A'..='Z' | 'a'..='z' => char::from_u32(c as u32 - 0x21 + 0xFF01).unwrap_or(c),
            c => c,
        })
        .collect()
}

/// Which file of an institution's month a receipt goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum FileOf {
    /// 医科 (入院・入院外).
    Medical,
    /// DPC.
    Dpc,
    /// 調剤.
    Pharmacy,
}

impl FileOf {
    fn name(self) -> &'static str {
        match self {
            FileOf::Medical => "RECEIPTC.UKE",
            FileOf::Dpc => "RECEIPTD.UKE",
            FileOf::Pharmacy => "RECEIPTY.UKE",
        }
    }
    fn tag(self) -> char {
        match self {
            FileOf::Medical => 'C',
            FileOf::Dpc => 'D',
            FileOf::Pharmacy => 'Y',
        }
    }
    fn from_tag(c: &str) -> Option<FileOf> {
        match c {
            "C" => Some(FileOf::Medical),
            "D" => Some(FileOf::Dpc),
            "Y" => Some(FileOf::Pharmacy),
            _ => None,
        }
    }
}

/// 1 支払基金 (社保), 2 国保連 (国保・後期高齢者医療).
fn payer(world: &World, r: &Receipt) -> u8 {
    match world.insurer(r.insurer).kind {
        InsurerKind::Kokuho | InsurerKind::Koki => 2,
        InsurerKind::Kyokai | InsurerKind::Kumiai | InsurerKind::Kyosai => 1,
    }
}

fn date(d: Option<i32>) -> String {
    d.map(yyyymmdd).unwrap_or_default()
}

/// 剤形コード of a drug's route (Kura's reading of `SH` 2).
pub fn dosage_form(route: Route) -> &'static str {
    match route {
        Route::Oral => "1",
        Route::Injection => "4",
        Route::Topical => "5",
    }
}

/// The 31 day fields with the whole count on day 1 (Σ days = 回数, as the reader checks).
fn days(count: i32) -> impl Iterator<Item = String> {
    std::iter::once(count.to_string()).chain(std::iter::repeat_n(String::new(), 30))
}

/// The lines of one receipt, as records of fields; RE's レセプト番号 (field 1) is left empty
/// for the file writer to number.
struct ReceiptLines<'a> {
    r: &'a Receipt,
    w: &'a WrittenIdentity,
    dx: &'a [Diagnosis],
    si: &'a [ProcedureLine],
    iy: &'a [DrugLine],
    dpc: Option<&'a DpcRecord>,
    pharmacy: Option<&'a PharmacyRecord>,
}

impl ReceiptLines<'_> {
    fn records(&self, world: &World) -> Vec<Vec<String>> {
        let r = self.r;
        let w = self.w;
        let inst = world.institution(r.institution);
        let mut out = Vec::new();
        let insurer = format!("{:>8}", w.insurer);
        let s = String::from;
        let receipt_type = std::str::from_utf8(&r.receipt_type).unwrap_or("0000").to_string();
        let e = String::new;
        if r.kind == ReceiptKind::Pharmacy {
            let ph = self.pharmacy;
            let prescriber = ph.map(|p| world.institution(p.prescriber).code.clone()).unwrap_or_default();
            let (pref, rest) = prescriber.split_at(prescriber.len().min(2));
            let mut re =
                vec![s("RE"), e(), receipt_type, r.service_month.to_string(), w.name.clone(), r.sex.to_string(), w.birth_date.clone()];
            re.push(r.benefit_ratio.to_string()); // 7 給付割合
            re.push(e()); // 8 特記事項
            re.push(pref.to_string()); // 9 処方医療機関 都道府県
            re.push(rest.get(..1).unwrap_or_default().to_string()); // 10 点数表
            re.push(rest.get(1..).unwrap_or_default().to_string()); // 11 処方医療機関コード
            re.resize(41, String::new()); // 12–40
            re.push(w.kana.clone()); // 41 カタカナ氏名
            out.push(re);
            let prescriptions = ph.map_or(i32::from(r.actual_days), |p| i32::from(p.prescriptions));
            let mut ho = vec![s("HO"), insurer, wide(&w.kigo), wide(&w.bango), prescriptions.to_string(), r.total_points.to_string()];
            ho.resize(14, String::new());
            out.push(ho);
            for (n, d) in self.iy.iter().enumerate() {
                let no = (n + 1).to_string();
                let mut sh = vec![s("SH"), no.clone(), s(dosage_form(d.drug.route)), e(), e(), d.points.to_string()];
                sh.resize(10, String::new());
                out.push(sh);
                let mut cz = vec![s("CZ"), no, e(), e(), e(), d.count.to_string()];
                cz.resize(12, String::new());
                out.push(cz);
                let mut iy = vec![s("IY"), s("1"), s(d.drug.code), d.quantity.to_string()];
                iy.resize(10, String::new());
                out.push(iy);
            }
            return out;
        }
        let mut re = vec![s("RE"), e(), receipt_type, r.service_month.to_string(), w.name.clone(), r.sex.to_string(), w.birth_date.clone()];
        re.push(r.benefit_ratio.to_string()); // 7 給付割合
        re.push(date(r.admission_date)); // 8 入院年月日
        re.resize(12, String::new()); // 9–11
        re.push(if inst.beds > 0 { inst.beds.to_string() } else { String::new() }); // 12 病床数
        re.resize(36, String::new()); // 13–35
        re.push(w.kana.clone()); // 36 カタカナ氏名
        re.push(String::new()); // 37 患者の状態
        out.push(re);
        let mut ho = vec![s("HO"), insurer, wide(&w.kigo), wide(&w.bango), r.actual_days.to_string(), r.total_points.to_string()];
        ho.resize(15, String::new());
        out.push(ho);
        if let Some(d) = self.dpc {
            out.push(vec![s("BU"), s(d.group.code), yyyymmdd(d.admission_date), date(d.discharge_date), d.outcome.to_string(), e()]);
            out.push(vec![s("SB"), s(d.main_disease.code), e(), e(), s(d.main_disease.icd10), s("01"), e(), e()]);
            out.push(vec![s("KK"), s(if d.emergency { "2" } else { "1" }), e(), e(), e(), e(), e(), e(), e()]);
        }
        for d in self.dx {
            out.push(vec![
                s("SY"),
                s(d.disease.code),
                yyyymmdd(d.start_date),
                d.outcome.to_string(),
                s(d.modifiers),
                d.name_text.map(s).unwrap_or_default(),
                s(if d.main { "01" } else { "" }),
                e(),
            ]);
        }
        for p in self.si {
            let mut si = vec![
                s("SI"),
                s(p.procedure.practice_class),
                s("1"),
                s(p.procedure.code),
                e(),
                p.procedure.points.to_string(),
                p.count.to_string(),
            ];
            si.resize(13, String::new());
            si.extend(days(p.count));
            out.push(si);
        }
        for d in self.iy {
            let mut iy = vec![
                s("IY"),
                s(d.drug.route.practice_class()),
                s("1"),
                s(d.drug.code),
                d.quantity.to_string(),
                d.points.to_string(),
                d.count.to_string(),
            ];
            iy.resize(13, String::new());
            iy.extend(days(d.count));
            out.push(iy);
        }
        out
    }
}

/// Lines of a receipt's child table (sorted by receipt id) that belong to `id`, advancing `at`.
fn take<'a, T>(rows: &'a [T], at: &mut usize, id: i64, of: impl Fn(&T) -> i64) -> &'a [T] {
    let start = (*at).min(rows.len());
    let mut end = start;
    while rows.get(end).is_some_and(|x| of(x) < id) {
        end += 1;
    }
    let first = end;
    while rows.get(end).is_some_and(|x| of(x) == id) {
        end += 1;
    }
    *at = end;
    rows.get(first..end).unwrap_or_default()
}

fn id5_field(a: &Id5Answer) -> &str {
    match a {
        Id5Answer::Number(n) => n,
        Id5Answer::Nine => "9",
        Id5Answer::Null => "",
    }
}

/// Writes the population's receipts as UKE files under `out` (which must be empty or absent).
/// `progress` is called with the persons of each chunk generated.
pub fn write_uke(generator: &Generator, out: &Path, progress: &dyn Fn(u64)) -> Result<UkeExport> {
    if out.exists() && std::fs::read_dir(out).map_err(io(out))?.next().is_some() {
        return Err(SynthDatasetError::Io {
            path: out.display().to_string(),
            source: std::io::Error::other("出力先が空ではありません / the output directory is not empty: give a new one"),
        });
    }
    let spill_dir = out.join(".spill");
    std::fs::create_dir_all(&spill_dir).map_err(io(&spill_dir))?;
    let world = generator.world();
    let mut spills: BTreeMap<i32, BufWriter<std::fs::File>> = BTreeMap::new();
    for index in 0..generator.chunk_count() {
        let chunk = generator.generate_chunk_written(index);
        let (mut a, mut b, mut c, mut d, mut f) = (0, 0, 0, 0, 0);
        for (r, w) in chunk.receipts.iter().zip(&chunk.written) {
            let lines = ReceiptLines {
                r,
                w,
                dx: take(&chunk.diagnoses, &mut a, r.receipt_id, |x| x.receipt_id),
                si: take(&chunk.procedures, &mut b, r.receipt_id, |x| x.receipt_id),
                iy: take(&chunk.drugs, &mut c, r.receipt_id, |x| x.receipt_id),
                dpc: take(&chunk.dpc, &mut d, r.receipt_id, |x| x.receipt_id).first(),
                pharmacy: take(&chunk.pharmacy, &mut f, r.receipt_id, |x| x.receipt_id).first(),
            };
            let file = match (r.kind, lines.dpc.is_some()) {
                (ReceiptKind::Pharmacy, _) => FileOf::Pharmacy,
                (_, true) => FileOf::Dpc,
                _ => FileOf::Medical,
            };
            let spill = match spills.entry(r.service_month) {
                std::collections::btree_map::Entry::Occupied(o) => o.into_mut(),
                std::collections::btree_map::Entry::Vacant(v) => {
                    let p = spill_dir.join(r.service_month.to_string());
                    v.insert(BufWriter::new(std::fs::File::create(&p).map_err(io(&p))?))
                }
            };
            // One block per receipt: its file's key, the ID5 answer, then its records.
            let key = format!("@\t{}\t{}\t{}\t{}\n", r.institution, file.tag(), payer(world, r), id5_field(&w.id5));
            spill.write_all(key.as_bytes()).map_err(io(&spill_dir))?;
            for rec in lines.records(world) {
                spill.write_all(rec.join("\t").as_bytes()).map_err(io(&spill_dir))?;
                spill.write_all(b"\n").map_err(io(&spill_dir))?;
            }
        }
        progress(chunk.persons);
    }
    let mut summary = UkeExport::default();
    for (month, spill) in std::mem::take(&mut spills) {
        spill.into_inner().map_err(|e| io(&spill_dir)(e.into_error()))?;
        let p = spill_dir.join(month.to_string());
        write_month(world, out, month, &p, &mut summary)?;
        std::fs::remove_file(&p).map_err(io(&p))?;
    }
    std::fs::remove_dir(&spill_dir).map_err(io(&spill_dir))?;
    Ok(summary)
}

struct Block {
    id5: String,
    records: Vec<Vec<String>>,
}

fn write_month(world: &World, out: &Path, month: i32, spill: &Path, summary: &mut UkeExport) -> Result<()> {
    let corrupt = |what: &str| SynthDatasetError::Io { path: spill.display().to_string(), source: std::io::Error::other(what.to_string()) };
    let mut files: BTreeMap<(u32, u8, FileOf), Vec<Block>> = BTreeMap::new();
    let reader = BufReader::new(std::fs::File::open(spill).map_err(io(spill))?);
    let mut current: Option<&mut Vec<Block>> = None;
    for line in reader.lines() {
        let line = line.map_err(io(spill))?;
        let fields: Vec<String> = line.split('\t').map(str::to_string).collect();
        if fields.first().map(String::as_str) == Some("@") {
            let [_, inst, tag, payer, id5] = fields.as_slice() else { return Err(corrupt("a block key")) };
            let inst: u32 = inst.parse().map_err(|_| corrupt("an institution"))?;
            let file = FileOf::from_tag(tag).ok_or_else(|| corrupt("a file kind"))?;
            let payer: u8 = payer.parse().map_err(|_| corrupt("a payer"))?;
            let blocks = files.entry((inst, payer, file)).or_default();
            blocks.push(Block { id5: id5.clone(), records: Vec::new() });
            current = Some(blocks);
        } else {
            let blocks = current.as_deref_mut().ok_or_else(|| corrupt("records before a key"))?;
            blocks.last_mut().ok_or_else(|| corrupt("records before a key"))?.records.push(fields);
        }
    }
    let billing = kura_synth::calendar::Month::new(month / 100, (month % 100) as u32).plus(1).yyyymm().to_string();
    for ((inst, payer, file), blocks) in files {
        let inst = world.institution(inst);
        let code = inst.code.as_str();
        let dir = out.join("uke").join(month.to_string()).join(format!("{code}-{payer}"));
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        let path = dir.join(file.name());
        let mut w = Writer::new(BufWriter::new(std::fs::File::create(&path).map_err(io(&path))?));
        let (pref, rest) = code.split_at(2);
        let (table, code7) = rest.split_at(1);
        let header: Vec<String> = if file == FileOf::Pharmacy {
            ["YK", &payer.to_string(), pref, table, code7, &inst.name_ja, &billing, "00", ""].map(String::from).to_vec()
        } else {
            ["IR", &payer.to_string(), pref, table, code7, "", &inst.name_ja, &billing, "00", ""].map(String::from).to_vec()
        };
        w.record(&header)?;
        let mut id5 = String::new();
        let (mut payers, mut total) = (0u64, 0u64);
        for (n, mut b) in blocks.into_iter().enumerate() {
            let number = (n + 1).to_string();
            for rec in &mut b.records {
                match rec.first().map(String::as_str) {
                    Some("RE") => {
                        if let Some(f) = rec.get_mut(1) {
                            *f = number.clone();
                        }
                    }
                    Some("HO") => {
                        payers += 1;
                        total += rec.get(5).and_then(|t| t.parse::<u64>().ok()).unwrap_or(0);
                    }
                    _ => {}
                }
                w.record(rec)?;
            }
            id5.push_str(&format!("{number},{}\r\n", b.id5));
            summary.receipts += 1;
        }
        w.record(&["GO".to_string(), payers.to_string(), total.to_string(), "99".to_string()])?;
        w.finish(false)?;
        let id5_path = dir.join(format!("{}.ID5.CSV", file.name().trim_end_matches(".UKE")));
        std::fs::write(&id5_path, id5).map_err(io(&id5_path))?;
        summary.files += 1;
        summary.bytes += std::fs::metadata(&path).map_err(io(&path))?.len();
        summary.paths.push(path.strip_prefix(out).unwrap_or(&path).to_path_buf());
    }
    Ok(())
}
