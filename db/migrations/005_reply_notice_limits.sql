-- How many short mails about replies (confirmations, help texts, questions) went out per
-- scope and day: per answer, per request and person, per person, per mailbox. A scope is kept
-- as a keyed hash (HMAC with the reply-token secret), never as an id or an address; rows
-- older than a few days are pruned.
CREATE TABLE reply_notice_counts (
    scope_key  bytea NOT NULL,
    day        date NOT NULL,
    sent       integer NOT NULL DEFAULT 1,
    PRIMARY KEY (scope_key, day)
);

-- A request mail's Message-ID refers to its reply token by the first 15 bytes of the token's
-- hash (never the token): replies that lost their reply address find the token by it.
CREATE INDEX reply_tokens_by_ref ON reply_tokens (substring(token_hash from 1 for 15));
