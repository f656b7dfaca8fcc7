-- A returning mentee gets a new tandem under the same workflow id: events and the projection
-- are keyed by the enrolment too, so the second tandem's events never collide with the first's.
ALTER TABLE tandem_events ADD COLUMN enrolment integer NOT NULL DEFAULT 1;
ALTER TABLE tandem_events DROP CONSTRAINT tandem_events_pkey;
ALTER TABLE tandem_events ADD PRIMARY KEY (mentee_id, enrolment, seq);

ALTER TABLE tandems ADD COLUMN enrolment integer NOT NULL DEFAULT 1;

CREATE INDEX reply_tokens_by_person ON reply_tokens (mentee_id, person_id);
