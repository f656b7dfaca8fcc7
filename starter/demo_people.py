"""The invented people of ``tandem dev --demo`` answer their mail, so a newcomer sees a whole
tandem lifecycle in the Temporal UI in minutes: both say yes after the first meeting, the
mentee reports a meeting at every check-in and confirms each new phase.

They answer the way an office would by phone (the workflow's ``answer`` update), reading the
request from the reply token of each mail the local sink received.
"""

from __future__ import annotations

import asyncio
import hashlib
from email.message import EmailMessage
from email.utils import parseaddr
from pathlib import Path

import asyncpg
import structlog
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.service import RPCError

from starter.mailsink import read_all
from tandem.answers import Answer, Intent, RequestKind, request_kind
from tandem.mail import token_hash
from tandem.models import Role
from workflows.client import TandemClient

log = structlog.get_logger(__name__)

#: What a demo person answers to each request (None: stays silent).
ANSWERS: dict[tuple[RequestKind, Role], Intent] = {
    (RequestKind.DECISION, Role.MENTEE): Intent.CONTINUE,
    (RequestKind.DECISION, Role.MENTOR): Intent.CONTINUE,
    (RequestKind.NUDGE, Role.MENTEE): Intent.MET,
    (RequestKind.PHASE_CHECK, Role.MENTEE): Intent.PHASE_DONE,
    (RequestKind.SHADOWING, Role.MENTOR): Intent.CONTINUE,
}


class DemoPeople:
    def __init__(self, maildir: Path, dsn: str, client: Client, program: str = "demo") -> None:
        self._maildir = maildir
        self._dsn = dsn
        self._client = client
        self._program = program
        self._done: set[str] = set()

    async def run(self, *, every: float = 2.0) -> None:
        """Answer new mail every ``every`` seconds until cancelled."""
        conn = await asyncpg.connect(self._dsn)
        try:
            while True:
                for key, mail in await asyncio.to_thread(read_all, self._maildir):
                    if key not in self._done:
                        self._done.add(key)
                        try:
                            await self._answer(conn, mail)
                        except (RPCError, WorkflowUpdateFailedError):
                            pass  # the tandem moved on meanwhile: nothing to answer
                        except Exception as err:  # a demo helper must never stop the stack
                            log.warning("demo_answer_failed", error=err.__class__.__name__)
                await asyncio.sleep(every)
        finally:
            await conn.close()

    async def _answer(self, conn: asyncpg.Connection, mail: EmailMessage) -> None:
        _, reply_to = parseaddr(str(mail.get("Reply-To", "")))
        local = reply_to.partition("@")[0]
        if "+" not in local:
            return
        token = local.rpartition("+")[2]
        row = await conn.fetchrow(
            "SELECT t.mentee_id, t.role, t.person_id, t.request_id, o.template FROM reply_tokens t"
            " JOIN mentees m ON m.id = t.mentee_id AND m.program = $2"
            " JOIN outbox o ON o.message_id = $3"
            " WHERE t.token_hash = $1",
            token_hash(token),
            self._program,
            str(mail["Message-ID"]),
        )
        if row is None or row["template"].startswith("introduction"):
            return  # they meet first: the decision comes with the programme's question
        role = Role(row["role"])
        intent = ANSWERS.get((request_kind(row["request_id"]), role))
        if intent is None:
            return
        answer = Answer(
            role=role,
            person_id=row["person_id"],
            request_id=row["request_id"],
            intent=intent,
            answer_id=hashlib.sha256(str(mail["Message-ID"]).encode()).hexdigest(),
        )
        await TandemClient(self._client).answer(row["mentee_id"], answer)
        log.info("demo_answered", mentee_id=row["mentee_id"], role=role.value, intent=intent.value)
