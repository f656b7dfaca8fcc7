"""Side effects: Postgres (asyncpg), matching, mail (outbox + SMTP). Idempotent, keyed, retry-safe."""
