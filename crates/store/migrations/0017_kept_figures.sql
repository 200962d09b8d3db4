-- Figures that take seconds to compute (the dashboard's per-village indicators of a year), kept as
-- computed so that a server answers its first views after a restart at once while it computes them
-- again in the background. A cache: deleting a row loses nothing.
CREATE TABLE kept_figures (
    name TEXT PRIMARY KEY,
    computed_at TEXT NOT NULL,
    body TEXT NOT NULL
);
