-- Reply mail. The raw mail waits in inbound_mail only until it is decided, then that row is
-- deleted and only a verdict remains: when, the Message-ID's hash, what was decided and why,
-- with ids. Never a body, a subject or an address.

CREATE TABLE inbound_mail (
    id               bigserial PRIMARY KEY,
    received_at      timestamptz NOT NULL DEFAULT now(),
    transport        text NOT NULL,
    raw              bytea NOT NULL,
    -- reply tokens of the envelope recipients (SMTP RCPT TO), empty for IMAP
    rcpt_tokens      text[] NOT NULL DEFAULT '{}',
    null_sender      boolean NOT NULL DEFAULT false,
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    leased_until     timestamptz,
    -- a short code (exception class), never message content
    last_error       text
);
CREATE INDEX inbound_mail_due ON inbound_mail (next_attempt_at);

CREATE TABLE reply_verdicts (
    inbound_id       bigint PRIMARY KEY,
    received_at      timestamptz NOT NULL,
    decided_at       timestamptz NOT NULL DEFAULT now(),
    message_id_hash  text NOT NULL,
    verdict          text NOT NULL
                     CHECK (verdict IN ('accepted', 'refused', 'dropped', 'malformed')),
    reason           text NOT NULL,
    mentee_id        text,
    role             text,
    request_id       text,
    intent           text,
    attempts         integer NOT NULL DEFAULT 1
);
CREATE INDEX reply_verdicts_by_time ON reply_verdicts (received_at);
CREATE INDEX reply_verdicts_by_message ON reply_verdicts (message_id_hash);

-- At most one help text per sender and day. The sender is kept as a keyed hash (HMAC with
-- the reply-token secret), never as an address; rows older than a few days are pruned.
CREATE TABLE reply_help_sent (
    sender_key  bytea NOT NULL,
    day         date NOT NULL,
    PRIMARY KEY (sender_key, day)
);
