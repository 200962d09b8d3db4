-- Reconciliation runs (R-ENR-2) and their findings; each run is kept.
CREATE TABLE reconcile_runs (
    id {{ID}},
    as_of BIGINT NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    previous_run BIGINT,
    findings BIGINT NOT NULL DEFAULT 0,
    new_findings BIGINT NOT NULL DEFAULT 0,
    resolved_findings BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE reconcile_findings (
    id {{ID}},
    run_id BIGINT NOT NULL,
    class TEXT NOT NULL,
    id_no TEXT NOT NULL,
    village_code TEXT,
    household_no TEXT,
    detail TEXT,
    is_new BIGINT NOT NULL DEFAULT 1  -- 1 = not in the previous run, 0 = persists
);
CREATE INDEX reconcile_findings_run ON reconcile_findings (run_id, class);
CREATE INDEX reconcile_findings_person ON reconcile_findings (id_no);

-- Settlements of claims against the registry (the demo's batch settlement; the service's ledger
-- builds on this in a later migration).
CREATE TABLE settlements (
    claim_id TEXT PRIMARY KEY,
    psn_no TEXT NOT NULL,
    id_no TEXT,
    village_code TEXT,
    setl_date BIGINT NOT NULL,
    med_type BIGINT NOT NULL,
    hosp_lv BIGINT NOT NULL,
    identities BIGINT NOT NULL,
    policy_id TEXT NOT NULL,
    policy_version TEXT NOT NULL,
    medfee_sumamt BIGINT NOT NULL,
    inscp_scp_amt BIGINT NOT NULL,
    act_pay_dedc BIGINT NOT NULL,
    fund_390100 BIGINT NOT NULL,
    fund_390200 BIGINT NOT NULL,
    fund_620100 BIGINT NOT NULL,
    fund_610100 BIGINT NOT NULL,
    fund_640100 BIGINT NOT NULL,
    fund_999996 BIGINT NOT NULL,
    fund_pay_sumamt BIGINT NOT NULL,
    psn_part_amt BIGINT NOT NULL
);
CREATE INDEX settlements_village ON settlements (village_code, setl_date);
CREATE INDEX settlements_person ON settlements (id_no);

-- Who saw personal information unmasked, and when (PIPL).
CREATE TABLE audit_log (
    id {{ID}},
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    detail TEXT NOT NULL
);
