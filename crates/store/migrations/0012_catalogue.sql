-- The medical-insurance catalogue (医保目录, issue 15): national items with their class, 先行自付比例,
-- 最高限价 and 限定支付范围, and each hospital's own item codes mapped to them. Both are versioned: a
-- re-import of a changed row supersedes the live version (superseded_import) and inserts the new one; an
-- unchanged row is left alone, so the same file twice changes nothing. Dates BIGINT yyyymmdd, money
-- BIGINT fen, ratios BIGINT basis points.

-- One imported file: 'items' (the catalogue) or 'map' (a hospital's code map).
CREATE TABLE catalogue_imports (
    id {{ID}},
    kind TEXT NOT NULL,               -- items | map
    file_name TEXT NOT NULL,
    file_sha256 TEXT NOT NULL,
    rows_total BIGINT NOT NULL,
    added BIGINT NOT NULL,            -- keys not live before
    superseded BIGINT NOT NULL,       -- live versions replaced by a changed row
    actor TEXT NOT NULL,
    imported_at TEXT NOT NULL
);
CREATE UNIQUE INDEX catalogue_imports_file ON catalogue_imports (kind, file_sha256);

-- One version of a catalogue item, keyed by (hilist_code, begndate): an item may have successive
-- periods of validity, each its own row. Only one version of a key is live (superseded_import IS NULL).
CREATE TABLE catalogue_items (
    id {{ID}},
    hilist_code TEXT NOT NULL,        -- 医保目录编码
    hilist_name TEXT NOT NULL,        -- 医保目录名称
    list_type TEXT NOT NULL,          -- 目录类别: 101 西药中成药 102 中药饮片 103 自制剂 104 民族药 201 医疗服务项目 301 医用耗材
    med_chrgitm_type TEXT NOT NULL,   -- 医疗收费项目类别 (01 床位费 … 14 其他费), '' when not given
    chrgitm_lv TEXT NOT NULL,         -- 收费项目等级: 01 甲类 02 乙类 03 丙类
    selfpay_prop_bp BIGINT NOT NULL,  -- 先行自付比例, basis points 0..10000
    pric_uplmt_fen BIGINT,            -- 最高限价 per unit (医保目录定价上限金额), NULL = none
    lmt_used_flag BIGINT NOT NULL,    -- 限制使用标志 0/1
    lmt_scope TEXT NOT NULL,          -- 限定支付范围 (text), '' when none
    insu_admdvs TEXT NOT NULL,        -- 医保区划, '' when national
    begndate BIGINT NOT NULL,
    enddate BIGINT,                   -- NULL = open
    vali_flag BIGINT NOT NULL,        -- 有效标志 0/1
    updt_time TEXT NOT NULL,          -- the source's 更新时间, 'YYYY-MM-DD HH:MM:SS' ('' when not given)
    import_id BIGINT NOT NULL,
    superseded_import BIGINT
);
CREATE UNIQUE INDEX catalogue_items_live ON catalogue_items (hilist_code, begndate) WHERE superseded_import IS NULL;
CREATE INDEX catalogue_items_code ON catalogue_items (hilist_code);
CREATE INDEX catalogue_items_updt ON catalogue_items (updt_time);

-- A hospital's own item code (医疗机构目录编码) mapped to a national one, keyed by
-- (fixmedins_code, medins_list_codg, begndate); versioned like the items.
CREATE TABLE catalogue_maps (
    id {{ID}},
    fixmedins_code TEXT NOT NULL,
    medins_list_codg TEXT NOT NULL,
    medins_list_name TEXT NOT NULL,
    hilist_code TEXT NOT NULL,
    begndate BIGINT NOT NULL,
    enddate BIGINT,
    import_id BIGINT NOT NULL,
    superseded_import BIGINT
);
CREATE UNIQUE INDEX catalogue_maps_live ON catalogue_maps (fixmedins_code, medins_list_codg, begndate) WHERE superseded_import IS NULL;
CREATE INDEX catalogue_maps_code ON catalogue_maps (fixmedins_code, medins_list_codg)
