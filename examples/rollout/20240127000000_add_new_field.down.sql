-- lint: allow ban-drop-column
ALTER TABLE items DROP COLUMN new_field;
