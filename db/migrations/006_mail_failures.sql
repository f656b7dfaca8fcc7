-- A mail the relay refused for good (SMTP 5xx for the recipient) is a fact, not a retry loop:
-- the row stays unsent with when and why (the SMTP code and enhanced status only, never the
-- relay's text, which can carry the address). A corrected address (re-import) clears
-- failed_at, and the next attempt sends the row to the address now on file.
ALTER TABLE outbox ADD COLUMN failed_at timestamptz;
ALTER TABLE outbox ADD COLUMN failure text;
CREATE INDEX outbox_unsent ON outbox (created_at) WHERE sent_at IS NULL;
