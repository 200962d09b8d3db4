-- Oversight (issue 7, POLICY §4). Fund-supervision audits (R-AUD-1/2): a run over a year's settled
-- claims with the rules' parameters as used, its leads with their evidence, and every action on a lead.
CREATE TABLE audit_runs (
    id {{ID}},
    year BIGINT NOT NULL,
    params TEXT NOT NULL,             -- the parameters as used (TOML)
    claims BIGINT NOT NULL,
    leads BIGINT NOT NULL,
    run_by TEXT NOT NULL,
    run_at TEXT NOT NULL
);

CREATE TABLE audit_leads (
    id {{ID}},
    run_id BIGINT NOT NULL,
    rule TEXT NOT NULL,
    subject TEXT NOT NULL,            -- psn_no or fixmedins_code
    fixmedins_code TEXT NOT NULL,
    claims TEXT NOT NULL,             -- setl_ids, comma-separated
    evidence TEXT NOT NULL,
    amount_fen BIGINT NOT NULL,
    state TEXT NOT NULL,              -- open / confirmed / dismissed / disputed
    updated_at TEXT NOT NULL
);
CREATE INDEX audit_leads_run ON audit_leads (run_id, rule);
CREATE INDEX audit_leads_hospital ON audit_leads (fixmedins_code);

-- The trail of a lead (R-AUD-2): never updated, never deleted.
CREATE TABLE audit_lead_events (
    id {{ID}},
    lead_id BIGINT NOT NULL,
    at_time TEXT NOT NULL,
    actor TEXT NOT NULL,
    role TEXT NOT NULL,
    action TEXT NOT NULL,             -- confirm / dismiss / dispute / reopen
    from_state TEXT NOT NULL,
    to_state TEXT NOT NULL,
    note TEXT NOT NULL
);
CREATE INDEX audit_lead_events_lead ON audit_lead_events (lead_id);

-- The rectification ledger (整改台账, R-SUP-2): a problem, where it came from, where it is, who answers
-- for it, by when, what is done; closed (销号) only with evidence and a reviewer other than the closer.
-- `source_ref` ties an item to the lead or finding it was made from (one item each).
CREATE TABLE rectifications (
    id {{ID}},
    problem TEXT NOT NULL,
    source TEXT NOT NULL,             -- 国家考核 / 督查检查 / 普查 / 自查 / 参保比对 / 基金监管 / 退出验收 / 其他
    source_ref TEXT,
    region_code TEXT NOT NULL,
    subject TEXT NOT NULL,            -- household / person (masked) / hospital, as text
    responsible_unit TEXT NOT NULL,
    responsible_person TEXT NOT NULL,
    deadline BIGINT NOT NULL,
    measures TEXT NOT NULL,
    status TEXT NOT NULL,             -- open / closed
    evidence TEXT,
    reviewer TEXT,
    closed_by TEXT,
    closed_at TEXT,
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE UNIQUE INDEX rectifications_source_ref ON rectifications (source_ref);
CREATE INDEX rectifications_region ON rectifications (region_code, status);

CREATE TABLE rectification_events (
    id {{ID}},
    item_id BIGINT NOT NULL,
    at_time TEXT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,             -- create / update / close
    note TEXT NOT NULL
);
CREATE INDEX rectification_events_item ON rectification_events (item_id);
