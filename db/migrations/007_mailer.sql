-- The mailer (``tandem mailer``) sends what the workers hand over. A row the relay could not
-- take yet (relay down, 4xx) waits until next_attempt_at; last_error names why, by type only
-- (e.g. SmtpUnavailable), never the relay's text.
ALTER TABLE outbox ADD COLUMN next_attempt_at timestamptz;
ALTER TABLE outbox ADD COLUMN last_error text;
