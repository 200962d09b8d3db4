-- Where care happened, beyond the county flag (issue 16). An institution's national grade (医院等级,
-- dictionary HOSP_LV 01–11; 0 = not registered) and whether it is primary care (基层医疗机构: 乡镇卫生院、
-- 社区卫生服务中心), so a policy's tiers can price it; and referral filings (2501 转院备案), so care
-- outside the insured area is settled as filed or unfiled.
ALTER TABLE institutions ADD COLUMN hosp_grade BIGINT NOT NULL DEFAULT 0;
ALTER TABLE institutions ADD COLUMN primary_care BIGINT NOT NULL DEFAULT 0;

-- One referral filing (转院备案): the person may be treated at `reflin_medins_no` (in
-- `mdtrtarea_admdvs`) from `begn_date` to `end_date` (inclusive; open when NULL). Declared by
-- `fixmedins_code`; revoked by 2502 (kept, marked).
CREATE TABLE referral_filings (
    trt_dcla_detl_sn TEXT PRIMARY KEY,
    psn_no TEXT NOT NULL,
    fixmedins_code TEXT NOT NULL,
    reflin_medins_no TEXT NOT NULL,
    mdtrtarea_admdvs TEXT NOT NULL,
    refl_type TEXT NOT NULL,
    diag_code TEXT NOT NULL,
    begn_date BIGINT NOT NULL,
    end_date BIGINT,
    revoked BIGINT NOT NULL DEFAULT 0,
    msgid TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX referral_filings_psn ON referral_filings (psn_no, begn_date);
