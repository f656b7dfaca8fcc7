"""Encrypted payloads (TANDEM_PAYLOAD_KEYS): what Temporal stores of a tandem is AES-GCM
ciphertext that names its key id, keys rotate, a wrong key or changed bytes are one clear error
naming the key id, a bad setting is one line without the key, and ``tandem codec-server``
serves the Web UI's /encode and /decode over real HTTP (CORS, bearer token). Real parts: the
Temporal dev server, PostgreSQL, the production worker and the SMTP sink."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import aiohttp
import asyncpg
import pytest
import pytest_asyncio
from google.protobuf import json_format
from google.protobuf.message import Message
from pydantic import SecretStr
from temporalio import activity, workflow
from temporalio.api.common.v1 import Payload
from temporalio.api.failure.v1 import Failure
from temporalio.api.history.v1 import History
from temporalio.client import Client, WorkflowFailureError
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from starter import devstack
from starter.codec_cmd import CodecServer
from starter.common import CommandError, connect_temporal
from starter.mailsink import MailSink
from starter.tandem_cmds import start_tandem
from tandem.models import TandemState, TandemStatus
from tandem.settings import Settings
from tests.support import (
    BIN,
    eventually,
    free_port,
    mails_to,
    mentee,
    mentor,
    put_people,
    query_state,
    running_worker,
    tandem_cli,
    uid,
    wait_status,
)
from workflows.codec import (
    ENCODING,
    KEY_ID,
    EncryptionCodec,
    PayloadDecodeError,
    PayloadKeyError,
    data_converter,
    parse_keys,
)
from workflows.ids import workflow_id

OLD_KEY = base64.b64encode(bytes(range(32))).decode()
NEW_KEY = base64.b64encode(bytes(range(100, 132))).decode()


def keys_setting(*pairs: tuple[str, str]) -> SecretStr:
    return SecretStr(",".join(f"{kid}:{key}" for kid, key in pairs))


def plain_payload(text: str = '{"status":"introduced","mentee_id":"S-1"}') -> Payload:
    return Payload(metadata={"encoding": b"json/plain"}, data=text.encode())


# -- the codec ------------------------------------------------------------------------------


async def test_a_payload_round_trips_and_is_ciphertext_that_names_its_key() -> None:
    codec = EncryptionCodec(parse_keys(f"k1:{OLD_KEY}"))
    plain = plain_payload()
    [sealed] = await codec.encode([plain])
    assert sealed.metadata["encoding"] == ENCODING
    assert sealed.metadata[KEY_ID] == b"k1"
    assert b"introduced" not in sealed.SerializeToString()
    assert b"json/plain" not in sealed.SerializeToString()  # the inner metadata is sealed too
    [again] = await codec.encode([plain])
    assert again.data != sealed.data  # a fresh nonce each time
    assert await codec.decode([sealed, again]) == [plain, plain]


async def test_the_data_converter_encrypts_tandem_state_and_reads_it_back() -> None:
    converter = data_converter(Settings(payload_keys=keys_setting(("k1", OLD_KEY))))
    state = TandemState.model_validate(
        {
            "mentee_id": "S-1",
            "program": "stipendium-hausarzt",
            "phase": "study",
            "cadence_days": 91,
        }
    )
    [payload] = await converter.encode([state])
    assert payload.metadata["encoding"] == ENCODING
    assert b"S-1" not in payload.data and b"status" not in payload.data
    [decoded] = await converter.decode([payload], [TandemState])
    assert decoded == state


def test_without_keys_payloads_stay_plain_as_before() -> None:
    assert data_converter(Settings(payload_keys=None)) is pydantic_data_converter
    assert data_converter(Settings(payload_keys=SecretStr(" "))) is pydantic_data_converter


async def test_a_plain_payload_decodes_unchanged() -> None:
    """Histories written before encryption was turned on stay readable."""
    codec = EncryptionCodec(parse_keys(f"k1:{OLD_KEY}"))
    plain = plain_payload()
    assert await codec.decode([plain]) == [plain]


async def test_after_rotation_old_payloads_still_read_and_new_ones_use_the_new_key() -> None:
    before = EncryptionCodec(parse_keys(f"old:{OLD_KEY}"))
    [written_before] = await before.encode([plain_payload()])
    rotated = EncryptionCodec(parse_keys(f"new:{NEW_KEY},old:{OLD_KEY}"))
    assert await rotated.decode([written_before]) == [plain_payload()]
    [written_after] = await rotated.encode([plain_payload()])
    assert written_after.metadata[KEY_ID] == b"new"
    assert await EncryptionCodec(parse_keys(f"new:{NEW_KEY}")).decode([written_after]) == [
        plain_payload()
    ]


async def test_an_unknown_key_id_is_a_clear_error_naming_only_the_key_id() -> None:
    [sealed] = await EncryptionCodec(parse_keys(f"old:{OLD_KEY}")).encode([plain_payload()])
    without_old = EncryptionCodec(parse_keys(f"new:{NEW_KEY}"))
    with pytest.raises(PayloadDecodeError) as caught:
        await without_old.decode([sealed])
    message = str(caught.value)
    assert "key id old" in message and "TANDEM_PAYLOAD_KEYS" in message
    assert OLD_KEY not in message and NEW_KEY not in message and "introduced" not in message


@pytest.mark.parametrize(
    "change", ["flip-a-byte", "cut-short", "other-key-id", "same-id-other-key"]
)
async def test_tampered_payloads_are_refused_naming_only_the_key_id(change: str) -> None:
    codec = EncryptionCodec(parse_keys(f"k1:{OLD_KEY},k2:{NEW_KEY}"))
    [sealed] = await codec.encode([plain_payload()])
    reader = codec
    if change == "flip-a-byte":
        data = bytearray(sealed.data)
        data[20] ^= 0x01
        sealed.data = bytes(data)
    elif change == "cut-short":
        sealed.data = sealed.data[:5]
    elif change == "other-key-id":  # the key id is bound in as associated data
        sealed.metadata[KEY_ID] = b"k2"
    else:
        reader = EncryptionCodec(parse_keys(f"k1:{NEW_KEY}"))
    with pytest.raises(PayloadDecodeError) as caught:
        await reader.decode([sealed])
    message = str(caught.value)
    assert "key id k" in message and "does not decrypt" in message
    assert OLD_KEY not in message and NEW_KEY not in message


BAD_SETTINGS = [
    pytest.param(f"k1:{base64.b64encode(b'0123456789abcdef').decode()}", "16 bytes", id="short"),
    pytest.param("k1:not*base64!", "not base64", id="not-base64"),
    pytest.param(OLD_KEY, "expected KEY_ID:BASE64_KEY", id="no-key-id"),
    pytest.param(f"{OLD_KEY}:k1", "the key id must be", id="swapped"),
    pytest.param(f"k1:{OLD_KEY},k1:{NEW_KEY}", "appears twice", id="duplicate-id"),
    pytest.param(f"k1:{OLD_KEY},", "entry 2: expected", id="trailing-comma"),
    pytest.param(" , ", "is empty", id="only-commas"),
]


@pytest.mark.parametrize(("value", "why"), BAD_SETTINGS)
async def test_a_bad_key_setting_is_one_line_without_the_key(value: str, why: str) -> None:
    settings = Settings(payload_keys=SecretStr(value))
    with pytest.raises(PayloadKeyError):
        data_converter(settings)
    with pytest.raises(CommandError) as caught:  # what every command and service meets
        await connect_temporal(settings)
    message = str(caught.value)
    assert why in message and message.startswith("TANDEM_PAYLOAD_KEYS")
    assert "\n" not in message
    for part in value.replace(",", ":").split(":"):
        if len(part) > 8:  # key material (ids are short and may be named)
            assert part not in message


async def test_the_cli_refuses_a_bad_key_setting_in_one_line() -> None:
    env = {**os.environ, "TANDEM_PAYLOAD_KEYS": f"k1:{OLD_KEY[:20]}"}
    code, out, err = await tandem_cli(env, "status", "S-1")
    assert code == 1 and out == ""
    assert err.strip().splitlines() == [
        "error: TANDEM_PAYLOAD_KEYS entry 1 (key id k1): the key has 15 bytes, needs 32"
    ]
    assert OLD_KEY[:20] not in err


def test_make_dev_points_the_ui_at_the_codec_server_when_keys_are_set() -> None:
    plain = Settings(payload_keys=None, codec_port=18234)
    encrypted = Settings(payload_keys=keys_setting(("k1", OLD_KEY)), codec_port=18234)
    assert "--ui-codec-endpoint" not in devstack.temporal_command(plain, "temporal")
    command = devstack.temporal_command(encrypted, "temporal", "http://127.0.0.1:18234")
    assert command[command.index("--ui-codec-endpoint") + 1] == "http://127.0.0.1:18234"
    assert 18234 not in [use.port for use in devstack.planned_ports(plain)]
    assert 18234 in [use.port for use in devstack.planned_ports(encrypted)]


# -- a tandem on the real server -------------------------------------------------------------


def payloads_in(message: Message, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    """Every Payload inside a protobuf message, with the field names that lead to it."""
    found: list[tuple[tuple[str, ...], Any]] = []
    if isinstance(message, Payload):
        return [(path, message)]
    for field, value in message.ListFields():
        where = (*path, field.name)
        if field.message_type is None:
            continue
        if field.message_type.GetOptions().map_entry:
            values = list(value.values())
        elif isinstance(value, Message):
            values = [value]
        else:  # a repeated field
            values = list(value)
        for item in values:
            if isinstance(item, Message):
                found += payloads_in(item, where)
    return found


def encrypted_payloads_only(history: History) -> tuple[list[Payload], int]:
    """Assert every payload is encrypted but the search attributes (the server indexes those,
    so they stay plain: ids and status only) and the patch markers the SDK's core writes (a
    patch name); returns (the encrypted ones, how many search attributes)."""
    encrypted, indexed = [], 0
    for path, payload in payloads_in(history):
        if "search_attributes" in path:
            indexed += 1
            continue
        if "marker_recorded_event_attributes" in path:  # written by the SDK's core itself
            assert set(json.loads(payload.data)) == {"id", "deprecated"}, "a patch marker only"
            continue
        assert payload.metadata["encoding"] == ENCODING, f"plain payload at {'.'.join(path)}"
        assert set(payload.metadata) == {"encoding", KEY_ID}
        encrypted.append(payload)
    return encrypted, indexed


@pytest_asyncio.fixture
async def encrypted(
    dev_env: WorkflowEnvironment, settings: Settings
) -> AsyncIterator[tuple[Client, Settings]]:
    """A client with the codec (keys set), on the shared dev server."""
    with_keys = settings.model_copy(update={"payload_keys": keys_setting(("k2026", NEW_KEY))})
    config = dev_env.client.config()
    config["data_converter"] = data_converter(with_keys)
    yield Client(**config), with_keys


async def test_a_tandems_history_holds_no_plaintext_and_the_codec_reads_its_state(
    dev_env: WorkflowEnvironment,
    encrypted: tuple[Client, Settings],
    db: asyncpg.Pool,
    sink: MailSink,
) -> None:
    client, settings = encrypted
    s1, m1 = uid("S"), uid("M")
    the_mentor, the_mentee = mentor(m1), mentee(s1)
    await put_people(db, [the_mentor], [the_mentee])
    async with running_worker(client, settings, db):
        await start_tandem(client, the_mentee, settings)
        state = await wait_status(client, s1, TandemStatus.INTRODUCED)
        await mails_to(sink, the_mentee.email)
        assert state.mentor_id == m1 and state.program == "stipendium-hausarzt"
        assert (await query_state(client, s1)).status is TandemStatus.INTRODUCED

        # Without the codec the state cannot be read: it is ciphertext.
        plain_client = dev_env.client
        with pytest.raises(Exception, match="binary/encrypted"):
            await query_state(plain_client, s1)

    history = await plain_client.get_workflow_handle(workflow_id(s1)).fetch_history()
    proto = History(events=history.events)
    encrypted_payloads, indexed = encrypted_payloads_only(proto)
    assert len(encrypted_payloads) >= 4 and indexed >= 1  # input, activities, results
    assert {p.metadata[KEY_ID] for p in encrypted_payloads} == {b"k2026"}
    sealed = b"".join(p.SerializeToString() for p in encrypted_payloads)
    raw = proto.SerializeToString()
    for person in (the_mentor, the_mentee):
        for secret in (person.first_name, person.last_name, person.email, person.id):
            assert secret.encode() not in sealed
        for secret in (person.first_name, person.last_name, person.email):
            assert secret.encode() not in raw
    for text in (b'"status"', b'"mentee_id"', b"stipendium-hausarzt", b"json/plain"):
        assert text not in sealed
    assert b'"status"' not in raw and b'"cadence_days"' not in raw


@activity.defn(name="codec_test_leak")
async def leak(address: str) -> None:
    raise ApplicationError(f"relay refused {address}", non_retryable=True)


@workflow.defn(name="CodecTestLeak", sandboxed=False)
class LeakWorkflow:
    @workflow.run
    async def run(self, address: str) -> None:
        await workflow.execute_activity(leak, address, start_to_close_timeout=timedelta(seconds=10))


async def test_a_failure_message_and_stack_trace_reach_history_encrypted(
    dev_env: WorkflowEnvironment, encrypted: tuple[Client, Settings]
) -> None:
    client, settings = encrypted
    address = f"{uid('anna')}@praxis.example.org"
    async with Worker(
        client,
        task_queue=settings.task_queue,
        workflows=[LeakWorkflow],
        activities=[leak],
        workflow_runner=UnsandboxedWorkflowRunner(),
    ):
        handle = await client.start_workflow(
            LeakWorkflow.run, address, id=uid("codec-leak"), task_queue=settings.task_queue
        )
        with pytest.raises(WorkflowFailureError) as caught:
            await handle.result()
    # With the codec the failure reads as it was raised.
    cause = caught.value.cause
    assert cause is not None and cause.cause is not None
    assert str(cause.cause) == f"relay refused {address}"

    history = await dev_env.client.get_workflow_handle(handle.id).fetch_history()
    failed = [e for e in history.events if e.HasField("activity_task_failed_event_attributes")]
    assert failed, "the activity's failure is in history"
    failure: Failure = failed[0].activity_task_failed_event_attributes.failure
    assert failure.message == "Encoded failure" and failure.stack_trace == ""
    assert failure.encoded_attributes.metadata["encoding"] == ENCODING
    raw = History(events=history.events).SerializeToString()
    assert address.encode() not in raw and b"relay refused" not in raw
    assert b"codec_cmd" not in raw and b"test_codec.py" not in raw  # no stack trace lines
    encrypted_payloads_only(History(events=history.events))


# -- the codec server over HTTP --------------------------------------------------------------

ALLOWED_ORIGIN = "http://127.0.0.1:8233"


@pytest_asyncio.fixture
async def codec_server() -> AsyncIterator[CodecServer]:
    settings = Settings(
        payload_keys=keys_setting(("k2", NEW_KEY), ("k1", OLD_KEY)),
        codec_port=0,
        codec_token=SecretStr("ui-token-for-tests"),
        codec_cors_origins=f"{ALLOWED_ORIGIN}, http://localhost:8233/",
    )
    server = CodecServer(settings)
    await server.start()
    yield server
    await server.stop()


def payloads_json(*payloads: Payload) -> dict[str, Any]:
    return {"payloads": [json_format.MessageToDict(p) for p in payloads]}


def payloads_from(body: dict[str, Any]) -> list[Payload]:
    return [json_format.ParseDict(p, Payload()) for p in body["payloads"]]


AUTH = {"Authorization": "Bearer ui-token-for-tests"}


async def test_the_codec_server_decodes_and_encodes_over_http(codec_server: CodecServer) -> None:
    written_with_old = await EncryptionCodec(parse_keys(f"k1:{OLD_KEY}")).encode([plain_payload()])
    plain = plain_payload('{"other": 1}')
    async with aiohttp.ClientSession(codec_server.url) as http:
        for path in ("/decode", "/default/decode"):  # the UI's path, and the CLI's template
            async with http.post(
                path,
                json=payloads_json(*written_with_old, plain),
                headers={**AUTH, "X-Namespace": "default", "Origin": ALLOWED_ORIGIN},
            ) as response:
                assert response.status == 200
                assert response.headers["Access-Control-Allow-Origin"] == ALLOWED_ORIGIN
                assert payloads_from(await response.json()) == [plain_payload(), plain]
        async with http.post("/encode", json=payloads_json(plain), headers=AUTH) as response:
            assert response.status == 200
            [sealed] = payloads_from(await response.json())
        assert sealed.metadata[KEY_ID] == b"k2"
        assert await codec_server.codec.decode([sealed]) == [plain]
        async with http.post("/decode", json={"payloads": []}, headers=AUTH) as response:
            assert await response.json() == {"payloads": []}


async def test_the_codec_server_refuses_what_it_cannot_decode_naming_the_key_id(
    codec_server: CodecServer,
) -> None:
    [foreign] = await EncryptionCodec(parse_keys(f"k9:{OLD_KEY}")).encode([plain_payload()])
    async with aiohttp.ClientSession(codec_server.url) as http:
        async with http.post("/decode", json=payloads_json(foreign), headers=AUTH) as response:
            assert response.status == 400
            body = await response.json()
        assert "key id k9" in body["error"]
        async with http.post("/decode", data=b"not json", headers=AUTH) as response:
            assert response.status == 400


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "ui-token-for-tests"}],
    ids=["no-token", "wrong-token", "not-bearer"],
)
async def test_the_codec_server_wants_the_token(
    codec_server: CodecServer, headers: dict[str, str]
) -> None:
    [sealed] = await codec_server.codec.encode([plain_payload()])
    async with (
        aiohttp.ClientSession(codec_server.url) as http,
        http.post("/decode", json=payloads_json(sealed), headers=headers) as response,
    ):
        assert response.status == 401
        assert response.headers["WWW-Authenticate"] == "Bearer"
        assert "introduced" not in await response.text()


async def test_the_codec_server_answers_preflight_for_the_ui_origin_only(
    codec_server: CodecServer,
) -> None:
    asks = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type,x-namespace",
    }
    async with aiohttp.ClientSession(codec_server.url) as http:
        for origin in (ALLOWED_ORIGIN, "http://localhost:8233"):
            async with http.options("/decode", headers={**asks, "Origin": origin}) as response:
                assert response.status == 204
                assert response.headers["Access-Control-Allow-Origin"] == origin
                allowed = response.headers["Access-Control-Allow-Headers"]
                assert {"Authorization", "Content-Type", "X-Namespace"} <= {
                    h.strip() for h in allowed.split(",")
                }
                assert "POST" in response.headers["Access-Control-Allow-Methods"]
        async with http.options(
            "/decode", headers={**asks, "Origin": "https://evil.example"}
        ) as response:
            assert response.status == 403
            assert "Access-Control-Allow-Origin" not in response.headers
        async with http.post(
            "/decode", json={"payloads": []}, headers={**AUTH, "Origin": "https://evil.example"}
        ) as response:
            assert "Access-Control-Allow-Origin" not in response.headers


async def test_tandem_codec_server_refuses_to_start_without_keys_and_stops_on_sigterm() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TANDEM_")}
    code, _, err = await tandem_cli({**env, "TANDEM_PAYLOAD_KEYS": ""}, "codec-server")
    assert code == 1
    assert err.strip().splitlines() == [
        "error: no payload keys: set TANDEM_PAYLOAD_KEYS (KEY_ID:BASE64_KEY), the keys the"
        " workers encrypt with"
    ]

    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        str(BIN / "tandem"),
        "codec-server",
        env={**env, "TANDEM_PAYLOAD_KEYS": f"k1:{OLD_KEY}", "TANDEM_CODEC_PORT": str(port)},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        [sealed] = await EncryptionCodec(parse_keys(f"k1:{OLD_KEY}")).encode([plain_payload()])

        async def decoded() -> list[Payload] | None:
            try:
                async with (
                    aiohttp.ClientSession() as http,
                    http.post(
                        f"http://127.0.0.1:{port}/decode", data=json.dumps(payloads_json(sealed))
                    ) as response,
                ):
                    return payloads_from(await response.json())
            except aiohttp.ClientConnectionError:
                return None

        assert await eventually(decoded, lambda p: p is not None) == [plain_payload()]
        proc.send_signal(signal.SIGTERM)
        out, logged = await asyncio.wait_for(proc.communicate(), timeout=30)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0
    text = (out + logged).decode()
    assert "codec_server_stopped" in text
    assert OLD_KEY not in text and "introduced" not in text
