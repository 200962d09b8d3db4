-- The workbench (R-ENR-2 worklists): a village cadre marks a reconciliation finding done (已处理); the
-- next run confirms the mark (the finding is gone) or reopens it (still there). Marks are never deleted:
-- an undo sets the state to 'undone'.

CREATE TABLE worklist_marks (
    id {{ID}},
    finding_id BIGINT NOT NULL,       -- the finding marked (reconcile_findings.id)
    class TEXT NOT NULL,              -- its class and person: what the next run looks for
    id_no TEXT NOT NULL,
    village_code TEXT,
    household_no TEXT,
    marked_run BIGINT NOT NULL,       -- the run the finding belongs to (the latest when marked)
    marked_by TEXT NOT NULL,
    marked_at TEXT NOT NULL,
    note TEXT,
    state TEXT NOT NULL,              -- pending / confirmed / reopened / undone
    resolved_run BIGINT,              -- the run that confirmed or reopened it
    resolved_at TEXT,
    undone_by TEXT,
    undone_at TEXT
);
-- At most one pending mark per class and person: marking twice returns the first.
CREATE UNIQUE INDEX worklist_marks_pending ON worklist_marks (class, id_no) WHERE state = 'pending';
CREATE INDEX worklist_marks_finding ON worklist_marks (finding_id);
CREATE INDEX worklist_marks_resolved ON worklist_marks (resolved_run, class, id_no);
CREATE INDEX worklist_marks_village ON worklist_marks (village_code, state);

-- Indicators of a year read the ledger by year without touching its wide rows (the settlement's outcome
-- is about 1 KB): these two indexes cover what `indicators::village_indicators` reads (measured on a
-- county of 321,552 settlements a year, SQLite: the settlement scan 2.2 → 1.3 s, the per-person sums
-- 1.2 → 0.5 s, the per-settlement fund sums 2.7 → 1.1 s, on a loaded 2-core machine).
CREATE INDEX ledger_settlements_year ON ledger_settlements (year, id_no, village_code, insuplc_admdvs, reverses, med_type, identities,
    medfee_sumamt, inscp_scp_amt, fund_pay_sumamt, hosp_part_amt, psn_part_amt);
CREATE INDEX ledger_entries_year ON ledger_entries (year, setl_id, fund, layer, amount_fen);

-- Server secrets shared by every server process on the database, e.g. the key of the opaque person
-- links of the workbench (a page address never carries an ID number).
CREATE TABLE app_secrets (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    created_at TEXT NOT NULL
);
