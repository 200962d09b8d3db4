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
