-- Health programmes (issue 6). The warning line of illness-caused (re)poverty (R-RISK-1): a share of
-- the rural per-capita disposable income, per region and year. The most specific region wins
-- (a township's line over its county's). Every change is a new row; the latest row counts.
CREATE TABLE warning_lines (
    id {{ID}},
    region_code TEXT NOT NULL,
    year BIGINT NOT NULL,
    income_fen BIGINT NOT NULL,       -- rural per-capita disposable income, fen a year
    share_bp BIGINT NOT NULL,         -- the line's share of it, basis points (5000 = 50 %)
    source TEXT NOT NULL,             -- where the income figure comes from (statistical bulletin, …)
    set_by TEXT NOT NULL,
    set_at TEXT NOT NULL
);
CREATE INDEX warning_lines_region ON warning_lines (region_code, year, id);
