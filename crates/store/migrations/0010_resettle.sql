-- Re-settlement through the ledger (issue 17): runs, adjustment entries, applications.

-- What the claim was, beyond its bill, so that a person-year can be settled again exactly:
-- bit 0 in the insured county, bit 1 referral compliant, bit 2 a listed major disease.
-- NULL on rows written before this migration (then read from the visit and the institution).
ALTER TABLE ledger_settlements ADD COLUMN claim_flags BIGINT;

-- One re-settlement run: a year, a scope (a region prefix, or one person), a reason. A run is
-- resumable: person-years are committed one transaction at a time, in psn_no order, and
-- `last_psn_no` is the last one committed. Running a person-year twice writes nothing the second time.
CREATE TABLE resettle_runs (
    id {{ID}},
    year BIGINT NOT NULL,
    region TEXT NOT NULL,             -- region prefix of the insured person's village ('' = everywhere)
    psn_no TEXT,                      -- one person only
    reason TEXT NOT NULL,             -- late_identity | cancellation | application | year_end
    note TEXT NOT NULL DEFAULT '',
    opter TEXT NOT NULL,
    status TEXT NOT NULL,             -- running | done
    person_years BIGINT NOT NULL DEFAULT 0,
    done_person_years BIGINT NOT NULL DEFAULT 0,
    last_psn_no TEXT,
    claims_adjusted BIGINT NOT NULL DEFAULT 0,
    refused BIGINT NOT NULL DEFAULT 0,
    problems TEXT NOT NULL DEFAULT '',  -- person-years refused, one line each (the first 200)
    started_at TEXT NOT NULL,
    finished_at TEXT
);

-- One adjustment of one settlement by one run: the difference per fund between what the engine
-- computes now and what the settlement (with its earlier adjustments) paid. Its ledger entries are in
-- ledger_entries with setl_id = adj_id. Append-only, like the ledger.
CREATE TABLE ledger_adjustments (
    adj_id TEXT PRIMARY KEY,
    run_id BIGINT NOT NULL,
    setl_id TEXT NOT NULL,            -- the settlement adjusted
    psn_no TEXT NOT NULL,
    year BIGINT NOT NULL,
    mdtrt_id TEXT NOT NULL,
    id_no TEXT NOT NULL,
    village_code TEXT,
    fixmedins_code TEXT NOT NULL,
    insuplc_admdvs TEXT NOT NULL,
    setl_date BIGINT NOT NULL,
    reason TEXT NOT NULL,
    identities BIGINT NOT NULL,       -- identities the claim was settled with now
    policy_id TEXT NOT NULL,
    policy_version TEXT NOT NULL,
    fund_390100 BIGINT NOT NULL,
    fund_390200 BIGINT NOT NULL,
    fund_620100 BIGINT NOT NULL,
    fund_610100 BIGINT NOT NULL,
    fund_640100 BIGINT NOT NULL,
    fund_999996 BIGINT NOT NULL,
    act_pay_dedc BIGINT NOT NULL,
    fund_pay_sumamt BIGINT NOT NULL,
    hosp_part_amt BIGINT NOT NULL,
    psn_part_amt BIGINT NOT NULL,
    outcome TEXT NOT NULL,            -- the new settlement's per-layer explanation (JSON)
    created_at TEXT NOT NULL,
    opter TEXT NOT NULL
);
CREATE UNIQUE INDEX ledger_adjustments_run_setl ON ledger_adjustments (run_id, setl_id);
CREATE INDEX ledger_adjustments_setl ON ledger_adjustments (setl_id);
CREATE INDEX ledger_adjustments_person ON ledger_adjustments (psn_no, year);

-- Applications for assistance after discharge (依申请救助 / 二次救助): the bureau records them; an approved
-- one gives the person the identity it recognises from its effective date (an identity period with
-- source 'application') and re-settles the person-year.
CREATE TABLE assistance_applications (
    id {{ID}},
    psn_no TEXT NOT NULL,
    id_no TEXT NOT NULL,
    village_code TEXT,
    year BIGINT NOT NULL,
    kind TEXT NOT NULL,               -- illness_poor | dibao | extreme_poor | marginal (the identity recognised)
    effective_from BIGINT NOT NULL,
    documents TEXT NOT NULL,
    status TEXT NOT NULL,             -- pending | approved | rejected
    decision_note TEXT,
    decided_by TEXT,
    decided_at TEXT,
    run_id BIGINT,
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX assistance_applications_person ON assistance_applications (psn_no, year)
