-- How mails address a person (issue 11): "Sehr geehrte Frau Dr. Weber". Both optional in the
-- CSV files; people on file before this have none and are greeted "Guten Tag Alex Weber".
ALTER TABLE mentors
    ADD COLUMN salutation text NOT NULL DEFAULT ''
        CHECK (salutation IN ('', 'Frau', 'Herr')),
    ADD COLUMN title text NOT NULL DEFAULT '' CHECK (char_length(title) <= 40);

ALTER TABLE mentees
    ADD COLUMN salutation text NOT NULL DEFAULT ''
        CHECK (salutation IN ('', 'Frau', 'Herr')),
    ADD COLUMN title text NOT NULL DEFAULT '' CHECK (char_length(title) <= 40);
