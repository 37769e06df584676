-- The seed's example change, rolled out by the demo: a nullable column is backward compatible.
ALTER TABLE items ADD COLUMN new_field VARCHAR(255);
