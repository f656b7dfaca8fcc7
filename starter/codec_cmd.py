"""``tandem codec-server``: the Temporal Web UI and CLI read encrypted payloads through it.

Temporal's codec server protocol: ``POST /encode`` and ``POST /decode`` (also under a
namespace prefix, ``/NAMESPACE/decode``, as the CLI's ``--codec-endpoint`` templates it) take
and return ``{"payloads": [...]}`` in protobuf JSON (``data`` and metadata values base64).
The browser calls it from the UI's origin, so it answers CORS for ``TANDEM_CODEC_CORS_ORIGINS``
only; with ``TANDEM_CODEC_TOKEN`` set every call must carry ``Authorization: Bearer TOKEN``.
It holds the keys: run it where only the people allowed to read payloads reach it.
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import hmac
import json
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import structlog
from aiohttp import web
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload, Payloads

from starter.common import CommandError, run, stop_on_signals
from tandem.logging import configure_logging
from tandem.settings import Settings, get_settings
from workflows.codec import EncryptionCodec, PayloadDecodeError, PayloadKeyError, payload_codec

log = structlog.get_logger(__name__)

#: Large enough for any payload Temporal accepts (2 MiB by default) several times over.
MAX_BODY_BYTES = 16 * 1024 * 1024
ALLOWED_HEADERS = "Authorization, Content-Type, X-Namespace"
STOP_GRACE = 5.0

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def codec_for(settings: Settings) -> EncryptionCodec:
    """The configured codec, or the one-line reason there is none (never showing a key)."""
    try:
        codec = payload_codec(settings)
    except PayloadKeyError as err:
        raise CommandError(str(err)) from None
    if codec is None:
        raise CommandError(
            "no payload keys: set TANDEM_PAYLOAD_KEYS (KEY_ID:BASE64_KEY), the keys the"
            " workers encrypt with"
        )
    return codec


def cors_origins(text: str) -> frozenset[str]:
    """``TANDEM_CODEC_CORS_ORIGINS`` as a set (``http://host:port``, no trailing slash)."""
    return frozenset(o.strip().rstrip("/") for o in text.split(",") if o.strip())


def _digest(value: str) -> bytes:
    return hashlib.sha256(value.encode("utf-8")).digest()


def codec_app(
    codec: EncryptionCodec, *, token: str | None, origins: Iterable[str]
) -> web.Application:
    """The HTTP application: routes, CORS, bearer token. No I/O but the requests."""
    allowed = frozenset(origins)
    expected = _digest(token) if token else None

    def authorized(request: web.Request) -> bool:
        if expected is None:
            return True
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        # Hashes of equal length, compared in constant time: neither content nor length leaks.
        return scheme.lower() == "bearer" and hmac.compare_digest(_digest(given.strip()), expected)

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        origin = request.headers.get("Origin", "")
        from_allowed = origin in allowed
        response: web.StreamResponse
        known = request.match_info.http_exception is None
        if request.method == "OPTIONS" and known:
            if not from_allowed:
                return web.json_response({"error": "origin not allowed"}, status=403)
            response = web.Response(
                status=204,
                headers={
                    "Access-Control-Allow-Methods": "POST, OPTIONS",
                    "Access-Control-Allow-Headers": ALLOWED_HEADERS,
                    "Access-Control-Max-Age": "600",
                },
            )
        elif known and not authorized(request):
            response = web.json_response(
                {"error": "unauthorized"}, status=401, headers={"WWW-Authenticate": "Bearer"}
            )
        else:
            try:
                response = await handler(request)
            except web.HTTPException as err:  # 404, 405: still with CORS, so the UI sees why
                response = web.json_response({"error": err.reason}, status=err.status)
        if from_allowed:
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Access-Control-Allow-Credentials"] = "true"
        response.headers["Vary"] = "Origin"
        return response

    def endpoint(
        convert: Callable[[list[Payload]], Awaitable[list[Payload]]], name: str
    ) -> Handler:
        async def handle(request: web.Request) -> web.StreamResponse:
            try:
                payloads = json_format.Parse(await request.text(), Payloads()).payloads
            except (json_format.ParseError, UnicodeDecodeError):
                return web.json_response(
                    {"error": 'the body must be {"payloads": [...]} in protobuf JSON'},
                    status=400,
                )
            try:
                converted = await convert(list(payloads))
            except PayloadDecodeError as err:  # names the key id only
                log.warning("codec_refused", endpoint=name, reason=str(err))
                return web.json_response({"error": str(err)}, status=400)
            log.debug("codec_request", endpoint=name, payloads=len(converted))
            body: dict[str, Any] = {"payloads": [json_format.MessageToDict(p) for p in converted]}
            return web.Response(text=json.dumps(body), content_type="application/json")

        return handle

    app = web.Application(middlewares=[guard], client_max_size=MAX_BODY_BYTES)
    for name, convert in (("encode", codec.encode), ("decode", codec.decode)):
        handler = endpoint(convert, name)
        for path in (f"/{name}", f"/{{namespace}}/{name}"):
            app.router.add_post(path, handler)
            app.router.add_route("OPTIONS", path, handler)  # answered by the guard
    return app


class CodecServer:
    """The codec server on ``codec_host:codec_port`` (port 0: any free one), for
    ``tandem codec-server`` and ``tandem dev``."""

    def __init__(self, settings: Settings, *, extra_origins: Iterable[str] = ()) -> None:
        self.settings = settings
        self.codec = codec_for(settings)
        self.origins = cors_origins(settings.codec_cors_origins) | frozenset(extra_origins)
        token = settings.codec_token.get_secret_value() if settings.codec_token else None
        self._app = codec_app(self.codec, token=token or None, origins=self.origins)
        self._runner: web.AppRunner | None = None
        self.port = settings.codec_port

    @property
    def url(self) -> str:
        """Where a browser on this machine reaches it (a wildcard bind means loopback)."""
        host = self.settings.codec_host
        if host in ("", "0.0.0.0", "::"):  # noqa: S104 - naming the wildcard, not binding it
            host = "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    async def start(self) -> None:
        runner = web.AppRunner(self._app, access_log=None, shutdown_timeout=STOP_GRACE)
        await runner.setup()
        site = web.TCPSite(runner, self.settings.codec_host, self.settings.codec_port)
        try:
            await site.start()
        except OSError as err:
            await runner.cleanup()
            if err.errno == errno.EADDRINUSE:
                raise CommandError(
                    f"port {self.settings.codec_port} (codec server) is in use:"
                    " stop what uses it or set TANDEM_CODEC_PORT"
                ) from None
            raise
        self._runner = runner
        if runner.addresses:  # the bound socket tells the port when 0 was asked for
            self.port = int(runner.addresses[0][1])
        log.info(
            "codec_server_ready",
            url=self.url,
            key_ids=self.codec.key_ids,
            token=self.settings.codec_token is not None,
        )

    async def stop(self) -> None:
        """Finish the requests under way (up to a few seconds), then close; idempotent."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
            log.info("codec_server_stopped")


async def serve(settings: Settings, stop: asyncio.Event | None = None) -> None:
    """Run until SIGINT/SIGTERM (or ``stop``)."""
    server = CodecServer(settings)
    stop = stop or stop_on_signals()
    await server.start()
    try:
        await stop.wait()
    finally:
        await server.stop()


def codec_server() -> None:
    """Serve POST /encode and /decode for the Temporal Web UI and CLI (Temporal's codec server
    protocol) with the keys of TANDEM_PAYLOAD_KEYS, on TANDEM_CODEC_HOST:TANDEM_CODEC_PORT;
    CORS for TANDEM_CODEC_CORS_ORIGINS, a bearer token when TANDEM_CODEC_TOKEN is set. Stops
    cleanly on Ctrl-C or SIGTERM."""
    settings = get_settings()
    configure_logging(settings.log_format, settings.log_level)
    run(serve(settings))
