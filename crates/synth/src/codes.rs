//! The code masters: diseases (傷病名), modifiers (修飾語), drugs (医薬品), procedures (診療行為),
//! checkup items (JLAC10), care services (サービス種類) and DPC groups.
//!
//! Every entry says where its code comes from ([`Provenance`]): codes that `data.md` confirms are
//! [`Provenance::Confirmed`]; real-looking codes from general knowledge that data.md does not
//! confirm are [`Provenance::Unverified`]; codes invented for the synthetic data use reserved
//! ranges (傷病名 `99xxxxx`, 医薬品 `699xxxxxx`, 診療行為 `199xxxxxx`) and are
//! [`Provenance::Synthetic`]. Points and prices are plausible, not official.

/// Where a code comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Provenance {
    /// Seen in a source cited by `data.md` (✅).
    Confirmed,
    /// A real code from general knowledge, not confirmed in `data.md` (⚠️).
    Unverified,
    /// Invented for synthetic data, in a reserved range.
    Synthetic,
}

impl Provenance {
    /// A label for the catalogue, Japanese then English.
    pub fn label(self) -> &'static str {
        match self {
            Provenance::Confirmed => "確認済 confirmed",
            Provenance::Unverified => "未確認 unverified",
            Provenance::Synthetic => "合成 synthetic",
        }
    }
}

/// A disease name (傷病名マスター): 7-digit code, names and ICD-10.
#[derive(Clone, Copy, Debug)]
pub struct Disease {
    /// 傷病名コード (7 digits).
    pub code: &'static str,
    /// 基本名称.
    pub name_ja: &'static str,
    /// English name.
    pub name_en: &'static str,
    /// ICD-10 code (the pairing is ⚠️ unless confirmed).
    pub icd10: &'static str,
    /// Where the code comes from.
    pub provenance: Provenance,
}

macro_rules! diseases {
    ($($id:ident = ($c:expr, $ja:expr, $en:expr, $icd:expr, $p:ident);)*) => {
        $(#[doc = $en] pub const $id: Disease = Disease { code: $c, name_ja: $ja, name_en: $en, icd10: $icd, provenance: Provenance::$p };)*
        /// Every disease of the master.
        pub const DISEASES: &[Disease] = &[$($id),*];
    };
}

diseases! {
    DM2 = ("2500015", "2型糖尿病", "Type 2 diabetes mellitus", "E119", Confirmed);
    DM1 = ("2500014", "1型糖尿病", "Type 1 diabetes mellitus", "E109", Confirmed);
    HT = ("8833421", "高血圧症", "Hypertension", "I10", Confirmed);
    EHT = ("8840107", "本態性高血圧症", "Essential hypertension", "I10", Confirmed);
    DL = ("8844446", "脂質異常症", "Dyslipidaemia", "E785", Confirmed);
    UNCODED = ("0000999", "未コード化傷病名", "Uncoded diagnosis (name in free text)", "", Confirmed);
    CKD = ("9900001", "慢性腎臓病", "Chronic kidney disease", "N189", Synthetic);
    DEMENTIA = ("9900002", "認知症", "Dementia", "F03", Synthetic);
    ALZHEIMER = ("9900003", "アルツハイマー型認知症", "Alzheimer's disease dementia", "G309", Synthetic);
    INFLUENZA = ("9900004", "インフルエンザ", "Influenza", "J111", Synthetic);
    URTI = ("9900005", "急性上気道炎", "Acute upper respiratory infection", "J069", Synthetic);
    GASTROENTERITIS = ("9900006", "感染性胃腸炎", "Infectious gastroenteritis", "A09", Synthetic);
    BACK_PAIN = ("9900007", "腰痛症", "Low back pain", "M545", Synthetic);
    ECZEMA = ("9900008", "湿疹", "Eczema", "L309", Synthetic);
    GERD = ("9900009", "逆流性食道炎", "Reflux oesophagitis", "K210", Synthetic);
    PNEUMONIA = ("9900010", "肺炎", "Pneumonia", "J189", Synthetic);
    HEART_FAILURE = ("9900011", "心不全", "Heart failure", "I509", Synthetic);
    STROKE = ("9900012", "脳梗塞", "Cerebral infarction", "I639", Synthetic);
    HIP_FRACTURE = ("9900013", "大腿骨頸部骨折", "Fracture of the femoral neck", "S720", Synthetic);
    STOMACH_CANCER = ("9900014", "胃癌", "Malignant neoplasm of the stomach", "C169", Synthetic);
    COLON_CANCER = ("9900015", "結腸癌", "Malignant neoplasm of the colon", "C189", Synthetic);
    LUNG_CANCER = ("9900016", "肺癌", "Malignant neoplasm of the lung", "C349", Synthetic);
    APPENDICITIS = ("9900017", "急性虫垂炎", "Acute appendicitis", "K358", Synthetic);
    ESRD = ("9900018", "末期腎不全", "End-stage renal disease", "N185", Synthetic);
    RHINITIS = ("9900019", "アレルギー性鼻炎", "Allergic rhinitis", "J304", Synthetic);
    OSTEOPOROSIS = ("9900020", "骨粗鬆症", "Osteoporosis", "M819", Synthetic);
    BRONCHITIS = ("9900021", "急性気管支炎", "Acute bronchitis", "J209", Synthetic);
}

/// A modifier (修飾語): 4-digit code.
#[derive(Clone, Copy, Debug)]
pub struct Modifier {
    /// 修飾語コード (4 digits).
    pub code: &'static str,
    /// Japanese name.
    pub name_ja: &'static str,
    /// English name.
    pub name_en: &'static str,
    /// Where the code comes from.
    pub provenance: Provenance,
}

/// 「の疑い」: the diagnosis is suspected, not confirmed.
pub const MOD_SUSPECTED: &str = "8002";
/// 「右」: right side.
pub const MOD_RIGHT: &str = "2056";

/// The modifier master.
pub const MODIFIERS: &[Modifier] = &[
    Modifier { code: MOD_SUSPECTED, name_ja: "の疑い", name_en: "suspected", provenance: Provenance::Confirmed },
    Modifier { code: MOD_RIGHT, name_ja: "右", name_en: "right", provenance: Provenance::Confirmed },
    Modifier { code: "1001", name_ja: "顎", name_en: "jaw", provenance: Provenance::Confirmed },
];

/// Route of administration, from the YJ code's ingredient digits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// 内用 (oral).
    Oral,
    /// 注射 (injection).
    Injection,
    /// 外用 (topical).
    Topical,
}

impl Route {
    /// 診療識別 for a drug line of this route (21 内服, 31 皮下筋肉内, 23 外用).
    pub fn practice_class(self) -> &'static str {
        match self {
            Route::Oral => "21",
            Route::Injection => "31",
            Route::Topical => "23",
        }
    }
}

/// A drug (医薬品マスター).
#[derive(Clone, Copy, Debug)]
pub struct Drug {
    /// レセ電コード (9 digits, leading 6).
    pub code: &'static str,
    /// 漢字名称.
    pub name_ja: &'static str,
    /// Generic name in English.
    pub generic_en: &'static str,
    /// 薬効分類 (first 4 characters of the YJ code).
    pub efficacy_class: &'static str,
    /// YJ code where known.
    pub yj_code: Option<&'static str>,
    /// Route.
    pub route: Route,
    /// Unit (単位) in Japanese.
    pub unit_ja: &'static str,
    /// Price per unit in yen (plausible, not the official 薬価).
    pub price_yen: f64,
    /// Usual daily quantity in units.
    pub daily_units: f64,
    /// Where the code comes from.
    pub provenance: Provenance,
}

macro_rules! drugs {
    ($($id:ident = ($c:expr, $ja:expr, $en:expr, $cls:expr, $yj:expr, $route:ident, $unit:expr, $price:expr, $daily:expr, $p:ident);)*) => {
        $(#[doc = $en] pub const $id: Drug = Drug { code: $c, name_ja: $ja, generic_en: $en, efficacy_class: $cls, yj_code: $yj, route: Route::$route, unit_ja: $unit, price_yen: $price, daily_units: $daily, provenance: Provenance::$p };)*
        /// Every drug of the master.
        pub const DRUGS: &[Drug] = &[$($id),*];
    };
}

drugs! {
    METGLUCO_250 = ("621974701", "メトグルコ錠250mg", "metformin 250 mg", "3962", Some("3962002F2027"), Oral, "錠", 10.1, 4.0, Confirmed);
    METGLUCO_500 = ("622242501", "メトグルコ錠500mg", "metformin 500 mg", "3962", None, Oral, "錠", 10.4, 2.0, Confirmed);
    GLYCORAN_250 = ("620004480", "グリコラン錠250mg", "metformin 250 mg", "3962", None, Oral, "錠", 9.8, 3.0, Confirmed);
    METFORMIN_TOWA = ("620005570", "メトホルミン塩酸塩錠250mg「トーワ」", "metformin 250 mg (generic)", "3962", None, Oral, "錠", 9.8, 4.0, Confirmed);
    SITAGLIPTIN = ("699000101", "シタグリプチン錠50mg", "sitagliptin 50 mg", "3969", None, Oral, "錠", 104.1, 1.0, Synthetic);
    EMPAGLIFLOZIN = ("699000102", "エンパグリフロジン錠10mg", "empagliflozin 10 mg", "3969", None, Oral, "錠", 181.5, 1.0, Synthetic);
    GLIMEPIRIDE = ("699000103", "グリメピリド錠1mg", "glimepiride 1 mg", "3961", None, Oral, "錠", 10.1, 1.0, Synthetic);
    INSULIN_GLARGINE = ("699000104", "インスリン グラルギン注", "insulin glargine", "2492", None, Injection, "キット", 1460.0, 0.1, Synthetic);
    VOGLIBOSE = ("699000105", "ボグリボース錠0.3mg", "voglibose 0.3 mg (α-glucosidase inhibitor)", "3969", None, Oral, "錠", 10.1, 3.0, Synthetic);
    MITIGLINIDE = ("699000106", "ミチグリニド錠10mg", "mitiglinide 10 mg (glinide)", "3969", None, Oral, "錠", 17.5, 3.0, Synthetic);
    PIOGLITAZONE = ("699000107", "ピオグリタゾン錠15mg", "pioglitazone 15 mg (thiazolidinedione)", "3969", None, Oral, "錠", 25.8, 1.0, Synthetic);
    AMLODIPINE = ("699000201", "アムロジピン錠5mg", "amlodipine 5 mg", "2171", None, Oral, "錠", 10.1, 1.0, Synthetic);
    OLMESARTAN = ("699000202", "オルメサルタン錠20mg", "olmesartan 20 mg", "2149", None, Oral, "錠", 21.4, 1.0, Synthetic);
    TELMISARTAN = ("699000203", "テルミサルタン錠40mg", "telmisartan 40 mg", "2149", None, Oral, "錠", 17.8, 1.0, Synthetic);
    ROSUVASTATIN = ("699000301", "ロスバスタチン錠2.5mg", "rosuvastatin 2.5 mg", "2189", None, Oral, "錠", 15.3, 1.0, Synthetic);
    ATORVASTATIN = ("699000302", "アトルバスタチン錠10mg", "atorvastatin 10 mg", "2189", None, Oral, "錠", 17.7, 1.0, Synthetic);
    EZETIMIBE = ("699000303", "エゼチミブ錠10mg", "ezetimibe 10 mg", "2189", None, Oral, "錠", 36.2, 1.0, Synthetic);
    DONEPEZIL = ("699000401", "ドネペジル錠5mg", "donepezil 5 mg", "1190", None, Oral, "錠", 47.5, 1.0, Synthetic);
    MEMANTINE = ("699000402", "メマンチン錠20mg", "memantine 20 mg", "1190", None, Oral, "錠", 110.5, 1.0, Synthetic);
    OSELTAMIVIR = ("699000501", "オセルタミビルカプセル75mg", "oseltamivir 75 mg", "6250", None, Oral, "カプセル", 205.8, 2.0, Synthetic);
    BALOXAVIR = ("699000502", "バロキサビル錠20mg", "baloxavir 20 mg", "6250", None, Oral, "錠", 2437.7, 2.0, Synthetic);
    CARBOCISTEINE = ("699000601", "カルボシステイン錠500mg", "carbocisteine 500 mg", "2233", None, Oral, "錠", 10.1, 3.0, Synthetic);
    ACETAMINOPHEN = ("699000602", "アセトアミノフェン錠200mg", "acetaminophen 200 mg", "1141", None, Oral, "錠", 6.5, 6.0, Synthetic);
    CLARITHROMYCIN = ("699000603", "クラリスロマイシン錠200mg", "clarithromycin 200 mg", "6149", None, Oral, "錠", 31.2, 2.0, Synthetic);
    LOXOPROFEN = ("699000701", "ロキソプロフェン錠60mg", "loxoprofen 60 mg", "1149", None, Oral, "錠", 10.1, 3.0, Synthetic);
    REBAMIPIDE = ("699000702", "レバミピド錠100mg", "rebamipide 100 mg", "2329", None, Oral, "錠", 10.1, 3.0, Synthetic);
    LOXOPROFEN_TAPE = ("699000703", "ロキソプロフェンテープ100mg", "loxoprofen tape 100 mg", "2649", None, Topical, "枚", 17.1, 1.0, Synthetic);
    VONOPRAZAN = ("699000801", "ボノプラザン錠10mg", "vonoprazan 10 mg", "2329", None, Oral, "錠", 97.6, 1.0, Synthetic);
    FEXOFENADINE = ("699000802", "フェキソフェナジン錠60mg", "fexofenadine 60 mg", "4490", None, Oral, "錠", 19.1, 2.0, Synthetic);
    HEPARINOID = ("699000803", "ヘパリン類似物質クリーム0.3%", "heparinoid cream 0.3%", "3339", None, Topical, "g", 6.7, 5.0, Synthetic);
    ALENDRONATE = ("699000901", "アレンドロン酸錠35mg", "alendronate 35 mg", "3999", None, Oral, "錠", 190.2, 0.143, Synthetic);
    FUROSEMIDE = ("699000902", "フロセミド錠20mg", "furosemide 20 mg", "2139", None, Oral, "錠", 9.8, 1.0, Synthetic);
    PROBIOTIC = ("699000903", "ビフィズス菌製剤錠", "bifidobacterium tablets", "2316", None, Oral, "錠", 5.9, 3.0, Synthetic);
    CEFTRIAXONE = ("699000904", "セフトリアキソン静注用1g", "ceftriaxone 1 g", "6132", None, Injection, "瓶", 366.0, 2.0, Synthetic);
}

/// A medical procedure (診療行為マスター).
#[derive(Clone, Copy, Debug)]
pub struct Procedure {
    /// 診療行為コード (9 digits, leading 1).
    pub code: &'static str,
    /// Japanese name.
    pub name_ja: &'static str,
    /// English name.
    pub name_en: &'static str,
    /// 診療識別 (practice class).
    pub practice_class: &'static str,
    /// Points per unit (plausible).
    pub points: i32,
    /// Where the code comes from.
    pub provenance: Provenance,
}

macro_rules! procedures {
    ($($id:ident = ($c:expr, $ja:expr, $en:expr, $cls:expr, $pts:expr, $p:ident);)*) => {
        $(#[doc = $en] pub const $id: Procedure = Procedure { code: $c, name_ja: $ja, name_en: $en, practice_class: $cls, points: $pts, provenance: Provenance::$p };)*
        /// Every procedure of the master.
        pub const PROCEDURES: &[Procedure] = &[$($id),*];
    };
}

procedures! {
    FIRST_VISIT = ("111000110", "初診料", "Initial consultation", "11", 291, Confirmed);
    REVISIT = ("112007410", "再診料", "Follow-up consultation", "12", 75, Confirmed);
    OUTPATIENT_MGMT = ("112011010", "外来管理加算", "Outpatient management add-on", "12", 52, Confirmed);
    HBA1C_TEST = ("160010010", "ＨｂＡ１ｃ", "HbA1c test", "60", 49, Confirmed);
    LDL_TEST = ("160167250", "ＬＤＬ－コレステロール", "LDL cholesterol test", "60", 18, Confirmed);
    CHRONIC_MGMT = ("199000001", "特定疾患療養管理料", "Management fee for specified chronic disease", "13", 225, Synthetic);
    PRESCRIPTION_SLIP = ("199000002", "処方箋料", "Prescription slip fee", "80", 60, Synthetic);
    PRESCRIBING_IN_HOUSE = ("199000003", "処方料", "In-house prescribing fee", "25", 42, Synthetic);
    BLOOD_DRAW = ("199000004", "血液採取（静脈）", "Venous blood sampling", "60", 40, Synthetic);
    BIOCHEM_JUDGEMENT = ("199000005", "生化学的検査（Ｉ）判断料", "Biochemistry judgement fee", "60", 144, Synthetic);
    FLU_ANTIGEN = ("199000006", "インフルエンザウイルス抗原定性", "Influenza antigen test", "60", 132, Synthetic);
    CHEST_XRAY = ("199000007", "胸部単純Ｘ線撮影", "Chest radiograph", "70", 210, Synthetic);
    CT_SCAN = ("199000008", "ＣＴ撮影", "CT scan", "70", 1020, Synthetic);
    ACUTE_WARD_DAY = ("199000009", "急性期一般入院料１", "Acute general ward fee (per day)", "90", 1688, Synthetic);
    CHRONIC_WARD_DAY = ("199000010", "療養病棟入院基本料", "Long-term care ward fee (per day)", "90", 1000, Synthetic);
    DIALYSIS = ("199000011", "人工腎臓", "Haemodialysis", "40", 1924, Synthetic);
    HIP_ARTHROPLASTY = ("199000013", "人工骨頭挿入術（股）", "Hip hemiarthroplasty", "50", 19500, Synthetic);
    APPENDECTOMY = ("199000014", "腹腔鏡下虫垂切除術", "Laparoscopic appendectomy", "50", 13760, Synthetic);
    ESD = ("199000015", "内視鏡的胃粘膜下層剥離術", "Endoscopic submucosal dissection (stomach)", "50", 18370, Synthetic);
    COLECTOMY = ("199000019", "腹腔鏡下結腸悪性腫瘍切除術", "Laparoscopic colectomy for cancer", "50", 59510, Synthetic);
    OXYGEN = ("199000016", "酸素吸入", "Oxygen inhalation", "40", 65, Synthetic);
    DRIP_INFUSION = ("199000017", "点滴注射", "Intravenous drip infusion", "33", 102, Synthetic);
    REHAB = ("199000018", "運動器リハビリテーション料", "Musculoskeletal rehabilitation", "80", 185, Synthetic);
}

/// A checkup item (特定健診項目, JLAC10 17-digit code, OID 1.2.392.200119.6.1005).
#[derive(Clone, Copy, Debug)]
pub struct LabItem {
    /// JLAC10 code (17 characters).
    pub code: &'static str,
    /// A short key analysts can use (`hba1c`, `sbp`, …); several methods share one key.
    pub key: &'static str,
    /// Japanese name.
    pub name_ja: &'static str,
    /// English name.
    pub name_en: &'static str,
    /// Unit, or the code list of a coded answer.
    pub unit: &'static str,
    /// Where the code comes from.
    pub provenance: Provenance,
}

macro_rules! lab_items {
    ($($id:ident = ($c:expr, $key:expr, $ja:expr, $en:expr, $unit:expr, $p:ident);)*) => {
        $(#[doc = $en] pub const $id: LabItem = LabItem { code: $c, key: $key, name_ja: $ja, name_en: $en, unit: $unit, provenance: Provenance::$p };)*
        /// Every checkup item of the master.
        pub const LAB_ITEMS: &[LabItem] = &[$($id),*];
    };
}

lab_items! {
    HEIGHT = ("9N001000000000001", "height", "身長", "Height", "cm", Confirmed);
    WEIGHT = ("9N006000000000001", "weight", "体重", "Weight", "kg", Confirmed);
    BMI = ("9N011000000000001", "bmi", "BMI", "Body mass index", "kg/m2", Confirmed);
    WAIST = ("9N016160100000001", "waist", "腹囲（実測）", "Waist circumference (measured)", "cm", Unverified);
    SBP1 = ("9A751000000000001", "sbp", "収縮期血圧（1回目）", "Systolic blood pressure (1st)", "mmHg", Confirmed);
    SBP2 = ("9A752000000000001", "sbp2", "収縮期血圧（2回目）", "Systolic blood pressure (2nd)", "mmHg", Confirmed);
    DBP1 = ("9A761000000000001", "dbp", "拡張期血圧（1回目）", "Diastolic blood pressure (1st)", "mmHg", Confirmed);
    DBP2 = ("9A762000000000001", "dbp2", "拡張期血圧（2回目）", "Diastolic blood pressure (2nd)", "mmHg", Confirmed);
    FBG_ELECTRODE = ("3D010000001926101", "fbg", "空腹時血糖（電位差法）", "Fasting glucose (electrode)", "mg/dL", Confirmed);
    FBG_VISIBLE = ("3D010000002227101", "fbg", "空腹時血糖（可視吸光光度法）", "Fasting glucose (visible absorption)", "mg/dL", Confirmed);
    FBG_UV = ("3D010000001927201", "fbg", "空腹時血糖（紫外吸光光度法）", "Fasting glucose (UV absorption)", "mg/dL", Confirmed);
    HBA1C_IMMUNO = ("3D046000001906202", "hba1c", "HbA1c（NGSP値）免疫学的方法", "HbA1c (NGSP), immunoassay", "%", Confirmed);
    HBA1C_HPLC = ("3D046000001920402", "hba1c", "HbA1c（NGSP値）HPLC", "HbA1c (NGSP), HPLC", "%", Confirmed);
    HBA1C_ENZYME = ("3D046000001927102", "hba1c", "HbA1c（NGSP値）酵素法", "HbA1c (NGSP), enzymatic", "%", Confirmed);
    TG = ("3F015000002327101", "tg", "中性脂肪（可視吸光光度法）", "Triglycerides", "mg/dL", Confirmed);
    HDL = ("3F070000002327101", "hdl", "HDLコレステロール（可視吸光光度法）", "HDL cholesterol", "mg/dL", Confirmed);
    LDL = ("3F077000002327101", "ldl", "LDLコレステロール（可視吸光光度法）", "LDL cholesterol", "mg/dL", Confirmed);
    AST = ("3B035000002327201", "ast", "AST（GOT）", "AST", "U/L", Confirmed);
    ALT = ("3B045000002327201", "alt", "ALT（GPT）", "ALT", "U/L", Confirmed);
    GGT = ("3B090000002327101", "ggt", "γ-GT（γ-GTP）", "Gamma-GT", "U/L", Confirmed);
    URINE_GLUCOSE = ("1A020000000190111", "urine_glucose", "尿糖（目視法）", "Urine glucose (visual)", "1:(-) 2:(±) 3:(+) 4:(++) 5:(+++)", Confirmed);
    URINE_PROTEIN = ("1A010000000190111", "urine_protein", "尿蛋白（目視法）", "Urine protein (visual)", "1:(-) 2:(±) 3:(+) 4:(++) 5:(+++)", Confirmed);
    MED_BP = ("9N701000000000011", "med_bp", "服薬1（血圧）", "Medication: blood pressure", "1:はい yes 2:いいえ no", Confirmed);
    MED_GLUCOSE = ("9N706000000000011", "med_glucose", "服薬2（血糖）", "Medication: blood glucose", "1:はい yes 2:いいえ no", Confirmed);
    MED_LIPID = ("9N711000000000011", "med_lipid", "服薬3（脂質）", "Medication: lipids", "1:はい yes 2:いいえ no", Confirmed);
    SMOKING = ("9N736000000000011", "smoking", "喫煙", "Current smoking", "1:はい yes 2:いいえ no", Confirmed);
    METABO = ("9N501000000000011", "metabo", "メタボリックシンドローム判定", "Metabolic syndrome judgement", "1:基準該当 2:予備群該当 3:非該当 4:判定不能", Confirmed);
    GUIDANCE_LEVEL = ("9N506000000000011", "guidance_level", "保健指導レベル", "Health guidance level", "1:積極的支援 2:動機付け支援 3:なし 4:判定不能", Confirmed);
}

/// A care service type (サービス種類コード, 2 characters).
#[derive(Clone, Copy, Debug)]
pub struct CareService {
    /// Service type code.
    pub code: &'static str,
    /// Japanese name.
    pub name_ja: &'static str,
    /// English name.
    pub name_en: &'static str,
    /// Typical units per month for one user.
    pub monthly_units: i32,
    /// Where the code comes from.
    pub provenance: Provenance,
}

macro_rules! care_services {
    ($($id:ident = ($c:expr, $ja:expr, $en:expr, $u:expr);)*) => {
        $(#[doc = $en] pub const $id: CareService = CareService { code: $c, name_ja: $ja, name_en: $en, monthly_units: $u, provenance: Provenance::Unverified };)*
        /// Every care service type of the master.
        pub const CARE_SERVICES: &[CareService] = &[$($id),*];
    };
}

care_services! {
    HOME_HELP = ("11", "訪問介護", "Home help", 9000);
    HOME_NURSING = ("13", "訪問看護", "Home-visit nursing", 4000);
    DAY_CARE = ("15", "通所介護", "Day care", 9500);
    DAY_REHAB = ("16", "通所リハビリテーション", "Day rehabilitation", 8000);
    EQUIPMENT = ("17", "福祉用具貸与", "Welfare equipment rental", 1500);
    SHORT_STAY = ("21", "短期入所生活介護", "Short-stay daily-life care", 7000);
    GROUP_HOME = ("32", "認知症対応型共同生活介護", "Group home for dementia", 24000);
    CARE_PLANNING = ("43", "居宅介護支援", "Care planning", 1100);
    PREVENTIVE_PLANNING = ("46", "介護予防支援", "Preventive care planning", 450);
    NURSING_HOME = ("51", "介護福祉施設サービス", "Special nursing home", 26000);
    HEALTH_FACILITY = ("52", "介護保健施設サービス", "Geriatric health services facility", 28000);
    COMMUNITY_DAY_CARE = ("78", "地域密着型通所介護", "Community day care", 8000);
}

/// A DPC diagnosis group (診断群分類, 14 characters).
#[derive(Clone, Copy, Debug)]
pub struct DpcGroup {
    /// The 14-character DPC code.
    pub code: &'static str,
    /// Japanese name.
    pub name_ja: &'static str,
    /// English name.
    pub name_en: &'static str,
    /// Where the code comes from.
    pub provenance: Provenance,
}

macro_rules! dpc_groups {
    ($($id:ident = ($c:expr, $ja:expr, $en:expr);)*) => {
        $(#[doc = $en] pub const $id: DpcGroup = DpcGroup { code: $c, name_ja: $ja, name_en: $en, provenance: Provenance::Unverified };)*
        /// Every DPC group of the master.
        pub const DPC_GROUPS: &[DpcGroup] = &[$($id),*];
    };
}

dpc_groups! {
    DPC_PNEUMONIA = ("040080xx99x0xx", "肺炎等", "Pneumonia");
    DPC_HEART_FAILURE = ("050130xx9900xx", "心不全", "Heart failure");
    DPC_STROKE = ("010060xx99x40x", "脳梗塞", "Cerebral infarction");
    DPC_HIP_FRACTURE = ("160800xx01xxxx", "股関節・大腿近位の骨折", "Fracture of the hip and proximal femur");
    DPC_STOMACH_CANCER = ("060020xx04xxxx", "胃の悪性腫瘍", "Malignant neoplasm of the stomach");
    DPC_COLON_CANCER = ("060035xx01xxxx", "結腸の悪性腫瘍", "Malignant neoplasm of the colon");
    DPC_LUNG_CANCER = ("040040xx99x0xx", "肺の悪性腫瘍", "Malignant neoplasm of the lung");
    DPC_APPENDICITIS = ("060150xx03xxxx", "虫垂炎", "Appendicitis");
    DPC_DIABETES = ("100070xx99x000", "2型糖尿病", "Type 2 diabetes mellitus");
    DPC_CKD = ("110280xx99000x", "慢性腎炎症候群・慢性腎不全", "Chronic kidney disease");
}

/// Looks a disease up by code.
pub fn disease(code: &str) -> Option<&'static Disease> {
    DISEASES.iter().find(|d| d.code == code)
}

/// Looks a drug up by code.
pub fn drug(code: &str) -> Option<&'static Drug> {
    DRUGS.iter().find(|d| d.code == code)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn code_formats_follow_data_md() {
        for d in DISEASES {
            assert_eq!(d.code.len(), 7, "{}", d.code);
            assert!(d.code.bytes().all(|b| b.is_ascii_digit()));
            if d.provenance == Provenance::Synthetic {
                assert!(d.code.starts_with("99"), "{}", d.code);
            }
        }
        for d in DRUGS {
            assert_eq!(d.code.len(), 9);
            assert!(d.code.starts_with('6'));
            if d.provenance == Provenance::Synthetic {
                assert!(d.code.starts_with("699"));
            }
        }
        for p in PROCEDURES {
            assert_eq!(p.code.len(), 9);
            assert!(p.code.starts_with('1'));
            if p.provenance == Provenance::Synthetic {
                assert!(p.code.starts_with("199"));
            }
        }
        for l in LAB_ITEMS {
            assert_eq!(l.code.len(), 17, "{}", l.code);
        }
        for g in DPC_GROUPS {
            assert_eq!(g.code.len(), 14, "{}", g.code);
        }
        for m in MODIFIERS {
            assert_eq!(m.code.len(), 4);
        }
    }

    #[test]
    fn codes_are_unique() {
        fn uniq<'a>(it: impl Iterator<Item = &'a str>) {
            let mut seen = HashSet::new();
            for c in it {
                assert!(seen.insert(c), "duplicate code {c}");
            }
        }
        uniq(DISEASES.iter().map(|d| d.code));
        uniq(DRUGS.iter().map(|d| d.code));
        uniq(PROCEDURES.iter().map(|d| d.code));
        uniq(LAB_ITEMS.iter().map(|d| d.code));
        uniq(CARE_SERVICES.iter().map(|d| d.code));
        uniq(DPC_GROUPS.iter().map(|d| d.code));
    }

    #[test]
    fn confirmed_codes_match_data_md() {
        assert_eq!(DM2.code, "2500015");
        assert_eq!(METGLUCO_250.code, "621974701");
        assert_eq!(HBA1C_TEST.code, "160010010");
        assert_eq!(HBA1C_IMMUNO.code, "3D046000001906202");
        assert_eq!(MOD_SUSPECTED, "8002");
    }
}
