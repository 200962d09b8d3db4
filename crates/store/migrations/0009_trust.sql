-- The trust boundary (issue 14).
-- National messages are keyed by institution and msgid: msgids are each institution's own numbering.
UPDATE msg_log SET msgid = fixmedins_code || '/' || msgid WHERE msgid NOT LIKE '%/%';

-- Nonces of signed national requests, kept until their timestamp's window has passed, so that a captured
-- request cannot be replayed after a restart either.
CREATE TABLE national_nonces (
    fixmedins_code TEXT NOT NULL,
    nonce TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    -- nonce first: a batch looks its nonces up by nonce alone
    PRIMARY KEY (nonce, fixmedins_code)
);
CREATE INDEX national_nonces_expiry ON national_nonces (expires_at);

-- Audit runs cover a region (the runner's scope; '' = everything): the settlements its fund paid
-- (insured area). Every lead carries the insured area of its first settlement and is read and judged
-- only inside that region. Leads stored before this migration take their hospital's area.
ALTER TABLE audit_runs ADD COLUMN region_code TEXT NOT NULL DEFAULT '';
ALTER TABLE audit_leads ADD COLUMN admdvs TEXT NOT NULL DEFAULT '';
UPDATE audit_leads SET admdvs = COALESCE((SELECT i.admdvs FROM institutions i WHERE i.fixmedins_code = audit_leads.fixmedins_code), '');
CREATE INDEX audit_leads_region ON audit_leads (admdvs);
