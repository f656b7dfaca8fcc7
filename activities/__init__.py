"""Side effects: Postgres (asyncpg), matching, mail (outbox + SMTP). Idempotent and keyed."""
