//! `kura demo`: a home, a synthetic population, and the analyses a researcher would run first.

use crate::{Result, output, runtime, synth_with_progress};
use indicatif::{ProgressBar, ProgressStyle};
use kura_query::{EngineSpec, QueryEngine};
use kura_store::WriteOptions;
use kura_synth::SynthConfig;
use std::path::PathBuf;
use std::time::Duration;

/// One showcase analysis: a title and the SQL a researcher would write.
pub struct Analysis {
    /// Japanese title.
    pub title_ja: &'static str,
    /// English title.
    pub title_en: &'static str,
    /// The SQL.
    pub sql: &'static str,
}

/// The analyses of the demo (also checked for plausibility by the tests).
pub const ANALYSES: &[Analysis] = &[
    Analysis {
        title_ja: "2型糖尿病の有病率（年齢階級・性別）",
        title_en: "Prevalence of type 2 diabetes by age band and sex",
        sql: "\
-- 2型糖尿病（傷病名コード 2500015）の確定病名を持つ人を ID5 で数え、人口で割る。
-- 「疑い」（修飾語 8002）は除く。ID5 の欠損（null または '9'）も除く。
WITH patients AS (
  SELECT r.id5, min(r.sex) AS sex, min(r.age) AS age
  FROM sy s JOIN re r ON r.receipt_id = s.receipt_id
  WHERE s.disease_code = '2500015' AND NOT s.suspected
    AND r.id5 IS NOT NULL AND r.id5 <> '9'
  GROUP BY r.id5
),
cases AS (
  SELECT sex, CAST(floor(age / 10.0) * 10 AS INT) AS band, count(*) AS n
  FROM patients GROUP BY sex, CAST(floor(age / 10.0) * 10 AS INT)
),
pop AS (
  SELECT sex, CAST(floor(age_band / 10.0) * 10 AS INT) AS band, sum(persons) AS persons
  FROM m_population GROUP BY sex, CAST(floor(age_band / 10.0) * 10 AS INT)
)
SELECT CAST(p.band AS VARCHAR) || '代' AS \"年齢階級\",
       sum(CASE WHEN p.sex = 1 THEN coalesce(c.n, 0) END) AS \"男性 患者数\",
       round(100.0 * sum(CASE WHEN p.sex = 1 THEN coalesce(c.n, 0) END)
             / sum(CASE WHEN p.sex = 1 THEN p.persons END), 1) AS \"男性 有病率%\",
       sum(CASE WHEN p.sex = 2 THEN coalesce(c.n, 0) END) AS \"女性 患者数\",
       round(100.0 * sum(CASE WHEN p.sex = 2 THEN coalesce(c.n, 0) END)
             / sum(CASE WHEN p.sex = 2 THEN p.persons END), 1) AS \"女性 有病率%\"
FROM pop p LEFT JOIN cases c ON c.sex = p.sex AND c.band = p.band
WHERE p.band BETWEEN 20 AND 90
GROUP BY p.band
ORDER BY p.band",
    },
    Analysis {
        title_ja: "2型糖尿病患者のメトホルミン使用割合（都道府県別 上位・下位5）",
        title_en: "Metformin use among diagnosed type 2 diabetics by prefecture (top and bottom 5)",
        sql: "\
-- 医科と調剤の IY をレセプト経由で ID5 に結び付け、薬効分類 3962（ビグアナイド系）を使った人を数える。
WITH dm AS (
  SELECT r.id5, min(r.prefecture) AS prefecture
  FROM sy s JOIN re r ON r.receipt_id = s.receipt_id
  WHERE s.disease_code = '2500015' AND NOT s.suspected
    AND r.id5 IS NOT NULL AND r.id5 <> '9'
  GROUP BY r.id5
),
metformin AS (
  SELECT DISTINCT r.id5
  FROM iy i
  JOIN re r ON r.receipt_id = i.receipt_id
  JOIN m_drug d ON d.drug_code = i.drug_code
  WHERE d.efficacy_class = '3962'
),
by_pref AS (
  SELECT p.name_ja AS pref, count(*) AS patients, count(m.id5) AS users,
         100.0 * count(m.id5) / count(*) AS pct
  FROM dm
  LEFT JOIN metformin m ON m.id5 = dm.id5
  JOIN m_prefecture p ON p.prefecture = dm.prefecture
  GROUP BY p.name_ja
),
ranked AS (
  SELECT pref, patients, users, pct,
         rank() OVER (ORDER BY pct DESC) AS rk, count(*) OVER () AS n
  FROM by_pref
)
SELECT rk AS \"順位\", pref AS \"都道府県\", patients AS \"糖尿病患者数\",
       users AS \"メトホルミン使用者数\", round(pct, 1) AS \"使用割合%\"
FROM ranked
WHERE rk <= 5 OR rk > n - 5
ORDER BY rk",
    },
    Analysis {
        title_ja: "特定健診の HbA1c：糖尿病と診断された人と診断されていない人",
        title_en: "HbA1c at checkups: diagnosed diabetics versus everyone else",
        sql: "\
-- 健診と医科レセプトを ID5 で結合する。HbA1c は測定法ごとに JLAC10 コードが異なるので、
-- 項目マスターの item_key でまとめる。
WITH dm AS (
  SELECT DISTINCT r.id5
  FROM sy s JOIN re r ON r.receipt_id = s.receipt_id
  WHERE s.disease_code = '2500015' AND NOT s.suspected
    AND r.id5 IS NOT NULL AND r.id5 <> '9'
),
hba1c AS (
  SELECT c.id5, i.value
  FROM checkup c
  JOIN checkup_item i ON i.checkup_id = c.checkup_id
  JOIN m_lab_item l ON l.item_code = i.item_code
  WHERE l.item_key = 'hba1c' AND c.id5 IS NOT NULL
)
SELECT CASE WHEN dm.id5 IS NULL THEN '診断なし undiagnosed' ELSE '2型糖尿病 diagnosed' END AS \"区分\",
       count(*) AS \"受診者数\",
       round(avg(h.value), 2) AS \"HbA1c 平均%\",
       round(100.0 * sum(CASE WHEN h.value >= 6.5 THEN 1 ELSE 0 END) / count(*), 1) AS \"6.5%以上の割合%\"
FROM hba1c h LEFT JOIN dm ON dm.id5 = h.id5
GROUP BY CASE WHEN dm.id5 IS NULL THEN '診断なし undiagnosed' ELSE '2型糖尿病 diagnosed' END
ORDER BY 1",
    },
    Analysis {
        title_ja: "要介護認定率と要介護度（年齢階級別）",
        title_en: "Care-need certification rate and care level by age band",
        sql: "\
-- 人ごとに最新の認定を取り、期間開始時点の人口で割る。
WITH latest AS (
  SELECT id4, age, care_level,
         row_number() OVER (PARTITION BY id4 ORDER BY cert_date DESC) AS rn
  FROM care_cert
),
certified AS (
  SELECT CASE WHEN age < 65 THEN '40–64' WHEN age < 75 THEN '65–74'
              WHEN age < 85 THEN '75–84' ELSE '85+' END AS band,
         count(*) AS n,
         sum(CASE WHEN care_level IN ('12', '13') THEN 1 ELSE 0 END) AS support,
         sum(CASE WHEN care_level >= '23' THEN 1 ELSE 0 END) AS severe
  FROM latest WHERE rn = 1
  GROUP BY 1
),
pop AS (
  SELECT CASE WHEN age_band < 65 THEN '40–64' WHEN age_band < 75 THEN '65–74'
              WHEN age_band < 85 THEN '75–84' ELSE '85+' END AS band,
         sum(persons) AS persons
  FROM m_population WHERE age_band >= 40
  GROUP BY 1
)
SELECT p.band AS \"年齢階級\", c.n AS \"認定者数\", p.persons AS \"人口\",
       round(100.0 * c.n / p.persons, 1) AS \"認定率%\",
       round(100.0 * c.support / c.n, 1) AS \"要支援の割合%\",
       round(100.0 * c.severe / c.n, 1) AS \"要介護3以上の割合%\"
FROM pop p JOIN certified c ON c.band = p.band
ORDER BY 1",
    },
    Analysis {
        title_ja: "インフルエンザ患者数の月別推移",
        title_en: "Influenza patients by month",
        sql: "\
-- 確定病名（疑いを除く）の患者数。冬に流行のピークがある。
WITH m AS (
  SELECT r.service_month AS ym, count(DISTINCT r.id5) AS n
  FROM sy s JOIN re r ON r.receipt_id = s.receipt_id
  WHERE s.disease_code = '9900004' AND NOT s.suspected
  GROUP BY r.service_month
)
SELECT ym AS \"診療年月\", n AS \"患者数\",
       repeat('█', CAST(round(40.0 * n / max(n) OVER ()) AS INT)) AS \"推移\"
FROM m
ORDER BY ym",
    },
];

fn spinner(msg: String) -> ProgressBar {
    let pb = ProgressBar::new_spinner();
    pb.set_style(ProgressStyle::with_template("{spinner} {msg} {elapsed}").unwrap_or_else(|_| ProgressStyle::default_spinner()));
    pb.set_message(msg);
    pb.enable_steady_tick(Duration::from_millis(120));
    pb
}

/// Runs the demo.
pub fn run(root: PathBuf, persons: u64, seed: u64, fresh: bool) -> Result<()> {
    println!("Kura（蔵）デモ / demo");
    println!("ホーム home: {}", root.display());
    let (app, created) = kura_app::App::open_or_init(&root, crate::app_options())?;
    let home = app.home().clone();
    println!(
        "[1/3] {}",
        if created {
            "ホームを作成しました（マスター鍵・鍵階層）/ created the home (master key, key hierarchy)"
        } else {
            "既存のホームを使います / using the existing home"
        }
    );

    let current = home.catalog()?.datasets.get("ndb").map(|d| (d.persons, d.seed));
    if fresh || current != Some((persons, seed)) {
        println!(
            "[2/3] {persons} 人の合成データを生成し、列ごとの鍵で暗号化して保存します / generating {persons} persons, encrypted with a key per column"
        );
        let opts = WriteOptions::from_home(&home, "ndb");
        let (entry, secs) = synth_with_progress(&home, SynthConfig::new(persons, seed), &opts)?;
        println!(
            "      {} 行 rows, {} テーブル tables, {:.1} MB, {secs:.1} s",
            entry.rows(),
            entry.tables.len(),
            entry.bytes() as f64 / 1e6
        );
    } else {
        println!("[2/3] 生成済みのデータを使います（作り直すには --fresh）/ using the data already generated (--fresh to regenerate)");
    }

    println!("[3/3] 分析 / analyses (全データへのアクセス権で実行 / as the home's owner, all columns granted)\n");
    let engine = QueryEngine::new(EngineSpec::from_home(&home, "ndb", None)?)?;
    let rt = runtime()?;
    for (i, a) in ANALYSES.iter().enumerate() {
        println!("━━ {}. {} / {}", i + 1, a.title_ja, a.title_en);
        println!("{}\n", a.sql);
        let pb = spinner(format!("実行中 running {}", i + 1));
        let result = rt.block_on(engine.run(a.sql));
        pb.finish_and_clear();
        for o in result? {
            output::statement(&o, crate::Format::Table, 100)?;
        }
        println!();
    }
    println!("次に試す / try next:");
    println!("  kura --home {} catalog", root.display());
    println!("  kura --home {} catalog --table re", root.display());
    println!("  kura --home {} sql --grant re.age --grant re.sex \"SELECT sex, avg(age) FROM re GROUP BY sex\"", root.display());
    Ok(())
}
