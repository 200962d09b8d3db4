-- Supervision (issue 7, POLICY §4): villages under 挂牌督战 with the reasons they were selected, the
-- responsibility zones and the inspections (R-SUP-1); monthly report submissions (R-SUP-3); score
-- sheets and their answers (R-SUP-4); hospital budgets and the quarterly fallback statements (R-FUND-1).
CREATE TABLE sup_zones (
    id {{ID}},
    name TEXT NOT NULL,
    region_code TEXT NOT NULL,        -- the county (or township) the zone covers
    city_leader TEXT NOT NULL,
    county_leader TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL
);

CREATE TABLE sup_villages (
    id {{ID}},
    village_code TEXT NOT NULL,
    year BIGINT NOT NULL,
    reasons TEXT NOT NULL,            -- the criteria met with their figures, or the reason given by hand
    by_hand BIGINT NOT NULL,          -- 1: selected by hand
    zone_id BIGINT,
    status TEXT NOT NULL,             -- active / removed
    selected_by TEXT NOT NULL,
    selected_at TEXT NOT NULL,
    removed_by TEXT,
    removed_at TEXT,
    remove_reason TEXT
);
CREATE UNIQUE INDEX sup_villages_key ON sup_villages (village_code, year);

CREATE TABLE sup_inspections (
    id {{ID}},
    village_code TEXT NOT NULL,
    on_date BIGINT NOT NULL,
    mode TEXT NOT NULL,               -- field / remote / phone
    inspector TEXT NOT NULL,
    findings TEXT NOT NULL,
    rect_id BIGINT,                   -- the ledger item made from the findings
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX sup_inspections_village ON sup_inspections (village_code, on_date);

-- One submission per report, unit and month; never overwritten.
CREATE TABLE report_submissions (
    id {{ID}},
    kind TEXT NOT NULL,               -- county_progress / info_exchange
    region_code TEXT NOT NULL,        -- the county
    unit TEXT NOT NULL,               -- the reporting unit (core::supervise::ReportKind::units)
    period BIGINT NOT NULL,           -- yyyymm, the month the report is due in
    submitted_on BIGINT NOT NULL,
    submitted_by TEXT NOT NULL,
    note TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE UNIQUE INDEX report_submissions_key ON report_submissions (kind, region_code, unit, period);

CREATE TABLE score_sheets (
    id {{ID}},
    form_id TEXT NOT NULL,
    region_code TEXT NOT NULL,
    year BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE UNIQUE INDEX score_sheets_key ON score_sheets (form_id, region_code, year);

-- Answers are appended; an item's answer is its latest row (the earlier ones are its trail).
CREATE TABLE score_answers (
    id {{ID}},
    sheet_id BIGINT NOT NULL,
    item_no TEXT NOT NULL,
    answer TEXT NOT NULL,
    points BIGINT NOT NULL,
    veto BIGINT NOT NULL,
    evidence TEXT NOT NULL,
    source TEXT NOT NULL,             -- auto / hand
    answered_by TEXT NOT NULL,
    answered_at TEXT NOT NULL
);
CREATE INDEX score_answers_sheet ON score_answers (sheet_id, item_no);

CREATE TABLE fund_budgets (
    id {{ID}},
    fixmedins_code TEXT NOT NULL,
    year BIGINT NOT NULL,
    budget_fen BIGINT NOT NULL,
    prepaid_on BIGINT,
    assessed_bp BIGINT,
    assessed_on BIGINT,
    updated_by TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE UNIQUE INDEX fund_budgets_key ON fund_budgets (fixmedins_code, year);

-- The quarterly statement of the fallback money a hospital advanced: the amount from the ledger when the
-- statement was drawn up, then the hospital's submission, the bureau's acceptance and the payment.
CREATE TABLE fallback_statements (
    id {{ID}},
    fixmedins_code TEXT NOT NULL,
    year BIGINT NOT NULL,
    quarter BIGINT NOT NULL,
    amount_fen BIGINT NOT NULL,
    claims BIGINT NOT NULL,
    submitted_on BIGINT,
    accepted_on BIGINT,
    paid_on BIGINT,
    updated_by TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE UNIQUE INDEX fallback_statements_key ON fallback_statements (fixmedins_code, year, quarter);
