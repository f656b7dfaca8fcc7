"""The IMAP transport of the reply gateway: replies read from an office mailbox.

Each pass looks at the messages in ``imap_folder``. A message addressed to a reply address
(or answering one of our Message-IDs) is stored in the durable inbox, the same one the SMTP
transport fills, and only once that is committed is it moved to ``imap_processed_folder``
(``MOVE``, else ``COPY`` + ``\\Deleted`` + ``EXPUNGE``). Anything else (the office's own mail,
when plus-addressing shares the mailbox) is left where it is and not looked at again.

Nothing is taken twice: Postgres keeps the folder's UIDVALIDITY and the highest UID looked at
(``imap_folders``), and the UID and Message-ID hash of every message taken
(``imap_messages``): a second copy of a mail (same Message-ID) is moved, not stored again.
Several gateways may poll one mailbox: an advisory lock lets one pass run at a time.

Between passes the poller waits in ``IDLE`` when the server offers it (new mail starts a
pass at once), else it sleeps ``imap_poll_seconds``. Trouble (server away, certificate
refused, login refused, database away) is one log line with the stage and a short code, then
a new connection after a growing pause; the poller never stops by itself. Logs carry UIDs and
inbox ids only: never an address, a subject or a body.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import errno
import hashlib
import logging
import re
import ssl
import time
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from email.policy import default as default_policy
from email.utils import getaddresses
from pathlib import Path
from typing import Any, TypeAlias

import asyncpg
import structlog
from aioimaplib import aioimaplib
from asyncpg.pool import PoolConnectionProxy

from replies.inbox import Inbox
from replies.pipeline import PipelineConfig, answer_id_for
from replies.screening import header
from tandem.mail import message_ids, token_from_address, token_ref_from_message_id
from tandem.settings import Settings

log = structlog.get_logger(__name__)

# aioimaplib logs every line it sends and receives (mail included) at DEBUG: content and
# addresses stay out of logs.
logging.getLogger("aioimaplib").setLevel(logging.WARNING)

TRANSPORT = "imap"
Conn: TypeAlias = "PoolConnectionProxy[asyncpg.Record]"
_PRUNE_EVERY = 6 * 3600.0
_LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})
_KEEP_DAYS = 90


# -- configuration -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ImapConfig:
    host: str
    username: str
    password: str | None = field(default=None, repr=False)
    xoauth2_token: str | None = field(default=None, repr=False)
    xoauth2_token_file: Path | None = None
    port: int = 993
    ssl: bool = True
    ca_file: Path | None = None
    folder: str = "INBOX"
    processed_folder: str = "Tandem/Processed"
    poll_seconds: float = 30.0
    idle: bool = True
    #: Seconds one IMAP command (or the connection) may take.
    timeout: float = 30.0
    #: Larger mail is left in the folder (the SMTP transport refuses it the same way).
    max_message_bytes: int = 10_000_000

    @classmethod
    def from_settings(cls, settings: Settings) -> ImapConfig:
        """The IMAP settings, checked; ``ValueError`` with a one-line reason."""
        if not settings.imap_host:
            raise ValueError("TANDEM_IMAP_HOST is not set")
        if not settings.imap_username:
            raise ValueError("TANDEM_IMAP_USERNAME is needed with TANDEM_IMAP_HOST")
        password = settings.imap_password.get_secret_value() if settings.imap_password else None
        token = (
            settings.imap_xoauth2_token.get_secret_value() if settings.imap_xoauth2_token else None
        )
        if not (password or token or settings.imap_xoauth2_token_file):
            raise ValueError(
                "TANDEM_IMAP_PASSWORD or TANDEM_IMAP_XOAUTH2_TOKEN (or _TOKEN_FILE) is needed"
                " with TANDEM_IMAP_HOST"
            )
        if settings.imap_ca_file is not None and not settings.imap_ca_file.is_file():
            raise ValueError(f"TANDEM_IMAP_CA_FILE {settings.imap_ca_file} is no file")
        if settings.imap_poll_seconds <= 0:
            raise ValueError("TANDEM_IMAP_POLL_SECONDS must be positive")
        if settings.imap_folder == settings.imap_processed_folder:
            raise ValueError("TANDEM_IMAP_PROCESSED_FOLDER must differ from TANDEM_IMAP_FOLDER")
        return cls(
            host=settings.imap_host,
            port=settings.imap_port,
            username=settings.imap_username,
            password=password,
            xoauth2_token=token,
            xoauth2_token_file=settings.imap_xoauth2_token_file,
            ssl=settings.imap_ssl,
            ca_file=settings.imap_ca_file,
            folder=settings.imap_folder,
            processed_folder=settings.imap_processed_folder,
            poll_seconds=settings.imap_poll_seconds,
            idle=settings.imap_idle,
            max_message_bytes=settings.gateway_max_message_bytes,
        )

    @property
    def mailbox_key(self) -> str:
        """The folder's name in the database: a hash, so no address is kept."""
        ident = f"{self.host.lower()}:{self.port}/{self.username}/{self.folder}"
        return hashlib.sha256(ident.encode("utf-8")).hexdigest()[:32]

    def bearer_token(self) -> str | None:
        """The XOAUTH2 token (the file is read at every login), or ``None`` for a password."""
        if self.xoauth2_token_file is not None:
            try:
                token = self.xoauth2_token_file.read_text(encoding="utf-8").strip()
            except OSError:
                raise ImapFailure("token_file_unreadable") from None
            if not token:
                raise ImapFailure("token_file_empty")
            return token
        return self.xoauth2_token


@dataclass(frozen=True)
class Backoff:
    first: float = 2.0
    factor: float = 2.0
    max: float = 300.0

    def delay(self, failures: int) -> float:
        return min(self.first * self.factor ** max(failures - 1, 0), self.max)


class ImapFailure(Exception):
    """The server said no (or something unusable): ``code`` is a short word, never its text."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def xoauth2_string(user: str, token: str) -> bytes:
    """The XOAUTH2 initial client response (before base64), as Google and Microsoft define
    it: ``user=<user>^Aauth=Bearer <token>^A^A``."""
    return f"user={user}\x01auth=Bearer {token}\x01\x01".encode()


def imap_utf7(name: str) -> str:
    """A mailbox name in IMAP's modified UTF-7 (RFC 3501, 5.1.3)."""
    out: list[str] = []
    pending: list[str] = []

    def flush() -> None:
        if pending:
            encoded = base64.b64encode("".join(pending).encode("utf-16-be")).rstrip(b"=")
            out.append("&" + encoded.decode("ascii").replace("/", ",") + "-")
            pending.clear()

    for char in name:
        if 0x20 <= ord(char) <= 0x7E:
            flush()
            out.append("&-" if char == "&" else char)
        else:
            pending.append(char)
    flush()
    return "".join(out)


# -- the IMAP connection -----------------------------------------------------------------------


class _Protocol(aioimaplib.IMAP4ClientProtocol):  # type: ignore[misc]
    """aioimaplib's protocol, with ``AUTHENTICATE`` answered over continuations (RFC 3501; no
    SASL-IR needed) and a failed XOAUTH2 attempt ended as RFC 7628 asks (an empty line)."""

    sasl_response: bytes | None = None

    def _continuation(self, line: bytes) -> None:
        command = self.pending_sync_command
        if command is not None and command.name == "AUTHENTICATE":
            response, self.sasl_response = self.sasl_response, None
            self.transport.write((response or b"") + b"\r\n")
            return
        super()._continuation(line)

    async def authenticate(self, mechanism: str, initial: bytes) -> Any:
        """``AUTHENTICATE`` with one client response (PLAIN, XOAUTH2); a state change, as
        aioimaplib's ``login`` is."""
        async with self.state_condition:
            self.sasl_response = base64.b64encode(initial)
            response = await self.execute(
                aioimaplib.Command("AUTHENTICATE", self.new_tag(), mechanism, loop=self.loop)
            )
            if response.result == "OK":
                self.state = aioimaplib.AUTH
            self.state_condition.notify_all()
            return response


class _Client(aioimaplib.IMAP4):  # type: ignore[misc]
    def create_client(
        self,
        host: str,
        port: int,
        loop: asyncio.AbstractEventLoop | None,
        conn_lost_cb: Any = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        running = loop or asyncio.get_running_loop()
        self.protocol = _Protocol(running, conn_lost_cb)
        self._client_task = running.create_task(
            running.create_connection(lambda: self.protocol, host, port, ssl=ssl_context)
        )


def tls_context(ca_file: Path | None) -> ssl.SSLContext:
    """Certificate and host name verification, against ``ca_file`` alone when given."""
    context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


class _Session:
    """One logged-in connection with the folder selected. ``stage`` says where it got to."""

    def __init__(self, config: ImapConfig) -> None:
        self.config = config
        self.stage = "connect"
        self.lost = asyncio.Event()
        self.client: Any = None
        self.uidvalidity = 0
        self.processed = ""

    # -- opening

    async def open(self) -> None:
        cfg = self.config
        self.stage = "connect"
        self.client = _Client(
            cfg.host,
            cfg.port,
            timeout=cfg.timeout,
            conn_lost_cb=lambda _exc: self.lost.set(),
            ssl_context=tls_context(cfg.ca_file) if cfg.ssl else None,
        )
        await self.client.wait_hello_from_server()
        self.stage = "login"
        await self._login()
        await self._capabilities()
        self.stage = "select"
        response = await self._call(self.client.select(aioimaplib.quoted(imap_utf7(cfg.folder))))
        _ok(response)
        self.uidvalidity = _uidvalidity(response.lines)
        self.stage = "folders"
        self.processed = await self._processed_folder()

    async def _login(self) -> None:
        cfg = self.config
        token = cfg.bearer_token()
        protocol = self.client.protocol
        if token is not None:
            attempt = protocol.authenticate("XOAUTH2", xoauth2_string(cfg.username, token))
        elif "LOGINDISABLED" in protocol.capabilities:
            plain = f"\0{cfg.username}\0{cfg.password or ''}".encode()
            attempt = protocol.authenticate("PLAIN", plain)
        else:
            attempt = protocol.login(aioimaplib.quoted(cfg.username), cfg.password or "")
        response = await asyncio.wait_for(attempt, cfg.timeout)
        _ok(response, refused="login_refused")

    async def _capabilities(self) -> None:
        """Asked again after login (servers offer more then; aioimaplib misreads the
        capabilities in the login response)."""
        await asyncio.wait_for(self.client.protocol.capability(), self.config.timeout)

    async def _processed_folder(self) -> str:
        """The processed folder's name on the wire, created when missing."""
        response = await self._call(self.client.list('""', '""'))
        _ok(response)
        delimiter = "/"
        for line in response.lines[:-1]:
            found = re.search(rb'\) (?:"((?:\\.|[^"\\])+)"|NIL) ', bytes(line))
            if found and found.group(1):
                delimiter = found.group(1).decode("ascii", "replace").replace("\\", "")
        parts = [p for p in self.config.processed_folder.split("/") if p]
        name = str(aioimaplib.quoted(imap_utf7(delimiter.join(parts))))
        response = await self._call(self.client.list('""', name))
        _ok(response)
        if len(response.lines) <= 1:  # only the completion line: no such folder
            created = await self._call(self.client.create(name))
            if created.result != "OK" and _code(created.lines) != "ALREADYEXISTS":
                _ok(created, refused="cannot_create_processed_folder")
        return name

    async def _call(self, command: Awaitable[Any]) -> Any:
        """One command, bounded by ``timeout`` (aioimaplib bounds only some)."""
        return await asyncio.wait_for(command, self.config.timeout)

    # -- a pass

    @property
    def capabilities(self) -> set[str]:
        caps: set[str] = self.client.protocol.capabilities
        return {c.upper() for c in caps}

    @property
    def can_idle(self) -> bool:
        return self.config.idle and "IDLE" in self.capabilities

    async def noop(self) -> None:
        _ok(await self._call(self.client.noop()))

    async def uids(self) -> list[int]:
        response = await self._call(self.client.uid_search("ALL", charset=None))
        _ok(response)
        found: set[int] = set()
        for line in response.lines[:-1]:
            found.update(int(word) for word in bytes(line).split() if word.isdigit())
        return sorted(found)

    async def fetch_header(self, uid: int) -> tuple[int, bytes] | None:
        """The size and header of one message, ``None`` when it is gone."""
        response = await self._call(
            self.client.uid("fetch", str(uid), "(UID RFC822.SIZE BODY.PEEK[HEADER])")
        )
        _ok(response)
        literal = _literal(response.lines)
        if literal is None:
            return None
        size = 0
        for line in response.lines:
            if isinstance(line, bytes):
                found = re.search(rb"RFC822\.SIZE (\d+)", line)
                if found:
                    size = int(found.group(1))
        return size, literal

    async def fetch(self, uid: int) -> bytes | None:
        response = await self._call(self.client.uid("fetch", str(uid), "(UID BODY.PEEK[])"))
        _ok(response)
        return _literal(response.lines)

    async def move(self, uids: Sequence[int]) -> None:
        """To the processed folder: ``MOVE``, else ``COPY``, ``\\Deleted`` and ``EXPUNGE``
        (``UID EXPUNGE`` with UIDPLUS; without it a plain one, as any mail client does)."""
        uid_set = ",".join(str(u) for u in uids)
        caps = self.capabilities
        if "MOVE" in caps:
            _ok(
                await self._call(self.client.uid("move", uid_set, self.processed)),
                refused="move_refused",
            )
            return
        _ok(
            await self._call(self.client.uid("copy", uid_set, self.processed)),
            refused="copy_refused",
        )
        _ok(await self._call(self.client.uid("store", uid_set, "+FLAGS.SILENT", r"(\Deleted)")))
        if "UIDPLUS" in caps:
            _ok(await self._call(self.client.uid("expunge", uid_set)))
        else:
            _ok(await self._call(self.client.expunge()))

    # -- between passes

    async def wait_for_news(self, stop: asyncio.Event) -> None:
        """Until new mail (IDLE), ``poll_seconds`` passed, or ``stop``."""
        seconds = self.config.poll_seconds
        if not self.can_idle:
            await _first(stop.wait(), self.lost.wait(), asyncio.sleep(seconds))
            self._check_alive()
            return
        self.stage = "idle"
        queue: asyncio.Queue[Any] = self.client.protocol.idle_queue
        while not queue.empty():  # pushes that came after the last wait: a pass just ran
            queue.get_nowait()
        idle = await asyncio.wait_for(self.client.idle_start(timeout=seconds), self.config.timeout)
        try:
            await _first(
                stop.wait(), self.lost.wait(), self.client.wait_server_push(timeout=seconds + 5)
            )
        finally:
            if not self.lost.is_set():
                self.client.idle_done()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(idle, self.config.timeout)
        self._check_alive()

    def _check_alive(self) -> None:
        if self.lost.is_set():
            raise ImapFailure("connection_lost")

    async def close(self) -> None:
        client = self.client
        if client is None:
            return
        self.client = None
        if not self.lost.is_set() and client.get_state() in ("NONAUTH", "AUTH", "SELECTED"):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client.logout(), 5)
        transport = client.protocol.transport
        if transport is not None:
            transport.close()
        tasks = [client._client_task, *client.tasks, *client.protocol.tasks]
        for task in tasks:
            if not task.done():
                task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


# -- the poller --------------------------------------------------------------------------------


class ImapPoller:
    """Reads one mailbox folder until ``stop``; never stops by itself."""

    def __init__(
        self,
        config: ImapConfig,
        pool: asyncpg.Pool,
        inbox: Inbox,
        recognise: PipelineConfig,
        *,
        backoff: Backoff | None = None,
    ) -> None:
        self.config = config
        self._pool = pool
        self._inbox = inbox
        self._recognise = recognise
        self.backoff = backoff or Backoff()
        self._key = config.mailbox_key
        self._pruned_at = 0.0
        #: Passes completed and failures in a row, for the operator and the tests.
        self.passes = 0
        self.failures = 0

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            session = _Session(self.config)
            delay = 0.0
            try:
                await session.open()
                if not self.config.ssl and self.config.host not in _LOOPBACK:
                    log.warning("imap_without_tls", why="imap_ssl is off for a remote server")
                log.info(
                    "imap_ready",
                    idle=session.can_idle,
                    move="MOVE" in session.capabilities,
                    uidvalidity=session.uidvalidity,
                )
                while not stop.is_set():
                    session.stage = "poll"
                    await self._pass(session)
                    self.passes += 1
                    self.failures = 0
                    await session.wait_for_news(stop)
            except asyncio.CancelledError:
                raise
            except Exception as err:
                self.failures += 1
                delay = self.backoff.delay(self.failures)
                log.warning(
                    "imap_unavailable",
                    stage=session.stage,
                    **describe(err),
                    failures=self.failures,
                    retry_in=round(delay, 1),
                )
            finally:
                with contextlib.suppress(Exception):
                    await asyncio.shield(session.close())
            if delay:
                await _first(stop.wait(), asyncio.sleep(delay))

    async def _pass(self, session: _Session) -> None:
        await session.noop()  # lets the server tell this session about new mail
        uids = await session.uids()
        async with self._pool.acquire() as conn:
            locked = await conn.fetchval(
                "SELECT pg_try_advisory_lock(hashtextextended($1, 0))", "tandem-imap/" + self._key
            )
            if not locked:  # another gateway is reading this folder right now
                return
            try:
                await self._pass_locked(conn, session, uids)
            finally:
                await conn.execute(
                    "SELECT pg_advisory_unlock(hashtextextended($1, 0))", "tandem-imap/" + self._key
                )

    async def _pass_locked(self, conn: Conn, session: _Session, uids: list[int]) -> None:
        validity = session.uidvalidity
        row = await conn.fetchrow(
            "SELECT uidvalidity, last_uid FROM imap_folders WHERE mailbox_key = $1", self._key
        )
        last_uid = 0
        if row is not None and row["uidvalidity"] == validity:
            last_uid = int(row["last_uid"])
        else:
            if row is not None:
                log.info("imap_uidvalidity_changed", uidvalidity=validity)
            await self._save(conn, validity, 0)
        taken = {
            r["uid"]
            for r in await conn.fetch(
                "SELECT uid FROM imap_messages WHERE mailbox_key = $1 AND uidvalidity = $2"
                " AND uid = ANY($3::bigint[])",
                self._key,
                validity,
                uids,
            )
        }
        if taken:  # stored before, but the move did not happen (yet)
            await self._move(session, sorted(taken))
        outcomes: dict[str, int] = {}
        for uid in uids:
            if uid <= last_uid or uid in taken:
                continue
            session.stage = "fetch"
            outcome = await self._take(conn, session, uid)
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
            await self._save(conn, validity, uid)
        if outcomes:
            log.info("imap_pass", **outcomes)
        await self._prune(conn)

    async def _take(self, conn: Conn, session: _Session, uid: int) -> str:
        """Store one new message (unless a copy was stored before), then move it. Returns
        what became of it: ``stored``, ``duplicate``, ``left`` or ``gone``."""
        head = await session.fetch_header(uid)
        if head is None:
            return "gone"  # deleted meanwhile
        size, header_bytes = head
        headers = BytesHeaderParser(policy=default_policy).parsebytes(header_bytes)
        assert isinstance(headers, EmailMessage)
        if not self._for_us(headers):
            # The office's own mail (plus-addressing shares the mailbox): not ours to touch.
            log.debug("imap_left", uid=uid, why="no_reply_address")
            return "left"
        if size > self.config.max_message_bytes:
            log.warning("imap_left", uid=uid, why="too_large", size=size)
            return "left"
        raw = await session.fetch(uid)
        if raw is None:
            return "gone"
        message_id = header(headers, "Message-ID")[:998]
        mid_hash = (
            answer_id_for(message_id) if message_id else hashlib.sha256(b"raw:" + raw).hexdigest()
        )
        first = await conn.fetchrow(
            "SELECT inbound_id FROM imap_messages WHERE message_id_hash = $1"
            " ORDER BY inbound_id NULLS LAST LIMIT 1",
            mid_hash,
        )
        session.stage = "store"
        inbound_id: int | None = None
        if first is None:
            inbound_id = await self._inbox.store(raw, transport=TRANSPORT)
        await conn.execute(
            "INSERT INTO imap_messages (mailbox_key, uidvalidity, uid, message_id_hash, inbound_id)"
            " VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
            self._key,
            session.uidvalidity,
            uid,
            mid_hash,
            inbound_id,
        )
        if first is None:
            log.info(
                "reply_received", inbound_id=inbound_id, transport=TRANSPORT, uid=uid, size=size
            )
        else:
            log.info("imap_duplicate", uid=uid, inbound_id=first["inbound_id"])
        await self._move(session, [uid])
        return "stored" if first is None else "duplicate"

    async def _move(self, session: _Session, uids: list[int]) -> None:
        """To the processed folder. When the server refuses (quota, rights), the mail stays
        and the move is tried again next pass; new replies are still taken meanwhile."""
        session.stage = "move"
        try:
            await session.move(uids)
        except ImapFailure as err:
            log.warning("imap_not_moved", messages=len(uids), error=err.code)

    def _for_us(self, headers: EmailMessage) -> bool:
        """Addressed to a reply address, or answering one of our Message-IDs (the pipeline
        reads the token the same way)."""
        cfg = self._recognise
        for name in ("Delivered-To", "X-Original-To", "To", "Cc"):
            with contextlib.suppress(Exception):
                values = [str(v) for v in headers.get_all(name) or []]
                for _, addr in getaddresses(values):
                    if token_from_address(
                        addr, reply_domain=cfg.reply_domain, office_address=cfg.office_address
                    ):
                        return True
        ids = message_ids(header(headers, "In-Reply-To")) + message_ids(
            header(headers, "References")
        )
        return any(token_ref_from_message_id(mid, cfg.mail_domain) for mid in ids[:40])

    async def _save(self, conn: Conn, validity: int, last_uid: int) -> None:
        await conn.execute(
            "INSERT INTO imap_folders (mailbox_key, uidvalidity, last_uid) VALUES ($1, $2, $3)"
            " ON CONFLICT (mailbox_key) DO UPDATE SET uidvalidity = EXCLUDED.uidvalidity,"
            " last_uid = EXCLUDED.last_uid, updated_at = now()",
            self._key,
            validity,
            last_uid,
        )

    async def _prune(self, conn: Conn) -> None:
        """Forget messages taken long ago (their UIDs are past, their replies decided)."""
        now = time.monotonic()
        if self._pruned_at and now - self._pruned_at < _PRUNE_EVERY:
            return
        self._pruned_at = now
        await conn.execute(
            "DELETE FROM imap_messages WHERE seen_at < now() - make_interval(days => $1)",
            _KEEP_DAYS,
        )


# -- helpers -----------------------------------------------------------------------------------


def describe(err: BaseException) -> dict[str, str]:
    """A short, content-free description of a failure for the log."""
    if isinstance(err, ImapFailure):
        return {"error": err.code}
    if isinstance(err, ssl.SSLCertVerificationError):
        return {"error": "certificate_refused", "detail": str(err.verify_message)}
    if isinstance(err, ssl.SSLError):
        return {"error": "tls_failed", "detail": str(err.reason)}
    if isinstance(err, TimeoutError | aioimaplib.CommandTimeout):
        return {"error": "timeout"}
    if isinstance(err, OSError) and err.errno is not None:
        return {"error": errno.errorcode.get(err.errno, type(err).__name__)}
    return {"error": type(err).__name__}


def _ok(response: Any, *, refused: str | None = None) -> None:
    if response.result == "OK":
        return
    raise ImapFailure(_code(response.lines) or refused or f"server_said_{response.result}")


def _code(lines: Sequence[Any]) -> str | None:
    """The response code (``[AUTHENTICATIONFAILED]``…) of the completion, never its text."""
    if not lines:
        return None
    found = re.match(rb"\s*\[([A-Z][A-Z-]*)", bytes(lines[-1]))
    return found.group(1).decode("ascii").lower() if found else None


def _uidvalidity(lines: Sequence[Any]) -> int:
    for line in lines:
        if isinstance(line, bytes | bytearray):
            found = re.search(rb"\[UIDVALIDITY (\d+)\]", line)
            if found:
                return int(found.group(1))
    raise ImapFailure("no_uidvalidity")


def _literal(lines: Sequence[Any]) -> bytes | None:
    """The message data in a FETCH response (aioimaplib hands literals as ``bytearray``)."""
    for line in lines:
        if isinstance(line, bytearray):
            return bytes(line)
    return None


async def _first(*waits: Awaitable[Any]) -> None:
    """Until the first of ``waits`` is done (its error ignored); the others are cancelled."""
    tasks = [asyncio.ensure_future(w) for w in waits]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
