//! Renders real slips and reads them back with poppler's `pdftotext` (Debian `poppler-utils`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};

use baozhang_slip::{format_yuan, ReportData, ReportTable, SlipData, SlipError, SlipLine, SlipRenderer};

/// Fonts are loaded once for the whole test binary, as a server would.
fn renderer() -> &'static SlipRenderer {
    static RENDERER: OnceLock<SlipRenderer> = OnceLock::new();
    RENDERER.get_or_init(|| SlipRenderer::new().unwrap_or_else(|e| panic!("{e}")))
}

fn line(name: &str, fund_code: &str, amount_fen: i64, rule: &str) -> SlipLine {
    SlipLine { name: name.into(), fund_code: fund_code.into(), amount_fen, rule: rule.into(), basis: Vec::new(), illustrative: false }
}

fn sample() -> SlipData {
    SlipData {
        title: "会宁县基本医疗保险“一站式”结算单".into(),
        setl_id: "620422202405170000123".into(),
        mdtrt_id: "MD620422202405100042".into(),
        institution: "会宁县人民医院".into(),
        institution_code: "H62042200001".into(),
        patient_name: "王秀英".into(),
        id_no_masked: "620422********1234".into(),
        psn_no: "62000000000012345678".into(),
        identities: "建档立卡贫困人口、低保对象".into(),
        med_type: "住院".into(),
        begin_date: "2024-05-10".into(),
        setl_date: "2024-05-17".into(),
        policy: "会宁县2024年城乡居民医保待遇政策 v3".into(),
        medfee_sumamt_fen: 123_456_789,
        fulamt_ownpay_fen: 12_000,
        overlmt_selfpay_fen: 3_456,
        preselfpay_fen: 5,
        inscp_scp_fen: 123_441_328,
        lines: vec![
            line("基本医保统筹基金", "390100", 98_765_432, "起付线 600 元以上、政策范围内费用按 75% 报销"),
            line("城乡居民大病保险", "390200", 123_456, "超过大病起付线 5,000 元的部分按 60% 支付"),
            line("医疗救助基金", "610100", 77_700, "低保对象政策范围内个人自付部分按 70% 救助"),
            line("医院承担", "", 10_000, "超出“先诊疗后付费”兜底标准部分由医院承担"),
        ],
        fund_pay_sumamt_fen: 98_966_588,
        hosp_part_fen: 10_000,
        psn_part_fen: 24_480_201,
        operator: "李经办".into(),
        printed_at: "2024-05-17 10:32:05".into(),
        cancelled: false,
        adjustment: None,
    }
}

fn pdftotext_bin() -> PathBuf {
    for candidate in ["/usr/bin/pdftotext", "/usr/local/bin/pdftotext"] {
        if Path::new(candidate).is_file() {
            return candidate.into();
        }
    }
    match Command::new("pdftotext").arg("-v").output() {
        Ok(_) => "pdftotext".into(),
        Err(_) => panic!(
            "pdftotext not found: these tests read the PDF back with poppler's pdftotext; \
             install it with `apt-get install poppler-utils` (CI's .ci/run must install it)"
        ),
    }
}

/// The text of `pdf` as `pdftotext -layout` sees it. With `SLIP_TEST_OUT=dir` set, the PDF is also
/// kept there as `name.pdf`, to look at.
fn pdf_text(name: &str, pdf: &[u8]) -> String {
    if let Some(dir) = std::env::var_os("SLIP_TEST_OUT") {
        std::fs::write(Path::new(&dir).join(format!("{name}.pdf")), pdf).unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("slip.pdf");
    std::fs::write(&path, pdf).unwrap();
    let out = Command::new(pdftotext_bin()).arg("-layout").arg(&path).arg("-").output().unwrap();
    assert!(out.status.success(), "pdftotext failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("pdftotext prints UTF-8")
}

fn squeeze(s: &str) -> String {
    s.chars().filter(|c| !c.is_whitespace()).collect()
}

/// Every `/MediaBox [x0 y0 x1 y1]` in the file, as (width, height) in points.
fn media_boxes(pdf: &[u8]) -> Vec<(f64, f64)> {
    let needle = b"/MediaBox";
    let mut boxes = Vec::new();
    let mut at = 0;
    while let Some(i) = pdf[at..].windows(needle.len()).position(|w| w == needle) {
        let start = at + i + needle.len();
        let rest = &pdf[start..(start + 120).min(pdf.len())];
        let open = rest.iter().position(|&b| b == b'[').expect("MediaBox array");
        let close = rest.iter().position(|&b| b == b']').expect("MediaBox array end");
        let nums: Vec<f64> = std::str::from_utf8(&rest[open + 1..close]).unwrap().split_whitespace().map(|n| n.parse().unwrap()).collect();
        assert_eq!(nums.len(), 4, "MediaBox has four numbers");
        boxes.push((nums[2] - nums[0], nums[3] - nums[1]));
        at = start;
    }
    boxes
}

#[test]
fn a_slip_is_an_a5_pdf_whose_text_reads_back() {
    let slip = sample();
    let pdf = renderer().render(&slip).unwrap();

    assert!(pdf.starts_with(b"%PDF"), "not a PDF");

    let boxes = media_boxes(&pdf);
    assert!(!boxes.is_empty(), "no /MediaBox in the PDF");
    for (w, h) in boxes {
        assert!((w - 419.53).abs() < 0.5 && (h - 595.28).abs() < 0.5, "not A5 portrait: {w} x {h} pt");
    }

    let text = pdf_text("slip", &pdf);
    let flat = squeeze(&text);
    for needle in [
        "王秀英",
        "会宁县基本医疗保险“一站式”结算单",
        "个人负担",
        "患者应付",
        "基本医保统筹基金",
        "城乡居民大病保险",
        "医疗救助基金",
        "医院承担",
        "620422********1234",
        "建档立卡贫困人口、低保对象",
        "会宁县人民医院（H62042200001）",
        "本结算单由保障系统生成",
        "李经办",
        "390100",
    ] {
        assert!(flat.contains(needle), "{needle:?} missing from the slip text:\n{text}");
    }
    for fen in [
        slip.medfee_sumamt_fen,
        slip.fulamt_ownpay_fen,
        slip.overlmt_selfpay_fen,
        slip.preselfpay_fen,
        slip.inscp_scp_fen,
        slip.fund_pay_sumamt_fen,
        slip.hosp_part_fen,
        slip.psn_part_fen,
    ]
    .into_iter()
    .chain(slip.lines.iter().map(|l| l.amount_fen))
    {
        let yuan = format_yuan(fen);
        assert!(text.contains(&yuan), "amount {yuan} missing from the slip text:\n{text}");
    }
    assert!(text.contains("1,234,567.89"), "{text}");
    assert!(text.contains("1,234.56"), "{text}");
    assert!(!flat.contains("已冲销"), "a valid slip is not marked cancelled:\n{text}");
    // No line used an illustrative value and none names a source: neither shows.
    assert!(!flat.contains("示意值") && !flat.contains("依据："), "{text}");
}

/// Issue 16: a line whose values come from a document names it (依据), and a line that used an
/// illustrative value is flagged, with a note on the slip saying these are not official figures.
#[test]
fn a_slip_shows_the_basis_of_each_line_and_flags_illustrative_values() {
    let mut slip = sample();
    slip.lines[0].basis = vec!["会宁县健康扶贫先锋行动实施意见（2018）".into()];
    slip.lines[0].illustrative = true;
    slip.lines[2].basis = vec!["会宁县健康扶贫先锋行动实施意见（2018）".into(), "[某]指南#set".into()];
    let text = pdf_text("provenance", &renderer().render(&slip).unwrap());
    let flat = squeeze(&text);
    assert!(flat.contains("依据：会宁县健康扶贫先锋行动实施意见（2018）"), "{text}");
    assert!(flat.contains("依据：会宁县健康扶贫先锋行动实施意见（2018）、[某]指南#set"), "titles printed literally: {text}");
    assert_eq!(flat.matches("【示意值】").count(), 1, "one line flagged: {text}");
    assert!(flat.contains("计算所用数值含示意值，非官方标准"), "{text}");
    assert!(flat.contains("示意值说明") && flat.contains("不是官方文件规定的标准"), "the note: {text}");
    // Only the basis: no flag and no note.
    slip.lines[0].illustrative = false;
    let flat = squeeze(&pdf_text("provenance_basis_only", &renderer().render(&slip).unwrap()));
    assert!(flat.contains("依据：会宁县健康扶贫先锋行动实施意见（2018）"), "{flat}");
    assert!(!flat.contains("示意值"), "{flat}");
}

#[test]
fn typst_markup_in_user_text_is_printed_literally() {
    let mut slip = sample();
    slip.patient_name = "张*三#".into();
    slip.institution = r"[测试]医院#set\x".into();
    slip.operator = "$x$_y_@z".into();
    slip.identities = "<lbl>//注释`raw`".into();
    slip.lines[0].rule = r#"#panic("x") *粗* $1+1$ [方括号] \ 反斜杠 ~ "引号""#.into();
    slip.lines[1].name = "#{1+1}".into();
    let pdf = renderer().render(&slip).unwrap();
    let flat = squeeze(&pdf_text("markup", &pdf));
    for needle in ["张*三#", r"[测试]医院#set\x", "$x$_y_@z", "<lbl>//注释`raw`", r#"#panic("x")*粗*$1+1$[方括号]\反斜杠~"引号""#, "#{1+1}"]
    {
        assert!(flat.contains(&squeeze(needle)), "{needle:?} not printed literally:\n{flat}");
    }
}

#[test]
fn a_cancelled_slip_says_so() {
    let mut slip = sample();
    slip.cancelled = true;
    let text = pdf_text("cancelled", &renderer().render(&slip).unwrap());
    assert!(squeeze(&text).contains("已冲销"), "no 已冲销 mark:\n{text}");
    assert!(text.contains("王秀英"), "{text}");
}

#[test]
fn many_lines_flow_onto_more_a5_pages() {
    let mut slip = sample();
    slip.lines = (0..60).map(|i| line(&format!("测试基金{i:02}"), "999999", i * 1_000, "测试规则")).collect();
    let pdf = renderer().render(&slip).unwrap();
    let boxes = media_boxes(&pdf);
    assert!(boxes.len() >= 2, "expected more than one page, got {}", boxes.len());
    let flat = squeeze(&pdf_text("many_lines", &pdf));
    assert!(flat.contains("测试基金00") && flat.contains("测试基金59"), "{flat}");
    assert!(flat.contains("个人负担"), "{flat}");
}

#[test]
fn renders_concurrently_from_one_shared_renderer() {
    let renderer = Arc::new(SlipRenderer::new().unwrap());
    let handles: Vec<_> = (0..4)
        .map(|i| {
            let renderer = Arc::clone(&renderer);
            std::thread::spawn(move || {
                let mut slip = sample();
                slip.patient_name = format!("并发患者{i}");
                slip.psn_part_fen = 100_000 * (i + 1);
                (i, renderer.render(&slip).unwrap())
            })
        })
        .collect();
    for h in handles {
        let (i, pdf) = h.join().unwrap();
        let text = pdf_text(&format!("concurrent{i}"), &pdf);
        assert!(text.contains(&format!("并发患者{i}")), "{text}");
        assert!(text.contains(&format_yuan(100_000 * (i + 1))), "{text}");
    }
}

#[test]
fn wenquanyi_micro_hei_alone_is_enough() {
    let dir = PathBuf::from("/usr/share/fonts/truetype/wqy");
    if !dir.join("wqy-microhei.ttc").is_file() {
        eprintln!("skipped: fonts-wqy-microhei is not installed");
        return;
    }
    let renderer = SlipRenderer::with_font_dirs(&[dir]).unwrap();
    assert_eq!(renderer.font_families()[0], "WenQuanYi Micro Hei");
    let text = pdf_text("wqy", &renderer.render(&sample()).unwrap());
    assert!(squeeze(&text).contains("个人负担（患者应付）"), "{text}");
}

#[test]
fn no_cjk_font_is_a_clear_chinese_error() {
    let empty = tempfile::tempdir().unwrap();
    let err = SlipRenderer::with_font_dirs(&[empty.path().to_path_buf()]).unwrap_err();
    assert!(matches!(err, SlipError::NoFont { .. }), "{err:?}");
    let msg = err.to_string();
    for needle in ["中文字体", "fonts-noto-cjk", "fonts-wqy-microhei", "BAOZHANG_FONT_DIR"] {
        assert!(msg.contains(needle), "{needle} missing from: {msg}");
    }
}

#[test]
fn a_report_is_a_landscape_a4_pdf_of_its_tables_and_many_rows_flow_onto_more_pages() {
    let rows: Vec<Vec<String>> = (1..=120).map(|i| vec![format!("第{i}行#[x]"), format_yuan(i * 12_345), "按时".into()]).collect();
    let report = ReportData {
        title: "会宁县健康扶贫月度分析表".into(),
        subtitle: "2018 年 5 月 · 会宁县医疗保障局".into(),
        footer: "制表：保障系统".into(),
        tables: vec![
            ReportTable {
                title: "一、结算".into(),
                columns: vec!["月份".into(), "金额".into(), "报送".into()],
                numeric: vec![false, true, false],
                rows,
            },
            // A short row is padded, not an error.
            ReportTable {
                title: "二、报送".into(),
                columns: vec!["单位".into(), "状态".into()],
                numeric: vec![],
                rows: vec![vec!["医保部门".into()]],
            },
        ],
    };
    let pdf = renderer().render_report(&report).unwrap();
    let boxes = media_boxes(&pdf);
    assert!(boxes.len() >= 3, "120 rows need several pages, got {}", boxes.len());
    for (w, h) in &boxes {
        assert!((w - 841.89).abs() < 1.0 && (h - 595.28).abs() < 1.0, "A4 landscape, got {w}×{h}");
    }
    let flat = squeeze(&pdf_text("report", &pdf));
    for needle in
        ["会宁县健康扶贫月度分析表", "一、结算", "第1行#[x]", "第120行#[x]", &format_yuan(120 * 12_345), "二、报送", "医保部门", "共"]
    {
        assert!(flat.contains(&squeeze(needle)), "{needle:?} missing:\n{flat}");
    }
}
