-- People on file, the programmes, the seats mentors give, the tandem projection,
-- an append-only event log (no message content) and the mail outbox.

CREATE TABLE programs (
    id          text PRIMARY KEY,
    name        text NOT NULL,
    rules       jsonb NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE mentors (
    id          text PRIMARY KEY,
    first_name  text NOT NULL,
    last_name   text NOT NULL,
    email       text NOT NULL,
    programs    text[] NOT NULL,
    region      text NOT NULL DEFAULT '',
    specialty   text NOT NULL DEFAULT '',
    capacity    integer NOT NULL CHECK (capacity >= 0),
    language    text NOT NULL DEFAULT 'de',
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE mentees (
    id                  text PRIMARY KEY,
    first_name          text NOT NULL,
    last_name           text NOT NULL,
    email               text NOT NULL,
    program             text NOT NULL,
    phase               text NOT NULL,
    region              text NOT NULL DEFAULT '',
    specialty           text NOT NULL DEFAULT '',
    expected_phase_end  date,
    language            text NOT NULL DEFAULT 'de',
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now()
);

-- One row per seat taken: a mentee holds at most one. Taking a seat locks the mentor row,
-- so two tandems can never take the last one.
CREATE TABLE seats (
    mentee_id    text PRIMARY KEY REFERENCES mentees (id),
    mentor_id    text NOT NULL REFERENCES mentors (id),
    reserved_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX seats_by_mentor ON seats (mentor_id);

-- The projection used for reports; the workflow is the source of truth.
CREATE TABLE tandems (
    mentee_id        text PRIMARY KEY,
    program          text NOT NULL,
    phase            text NOT NULL,
    status           text NOT NULL,
    mentor_id        text,
    cadence_days     double precision,
    next_nudge_at    timestamptz,
    last_contact_at  timestamptz,
    rematches        integer NOT NULL DEFAULT 0,
    last_event_seq   integer NOT NULL DEFAULT 0,
    updated_at       timestamptz NOT NULL
);
CREATE INDEX tandems_by_status ON tandems (status, program);

-- What happened and when, never what was said. Keyed by (mentee, seq): a retry adds nothing.
CREATE TABLE tandem_events (
    mentee_id  text NOT NULL,
    seq        integer NOT NULL,
    at         timestamptz NOT NULL,
    kind       text NOT NULL,
    status     text NOT NULL,
    phase      text NOT NULL,
    mentor_id  text,
    PRIMARY KEY (mentee_id, seq)
);

CREATE FUNCTION tandem_events_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'tandem_events is append-only';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER tandem_events_no_change BEFORE UPDATE OR DELETE ON tandem_events
    FOR EACH ROW EXECUTE FUNCTION tandem_events_append_only();

-- Every mail goes through here first; the idempotency key makes a retried send a no-op.
CREATE TABLE outbox (
    idempotency_key  text PRIMARY KEY,
    message_id       text NOT NULL UNIQUE,
    mentee_id        text NOT NULL,
    recipient_role   text NOT NULL,
    recipient_id     text,
    template         text NOT NULL,
    to_address       text NOT NULL,
    reply_to         text,
    subject          text NOT NULL,
    body             text NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    sent_at          timestamptz,
    attempts         integer NOT NULL DEFAULT 0
);
CREATE INDEX outbox_by_mentee ON outbox (mentee_id, created_at);

-- Reply tokens are stored hashed, bound to one request of one person, expiring and revocable.
CREATE TABLE reply_tokens (
    token_hash   bytea PRIMARY KEY,
    mentee_id    text NOT NULL,
    role         text NOT NULL,
    person_id    text NOT NULL,
    request_id   text NOT NULL,
    expires_at   timestamptz NOT NULL,
    revoked_at   timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX reply_tokens_by_request ON reply_tokens (mentee_id, request_id, role);

-- Anonymous 1-5 ratings given with "met": only the aggregate per programme is kept.
-- A receipt per answer (its id is a hash) makes counting idempotent; it holds no rating.
CREATE TABLE rating_receipts (
    answer_id  text PRIMARY KEY
);
CREATE TABLE program_ratings (
    program  text PRIMARY KEY,
    count    integer NOT NULL DEFAULT 0,
    total    integer NOT NULL DEFAULT 0
);
