-- Health programmes (issue 6, POLICY §3): chronic-disease cards (R-CHR-1/2), family-doctor contracts
-- (R-FDC-1/2/3), the major-disease treatment ledger (R-MDT-1). Imported rows carry their import; rows
-- replaced by a later import are kept with `superseded_import` set, never overwritten.

-- A visit's diagnosis (ICD-10): from the admission message (2201/2401 `dise_codg`) or a claims file.
CREATE TABLE visit_diagnoses (
    mdtrt_id TEXT PRIMARY KEY,
    dise_codg TEXT NOT NULL,
    dise_name TEXT,
    source TEXT NOT NULL              -- 'national' / 'batch'
);

-- The health department's public-health registry of chronic patients (公卫慢病登记).
CREATE TABLE chronic_registry (
    id {{ID}},
    id_no TEXT NOT NULL,
    disease TEXT NOT NULL,
    eligible BIGINT NOT NULL,         -- meets the card criteria (1) or not (0: medication guarantee)
    diagnosed_date BIGINT,
    mgmt_org TEXT,
    import_id BIGINT NOT NULL,
    superseded_import BIGINT
);
CREATE INDEX chronic_registry_person ON chronic_registry (id_no, disease);

-- The chronic-disease card register (慢病卡).
CREATE TABLE chronic_cards (
    id {{ID}},
    card_no TEXT NOT NULL,
    id_no TEXT NOT NULL,
    disease TEXT NOT NULL,
    issue_date BIGINT NOT NULL,
    issuer TEXT,
    status TEXT NOT NULL,             -- 有效 / 注销
    import_id BIGINT NOT NULL,
    superseded_import BIGINT
);
CREATE INDEX chronic_cards_no ON chronic_cards (card_no);
CREATE INDEX chronic_cards_person ON chronic_cards (id_no);
CREATE INDEX chronic_cards_issue ON chronic_cards (issue_date);

-- The monthly audit draw of new cards (R-CHR-2): one per county and month, with its seed.
CREATE TABLE chronic_audits (
    id {{ID}},
    region_code TEXT NOT NULL,
    month BIGINT NOT NULL,            -- yyyymm
    seed BIGINT NOT NULL,
    population BIGINT NOT NULL,
    drawn BIGINT NOT NULL,
    drawn_by TEXT NOT NULL,
    drawn_at TEXT NOT NULL
);
CREATE UNIQUE INDEX chronic_audits_month ON chronic_audits (region_code, month);

CREATE TABLE chronic_audit_items (
    audit_id BIGINT NOT NULL,
    card_no TEXT NOT NULL,
    draw_order BIGINT NOT NULL,
    result TEXT NOT NULL,             -- '' (pending) / 合规 / 人情卡 / 流程不规范
    note TEXT,
    checked_by TEXT,
    checked_at TEXT,
    PRIMARY KEY (audit_id, card_no)
);

-- Family-doctor teams (R-FDC-1), at four levels.
CREATE TABLE fdc_teams (
    team_code TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    level BIGINT NOT NULL,            -- 1 province/city, 2 county, 3 township, 4 village
    institution TEXT NOT NULL,        -- the hospital the fee is settled with
    region_code TEXT NOT NULL,
    leader TEXT,
    import_id BIGINT NOT NULL
);

-- Contracts, one per person and year.
CREATE TABLE fdc_contracts (
    id {{ID}},
    id_no TEXT NOT NULL,
    year BIGINT NOT NULL,
    team_code TEXT NOT NULL,
    doctor TEXT NOT NULL,             -- the responsible (village) doctor
    package TEXT NOT NULL,            -- 基础包 / 中级包
    fee_fen BIGINT NOT NULL,
    signed_date BIGINT NOT NULL,
    import_id BIGINT NOT NULL,
    superseded_import BIGINT
);
CREATE INDEX fdc_contracts_person ON fdc_contracts (id_no, year);
CREATE INDEX fdc_contracts_team ON fdc_contracts (team_code, year);

-- Service records: follow-ups, home visits (送医上门), escorts to hospital (送人就医).
CREATE TABLE fdc_services (
    id {{ID}},
    id_no TEXT NOT NULL,
    service_date BIGINT NOT NULL,
    kind TEXT NOT NULL,
    disease TEXT NOT NULL,            -- '' when not a disease's follow-up
    doctor TEXT NOT NULL,
    note TEXT,
    import_id BIGINT,
    entered_by TEXT,
    entered_at TEXT NOT NULL
);
CREATE UNIQUE INDEX fdc_services_key ON fdc_services (id_no, service_date, kind, disease);

-- The per-person plan (一人一策, R-FDC-2), one per person and year; every save is audit-logged.
CREATE TABLE fdc_plans (
    id_no TEXT NOT NULL,
    year BIGINT NOT NULL,
    category TEXT NOT NULL,
    doctors TEXT NOT NULL,
    referral TEXT,
    medication TEXT,
    schedule TEXT,
    updated_by TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (id_no, year)
);

-- Major-disease lists (R-MDT-1): shipped ones loaded from data/mdt, editable.
CREATE TABLE mdt_lists (
    list_code TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    region_prefix TEXT NOT NULL,
    source TEXT NOT NULL,
    exact BIGINT NOT NULL,
    note TEXT NOT NULL,
    updated_by TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE mdt_diseases (
    list_code TEXT NOT NULL,
    seq_no BIGINT NOT NULL,
    name TEXT NOT NULL,
    icd10 TEXT NOT NULL,              -- codes / prefixes separated by ';'
    PRIMARY KEY (list_code, seq_no)
);

-- Cases of the ledger: from a settlement with a listed diagnosis, or entered by hand.
CREATE TABLE mdt_cases (
    id {{ID}},
    id_no TEXT NOT NULL,
    list_code TEXT NOT NULL,
    disease_no BIGINT NOT NULL,
    dise_codg TEXT,
    hospital TEXT NOT NULL,
    diagnosis_date BIGINT NOT NULL,
    status TEXT NOT NULL,             -- 待救治 / 救治中 / 已救治 / 已转诊 / 放弃治疗 / 死亡
    treated_date BIGINT,
    referral TEXT,
    origin TEXT NOT NULL,             -- 结算 / 手工
    setl_id TEXT,
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE UNIQUE INDEX mdt_cases_key ON mdt_cases (id_no, list_code, disease_no);

CREATE TABLE mdt_followups (
    id {{ID}},
    case_id BIGINT NOT NULL,
    fu_date BIGINT NOT NULL,
    status TEXT NOT NULL,
    note TEXT NOT NULL,
    by_user TEXT NOT NULL,
    at_time TEXT NOT NULL
);
CREATE INDEX mdt_followups_case ON mdt_followups (case_id);
