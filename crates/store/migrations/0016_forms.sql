-- Periodic forms (issue 19): every version of every unit's report for a period, appended and never
-- overwritten. A unit's report is its latest version; version 1 is its first submission (its
-- timeliness); a correction or a return for correction appends a version. The R-SUP-3 monthly reports
-- (report_submissions) are forms of this kind now and are copied in as their first versions.
CREATE TABLE form_submissions (
    id {{ID}},
    form_id TEXT NOT NULL,            -- data/periodic/<id>.toml
    county TEXT NOT NULL,             -- the county the unit reports in
    unit TEXT NOT NULL,               -- a township code, a fixmedins_code or an office code of the form
    period BIGINT NOT NULL,           -- core::forms::Period::code (year × 100 + month / quarter / half / 1)
    version BIGINT NOT NULL,          -- 1, 2, … per (form, county, unit, period)
    action TEXT NOT NULL,             -- submit / correct / return
    state TEXT NOT NULL,              -- submitted / returned: the report's state after this version
    filed_on BIGINT NOT NULL,         -- yyyymmdd: the day this version was filed (received, for paper)
    values_json TEXT NOT NULL,        -- core::forms::Values
    note TEXT NOT NULL,               -- the filer's note; for a return, its reason
    actor TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE UNIQUE INDEX form_submissions_key ON form_submissions (form_id, county, unit, period, version);
CREATE INDEX form_submissions_county ON form_submissions (county, period);

INSERT INTO form_submissions (form_id, county, unit, period, version, action, state, filed_on, values_json, note, actor, created_at)
SELECT kind, region_code, unit, period, 1, 'submit', 'submitted', submitted_on, '{}', note, submitted_by, created_at FROM report_submissions;
