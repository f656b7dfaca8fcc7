"""The IMAP transport against a real IMAP server: pymap (PyPI, in ``.[dev]``) runs in a thread
of the test process with its own event loop, on a free loopback port, with implicit TLS from a
test CA made by trustme. The test mail client is the standard library's imaplib.

Replies are APPENDed to the mailbox as a mail system would deliver them; the poller stores
them in the durable inbox, the pipeline decides them with a fake Answerer, and they end up in
the processed folder, taken once. Also: a Message-ID seen twice is answered once, the office's
own mail is left alone, an untrusted certificate and a refused login are one log line each and
retried, XOAUTH2 with a token file recovers once the token is right, nothing of a mail's
content reaches a log or a table, and ``tandem gateway`` runs the poller when configured."""

from __future__ import annotations

import asyncio
import contextlib
import imaplib
import logging
import os
import signal
import ssl
import threading
import time
from argparse import Namespace
from collections.abc import AsyncIterator, Iterator
from email import message_from_bytes
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import pytest_asyncio
import structlog
import trustme
from proxyprotocol.reader import ProxyProtocolReader
from pydantic import SecretStr
from pymap.backend.dict import Config as DictConfig
from pymap.backend.dict import DictBackend, Identity, Login
from pymap.concurrent import Subsystem
from pymap.exceptions import InvalidAuth
from pymap.imap import IMAPServer
from pysasl import SASLAuth
from pysasl.creds.external import ExternalCredentials
from temporalio.testing import WorkflowEnvironment

from activities.smtp import SmtpSender
from replies.imap_poller import (
    Backoff,
    ImapConfig,
    ImapPoller,
    imap_utf7,
    xoauth2_string,
)
from replies.inbox import RetryPolicy
from replies.pipeline import answer_id_for
from replies.service import ReplyGateway
from starter.mailsink import MailSink
from tandem.answers import Intent, RequestKind
from tandem.models import Language, Role
from tandem.settings import Settings
from tests.reply_support import (
    QUOTE_EN,
    FakeAnswerer,
    mint_token,
    put_tandem,
    reply_mail,
    settle,
)
from tests.support import BIN, eventually, free_port
from tests.test_reply_gateway import _dump_all_tables

# The test server logs every line it sends and receives at DEBUG.
logging.getLogger("pymap").setLevel(logging.WARNING)

USER = "tandem-office"
PASSWORD = "office-secret-42"
BEARER = "ya29.test-bearer-token"
PROCESSED = "Tandem/Processed"
FAST = RetryPolicy(first_delay=0.05, max_delay=0.2, poll=0.5)
QUICK_RETRY = Backoff(first=0.1, factor=2.0, max=0.4)


# -- the IMAP server ---------------------------------------------------------------------------


class _ServerConfig(DictConfig):
    """pymap's in-memory backend, with XOAUTH2 offered and IDLE/MOVE optional."""

    def __init__(self, *args: Any, idle: bool, move: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._idle = idle
        self._move = move

    @property
    def tls_auth(self) -> SASLAuth:
        return SASLAuth.named([b"PLAIN", b"LOGIN", b"XOAUTH2"])

    @property
    def login_capability(self) -> list[bytes]:
        dropped = set()
        if not self._idle:
            dropped.add(b"IDLE")
        if not self._move:  # a plain IMAP4rev1 server: COPY, \Deleted, EXPUNGE
            dropped |= {b"MOVE", b"UIDPLUS"}
        return [c for c in super().login_capability if c not in dropped]


class _ServerLogin(Login):
    """Passwords as pymap checks them; XOAUTH2 accepts one bearer token for the office."""

    async def authenticate(self, credentials: Any) -> Identity:
        if isinstance(credentials, ExternalCredentials):
            if credentials.authzid == USER and credentials._token == BEARER:
                return Identity(USER, self, None, frozenset())
            raise InvalidAuth()
        return await super().authenticate(credentials)


class ImapTestServer:
    """A real IMAP server on 127.0.0.1 (implicit TLS unless ``tls=False``) with one mailbox."""

    def __init__(
        self,
        *,
        idle: bool = True,
        move: bool = True,
        tls: bool = True,
        port: int = 0,
        ca: trustme.CA | None = None,
    ) -> None:
        self.idle, self.move, self.tls = idle, move, tls
        self.ca = ca or trustme.CA()
        self._server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.ca.issue_cert("127.0.0.1", "localhost").configure_cert(self._server_tls)
        self.port = port
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name="imap-test-server", daemon=True)

    def start(self) -> ImapTestServer:
        self._thread.start()
        if not self._ready.wait(20) or self._error is not None:
            raise RuntimeError(f"the IMAP test server did not start: {self._error!r}")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stopping is not None:
            self._loop.call_soon_threadsafe(self._stopping.set)
        self._thread.join(20)

    def _main(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as err:
            self._error = err
            self._ready.set()

    async def _serve(self) -> None:
        args = Namespace(passlib_cfg=None, proxy_protocol=None, debug=False)
        config = _ServerConfig(
            args,
            host="127.0.0.1",
            port=0,
            demo_data=False,
            demo_user=USER,
            demo_password=PASSWORD,
            tls_enabled=False,  # TLS is implicit: the socket below, as on port 993
            invalid_user_sleep=0.0,
            cpu_subsystem=Subsystem.for_asyncio(),
            idle=self.idle,
            move=self.move,
        )
        login = _ServerLogin(config)
        await DictBackend._add_demo_user(config, login)
        config.apply_context()
        handler = ProxyProtocolReader(config.proxy_protocol).get_callback(IMAPServer(login, config))
        server = await asyncio.start_server(
            handler, "127.0.0.1", self.port, ssl=self._server_tls if self.tls else None
        )
        self.port = server.sockets[0].getsockname()[1]
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        self._ready.set()
        async with server:
            await self._stopping.wait()

    # -- the test's own mail client (imaplib, trusting the test CA)

    def write_ca(self, path: Path) -> Path:
        self.ca.cert_pem.write_to_path(str(path))
        return path

    @contextlib.contextmanager
    def _client(self) -> Iterator[imaplib.IMAP4]:
        if self.tls:
            context = ssl.create_default_context()
            self.ca.configure_trust(context)
            client: imaplib.IMAP4 = imaplib.IMAP4_SSL(
                "127.0.0.1", self.port, ssl_context=context, timeout=10
            )
        else:
            client = imaplib.IMAP4("127.0.0.1", self.port, timeout=10)
        try:
            client.login(USER, PASSWORD)
            yield client
        finally:
            with contextlib.suppress(Exception):
                client.logout()

    def _append(self, raw: bytes, folder: str) -> None:
        with self._client() as client:
            status, _ = client.append(folder, None, None, raw)
            assert status == "OK"

    def _messages(self, folder: str) -> list[bytes]:
        with self._client() as client:
            status, _ = client.select(imap_utf7(folder), readonly=True)
            if status != "OK":
                return []
            _, data = client.uid("SEARCH", "ALL")
            uids = data[0].split() if data and data[0] else []
            out = []
            for uid in uids:
                _, fetched = client.uid("FETCH", uid, "(BODY.PEEK[])")
                out.extend(part[1] for part in fetched if isinstance(part, tuple))
            return out

    async def append(self, raw: bytes, folder: str = "INBOX") -> None:
        await asyncio.to_thread(self._append, raw, folder)

    async def messages(self, folder: str = "INBOX") -> list[bytes]:
        return await asyncio.to_thread(self._messages, folder)


@contextlib.contextmanager
def imap_server(**kwargs: Any) -> Iterator[ImapTestServer]:
    server = ImapTestServer(**kwargs).start()
    try:
        yield server
    finally:
        server.stop()


def imap_settings(
    settings: Settings, server: ImapTestServer, tmp_path: Path, **update: Any
) -> Settings:
    values: dict[str, Any] = {
        "imap_host": "127.0.0.1",
        "imap_port": server.port,
        "imap_username": USER,
        "imap_password": SecretStr(PASSWORD),
        "imap_ca_file": server.write_ca(tmp_path / "imap-ca.pem"),
        "imap_ssl": server.tls,
        "imap_processed_folder": PROCESSED,
        "imap_poll_seconds": 0.3,
    }
    values.update(update)
    return settings.model_copy(update=values)


@pytest_asyncio.fixture
async def answerer() -> FakeAnswerer:
    return FakeAnswerer()


@contextlib.asynccontextmanager
async def gateway_with_imap(
    settings: Settings, db: asyncpg.Pool, answerer: FakeAnswerer
) -> AsyncIterator[ReplyGateway]:
    gw = ReplyGateway(
        settings,
        db,
        answerer,
        SmtpSender(settings),
        policy=FAST,
        port=0,
        imap_backoff=QUICK_RETRY,
    )
    await gw.start()
    try:
        yield gw
    finally:
        await gw.stop()


@contextlib.asynccontextmanager
async def poller_alone(
    settings: Settings, db: asyncpg.Pool, gw: ReplyGateway
) -> AsyncIterator[ImapPoller]:
    """A poller on the gateway's inbox, run by the test (the gateway has no IMAP settings)."""
    poller = ImapPoller(
        ImapConfig.from_settings(settings), db, gw.inbox, gw.pipeline.config, backoff=QUICK_RETRY
    )
    stop = asyncio.Event()
    task = asyncio.create_task(poller.run(stop))
    try:
        yield poller
        assert not task.done(), "the poller stopped by itself"
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


async def passes_after(poller: ImapPoller, more: int, timeout: float = 15) -> None:
    """Until ``more`` passes over the folder ran from now."""
    target = poller.passes + more
    await eventually(lambda: _value(poller.passes), lambda n: n >= target, timeout=timeout)


async def _value(value: int) -> int:
    return value


def _events(logs: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [entry for entry in logs if entry.get("event") == name]


# -- tests -------------------------------------------------------------------------------------


def test_the_xoauth2_string_is_googles_format() -> None:
    # The example of Google's XOAUTH2 protocol page, base64-encoded as sent.
    import base64

    sent = base64.b64encode(
        xoauth2_string("someuser@example.com", "ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg")
    )
    assert sent == (
        b"dXNlcj1zb21ldXNlckBleGFtcGxlLmNvbQFhdXRoPUJlYXJlciB5YTI5LnZGOWRmdDRxbVRjMk52"
        b"YjNSbGNrQmhkSFJoZG1semRHRXVZMjl0Q2cBAQ=="
    )
    assert imap_utf7("Entwürfe") == "Entw&APw-rfe"
    assert imap_utf7("A&B") == "A&-B"


@pytest.mark.parametrize(
    "variant",
    [
        pytest.param({"idle": True, "move": True}, id="idle+move"),
        pytest.param({"idle": False, "move": False}, id="polling+copy-delete-expunge"),
    ],
)
async def test_german_and_english_replies_are_answered_once_and_moved(
    db: asyncpg.Pool,
    settings: Settings,
    sink: MailSink,
    answerer: FakeAnswerer,
    tmp_path: Path,
    variant: dict[str, bool],
) -> None:
    with imap_server(**variant) as server:
        cfg = imap_settings(settings, server, tmp_path)
        german = await put_tandem(db)
        english = await put_tandem(db, language=Language.EN)
        de_token = await mint_token(db, settings, german, Role.MENTEE, RequestKind.NUDGE)
        en_token = await mint_token(db, settings, english, Role.MENTOR, RequestKind.DECISION)
        de_mail = reply_mail(
            settings, de_token, sender=german.mentee_email, text="Ja, wir haben uns getroffen."
        )
        en_mail = reply_mail(
            settings,
            en_token,
            sender=english.mentor_email,
            text="Yes, I'd like to continue.",
            language="en",
            quote=QUOTE_EN,
            subject="Re: Shall your tandem continue?",
        )
        async with gateway_with_imap(cfg, db, answerer) as gw:
            assert gw.imap is not None
            await passes_after(gw.imap, 1)
            await server.append(bytes(de_mail))
            appended = time.monotonic()  # the server said OK to the APPEND
            await server.append(bytes(en_mail))
            rows = await settle(db, 2)
            [called] = [at for mentee, _, at in answerer.calls if mentee == german.mentee_id]
            latency = called - appended
            assert {(r["mentee_id"], r["verdict"], r["intent"]) for r in rows} == {
                (german.mentee_id, "accepted", Intent.MET.value),
                (english.mentee_id, "accepted", Intent.CONTINUE.value),
            }
            assert {r["message_id_hash"] for r in rows} == {
                answer_id_for(de_mail["Message-ID"]),
                answer_id_for(en_mail["Message-ID"]),
            }
            # Moved once stored: the folder is empty, the processed folder has both.
            await eventually(server.messages, lambda found: found == [], timeout=10)
            processed = await server.messages(PROCESSED)
            assert {message_from_bytes(m)["Message-ID"] for m in processed} == {
                de_mail["Message-ID"],
                en_mail["Message-ID"],
            }
            # Later passes take nothing again.
            await passes_after(gw.imap, 2)
            assert len(answerer.calls) == 2
            assert await db.fetchval("SELECT count(*) FROM reply_verdicts") == 2
            assert await db.fetchval("SELECT count(*) FROM inbound_mail") == 0
            assert (
                await db.fetchval(
                    "SELECT count(*) FROM reply_verdicts JOIN imap_messages USING (inbound_id)"
                )
                == 2
            )
    print(f"IMAP append -> answerer called: {latency * 1000:.0f} ms")  # shown with -s
    # IDLE takes new mail at once; polling within a poll period (0.3 s here).
    assert latency < (2.0 if variant["idle"] else 3.0), latency


async def test_the_same_message_id_twice_is_stored_and_answered_once(
    db: asyncpg.Pool, settings: Settings, sink: MailSink, answerer: FakeAnswerer, tmp_path: Path
) -> None:
    with imap_server() as server:
        cfg = imap_settings(settings, server, tmp_path)
        tandem = await put_tandem(db)
        token = await mint_token(db, settings, tandem, Role.MENTEE)
        raw = bytes(reply_mail(settings, token, sender=tandem.mentee_email, text="getroffen"))
        async with gateway_with_imap(cfg, db, answerer) as gw:
            assert gw.imap is not None
            await server.append(raw)
            await server.append(raw)  # delivered twice (a forward, a rule, a retry)
            await settle(db, 1)
            await eventually(server.messages, lambda found: found == [], timeout=10)
            await passes_after(gw.imap, 1)
            # Once more, after it was answered: still nothing new.
            await server.append(raw)
            await eventually(server.messages, lambda found: found == [], timeout=10)
            await passes_after(gw.imap, 1)
        assert len(answerer.calls) == 1
        assert await db.fetchval("SELECT count(*) FROM reply_verdicts") == 1
        rows = await db.fetch("SELECT uid, inbound_id FROM imap_messages ORDER BY uid")
        assert len(rows) == 3 and sum(r["inbound_id"] is not None for r in rows) == 1
        assert len(await server.messages(PROCESSED)) == 3


async def test_the_offices_own_mail_is_left_alone_and_looked_at_once(
    db: asyncpg.Pool, settings: Settings, sink: MailSink, answerer: FakeAnswerer, tmp_path: Path
) -> None:
    with imap_server() as server:
        cfg = imap_settings(settings, server, tmp_path)
        tandem = await put_tandem(db)
        token = await mint_token(db, settings, tandem, Role.MENTEE)
        office = reply_mail(
            settings, token, sender="kollegin@klinikum.example.org", text="Termin am Montag?"
        )
        del office["To"], office["In-Reply-To"], office["References"]
        office["To"] = "mentoring@tandem.invalid"
        with structlog.testing.capture_logs() as logs:
            async with gateway_with_imap(cfg, db, answerer) as gw:
                assert gw.imap is not None
                await server.append(bytes(office))
                await eventually(
                    lambda: _value(len(_events(logs, "imap_left"))), lambda n: n == 1, timeout=10
                )
                await passes_after(gw.imap, 3)
        assert len(_events(logs, "imap_left")) == 1
        assert _events(logs, "imap_left")[0]["why"] == "no_reply_address"
        assert [e["left"] for e in _events(logs, "imap_pass")] == [1]
        assert len(await server.messages()) == 1  # still in the office's inbox
        assert await db.fetchval("SELECT count(*) FROM inbound_mail") == 0
        assert await db.fetchval("SELECT count(*) FROM reply_verdicts") == 0


async def test_an_untrusted_certificate_is_refused_in_one_line_and_nothing_is_stored(
    db: asyncpg.Pool, settings: Settings, sink: MailSink, answerer: FakeAnswerer, tmp_path: Path
) -> None:
    with imap_server() as server:
        cfg = imap_settings(settings, server, tmp_path, imap_ca_file=None)  # the system's CAs
        tandem = await put_tandem(db)
        token = await mint_token(db, settings, tandem, Role.MENTEE)
        await server.append(
            bytes(reply_mail(settings, token, sender=tandem.mentee_email, text="ja"))
        )
        gw = ReplyGateway(settings, db, answerer, SmtpSender(settings), policy=FAST, port=0)
        with structlog.testing.capture_logs() as logs:
            async with gw, poller_alone(cfg, db, gw) as poller:
                await eventually(lambda: _value(poller.failures), lambda n: n >= 2, timeout=10)
        refusals = _events(logs, "imap_unavailable")
        assert len(refusals) >= 2  # reported, and tried again
        assert {(r["stage"], r["error"]) for r in refusals} == {("connect", "certificate_refused")}
        assert "certificate" in refusals[0]["detail"] or "issuer" in refusals[0]["detail"]
        assert poller.passes == 0
        assert await db.fetchval("SELECT count(*) FROM inbound_mail") == 0
        assert len(await server.messages()) == 1


async def test_a_refused_login_is_reported_and_retried_without_crashing(
    db: asyncpg.Pool, settings: Settings, sink: MailSink, answerer: FakeAnswerer, tmp_path: Path
) -> None:
    with imap_server() as server:
        cfg = imap_settings(settings, server, tmp_path, imap_password=SecretStr("wrong"))
        gw = ReplyGateway(settings, db, answerer, SmtpSender(settings), policy=FAST, port=0)
        with structlog.testing.capture_logs() as logs:
            async with gw, poller_alone(cfg, db, gw) as poller:
                await eventually(lambda: _value(poller.failures), lambda n: n >= 3, timeout=10)
        refusals = _events(logs, "imap_unavailable")
        assert {(r["stage"], r["error"]) for r in refusals} == {("login", "authenticationfailed")}
        assert [r["retry_in"] for r in refusals[:3]] == [0.1, 0.2, 0.4]
        assert "wrong" not in str(logs) and PASSWORD not in str(logs)


async def test_xoauth2_with_a_token_file_recovers_once_the_token_is_right(
    db: asyncpg.Pool, settings: Settings, sink: MailSink, answerer: FakeAnswerer, tmp_path: Path
) -> None:
    token_file = tmp_path / "bearer"
    token_file.write_text("ya29.expired\n")
    with imap_server() as server:
        cfg = imap_settings(
            settings, server, tmp_path, imap_password=None, imap_xoauth2_token_file=token_file
        )
        tandem = await put_tandem(db)
        token = await mint_token(db, settings, tandem, Role.MENTEE)
        await server.append(
            bytes(reply_mail(settings, token, sender=tandem.mentee_email, text="später"))
        )
        with structlog.testing.capture_logs() as logs:
            async with gateway_with_imap(cfg, db, answerer) as gw:
                assert gw.imap is not None
                await eventually(lambda: _value(gw.imap.failures), lambda n: n >= 1, timeout=10)
                assert await db.fetchval("SELECT count(*) FROM inbound_mail") == 0
                token_file.write_text(BEARER + "\n")  # refreshed by another process
                [row] = await settle(db, 1)
        assert (row["verdict"], row["intent"]) == ("accepted", "snooze")
        refusals = _events(logs, "imap_unavailable")
        assert refusals and {(r["stage"], r["error"]) for r in refusals} == {
            ("login", "authenticationfailed")
        }
        assert "ya29" not in str(logs)


async def test_the_poller_outlives_its_server_going_away_and_coming_back(
    db: asyncpg.Pool, settings: Settings, sink: MailSink, answerer: FakeAnswerer, tmp_path: Path
) -> None:
    tandem = await put_tandem(db)
    token = await mint_token(db, settings, tandem, Role.MENTEE)
    first = ImapTestServer().start()
    cfg = imap_settings(settings, first, tmp_path)
    with structlog.testing.capture_logs() as logs:
        async with gateway_with_imap(cfg, db, answerer) as gw:
            assert gw.imap is not None
            await passes_after(gw.imap, 1)
            first.stop()  # the connection drops, the next ones are refused
            await eventually(lambda: _value(gw.imap.failures), lambda n: n >= 2, timeout=10)
            second = ImapTestServer(port=first.port, ca=first.ca).start()
            try:
                msg = reply_mail(settings, token, sender=tandem.mentee_email, text="getroffen")
                await second.append(bytes(msg))
                [row] = await settle(db, 1)
                await eventually(second.messages, lambda found: found == [], timeout=10)
            finally:
                second.stop()
    assert (row["verdict"], row["intent"]) == ("accepted", "met")
    problems = {(r["stage"], r["error"]) for r in _events(logs, "imap_unavailable")}
    assert ("connect", "ECONNREFUSED") in problems
    assert problems <= {("connect", "ECONNREFUSED"), ("idle", "connection_lost")}
    assert len(_events(logs, "imap_ready")) == 2


async def test_no_address_subject_or_body_reaches_a_log_or_a_table(
    db: asyncpg.Pool,
    settings: Settings,
    sink: MailSink,
    answerer: FakeAnswerer,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    marks = ["Zebrafinkgeheimnis", "Okapikennwort", "Quokkavertraulich", "Axolotlnotiz"]
    with imap_server() as server:
        cfg = imap_settings(settings, server, tmp_path)
        tandem = await put_tandem(db)
        texts = [f"Ja, getroffen. {marks[0]}", f"{marks[1]} nichts verstanden", "Stop"]
        senders = [tandem.mentee_email, tandem.mentee_email, "weitergeleitet-x9@example.net"]
        with structlog.testing.capture_logs() as logs:
            async with gateway_with_imap(cfg, db, answerer):
                for i, (text, sender) in enumerate(zip(texts, senders, strict=True)):
                    token = await mint_token(db, settings, tandem, Role.MENTEE, number=i + 1)
                    msg = reply_mail(
                        settings,
                        token,
                        sender=sender,
                        text=text,
                        subject=f"AW: {marks[2]} {i}",
                        signature=f"Gruß\n{marks[3]}",
                    )
                    await server.append(bytes(msg))
                rows = await settle(db, 3)
                await eventually(server.messages, lambda found: found == [], timeout=10)
    assert [r["verdict"] for r in rows] == ["accepted", "refused", "refused"]
    dump = await _dump_all_tables(db)
    logged = "\n".join(str(entry) for entry in logs) + "\n" + caplog.text
    for mark in marks:
        assert mark not in dump
        assert mark.lower() not in logged.lower()
    assert "weitergeleitet-x9" not in dump and "weitergeleitet-x9" not in logged
    assert tandem.mentee_email not in logged  # (the people table has it, of course)
    assert USER not in dump  # the mailbox is known by a hash


async def test_incomplete_imap_settings_are_one_line(settings: Settings) -> None:
    with pytest.raises(ValueError, match="TANDEM_IMAP_USERNAME"):
        ImapConfig.from_settings(settings.model_copy(update={"imap_host": "imap.example.org"}))
    with pytest.raises(ValueError, match="TANDEM_IMAP_PASSWORD"):
        ImapConfig.from_settings(
            settings.model_copy(update={"imap_host": "imap.example.org", "imap_username": "x"})
        )
    cfg = ImapConfig.from_settings(
        settings.model_copy(
            update={
                "imap_host": "imap.example.org",
                "imap_username": "office@example.org",
                "imap_password": SecretStr("pw"),
            }
        )
    )
    assert (cfg.port, cfg.ssl, cfg.folder, cfg.processed_folder, cfg.poll_seconds) == (
        993,
        True,
        "INBOX",
        "Tandem/Processed",
        30.0,
    )
    assert "pw" not in repr(cfg) and "office@" not in cfg.mailbox_key


async def test_tandem_gateway_reads_the_mailbox_when_configured(
    dev_env: WorkflowEnvironment,
    db: asyncpg.Pool,
    db_dsn: str,
    settings: Settings,
    sink: MailSink,
    tmp_path: Path,
) -> None:
    with imap_server() as server:
        port = free_port()
        env = {
            **os.environ,
            "DATABASE_URL": db_dsn,
            "TANDEM_HOME": str(settings.home),
            "TANDEM_TEMPORAL_ADDRESS": dev_env.client.service_client.config.target_host,
            "TANDEM_SMTP_PORT": str(sink.port),
            "TANDEM_GATEWAY_PORT": str(port),
            "TANDEM_REPLY_TOKEN_SECRET": settings.reply_token_secret.get_secret_value(),
            "TANDEM_IMAP_HOST": "127.0.0.1",
            "TANDEM_IMAP_PORT": str(server.port),
            "TANDEM_IMAP_USERNAME": USER,
            "TANDEM_IMAP_PASSWORD": PASSWORD,
            "TANDEM_IMAP_CA_FILE": str(server.write_ca(tmp_path / "ca.pem")),
            "TANDEM_IMAP_POLL_SECONDS": "0.5",
        }
        proc = await asyncio.create_subprocess_exec(
            str(BIN / "tandem"),
            "gateway",
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            tandem = await put_tandem(db)  # on file, but never enrolled: no workflow
            token = await mint_token(db, settings, tandem, Role.MENTEE)
            msg = reply_mail(settings, token, sender=tandem.mentee_email, text="getroffen")
            await server.append(bytes(msg))
            [row] = await settle(db, 1, timeout=60)
            assert (row["verdict"], row["reason"], row["intent"]) == ("refused", "no_tandem", "met")
            await eventually(server.messages, lambda found: found == [], timeout=10)
        finally:
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
            out, err = await asyncio.wait_for(proc.communicate(), timeout=30)
    assert proc.returncode == 0, err.decode()
    assert f"reading replies over IMAP from 127.0.0.1:{server.port}" in out.decode()
    assert tandem.mentee_email not in out.decode() + err.decode()
    assert PASSWORD not in out.decode() + err.decode()
