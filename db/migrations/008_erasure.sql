-- Erasure (``tandem forget``, GDPR Art. 17). The event log stays append-only, with one
-- exception: inside a transaction that set ``tandem.erasure`` to 'on' (SET LOCAL, so it ends
-- with the transaction), a person's id may be replaced by a random pseudonym. Counts of what
-- happened stay; who it was does not. Deleting events is still refused.
CREATE OR REPLACE FUNCTION tandem_events_append_only() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND current_setting('tandem.erasure', true) = 'on'
       AND NEW.enrolment = OLD.enrolment AND NEW.seq = OLD.seq AND NEW.at = OLD.at
       AND NEW.kind = OLD.kind AND NEW.status = OLD.status AND NEW.phase = OLD.phase THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'tandem_events is append-only';
END;
$$ LANGUAGE plpgsql;
