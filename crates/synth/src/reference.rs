//! Reference tables: prefectures, the age/sex structure, names and insurers.
//!
//! Population figures are rounded public statistics (2020 census by prefecture; 2023 population
//! estimates by 5-year age band, in thousands) and are only used as sampling weights. The
//! calibration targets of `data.md` §9 are checked in this crate's tests.

/// A prefecture (都道府県) with its JIS code, names, population (thousands) and share aged 65+.
#[derive(Clone, Copy, Debug)]
pub struct Prefecture {
    /// JIS X 0401 code, 1–47.
    pub code: u8,
    /// Japanese name.
    pub name_ja: &'static str,
    /// English name.
    pub name_en: &'static str,
    /// Population in thousands (2020 census, rounded).
    pub population_k: u32,
    /// Share of the population aged 65 or over, percent (approximate, 2020).
    pub aged_pct: f64,
}

macro_rules! prefs {
    ($(($c:expr, $ja:expr, $en:expr, $p:expr, $a:expr)),* $(,)?) => {
        /// The 47 prefectures in JIS order.
        pub const PREFECTURES: [Prefecture; 47] = [$(Prefecture { code: $c, name_ja: $ja, name_en: $en, population_k: $p, aged_pct: $a }),*];
    };
}

prefs![
    (1, "北海道", "Hokkaido", 5225, 32.1),
    (2, "青森県", "Aomori", 1238, 33.7),
    (3, "岩手県", "Iwate", 1211, 34.6),
    (4, "宮城県", "Miyagi", 2302, 28.3),
    (5, "秋田県", "Akita", 960, 37.5),
    (6, "山形県", "Yamagata", 1068, 34.0),
    (7, "福島県", "Fukushima", 1833, 31.7),
    (8, "茨城県", "Ibaraki", 2867, 29.7),
    (9, "栃木県", "Tochigi", 1933, 29.6),
    (10, "群馬県", "Gunma", 1939, 30.2),
    (11, "埼玉県", "Saitama", 7345, 26.7),
    (12, "千葉県", "Chiba", 6284, 27.6),
    (13, "東京都", "Tokyo", 14048, 22.7),
    (14, "神奈川県", "Kanagawa", 9237, 25.6),
    (15, "新潟県", "Niigata", 2201, 32.8),
    (16, "富山県", "Toyama", 1035, 32.6),
    (17, "石川県", "Ishikawa", 1133, 29.8),
    (18, "福井県", "Fukui", 767, 30.6),
    (19, "山梨県", "Yamanashi", 810, 31.1),
    (20, "長野県", "Nagano", 2048, 32.2),
    (21, "岐阜県", "Gifu", 1979, 30.4),
    (22, "静岡県", "Shizuoka", 3633, 30.1),
    (23, "愛知県", "Aichi", 7542, 25.3),
    (24, "三重県", "Mie", 1770, 29.9),
    (25, "滋賀県", "Shiga", 1414, 26.3),
    (26, "京都府", "Kyoto", 2578, 29.3),
    (27, "大阪府", "Osaka", 8838, 27.6),
    (28, "兵庫県", "Hyogo", 5465, 29.3),
    (29, "奈良県", "Nara", 1324, 31.7),
    (30, "和歌山県", "Wakayama", 923, 33.4),
    (31, "鳥取県", "Tottori", 553, 32.4),
    (32, "島根県", "Shimane", 671, 34.7),
    (33, "岡山県", "Okayama", 1888, 30.6),
    (34, "広島県", "Hiroshima", 2800, 29.4),
    (35, "山口県", "Yamaguchi", 1342, 34.6),
    (36, "徳島県", "Tokushima", 720, 34.2),
    (37, "香川県", "Kagawa", 950, 31.8),
    (38, "愛媛県", "Ehime", 1335, 33.0),
    (39, "高知県", "Kochi", 692, 35.5),
    (40, "福岡県", "Fukuoka", 5135, 27.9),
    (41, "佐賀県", "Saga", 811, 30.6),
    (42, "長崎県", "Nagasaki", 1312, 33.1),
    (43, "熊本県", "Kumamoto", 1738, 31.6),
    (44, "大分県", "Oita", 1124, 33.3),
    (45, "宮崎県", "Miyazaki", 1070, 32.6),
    (46, "鹿児島県", "Kagoshima", 1588, 32.5),
    (47, "沖縄県", "Okinawa", 1467, 22.6),
];

/// Looks a prefecture up by its JIS code.
pub fn prefecture(code: u8) -> Option<&'static Prefecture> {
    PREFECTURES.get(usize::from(code).checked_sub(1)?)
}

/// Lower bound (years) of each 5-year age band; the last band is 100+.
pub const AGE_BANDS: [u8; 21] = [0, 5, 10, 15, 20, 25, 30, 35, 40, 45, 50, 55, 60, 65, 70, 75, 80, 85, 90, 95, 100];

/// National population by age band, men, thousands (2023 estimates, rounded).
pub const MEN_K: [u32; 21] =
    [2080, 2400, 2650, 2810, 3090, 3210, 3230, 3580, 4000, 4690, 4760, 4000, 3660, 3560, 3900, 3500, 2650, 1400, 520, 100, 10];
/// National population by age band, women, thousands (2023 estimates, rounded).
pub const WOMEN_K: [u32; 21] =
    [1980, 2290, 2520, 2670, 2950, 3070, 3100, 3450, 3870, 4560, 4680, 4000, 3720, 3780, 4400, 4200, 3550, 2400, 1350, 450, 80];

/// A family name in kanji and katakana.
pub const SURNAMES: [(&str, &str); 40] = [
    ("佐藤", "サトウ"),
    ("鈴木", "スズキ"),
    ("高橋", "タカハシ"),
    ("田中", "タナカ"),
    ("伊藤", "イトウ"),
    ("渡辺", "ワタナベ"),
    ("山本", "ヤマモト"),
    ("中村", "ナカムラ"),
    ("小林", "コバヤシ"),
    ("加藤", "カトウ"),
    ("吉田", "ヨシダ"),
    ("山田", "ヤマダ"),
    ("佐々木", "ササキ"),
    ("山口", "ヤマグチ"),
    ("松本", "マツモト"),
    ("井上", "イノウエ"),
    ("木村", "キムラ"),
    ("林", "ハヤシ"),
    ("斎藤", "サイトウ"),
    ("清水", "シミズ"),
    ("山崎", "ヤマザキ"),
    ("森", "モリ"),
    ("池田", "イケダ"),
    ("橋本", "ハシモト"),
    ("阿部", "アベ"),
    ("石川", "イシカワ"),
    ("山下", "ヤマシタ"),
    ("中島", "ナカジマ"),
    ("石井", "イシイ"),
    ("小川", "オガワ"),
    ("前田", "マエダ"),
    ("岡田", "オカダ"),
    ("長谷川", "ハセガワ"),
    ("藤田", "フジタ"),
    ("後藤", "ゴトウ"),
    ("近藤", "コンドウ"),
    ("村上", "ムラカミ"),
    ("遠藤", "エンドウ"),
    ("青木", "アオキ"),
    ("坂本", "サカモト"),
];

/// Given names of men in kanji and katakana.
pub const MEN_NAMES: [(&str, &str); 20] = [
    ("翔太", "ショウタ"),
    ("大輔", "ダイスケ"),
    ("健太", "ケンタ"),
    ("拓也", "タクヤ"),
    ("誠", "マコト"),
    ("浩", "ヒロシ"),
    ("隆", "タカシ"),
    ("博之", "ヒロユキ"),
    ("清", "キヨシ"),
    ("茂", "シゲル"),
    ("蓮", "レン"),
    ("湊", "ミナト"),
    ("陽翔", "ハルト"),
    ("大翔", "ヒロト"),
    ("悠真", "ユウマ"),
    ("和夫", "カズオ"),
    ("正", "タダシ"),
    ("修", "オサム"),
    ("勇", "イサム"),
    ("進", "ススム"),
];

/// Given names of women in kanji and katakana.
pub const WOMEN_NAMES: [(&str, &str); 20] = [
    ("花子", "ハナコ"),
    ("陽子", "ヨウコ"),
    ("恵子", "ケイコ"),
    ("幸子", "サチコ"),
    ("和子", "カズコ"),
    ("美穂", "ミホ"),
    ("愛", "アイ"),
    ("彩", "アヤ"),
    ("結衣", "ユイ"),
    ("陽菜", "ヒナ"),
    ("葵", "アオイ"),
    ("芽依", "メイ"),
    ("さくら", "サクラ"),
    ("由美子", "ユミコ"),
    ("裕子", "ユウコ"),
    ("久美子", "クミコ"),
    ("直美", "ナオミ"),
    ("智子", "トモコ"),
    ("真由美", "マユミ"),
    ("明美", "アケミ"),
];

/// The kinds of public health insurer (保険者種別).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InsurerKind {
    /// 全国健康保険協会 (協会けんぽ): law number 01.
    Kyokai,
    /// 健康保険組合 (組合健保): law number 06.
    Kumiai,
    /// 共済組合: law number 31.
    Kyosai,
    /// 市町村国民健康保険: a 6-digit insurer number.
    Kokuho,
    /// 後期高齢者医療広域連合 (ages 75+): law number 39.
    Koki,
}

impl InsurerKind {
    /// The two-digit 法別番号 of employee and elderly schemes; `None` for 国保 (6-digit numbers).
    pub fn law_number(self) -> Option<&'static str> {
        match self {
            InsurerKind::Kyokai => Some("01"),
            InsurerKind::Kumiai => Some("06"),
            InsurerKind::Kyosai => Some("31"),
            InsurerKind::Koki => Some("39"),
            InsurerKind::Kokuho => None,
        }
    }
}

/// Luhn (modulus 10, weights 2-1) check digit over a string of ASCII digits.
/// ⚠️ The official check-digit rule of 保険者番号 and 医療機関コード is not confirmed in data.md;
/// it is used here only to make numbers look well-formed.
pub fn luhn_digit(digits: &str) -> char {
    let mut sum = 0u32;
    for (i, b) in digits.bytes().rev().enumerate() {
        let mut d = u32::from(b - b'0');
        if i % 2 == 0 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
    }
    char::from(b'0' + ((10 - sum % 10) % 10) as u8)
}

/// Builds an insurer number (保険者番号): 8 digits (法別番号 + 都道府県 + 3-digit serial + check)
/// or, for 国保, 6 digits (都道府県 + 3-digit serial + check).
pub fn insurer_number(kind: InsurerKind, prefecture: u8, serial: u16) -> String {
    let body = match kind.law_number() {
        Some(law) => format!("{law}{prefecture:02}{:03}", serial % 1000),
        None => format!("{prefecture:02}{:03}", serial % 1000),
    };
    let c = luhn_digit(&body);
    format!("{body}{c}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefecture_table_is_complete() {
        for (i, p) in PREFECTURES.iter().enumerate() {
            assert_eq!(usize::from(p.code), i + 1);
        }
        let total: u32 = PREFECTURES.iter().map(|p| p.population_k).sum();
        assert!((125_000..128_000).contains(&total), "{total}");
        assert_eq!(prefecture(13).unwrap().name_en, "Tokyo");
        assert!(prefecture(0).is_none() && prefecture(48).is_none());
    }

    #[test]
    fn insurer_numbers_have_the_right_shape() {
        assert_eq!(insurer_number(InsurerKind::Kyokai, 13, 1).len(), 8);
        assert!(insurer_number(InsurerKind::Kyokai, 13, 1).starts_with("0113"));
        assert_eq!(insurer_number(InsurerKind::Kokuho, 13, 306).len(), 6);
        assert_eq!(luhn_digit("7992739871"), '3');
    }
}
