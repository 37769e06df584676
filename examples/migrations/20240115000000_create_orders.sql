CREATE TABLE IF NOT EXISTS orders (
    id         INTEGER PRIMARY KEY,
    item_id    INTEGER NOT NULL REFERENCES items (id),
    quantity   INTEGER NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS orders_item_id ON orders (item_id);
