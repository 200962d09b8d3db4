-- Hospital information systems as they connect to the national platform (issue 15).

-- Gateway application accounts (x-tif-paasid), issued by the bureau. One account may act for several
-- institutions of one hospital group (gateway_grants). scheme 'gateway': x-tif-signature =
-- sha256(timestamp + token + nonce + timestamp), the national gateway's; 'hmac': HMAC-SHA256 over the
-- body with the token as key (baozhang's stronger option). The token is kept as the gateway needs it
-- (to recompute the signature); a rotation keeps the previous token valid until prev_until.
CREATE TABLE gateway_accounts (
    paasid TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    scheme TEXT NOT NULL,
    token TEXT NOT NULL,
    prev_token TEXT,
    prev_until BIGINT,
    created_at TEXT NOT NULL,
    rotated_at TEXT,
    disabled BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE gateway_grants (
    paasid TEXT NOT NULL,
    fixmedins_code TEXT NOT NULL,
    PRIMARY KEY (paasid, fixmedins_code)
);

-- A visit's discharge (2402; 2405 clears it) and the hospital's own visit number.
ALTER TABLE mdtrts ADD COLUMN end_date BIGINT;
ALTER TABLE mdtrts ADD COLUMN ipt_otp_no TEXT;

-- How a fee line was classified, and by which message it came (2601 reverses exactly those lines).
ALTER TABLE fee_lines ADD COLUMN medins_list_codg TEXT;
ALTER TABLE fee_lines ADD COLUMN cnt TEXT;
ALTER TABLE fee_lines ADD COLUMN pric TEXT;
ALTER TABLE fee_lines ADD COLUMN chrgitm_lv TEXT;
ALTER TABLE fee_lines ADD COLUMN selfpay_prop_bp BIGINT;
ALTER TABLE fee_lines ADD COLUMN pric_uplmt_fen BIGINT;
ALTER TABLE fee_lines ADD COLUMN basis TEXT;
ALTER TABLE fee_lines ADD COLUMN msgid TEXT;
ALTER TABLE fee_lines ADD COLUMN chrg_bchno TEXT;
ALTER TABLE fee_lines ADD COLUMN lmt_used_flag BIGINT;
ALTER TABLE fee_lines ADD COLUMN med_chrgitm_type TEXT;

-- Fee lines withdrawn (2205 / 2302 / 2601): kept here, so nothing uploaded is lost.
CREATE TABLE fee_lines_withdrawn (
    id {{ID}},
    mdtrt_id TEXT NOT NULL,
    feedetl_sn TEXT NOT NULL,
    det_item_fee_sumamt BIGINT NOT NULL,
    fulamt_ownpay_amt BIGINT NOT NULL,
    overlmt_selfpay BIGINT NOT NULL,
    preselfpay_amt BIGINT NOT NULL,
    inscp_scp_amt BIGINT NOT NULL,
    med_list_codg TEXT,
    uploaded_msgid TEXT,
    withdrawn_msgid TEXT NOT NULL,
    withdrawn_at TEXT NOT NULL
);
CREATE INDEX fee_lines_withdrawn_visit ON fee_lines_withdrawn (mdtrt_id);

-- What happened to a visit after its registration (2203, 2402–2405, 2202, 2601), with the message.
CREATE TABLE visit_events (
    id {{ID}},
    mdtrt_id TEXT NOT NULL,
    infno TEXT NOT NULL,
    msgid TEXT NOT NULL,
    detail TEXT NOT NULL,
    at TEXT NOT NULL
);
CREATE INDEX visit_events_visit ON visit_events (mdtrt_id);
