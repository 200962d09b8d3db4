-- Files of the national interface (issue 15): what hospitals upload with 9101 (the 3202 detail file)
-- and what the centre answers for download with 9102 (the 3202 result file), and the 4101A settlement
-- lists (结算清单) hospitals upload.

-- One file, kept until `expires_at` (then pruned). A file belongs to its institution: it is looked up by
-- (file_qury_no, fixmedins_code), never by file_qury_no alone. `content` is the bytes as uploaded or
-- written (a ZIP); BYTEA is bytea on PostgreSQL and a BLOB on SQLite (any type name is accepted there),
-- both read and written as bytes through sqlx's Any driver. `sha256` is checked when the file is read.
CREATE TABLE exchange_files (
    file_qury_no TEXT PRIMARY KEY,
    fixmedins_code TEXT NOT NULL,
    filename TEXT NOT NULL,
    direction TEXT NOT NULL,          -- up (9101, from the institution) | down (for 9102, to it)
    content BYTEA NOT NULL,
    size BIGINT NOT NULL,
    sha256 TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at BIGINT NOT NULL        -- unix seconds
);
CREATE INDEX exchange_files_expiry ON exchange_files (expires_at);
CREATE INDEX exchange_files_fixmedins ON exchange_files (fixmedins_code, created_at);

-- 4101A settlement lists: the body as received (JSON). A list uploaded again for the same settlement is a
-- new version, the earlier ones kept (the latest counts); the same body again adds nothing.
CREATE TABLE settlement_lists (
    id {{ID}},
    fixmedins_code TEXT NOT NULL,
    setl_id TEXT NOT NULL,
    version BIGINT NOT NULL,
    mdtrt_id TEXT NOT NULL,
    psn_no TEXT NOT NULL,
    msgid TEXT NOT NULL,
    body TEXT NOT NULL,
    body_sha256 TEXT NOT NULL,
    received_at TEXT NOT NULL
);
CREATE UNIQUE INDEX settlement_lists_version ON settlement_lists (fixmedins_code, setl_id, version);
CREATE INDEX settlement_lists_psn ON settlement_lists (psn_no)
