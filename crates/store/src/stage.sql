-- Staging tables of one import: TEMP (connection-local; in SQLite in memory, so staged rows never
-- touch the WAL), created in the import's transaction and dropped when it ends. Their indexes are made
-- once the rows are in (`STAGE_INDEXES` in registry.rs).
-- `seq` orders a person's rows in the file (an enrolment roster of two years states them twice; the
-- last one is the person's).
CREATE TEMP TABLE stage_persons (
    import_id BIGINT NOT NULL,
    seq BIGINT NOT NULL,
    id_no TEXT NOT NULL,
    name TEXT NOT NULL,
    sex TEXT NOT NULL,
    birth_date BIGINT NOT NULL,
    household_no TEXT,
    relation TEXT,
    village_code TEXT,
    psn_no TEXT
);

-- The staged persons already in the registry with a stated field that differs: found in one pass over
-- the staged rows, so the per-field history (person_changes) is written from these few rows.
CREATE TEMP TABLE stage_person_diffs (
    id_no TEXT NOT NULL,
    p_name TEXT, s_name TEXT,
    p_sex TEXT, s_sex TEXT,
    p_birth_date BIGINT, s_birth_date BIGINT,
    p_household_no TEXT, s_household_no TEXT,
    p_relation TEXT, s_relation TEXT,
    p_village_code TEXT, s_village_code TEXT,
    p_psn_no TEXT, s_psn_no TEXT
);

CREATE TEMP TABLE stage_periods (
    import_id BIGINT NOT NULL,
    id_no TEXT NOT NULL,
    identity TEXT NOT NULL,
    start_date BIGINT NOT NULL,
    end_date BIGINT
);

CREATE TEMP TABLE stage_states (
    import_id BIGINT NOT NULL,
    id_no TEXT NOT NULL,
    start_date BIGINT NOT NULL,
    end_date BIGINT
);

CREATE TEMP TABLE stage_enrolments (
    import_id BIGINT NOT NULL,
    id_no TEXT NOT NULL,
    psn_no TEXT NOT NULL,
    year BIGINT NOT NULL,
    status TEXT NOT NULL,
    insured BIGINT NOT NULL,
    insured_admdvs TEXT NOT NULL,
    flags BIGINT NOT NULL,
    flag_date BIGINT,
    premium_fen BIGINT NOT NULL,
    subsidy_fen BIGINT NOT NULL,
    subsidy_source TEXT
);

CREATE TEMP TABLE stage_poverty (
    import_id BIGINT NOT NULL,
    id_no TEXT NOT NULL,
    household_no TEXT NOT NULL,
    village_code TEXT NOT NULL,
    status TEXT NOT NULL,
    reg_year BIGINT,
    exit_year BIGINT,
    monitor_type TEXT,
    monitor_date BIGINT,
    cause TEXT,
    disability TEXT,
    change_date BIGINT NOT NULL
);
