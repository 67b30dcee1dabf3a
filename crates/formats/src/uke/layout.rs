//! The record layouts: per kind of file and record type, its field counts and the fields Kura
//! checks (`../shared/domain/data.md` §1.3–§1.5, 0-based as there).
//!
//! Record types whose fields data.md does not give reliably (DPC's, 調剤's SH/CZ, 歯科's HS,
//! the 臓器提供 and 国保連 records) are accepted by name with any field count and kept as read;
//! a record type not listed at all is refused.

/// What kind of claims a file holds, from its first record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FileKind {
    /// 医科 (and DPC: IR 点数表 1; DPC records may appear), from `IR`.
    Medical,
    /// 歯科, from `UK` or an `IR` with 点数表 3.
    Dental,
    /// 調剤, from `YK`.
    Pharmacy,
    /// 訪問看護 (IR 点数表 6): only the common records are checked.
    VisitingNursing,
}

impl FileKind {
    /// The kind's 点数表 digit (`IR` 3, the first digit of every レセプト種別).
    pub fn table(self) -> u8 {
        match self {
            FileKind::Medical => b'1',
            FileKind::Dental => b'3',
            FileKind::Pharmacy => b'4',
            FileKind::VisitingNursing => b'6',
        }
    }

    /// The kind an `IR` record's 点数表 names (調剤 files start with `YK`, not `IR`).
    pub fn from_ir_table(table: &str) -> Option<FileKind> {
        [FileKind::Medical, FileKind::Dental, FileKind::VisitingNursing].into_iter().find(|k| table.as_bytes() == [k.table()])
    }

    /// The kind's Japanese name.
    pub fn name_ja(self) -> &'static str {
        match self {
            FileKind::Medical => "医科",
            FileKind::Dental => "歯科",
            FileKind::Pharmacy => "調剤",
            FileKind::VisitingNursing => "訪問看護",
        }
    }
}

/// What a field must hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Any text (never a comma: the record is split on them).
    Text,
    /// Exactly this many ASCII digits.
    Digits(usize),
    /// One to this many ASCII digits (a count, points, a number).
    Number(usize),
    /// A decimal quantity (digits with at most one point).
    Decimal,
    /// A date: `GYYMMDD` or `YYYYMMDD`.
    Date,
    /// A month: `GYYMM` or `YYYYMM`.
    Month,
    /// One of these values.
    OneOf(&'static [&'static str]),
    /// 都道府県番号 01–47.
    Prefecture,
    /// レセプト種別: four digits read digit by digit.
    ReceiptType,
    /// 保険者番号: 8 digits, or 6 (国保) right-aligned in 8 with spaces; its last digit is the
    /// 検証番号.
    Insurer,
    /// 修飾語コード: 4-digit codes joined, at most 20.
    Modifiers,
    /// 負担区分: one of the 31 codes.
    Burden,
    /// A 9-digit code of a master, its first digit the master's (data.md §6.1: 診療行為 1,
    /// 医薬品 6, 特定器材 7, コメント 8).
    Code {
        /// The first digit, as an ASCII byte.
        lead: u8,
    },
}

/// One checked field.
#[derive(Debug, Clone, Copy)]
pub struct Field {
    /// Its index in the record (0 is the record type).
    pub at: usize,
    /// Its name (Japanese, as the specification calls it).
    pub name: &'static str,
    /// What it must hold.
    pub kind: Kind,
    /// Whether it must not be empty.
    pub required: bool,
}

/// One record type's layout.
#[derive(Debug, Clone, Copy)]
pub struct Layout {
    /// The record type.
    pub id: &'static str,
    /// Its name.
    pub name: &'static str,
    /// The field counts accepted (the record type included); empty: any (not checked).
    pub counts: &'static [usize],
    /// The fields checked.
    pub fields: &'static [Field],
}

const fn f(at: usize, name: &'static str, kind: Kind, required: bool) -> Field {
    Field { at, name, kind, required }
}

/// The 31 負担区分 codes, one per non-empty set of {医保, 公1–4} (data.md §1.3; 8, A, D and F
/// are unused).
pub const BURDEN_CODES: &[&str] = &[
    "1", "2", "3", "4", "5", "6", "7", "9", "B", "C", "E", "G", "H", "I", "J", "K", "L", "M", "N", "O", "P", "Q", "R", "S", "T", "U", "V",
    "W", "X", "Y", "Z",
];

const PROCEDURE: Kind = Kind::Code { lead: b'1' };
const DRUG: Kind = Kind::Code { lead: b'6' };
const DEVICE: Kind = Kind::Code { lead: b'7' };
const COMMENT: Kind = Kind::Code { lead: b'8' };

const PAYER: Kind = Kind::OneOf(&["1", "2"]);
const SEX: Kind = Kind::OneOf(&["1", "2"]);
const OUTCOME: Kind = Kind::OneOf(&["1", "2", "3", "4"]);

/// Day fields 1–31 from `first`: counts per day.
macro_rules! days {
    ($first:expr) => {
        [
            f($first, "算定日1", Kind::Number(3), false),
            f($first + 1, "算定日2", Kind::Number(3), false),
            f($first + 2, "算定日3", Kind::Number(3), false),
            f($first + 3, "算定日4", Kind::Number(3), false),
            f($first + 4, "算定日5", Kind::Number(3), false),
            f($first + 5, "算定日6", Kind::Number(3), false),
            f($first + 6, "算定日7", Kind::Number(3), false),
            f($first + 7, "算定日8", Kind::Number(3), false),
            f($first + 8, "算定日9", Kind::Number(3), false),
            f($first + 9, "算定日10", Kind::Number(3), false),
            f($first + 10, "算定日11", Kind::Number(3), false),
            f($first + 11, "算定日12", Kind::Number(3), false),
            f($first + 12, "算定日13", Kind::Number(3), false),
            f($first + 13, "算定日14", Kind::Number(3), false),
            f($first + 14, "算定日15", Kind::Number(3), false),
            f($first + 15, "算定日16", Kind::Number(3), false),
            f($first + 16, "算定日17", Kind::Number(3), false),
            f($first + 17, "算定日18", Kind::Number(3), false),
            f($first + 18, "算定日19", Kind::Number(3), false),
            f($first + 19, "算定日20", Kind::Number(3), false),
            f($first + 20, "算定日21", Kind::Number(3), false),
            f($first + 21, "算定日22", Kind::Number(3), false),
            f($first + 22, "算定日23", Kind::Number(3), false),
            f($first + 23, "算定日24", Kind::Number(3), false),
            f($first + 24, "算定日25", Kind::Number(3), false),
            f($first + 25, "算定日26", Kind::Number(3), false),
            f($first + 26, "算定日27", Kind::Number(3), false),
            f($first + 27, "算定日28", Kind::Number(3), false),
            f($first + 28, "算定日29", Kind::Number(3), false),
            f($first + 29, "算定日30", Kind::Number(3), false),
            f($first + 30, "算定日31", Kind::Number(3), false),
        ]
    };
}

/// The first day field of 医科 SI and IY records.
pub const SI_DAYS: usize = 13;
/// The first day field of 医科 TO records.
pub const TO_DAYS: usize = 17;

const SI_HEAD: [Field; 6] = [
    f(1, "診療識別", Kind::Digits(2), false),
    f(2, "負担区分", Kind::Burden, true),
    f(3, "診療行為コード", PROCEDURE, true),
    f(4, "数量データ", Kind::Decimal, false),
    f(5, "点数", Kind::Number(7), false),
    f(6, "回数", Kind::Number(3), true),
];
const IY_HEAD: [Field; 6] = [
    f(1, "診療識別", Kind::Digits(2), false),
    f(2, "負担区分", Kind::Burden, true),
    f(3, "医薬品コード", DRUG, true),
    f(4, "使用量", Kind::Decimal, false),
    f(5, "点数", Kind::Number(7), false),
    f(6, "回数", Kind::Number(3), true),
];
const TO_HEAD: [Field; 6] = [
    f(1, "診療識別", Kind::Digits(2), false),
    f(2, "負担区分", Kind::Burden, true),
    f(3, "特定器材コード", DEVICE, true),
    f(4, "使用量", Kind::Decimal, false),
    f(5, "点数", Kind::Number(7), false),
    f(6, "回数", Kind::Number(3), true),
];

/// `a` then `b` (evaluated at compile time: a wrong `N` does not compile).
#[allow(clippy::indexing_slicing)]
const fn join<const A: usize, const B: usize, const N: usize>(a: [Field; A], b: [Field; B]) -> [Field; N] {
    assert!(N == A + B);
    let mut out = [f(0, "", Kind::Text, false); N];
    let mut i = 0;
    while i < A {
        out[i] = a[i];
        i += 1;
    }
    let mut j = 0;
    while j < B {
        out[A + j] = b[j];
        j += 1;
    }
    out
}

/// The fields every kind's `RE` starts with; `month` names field 3 (診療年月, 調剤年月).
const fn re_head(month: &'static str) -> [Field; 6] {
    [
        f(1, "レセプト番号", Kind::Number(6), true),
        f(2, "レセプト種別", Kind::ReceiptType, true),
        f(3, month, Kind::Month, true),
        f(4, "氏名", Kind::Text, true),
        f(5, "男女区分", SEX, true),
        f(6, "生年月日", Kind::Date, true),
    ]
}

const RE_MEDICAL: [Field; 9] = join(
    re_head("診療年月"),
    [f(7, "給付割合", Kind::Number(3), false), f(8, "入院年月日", Kind::Date, false), f(12, "病床数", Kind::Number(4), false)],
);
const RE_PHARMACY: [Field; 9] = join(
    re_head("調剤年月"),
    [
        f(7, "給付割合", Kind::Number(3), false),
        f(9, "処方医療機関 都道府県", Kind::Prefecture, false),
        f(11, "処方医療機関コード", Kind::Digits(7), false),
    ],
);
const RE_DENTAL: [Field; 8] = join(re_head("診療年月"), [f(9, "診療開始日", Kind::Date, false), f(10, "転帰区分", OUTCOME, false)]);

const SI_FIELDS: [Field; 37] = join(SI_HEAD, days!(SI_DAYS));
const IY_FIELDS: [Field; 37] = join(IY_HEAD, days!(SI_DAYS));
const TO_FIELDS: [Field; 37] = join(TO_HEAD, days!(TO_DAYS));

/// 医科 (and DPC) layouts.
const MEDICAL: &[Layout] = &[
    Layout {
        id: "IR",
        name: "医療機関情報",
        counts: &[10],
        fields: &[
            f(1, "審査支払機関", PAYER, true),
            f(2, "都道府県", Kind::Prefecture, true),
            f(3, "点数表", Kind::OneOf(&["1", "3", "4", "6"]), true),
            f(4, "医療機関コード", Kind::Digits(7), true),
            f(7, "請求年月", Kind::Month, true),
            f(8, "マルチボリューム識別", Kind::Digits(2), true),
        ],
    },
    Layout { id: "RE", name: "レセプト共通", counts: &[38, 36], fields: &RE_MEDICAL },
    Layout {
        id: "HO",
        name: "保険者",
        counts: &[15],
        fields: &[
            f(1, "保険者番号", Kind::Insurer, false),
            f(4, "診療実日数", Kind::Number(2), true),
            f(5, "合計点数", Kind::Number(8), true),
            f(7, "食事療養・生活療養 回数", Kind::Number(3), false),
            f(8, "食事療養・生活療養 合計金額", Kind::Number(8), false),
            f(11, "負担金額（医療保険）", Kind::Number(8), false),
        ],
    },
    Layout {
        id: "KO",
        name: "公費",
        counts: &[12],
        fields: &[
            f(1, "公費負担者番号", Kind::Digits(8), true),
            f(2, "公費受給者番号", Kind::Number(7), false),
            f(4, "診療実日数", Kind::Number(2), false),
            f(5, "合計点数", Kind::Number(8), false),
            f(6, "負担金額（公費）", Kind::Number(8), false),
        ],
    },
    Layout { id: "SN", name: "資格確認", counts: &[9], fields: &[] },
    Layout {
        id: "SY",
        name: "傷病名",
        counts: &[8],
        fields: &[
            f(1, "傷病名コード", Kind::Digits(7), true),
            f(2, "診療開始日", Kind::Date, true),
            f(3, "転帰区分", OUTCOME, true),
            f(4, "修飾語コード", Kind::Modifiers, false),
            f(6, "主傷病", Kind::OneOf(&["01"]), false),
        ],
    },
    Layout { id: "SI", name: "診療行為", counts: &[44], fields: &SI_FIELDS },
    Layout { id: "IY", name: "医薬品", counts: &[44], fields: &IY_FIELDS },
    Layout { id: "TO", name: "特定器材", counts: &[48], fields: &TO_FIELDS },
    Layout {
        id: "CO",
        name: "コメント",
        counts: &[5],
        fields: &[
            f(1, "診療識別", Kind::Digits(2), false),
            f(2, "負担区分", Kind::Burden, false),
            f(3, "コメントコード", Kind::Digits(9), true),
        ],
    },
    Layout {
        id: "SJ",
        name: "症状詳記",
        counts: &[3],
        fields: &[f(1, "症状詳記区分", Kind::Digits(2), true), f(2, "症状詳記データ", Kind::Text, true)],
    },
    GO,
];

const GO: Layout = Layout {
    id: "GO",
    name: "請求書",
    counts: &[4],
    fields: &[
        f(1, "総件数", Kind::Number(8), true),
        f(2, "総合計点数", Kind::Number(12), true),
        f(3, "マルチボリューム識別", Kind::Digits(2), true),
    ],
};

/// Record types accepted by name only, per kind.
const MEDICAL_UNCHECKED: &[(&str, &str)] = &[
    ("TI", "臓器提供医療機関情報"),
    ("TR", "臓器提供者レセプト情報"),
    ("TS", "臓器提供者請求情報"),
    ("JD", "受診日等"),
    ("MF", "窓口負担額"),
    ("KH", "国保連固有情報"),
    ("NI", "日計表"),
    ("GR", "包括評価対象外理由"),
    ("BU", "診断群分類"),
    ("SB", "傷病（DPC）"),
    ("KK", "患者基礎"),
    ("SK", "診療関連"),
    ("GA", "外泊"),
    ("HH", "包括評価"),
    ("GT", "合計調整"),
    ("CD", "コーディングデータ"),
];

/// The DPC record types: a receipt holding one is a DPC receipt.
pub const DPC_RECORDS: &[&str] = &["GR", "BU", "SB", "KK", "SK", "GA", "HH", "GT", "CD"];

/// 調剤 layouts (data.md §1.4: YK, RE, HO and KO differ from 医科).
const PHARMACY: &[Layout] = &[
    Layout {
        id: "YK",
        name: "薬局情報",
        counts: &[9],
        fields: &[
            f(1, "審査支払機関", PAYER, true),
            f(2, "都道府県", Kind::Prefecture, true),
            f(3, "点数表", Kind::OneOf(&["4"]), true),
            f(4, "薬局コード", Kind::Digits(7), true),
            f(6, "請求年月", Kind::Month, true),
            f(7, "マルチボリューム識別", Kind::Digits(2), true),
        ],
    },
    Layout { id: "RE", name: "レセプト共通", counts: &[42], fields: &RE_PHARMACY },
    Layout {
        id: "HO",
        name: "保険者",
        counts: &[14],
        fields: &[
            f(1, "保険者番号", Kind::Insurer, false),
            f(4, "処方箋受付回数", Kind::Number(3), true),
            f(5, "合計点数", Kind::Number(8), true),
        ],
    },
    Layout {
        id: "KO",
        name: "公費",
        counts: &[10],
        fields: &[
            f(1, "公費負担者番号", Kind::Digits(8), true),
            f(2, "公費受給者番号", Kind::Number(7), false),
            f(5, "合計点数", Kind::Number(8), false),
        ],
    },
    Layout {
        id: "IY",
        name: "医薬品",
        counts: &[10],
        fields: &[f(1, "負担区分", Kind::Burden, true), f(2, "医薬品コード", DRUG, true), f(3, "使用量", Kind::Decimal, false)],
    },
    Layout {
        id: "TO",
        name: "特定器材",
        counts: &[7],
        fields: &[f(1, "負担区分", Kind::Burden, true), f(2, "特定器材コード", DEVICE, true), f(3, "使用量", Kind::Decimal, false)],
    },
    Layout { id: "CO", name: "コメント", counts: &[3], fields: &[f(1, "コメントコード", COMMENT, true)] },
    Layout { id: "TK", name: "摘要", counts: &[3], fields: &[f(1, "コメントコード", COMMENT, true)] },
    GO,
];

const PHARMACY_UNCHECKED: &[(&str, &str)] =
    &[("SH", "処方基本"), ("CZ", "調剤情報"), ("KI", "分割調剤"), ("ST", "分割調剤"), ("SN", "資格確認"), ("JD", "受診日等")];

/// 歯科 layouts (data.md §1.5).
const DENTAL: &[Layout] = &[
    Layout {
        id: "IR",
        name: "医療機関情報",
        counts: &[9, 10],
        fields: &[
            f(1, "審査支払機関", PAYER, true),
            f(2, "都道府県", Kind::Prefecture, true),
            f(3, "点数表", Kind::OneOf(&["3"]), true),
            f(4, "医療機関コード", Kind::Digits(7), true),
        ],
    },
    Layout { id: "RE", name: "レセプト共通", counts: &[27], fields: &RE_DENTAL },
    Layout {
        id: "HO",
        name: "保険者",
        counts: &[14],
        fields: &[
            f(1, "保険者番号", Kind::Insurer, false),
            f(4, "診療実日数", Kind::Number(2), true),
            f(5, "合計点数", Kind::Number(8), true),
        ],
    },
    Layout {
        id: "KO",
        name: "公費",
        counts: &[10],
        fields: &[f(1, "公費負担者番号", Kind::Digits(8), true), f(5, "合計点数", Kind::Number(8), false)],
    },
    Layout { id: "SS", name: "歯科診療行為", counts: &[109], fields: &[] },
    Layout { id: "SI", name: "診療行為", counts: &[38], fields: &[] },
    Layout { id: "TO", name: "特定器材", counts: &[45], fields: &[] },
    GO,
];

const DENTAL_UNCHECKED: &[(&str, &str)] =
    &[("UK", "受付情報"), ("HS", "傷病名部位"), ("IY", "医薬品"), ("CO", "コメント"), ("SN", "資格確認"), ("JD", "受診日等")];

/// The layout of record `id` in a file of `kind`: `Some(layout)` with its fields, or a
/// name-only layout for the record types accepted unchecked; `None` for a record type the kind
/// does not have.
pub fn layout(kind: FileKind, id: &str) -> Option<Layout> {
    let (checked, unchecked) = match kind {
        FileKind::Medical | FileKind::VisitingNursing => (MEDICAL, MEDICAL_UNCHECKED),
        FileKind::Pharmacy => (PHARMACY, PHARMACY_UNCHECKED),
        FileKind::Dental => (DENTAL, DENTAL_UNCHECKED),
    };
    checked
        .iter()
        .find(|l| l.id == id)
        .copied()
        .or_else(|| unchecked.iter().find(|(i, _)| *i == id).map(|(id, name)| Layout { id, name, counts: &[], fields: &[] }))
}

/// The 検証番号 (check digit) of a 保険者番号's other digits: from the last digit leftwards
/// each is multiplied by 2, 1, 2, …, the digits of the products are added, and the check digit
/// is 10 minus the sum's last digit (0 where that is 0) — MHLW 保険者番号設定要領.
pub fn insurer_check_digit(body: &str) -> Option<u8> {
    let mut sum = 0u32;
    for (i, b) in body.bytes().rev().enumerate() {
        let d = u32::from(b.checked_sub(b'0').filter(|d| *d <= 9)?);
        let p = if i % 2 == 0 { d * 2 } else { d };
        sum += p / 10 + p % 10;
    }
    Some(((10 - sum % 10) % 10) as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_check_digit_of_a_published_example() {
        // 33 (法別) 12 (千葉) 001 → 5: 3·2 + 3·1 + 1·2 + 2·1 + 0·2 + 0·1 + 1·2 = 15 → 10 − 5.
        assert_eq!(insurer_check_digit("3312001"), Some(5));
        assert_eq!(insurer_check_digit("13306"), Some(6));
        assert_eq!(insurer_check_digit("13x06"), None);
    }

    #[test]
    fn layouts_are_consistent() {
        for kind in [FileKind::Medical, FileKind::Pharmacy, FileKind::Dental] {
            for id in ["RE", "HO", "KO", "GO"] {
                let l = layout(kind, id);
                assert!(l.is_some_and(|l| !l.counts.is_empty()), "{kind:?} {id}");
            }
        }
        for l in MEDICAL.iter().chain(PHARMACY).chain(DENTAL) {
            let least = l.counts.iter().copied().min().unwrap_or(usize::MAX);
            for f in l.fields {
                assert!(f.at > 0 && f.at < least, "{} field {} {}", l.id, f.at, f.name);
            }
        }
        assert!(layout(FileKind::Medical, "ZZ").is_none());
        assert_eq!(BURDEN_CODES.len(), 31);
        assert!(layout(FileKind::Medical, "BU").is_some_and(|l| l.counts.is_empty()));
    }
}
