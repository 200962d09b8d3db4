//! Times slip rendering: `cargo run --release -p baozhang-slip --example slip_bench [-- out.pdf]`.
//! Prints the time to load fonts, the first render, and the mean of 50 more; writes the last slip
//! to the path given, if any.

use std::time::Instant;

use baozhang_slip::{SlipData, SlipLine, SlipRenderer};

const RUNS: u32 = 50;

fn slip(i: u32) -> SlipData {
    let line = |name: &str, fund_code: &str, amount_fen: i64, rule: &str| SlipLine {
        name: name.into(),
        fund_code: fund_code.into(),
        amount_fen,
        rule: rule.into(),
        basis: Vec::new(),
        illustrative: false,
    };
    let extra = i64::from(i) * 137;
    SlipData {
        title: "会宁县基本医疗保险“一站式”结算单".into(),
        setl_id: format!("6204222024051700{i:05}"),
        mdtrt_id: format!("MD62042220240510{i:04}"),
        institution: "会宁县人民医院".into(),
        institution_code: "H62042200001".into(),
        patient_name: format!("测试患者{i}"),
        id_no_masked: "620422********1234".into(),
        psn_no: "62000000000012345678".into(),
        identities: "建档立卡贫困人口、低保对象".into(),
        med_type: "住院".into(),
        begin_date: "2024-05-10".into(),
        setl_date: "2024-05-17".into(),
        policy: "会宁县2024年城乡居民医保待遇政策 v3".into(),
        medfee_sumamt_fen: 1_856_300 + extra,
        fulamt_ownpay_fen: 12_000,
        overlmt_selfpay_fen: 3_456,
        preselfpay_fen: 20_000,
        inscp_scp_fen: 1_820_844 + extra,
        lines: vec![
            line("基本医保统筹基金", "390100", 1_120_000, "起付线 600 元以上、政策范围内费用按 75% 报销"),
            line("城乡居民大病保险", "390200", 210_000, "超过大病起付线 5,000 元的部分按 60% 支付"),
            line("医疗救助基金", "610100", 180_000, "低保对象政策范围内个人自付部分按 70% 救助"),
            line("医院承担", "", 10_000, "超出兜底标准部分由医院承担"),
        ],
        fund_pay_sumamt_fen: 1_510_000,
        hosp_part_fen: 10_000,
        psn_part_fen: 336_300 + extra,
        operator: "李经办".into(),
        printed_at: "2024-05-17 10:32:05".into(),
        cancelled: i % 10 == 9,
        adjustment: None,
    }
}

fn main() {
    let t = Instant::now();
    let renderer = SlipRenderer::new().unwrap_or_else(|e| {
        eprintln!("{e}");
        std::process::exit(1);
    });
    println!("new(): {:.1} ms, fonts {:?}", ms(t), renderer.font_families());

    let t = Instant::now();
    let first = renderer.render(&slip(0)).expect("render");
    println!("first render: {:.1} ms ({} bytes)", ms(t), first.len());

    let t = Instant::now();
    let mut last = Vec::new();
    for i in 1..=RUNS {
        last = renderer.render(&slip(i)).expect("render");
    }
    println!("{RUNS} renders: {:.2} ms per slip ({} bytes each)", ms(t) / f64::from(RUNS), last.len());

    if let Some(path) = std::env::args().nth(1) {
        std::fs::write(&path, &last).expect("write the PDF");
        println!("wrote {path}");
    }
}

/// Milliseconds since `t` (timing only; no money here).
fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}
