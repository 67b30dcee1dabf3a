//! The demo's analyses return plausible values on a synthetic population.

use datafusion::arrow::util::display::array_value_to_string;
use kura::demo::ANALYSES;
use kura_query::{EngineSpec, QueryEngine};
use kura_store::{Home, WriteOptions};
use kura_synth::SynthConfig;
use kura_synth_dataset::write_synthetic;

fn column(out: &kura_query::StatementOutput, name: &str) -> Vec<String> {
    let i = out.schema.index_of(name).unwrap_or_else(|_| panic!("no column {name}"));
    out.batches.iter().flat_map(|b| (0..b.num_rows()).map(move |r| array_value_to_string(b.column(i), r).unwrap())).collect()
}

fn nums(out: &kura_query::StatementOutput, name: &str) -> Vec<f64> {
    column(out, name).iter().map(|s| s.parse().unwrap()).collect()
}

#[test]
fn demo_analyses_are_plausible() {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::init(&dir.path().join("h")).unwrap();
    write_synthetic(&home, SynthConfig::new(30_000, 20_240_401), &WriteOptions::from_home(&home, "ndb"), &|_| {}).unwrap();
    let engine = QueryEngine::new(EngineSpec::from_home(&home, "ndb", None).unwrap()).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let run = |i: usize| rt.block_on(engine.run(ANALYSES[i].sql)).unwrap().pop().unwrap();

    // 1. Diabetes prevalence rises with age from the 30s to the 70s, in men and in women.
    let a = run(0);
    assert_eq!(column(&a, "年齢階級")[0], "20代");
    for col in ["男性 有病率%", "女性 有病率%"] {
        let p = nums(&a, col);
        assert!(p[1] < p[2] && p[2] < p[3] && p[3] < p[4] && p[4] < p[5], "{col}: {p:?}");
        assert!(p[5] > 5.0 && p[5] < 30.0, "{col}: {p:?}");
    }
    // Men more often than women in their 60s.
    assert!(nums(&a, "男性 有病率%")[4] > nums(&a, "女性 有病率%")[4]);

    // 2. Metformin use: top and bottom five prefectures, shares between 0 and 100, ordered.
    let b = run(1);
    let share = nums(&b, "使用割合%");
    assert_eq!(share.len(), 10);
    assert!(share.windows(2).all(|w| w[0] >= w[1]) && share.iter().all(|s| (0.0..=100.0).contains(s)));

    // 3. Diagnosed diabetics have a higher HbA1c at checkups.
    let c = run(2);
    let groups = column(&c, "区分");
    let mean = nums(&c, "HbA1c 平均%");
    let dm = groups.iter().position(|g| g.contains("diagnosed") && !g.contains("undiagnosed")).unwrap();
    let non = groups.iter().position(|g| g.contains("undiagnosed")).unwrap();
    assert!(mean[dm] > mean[non] + 1.0, "{mean:?}");
    assert!((5.3..6.0).contains(&mean[non]));

    // 4. Care certification rises with age.
    let d = run(3);
    let rate = nums(&d, "認定率%");
    assert_eq!(rate.len(), 4);
    assert!(rate.windows(2).all(|w| w[0] < w[1]), "{rate:?}");
    assert!(rate[3] > 30.0 && rate[0] < 2.0, "{rate:?}");

    // 5. Influenza peaks in winter.
    let e = run(4);
    let months = nums(&e, "診療年月");
    let n = nums(&e, "患者数");
    let peak = months[n.iter().enumerate().max_by(|x, y| x.1.total_cmp(y.1)).unwrap().0];
    assert!([202412.0, 202501.0, 202502.0].contains(&peak), "peak {peak}");
}
