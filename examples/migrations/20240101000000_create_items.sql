-- The application's catalogue: portable SQL that runs on PostgreSQL and SQLite.
CREATE TABLE IF NOT EXISTS items (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL,
    price_cents INTEGER NOT NULL DEFAULT 0
);
