-- The online settlement service (issue 4): institutions, users and sessions, visits (mdtrt), the
-- append-only ledger with its person-year accumulators, message idempotency, and the access log.
-- Amounts are BIGINT fen; dates BIGINT yyyymmdd; instants TEXT ISO-8601 or BIGINT unix seconds.

-- Designated medical institutions (定点医药机构) allowed to call the national endpoint.
CREATE TABLE institutions (
    fixmedins_code TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    hosp_lv BIGINT NOT NULL,          -- 1 township / 2 county / 3 city-province
    admdvs TEXT NOT NULL,             -- the county it sits in (in-county test)
    secret TEXT NOT NULL,             -- HMAC key for request signatures; shown once when created
    created_at TEXT NOT NULL,
    disabled BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE users (
    username TEXT PRIMARY KEY,
    display_name TEXT NOT NULL,
    role TEXT NOT NULL,               -- admin / bureau / hospital / cadre / auditor
    scope TEXT NOT NULL,              -- region code (bureau, cadre, auditor) or fixmedins_code (hospital); '' for admin
    password_hash TEXT NOT NULL,      -- argon2id PHC string
    created_at TEXT NOT NULL,
    disabled BIGINT NOT NULL DEFAULT 0
);

-- Bearer tokens: only their sha256 is kept, so a database dump does not leak live sessions.
CREATE TABLE sessions (
    token_sha256 TEXT PRIMARY KEY,
    username TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at BIGINT NOT NULL        -- unix seconds
);

-- 9001 sign-ins: every other national transaction must carry a live sign_no of its institution.
CREATE TABLE sign_ins (
    sign_no TEXT PRIMARY KEY,
    fixmedins_code TEXT NOT NULL,
    opter TEXT NOT NULL,
    signed_at TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);

-- A visit (就诊): registered by 2201 (outpatient) or 2401 (inpatient), fees uploaded by 2301,
-- settled by 2207/2304. `status` is the only mutable column: open → settled → (cancelled → open).
CREATE TABLE mdtrts (
    mdtrt_id TEXT PRIMARY KEY,
    psn_no TEXT NOT NULL,
    id_no TEXT NOT NULL,
    fixmedins_code TEXT NOT NULL,
    med_type BIGINT NOT NULL,
    begn_date BIGINT NOT NULL,
    insuplc_admdvs TEXT NOT NULL,
    referral_ok BIGINT NOT NULL,
    major_disease BIGINT NOT NULL,
    status TEXT NOT NULL,
    setl_id TEXT,
    created_at TEXT NOT NULL
);
CREATE INDEX mdtrts_psn ON mdtrts (psn_no);
CREATE INDEX mdtrts_fixmedins ON mdtrts (fixmedins_code);

-- 2301 fee lines, each already split into the four parts of POLICY §2.1. A line number is
-- written once: a re-upload of the same line with the same amounts is a no-op, different amounts are refused.
CREATE TABLE fee_lines (
    mdtrt_id TEXT NOT NULL,
    feedetl_sn TEXT NOT NULL,
    det_item_fee_sumamt BIGINT NOT NULL,
    fulamt_ownpay_amt BIGINT NOT NULL,
    overlmt_selfpay BIGINT NOT NULL,
    preselfpay_amt BIGINT NOT NULL,
    inscp_scp_amt BIGINT NOT NULL,
    med_list_codg TEXT,
    created_at TEXT NOT NULL,
    PRIMARY KEY (mdtrt_id, feedetl_sn)
);

-- One row per settlement and per cancellation (a cancellation has `reverses` = the original setl_id
-- and negated amounts). Never updated, never deleted. `seq` is the commit order.
CREATE TABLE ledger_settlements (
    setl_id TEXT PRIMARY KEY,
    seq BIGINT NOT NULL,
    reverses TEXT,
    msgid TEXT NOT NULL,
    mdtrt_id TEXT NOT NULL,
    psn_no TEXT NOT NULL,
    id_no TEXT NOT NULL,
    village_code TEXT,
    fixmedins_code TEXT NOT NULL,
    insuplc_admdvs TEXT NOT NULL,
    setl_date BIGINT NOT NULL,
    year BIGINT NOT NULL,
    med_type BIGINT NOT NULL,
    hosp_lv BIGINT NOT NULL,
    identities BIGINT NOT NULL,
    policy_id TEXT NOT NULL,
    policy_version TEXT NOT NULL,
    medfee_sumamt BIGINT NOT NULL,
    fulamt_ownpay_amt BIGINT NOT NULL,
    overlmt_selfpay BIGINT NOT NULL,
    preselfpay_amt BIGINT NOT NULL,
    inscp_scp_amt BIGINT NOT NULL,
    act_pay_dedc BIGINT NOT NULL,
    fund_pay_sumamt BIGINT NOT NULL,
    hosp_part_amt BIGINT NOT NULL,
    psn_part_amt BIGINT NOT NULL,
    outcome TEXT NOT NULL,            -- the engine's per-layer outcome (JSON), for explanation and reversal
    created_at TEXT NOT NULL,
    opter TEXT NOT NULL
);
CREATE UNIQUE INDEX ledger_settlements_seq ON ledger_settlements (seq);
CREATE INDEX ledger_settlements_mdtrt ON ledger_settlements (mdtrt_id);
CREATE INDEX ledger_settlements_reverses ON ledger_settlements (reverses);
{{PG}} CREATE SEQUENCE ledger_seq;
CREATE INDEX ledger_settlements_psn ON ledger_settlements (psn_no, year);
CREATE INDEX ledger_settlements_fixmedins ON ledger_settlements (fixmedins_code, setl_date);
CREATE INDEX ledger_settlements_village ON ledger_settlements (village_code, setl_date);

-- The ledger proper: one entry per applied layer (its fund and amount, and what it added to the
-- layer's accumulators) plus one for the personal part (layer -1, fund 'PSN'), which also carries the
-- inpatient-stay count. Append-only: a cancellation appends negated entries.
CREATE TABLE ledger_entries (
    id {{ID}},
    setl_id TEXT NOT NULL,
    psn_no TEXT NOT NULL,
    year BIGINT NOT NULL,
    layer BIGINT NOT NULL,
    fund TEXT NOT NULL,
    amount_fen BIGINT NOT NULL,
    outpatient_fen BIGINT NOT NULL,   -- amount_fen on outpatient claims, 0 otherwise
    base_delta_fen BIGINT NOT NULL,
    personal_delta_fen BIGINT NOT NULL,
    stay_level BIGINT NOT NULL,       -- 0-based hospital level of an inpatient stay, -1 otherwise
    stay_delta BIGINT NOT NULL        -- +1 settle, -1 cancel (personal entry of inpatient claims)
);
CREATE INDEX ledger_entries_setl ON ledger_entries (setl_id);
CREATE INDEX ledger_entries_person ON ledger_entries (psn_no, year);

-- Person-year accumulators as of the last committed settlement; always equal to the sum of the
-- person-year's ledger entries (`baozhang ledger verify`). Locked (FOR UPDATE / SQLite's write lock)
-- for the whole settlement transaction.
CREATE TABLE accumulators (
    psn_no TEXT NOT NULL,
    year BIGINT NOT NULL,
    policy_id TEXT NOT NULL,
    state TEXT NOT NULL,              -- stays and per-layer sums, see store::ledger::AccState
    settlements BIGINT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (psn_no, year)
);

-- Idempotency of national messages: the response to a write transaction, stored in the same
-- transaction as its effect. A repeated msgid gets these bytes back.
CREATE TABLE msg_log (
    msgid TEXT PRIMARY KEY,
    fixmedins_code TEXT NOT NULL,
    infno TEXT NOT NULL,
    body_sha256 TEXT NOT NULL,
    response TEXT NOT NULL,
    created_at TEXT NOT NULL
);

-- PIPL: every unmasked view of personal information.
CREATE TABLE access_log (
    id {{ID}},
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    role TEXT NOT NULL,
    action TEXT NOT NULL,
    subject TEXT NOT NULL,            -- masked ID number of the person seen
    detail TEXT NOT NULL
);

-- Every write: who, when, what, before / after.
ALTER TABLE audit_log ADD COLUMN target TEXT;
ALTER TABLE audit_log ADD COLUMN before_val TEXT;
ALTER TABLE audit_log ADD COLUMN after_val TEXT
