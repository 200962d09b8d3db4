-- Registry (R-REG-*, R-ENR-1). Portable SQL for SQLite and PostgreSQL; {{ID}} is the backend's
-- auto-increment primary key. Dates are BIGINT yyyymmdd (sortable, readable, the same in both);
-- money is BIGINT fen. Rows are never silently overwritten: changes are versioned or logged.

CREATE TABLE regions (
    code TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    level BIGINT NOT NULL,            -- 1 province, 2 city, 3 county, 4 township, 5 village
    parent_code TEXT
);
CREATE INDEX regions_parent ON regions (parent_code);

CREATE TABLE imports (
    id {{ID}},
    kind TEXT NOT NULL,
    file_name TEXT NOT NULL,
    file_sha256 TEXT NOT NULL,
    imported_at TEXT NOT NULL,
    rows_total BIGINT NOT NULL DEFAULT 0,
    rows_accepted BIGINT NOT NULL DEFAULT 0,
    rows_rejected BIGINT NOT NULL DEFAULT 0,
    changes BIGINT NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX imports_kind_sha ON imports (kind, file_sha256);

CREATE TABLE households (
    household_no TEXT PRIMARY KEY,
    village_code TEXT NOT NULL,
    import_id BIGINT NOT NULL
);
CREATE INDEX households_village ON households (village_code);

CREATE TABLE persons (
    id_no TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    sex TEXT NOT NULL,
    birth_date BIGINT NOT NULL,
    household_no TEXT,
    relation TEXT,
    village_code TEXT,
    psn_no TEXT,
    import_id BIGINT NOT NULL
);
CREATE INDEX persons_village ON persons (village_code);
CREATE INDEX persons_household ON persons (household_no);
CREATE INDEX persons_psn_no ON persons (psn_no);

-- Every change to a person's attributes, with the import that made it.
CREATE TABLE person_changes (
    id {{ID}},
    id_no TEXT NOT NULL,
    field TEXT NOT NULL,
    old_value TEXT,
    new_value TEXT,
    import_id BIGINT NOT NULL
);
CREATE INDEX person_changes_person ON person_changes (id_no);

-- The poverty office's record of a person (status, years, monitoring), versioned.
CREATE TABLE poverty_records (
    id {{ID}},
    id_no TEXT NOT NULL,
    household_no TEXT NOT NULL,
    status TEXT NOT NULL,             -- 未脱贫 / 已脱贫 / 已清退 / '' (monitored only)
    reg_year BIGINT,
    exit_year BIGINT,
    monitor_type TEXT,
    monitor_date BIGINT,
    cause TEXT,
    disability TEXT,
    change_date BIGINT NOT NULL,
    import_id BIGINT NOT NULL,
    superseded_import BIGINT
);
CREATE INDEX poverty_records_person ON poverty_records (id_no);

-- Identity periods (R-REG-2): what a person was on a date. A period no later roster confirms is
-- retracted (kept, marked), never deleted.
CREATE TABLE identity_periods (
    id {{ID}},
    id_no TEXT NOT NULL,
    identity TEXT NOT NULL,
    start_date BIGINT NOT NULL,
    end_date BIGINT,                  -- exclusive; NULL = open
    source TEXT NOT NULL,             -- the roster kind that asserts it
    import_id BIGINT NOT NULL,
    changed_import BIGINT,            -- last import that changed end_date
    retracted_import BIGINT
);
CREATE INDEX identity_periods_person ON identity_periods (id_no);
CREATE UNIQUE INDEX identity_periods_key ON identity_periods (id_no, identity, source, start_date);

-- Special states (R-REG-3): death, military service.
CREATE TABLE special_states (
    id {{ID}},
    id_no TEXT NOT NULL,
    state TEXT NOT NULL,
    start_date BIGINT NOT NULL,
    end_date BIGINT,
    import_id BIGINT NOT NULL,
    retracted_import BIGINT
);
CREATE UNIQUE INDEX special_states_key ON special_states (id_no, state, start_date);

-- Yearly enrolment (R-ENR-1), versioned: a changed record supersedes the old one.
CREATE TABLE enrolments (
    id {{ID}},
    id_no TEXT NOT NULL,
    psn_no TEXT NOT NULL,
    year BIGINT NOT NULL,
    status TEXT NOT NULL,
    insured BIGINT NOT NULL,          -- 0 / 1
    insured_admdvs TEXT NOT NULL,
    flags BIGINT NOT NULL,            -- identity bit set as flagged in the insurance system
    flag_date BIGINT,
    premium_fen BIGINT NOT NULL,
    subsidy_fen BIGINT NOT NULL,
    subsidy_source TEXT,
    import_id BIGINT NOT NULL,
    superseded_import BIGINT
);
CREATE INDEX enrolments_person_year ON enrolments (id_no, year);
CREATE INDEX enrolments_psn ON enrolments (psn_no);

-- Roster rows that contradict each other (the same person in two households, enrolled twice):
-- not applied, but kept so reconciliation lists them as duplicates to resolve.
CREATE TABLE roster_conflicts (
    id {{ID}},
    import_id BIGINT NOT NULL,
    kind TEXT NOT NULL,
    id_no TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX roster_conflicts_person ON roster_conflicts (id_no);
