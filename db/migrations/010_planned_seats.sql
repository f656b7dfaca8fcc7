-- A seat planned for a mentee by cohort matching (`tandem enroll --all` / `--cohort`) keeps
-- the score and the reasons of the plan, so the mentee's workflow, finding the seat held,
-- shows why it got this mentor. Seats taken by a workflow's own matching leave them empty.
ALTER TABLE seats ADD COLUMN score double precision;
ALTER TABLE seats ADD COLUMN reasons text[];
