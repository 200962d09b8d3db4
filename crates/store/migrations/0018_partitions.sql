-- Issue 20: PostgreSQL partitions the four tables that grow with every year of a province — the ledger's
-- settlements and entries, the enrolments and the visits (mdtrts) — by insurance year and then by
-- prefecture (the first four digits of the insured area), so a finished year is detached and archived
-- as whole tables and one prefecture's load touches its own tables and indexes only. SQLite (one county,
-- one file) keeps plain tables; both backends get the entries' insured area, the region key.
--
-- Layout on PostgreSQL, for each table T:
--   T                      partitioned by year (LIST year; visits: RANGE begn_date over the year)
--   T_default              rows of a year that has no partition yet (moved out by bz_ensure_partitions)
--   T_y2018                one year, partitioned by RANGE of the insured area
--   T_y2018_p6204          one prefecture of that year (620400 … 620499)
--   T_y2018_other          the year's rows of every other area (people insured elsewhere)
-- Partitions are created by bz_ensure_partitions(years, prefectures) for the home prefectures (see
-- bz_home_prefectures), which moves any rows that wait in a default partition into the new ones; the store
-- calls it on open (this year, next year in December, last year until March, and every year found in a
-- default partition), before an
-- import writes a year, and every minute from the server. Unique keys of a partitioned table must hold
-- its partition keys: the visit and settlement ids are unique by construction (msgid, ledger sequence),
-- and the visit insert checks its id itself (store::service::insert_mdtrt).

ALTER TABLE ledger_entries ADD COLUMN insuplc_admdvs TEXT NOT NULL DEFAULT '';
UPDATE ledger_entries SET insuplc_admdvs = COALESCE(
    (SELECT s.insuplc_admdvs FROM ledger_settlements s WHERE s.setl_id = ledger_entries.setl_id),
    (SELECT a.insuplc_admdvs FROM ledger_adjustments a WHERE a.adj_id = ledger_entries.setl_id),
    '');

-- The four partitioned tables, their year key (and whether it is a yyyymmdd date), region key and
-- primary key.
{{PG}} CREATE TABLE bz_partitioned (
    tbl TEXT PRIMARY KEY,
    year_key TEXT NOT NULL,
    year_is_date BOOLEAN NOT NULL,
    region_key TEXT NOT NULL,
    pk TEXT NOT NULL
);
{{PG}} INSERT INTO bz_partitioned VALUES
    ('ledger_settlements', 'year', FALSE, 'insuplc_admdvs', 'setl_id, year, insuplc_admdvs'),
    ('ledger_entries', 'year', FALSE, 'insuplc_admdvs', 'id, year, insuplc_admdvs'),
    ('enrolments', 'year', FALSE, 'insured_admdvs', 'id, year, insured_admdvs'),
    ('mdtrts', 'begn_date', TRUE, 'insuplc_admdvs', 'mdtrt_id, begn_date, insuplc_admdvs');

-- Turns a plain table into the partitioned one: same columns, defaults and sequences, the primary key
-- widened by the partition keys, every other index again (unique ones as plain indexes: their columns
-- alone are unique by construction), the rows copied.
{{PG}} CREATE FUNCTION bz_partition_table(t TEXT) RETURNS VOID LANGUAGE plpgsql AS $$
DECLARE
    spec bz_partitioned%ROWTYPE;
    old TEXT := t || '_unpartitioned';
    defs TEXT[];
    def TEXT;
    seq TEXT;
BEGIN
    SELECT * INTO STRICT spec FROM bz_partitioned WHERE tbl = t;
    SELECT array_agg(indexdef ORDER BY indexname) INTO defs FROM pg_indexes
        WHERE schemaname = current_schema() AND tablename = t AND indexname <> t || '_pkey';
    EXECUTE format('ALTER TABLE %I RENAME TO %I', t, old);
    EXECUTE format('CREATE TABLE %I (LIKE %I INCLUDING DEFAULTS) PARTITION BY %s (%I)',
        t, old, CASE WHEN spec.year_is_date THEN 'RANGE' ELSE 'LIST' END, spec.year_key);
    EXECUTE format('CREATE TABLE %I PARTITION OF %I DEFAULT', t || '_default', t);
    EXECUTE format('INSERT INTO %I SELECT * FROM %I', t, old);
    IF EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = old AND column_name = 'id') THEN
        seq := pg_get_serial_sequence(quote_ident(old), 'id');
    END IF;
    IF seq IS NOT NULL THEN
        EXECUTE format('ALTER SEQUENCE %s OWNED BY %I.id', seq, t);
    END IF;
    EXECUTE format('DROP TABLE %I', old);
    EXECUTE format('ALTER TABLE %I ADD PRIMARY KEY (%s)', t, spec.pk);
    FOREACH def IN ARRAY coalesce(defs, ARRAY[]::TEXT[]) LOOP
        def := regexp_replace(def, ' ON \S+ USING ', format(' ON %I USING ', t));
        EXECUTE replace(def, 'CREATE UNIQUE INDEX', 'CREATE INDEX');
    END LOOP;
END
$$;

{{PG}} SELECT bz_partition_table('ledger_settlements');
{{PG}} SELECT bz_partition_table('ledger_entries');
{{PG}} SELECT bz_partition_table('enrolments');
{{PG}} SELECT bz_partition_table('mdtrts');

-- The home prefectures, those that get partitions of their own: the institutions' prefectures (not a
-- province's own 'xx00'), every prefecture that has a partition already, and any with 10,000 rows or more
-- waiting in a year's "other" partition or a default one. Not every region loaded: a county that loads
-- four provinces' divisions must not get four provinces' partitions (each query that names no partition
-- key probes every partition).
{{PG}} CREATE FUNCTION bz_home_prefectures() RETURNS TEXT[] LANGUAGE plpgsql STABLE AS $$
DECLARE
    spec bz_partitioned%ROWTYPE;
    rel TEXT;
    found TEXT[];
    prefs TEXT[];
BEGIN
    SELECT coalesce(array_agg(DISTINCT substr(admdvs, 1, 4)), ARRAY[]::TEXT[]) INTO prefs FROM institutions
        WHERE admdvs ~ '^[0-9]{4}';
    SELECT prefs || coalesce(array_agg(DISTINCT substring(relname FROM '_p([0-9]{4})$')), ARRAY[]::TEXT[]) INTO prefs
        FROM pg_class WHERE relnamespace = to_regnamespace(current_schema())
        AND relname ~ '^(enrolments|ledger_entries|ledger_settlements|mdtrts)_y[0-9]{4}_p[0-9]{4}$';
    FOR spec IN SELECT * FROM bz_partitioned LOOP
        FOR rel IN SELECT relname FROM pg_class WHERE relnamespace = to_regnamespace(current_schema())
                   AND relname ~ ('^' || spec.tbl || '_(y[0-9]{4}_other|default)$') LOOP
            EXECUTE format('SELECT array_agg(p) FROM (SELECT substr(%I, 1, 4) AS p FROM %I WHERE %I ~ ''^[0-9]{4}'' '
                           'GROUP BY 1 HAVING COUNT(*) >= 10000) q', spec.region_key, rel, spec.region_key) INTO found;
            prefs := prefs || coalesce(found, ARRAY[]::TEXT[]);
        END LOOP;
    END LOOP;
    RETURN ARRAY(SELECT DISTINCT p FROM unnest(prefs) p WHERE p ~ '^[0-9]{4}$' AND p < '9999' AND substr(p, 3, 2) <> '00' ORDER BY 1);
END
$$;

-- Creates the partitions of the given years (comma-separated, 1990–2200; others are ignored and stay in
-- the default partition) for every home prefecture and the ones named (comma-separated, four digits),
-- moving the rows that wait in a default partition into them. Returns how many rows moved. Takes the
-- table's exclusive lock only when it creates a partition.
{{PG}} CREATE FUNCTION bz_ensure_partitions(years_csv TEXT, prefs_csv TEXT) RETURNS BIGINT LANGUAGE plpgsql AS $$
DECLARE
    spec bz_partitioned%ROWTYPE;
    y BIGINT;
    p TEXT;
    prefs TEXT[] := ARRAY(SELECT DISTINCT q.v FROM unnest(bz_home_prefectures() || string_to_array(prefs_csv, ',')) AS q(v)
                          WHERE q.v ~ '^[0-9]{4}$' AND q.v < '9999' AND substr(q.v, 3, 2) <> '00' ORDER BY 1);
    years BIGINT[] := ARRAY(SELECT DISTINCT q.v::BIGINT FROM unnest(string_to_array(years_csv, ',')) AS q(v)
                            WHERE q.v ~ '^ *[0-9]{4} *$' AND q.v::BIGINT BETWEEN 1990 AND 2200 ORDER BY 1);
    yp TEXT;
    pp TEXT;
    year_cond TEXT;
    moving TEXT;
    created BOOLEAN;
    n BIGINT;
    moved BIGINT := 0;
BEGIN
    FOR spec IN SELECT * FROM bz_partitioned ORDER BY tbl LOOP
        moving := 'bz_moving_' || spec.tbl;
        -- The table's lock and a table for the rows to move, only when a partition is missing; every
        -- partition is checked again under the lock (another session may have made it meanwhile).
        created := EXISTS (SELECT 1 FROM unnest(years) AS q(v)
            WHERE to_regclass(quote_ident(spec.tbl || '_y' || q.v)) IS NULL
               OR EXISTS (SELECT 1 FROM unnest(prefs) AS r(w) WHERE to_regclass(quote_ident(spec.tbl || '_y' || q.v || '_p' || r.w)) IS NULL));
        IF created THEN
            EXECUTE format('LOCK TABLE %I IN ACCESS EXCLUSIVE MODE', spec.tbl);
            EXECUTE format('DROP TABLE IF EXISTS %I', moving);
            EXECUTE format('CREATE TEMP TABLE %I (LIKE %I)', moving, spec.tbl);
        END IF;
        FOREACH y IN ARRAY CASE WHEN created THEN years ELSE ARRAY[]::BIGINT[] END LOOP
            yp := spec.tbl || '_y' || y;
            year_cond := CASE WHEN spec.year_is_date
                THEN format('%I >= %s AND %I < %s', spec.year_key, y * 10000 + 101, spec.year_key, (y + 1) * 10000 + 101)
                ELSE format('%I = %s', spec.year_key, y) END;
            IF to_regclass(quote_ident(yp)) IS NULL THEN
                EXECUTE format('WITH d AS (DELETE FROM %I WHERE %s RETURNING *) INSERT INTO %I SELECT * FROM d',
                    spec.tbl || '_default', year_cond, moving);
                IF spec.year_is_date THEN
                    EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%s) TO (%s) PARTITION BY RANGE (%I)',
                        yp, spec.tbl, y * 10000 + 101, (y + 1) * 10000 + 101, spec.region_key);
                ELSE
                    EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES IN (%s) PARTITION BY RANGE (%I)',
                        yp, spec.tbl, y, spec.region_key);
                END IF;
                EXECUTE format('CREATE TABLE %I PARTITION OF %I DEFAULT', yp || '_other', yp);
            END IF;
            FOREACH p IN ARRAY prefs LOOP
                pp := yp || '_p' || p;
                IF to_regclass(quote_ident(pp)) IS NULL THEN
                    EXECUTE format('WITH d AS (DELETE FROM %I WHERE %I >= %L AND %I < %L RETURNING *) INSERT INTO %I SELECT * FROM d',
                        yp || '_other', spec.region_key, p, spec.region_key, lpad((p::INT + 1)::TEXT, 4, '0'), moving);
                    EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)',
                        pp, yp, p, lpad((p::INT + 1)::TEXT, 4, '0'));
                END IF;
            END LOOP;
        END LOOP;
        IF created THEN
            EXECUTE format('INSERT INTO %I SELECT * FROM %I', spec.tbl, moving);
            GET DIAGNOSTICS n = ROW_COUNT;
            moved := moved + n;
            EXECUTE format('DROP TABLE %I', moving);
        END IF;
    END LOOP;
    RETURN moved;
END
$$;

-- Every year that has a partition or waits in a default partition, this year, next year in December and
-- last year until March (its claims are still settled then). No more made ahead: a query that names no
-- year probes every year's partitions.
{{PG}} CREATE FUNCTION bz_partition_years() RETURNS TEXT LANGUAGE plpgsql STABLE AS $$
DECLARE
    spec bz_partitioned%ROWTYPE;
    y BIGINT := extract(year FROM now())::BIGINT;
    m BIGINT := extract(month FROM now())::BIGINT;
    ys BIGINT[] := ARRAY[y] || CASE WHEN m = 12 THEN ARRAY[y + 1] ELSE ARRAY[]::BIGINT[] END
                            || CASE WHEN m <= 3 THEN ARRAY[y - 1] ELSE ARRAY[]::BIGINT[] END;
    found BIGINT[];
BEGIN
    FOR spec IN SELECT * FROM bz_partitioned LOOP
        EXECUTE format('SELECT array_agg(DISTINCT %s) FROM %I',
            CASE WHEN spec.year_is_date THEN format('%I / 10000', spec.year_key) ELSE quote_ident(spec.year_key) END,
            spec.tbl || '_default') INTO found;
        ys := ys || coalesce(found, ARRAY[]::BIGINT[]);
        SELECT ys || coalesce(array_agg(substring(c.relname FROM '_y([0-9]{4})$')::BIGINT), ARRAY[]::BIGINT[]) INTO ys
            FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
            WHERE i.inhparent = to_regclass(quote_ident(spec.tbl)) AND c.relname ~ '_y[0-9]{4}$';
    END LOOP;
    RETURN (SELECT string_agg(DISTINCT q.v::TEXT, ',') FROM unnest(ys) AS q(v));
END
$$;

{{PG}} SELECT bz_ensure_partitions(bz_partition_years(), '');

-- Detaches one year from each partitioned table and renames it (and its prefecture tables) `archive_…`:
-- standalone tables to dump and drop, or to attach again. Returns the archived year tables.
{{PG}} CREATE FUNCTION bz_detach_year(y BIGINT) RETURNS TEXT LANGUAGE plpgsql AS $$
DECLARE
    spec bz_partitioned%ROWTYPE;
    yp TEXT;
    sub TEXT;
    done TEXT[] := ARRAY[]::TEXT[];
BEGIN
    FOR spec IN SELECT * FROM bz_partitioned ORDER BY tbl LOOP
        yp := spec.tbl || '_y' || y;
        IF EXISTS (SELECT 1 FROM pg_inherits WHERE inhparent = to_regclass(quote_ident(spec.tbl))
                   AND inhrelid = to_regclass(quote_ident(yp))) THEN
            EXECUTE format('ALTER TABLE %I DETACH PARTITION %I', spec.tbl, yp);
            FOR sub IN SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
                       WHERE i.inhparent = to_regclass(quote_ident(yp)) LOOP
                EXECUTE format('ALTER TABLE %I RENAME TO %I', sub, 'archive_' || sub);
            END LOOP;
            EXECUTE format('ALTER TABLE %I RENAME TO %I', yp, 'archive_' || yp);
            done := done || ('archive_' || yp);
        END IF;
    END LOOP;
    RETURN array_to_string(done, ',');
END
$$;
