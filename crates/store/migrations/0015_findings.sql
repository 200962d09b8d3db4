-- Workbench defects (issue 18).
--
-- A roster conflict (the same person in two households, enrolled twice in a year) stays a 重复人员
-- finding until the data removes it: a later import of the same kind that holds the person once, without
-- a conflict, resolves it (`resolved_import`). Before, only the latest import of the kind counted, so
-- uploading any small roster "resolved" every duplicate nobody had fixed.
ALTER TABLE roster_conflicts ADD COLUMN resolved_import BIGINT;
-- An enrolment conflict is a person enrolled twice in one year: only a roster holding the person once in
-- that year resolves it (NULL for the poverty roster's conflicts, which are not per year).
ALTER TABLE roster_conflicts ADD COLUMN conflict_year BIGINT;
CREATE INDEX roster_conflicts_open ON roster_conflicts (kind, id_no, resolved_import);

-- The unit a finding is counted in: its village, or — for a person on no village roster (a death or
-- military record only) — the county of their enrolment. The dashboard and the worklist both count by
-- it, so every finding the dashboard counts can be reached in the worklist (under 村不详).
ALTER TABLE reconcile_findings ADD COLUMN unit_code TEXT;
CREATE INDEX reconcile_findings_unit ON reconcile_findings (run_id, unit_code);
UPDATE reconcile_findings SET unit_code = COALESCE(village_code,
    (SELECT MAX(e.insured_admdvs) FROM enrolments e WHERE e.id_no = reconcile_findings.id_no AND e.superseded_import IS NULL));
