"""Payload encryption: what Temporal stores of a tandem (inputs, state, results, failures) is
AES-GCM ciphertext, so neither the server's database nor anyone reading its history without
our keys learns more than ids and status (search attributes stay plain: the server indexes
them).

``TANDEM_PAYLOAD_KEYS`` holds ``KEY_ID:BASE64_KEY`` pairs, comma-separated, 32-byte keys. The
first one encrypts; every one decrypts, so a key is rotated by putting a new one first and
dropping the old one only once no open history still needs it. Each payload names its key
id in its metadata. Payloads that are not encrypted (histories from before encryption was
turned on) decode unchanged. No I/O here; the keys never appear in an error.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import os
import re
from collections.abc import Mapping, Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import (
    DataConverter,
    DefaultFailureConverterWithEncodedAttributes,
    PayloadCodec,
)

from tandem.settings import Settings

#: Metadata of an encrypted payload: its encoding, and the id of the key that encrypted it.
ENCODING = b"binary/encrypted"
KEY_ID = "encryption-key-id"
KEY_BYTES = 32
NONCE_BYTES = 12
SETTING = "TANDEM_PAYLOAD_KEYS"
_KEY_ID_PATTERN = re.compile(r"[A-Za-z0-9._-]{1,32}")


class PayloadKeyError(ValueError):
    """``TANDEM_PAYLOAD_KEYS`` is malformed; the message names positions and ids, never a
    key (an id is at most 32 characters, so a base64 key put in its place is refused unseen)."""


class PayloadDecodeError(Exception):
    """An encrypted payload cannot be read: its key is not configured, or its bytes were
    changed. The message names the key id only."""


def parse_keys(text: str) -> dict[str, bytes]:
    """``KEY_ID:BASE64_KEY,…`` -> ``{key id: key}`` in the given order (the first encrypts)."""
    keys: dict[str, bytes] = {}
    entries = [e.strip() for e in text.split(",")]
    if not any(entries):
        raise PayloadKeyError(f"{SETTING} is empty: give KEY_ID:BASE64_KEY pairs")
    for n, entry in enumerate(entries, start=1):
        where = f"{SETTING} entry {n}"
        key_id, sep, encoded = entry.partition(":")
        key_id, encoded = key_id.strip(), encoded.strip()
        if not sep or not encoded:
            raise PayloadKeyError(f"{where}: expected KEY_ID:BASE64_KEY")
        if not _KEY_ID_PATTERN.fullmatch(key_id):
            raise PayloadKeyError(
                f"{where}: the key id must be 1 to 32 letters, digits, '.', '_' or '-'"
            )
        try:
            key = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise PayloadKeyError(f"{where} (key id {key_id}): the key is not base64") from None
        if len(key) != KEY_BYTES:
            raise PayloadKeyError(
                f"{where} (key id {key_id}): the key has {len(key)} bytes, needs {KEY_BYTES}"
            )
        if key_id in keys:
            raise PayloadKeyError(f"{where}: key id {key_id} appears twice")
        keys[key_id] = key
    return keys


class EncryptionCodec(PayloadCodec):
    """AES-GCM over the whole serialized payload (metadata and data), with a fresh 96-bit
    nonce each time and the key id as associated data, so a payload whose key id was swapped
    fails like one whose bytes were."""

    def __init__(self, keys: Mapping[str, bytes]) -> None:
        if not keys:
            raise PayloadKeyError(f"{SETTING} holds no key")
        self._ciphers = {key_id: AESGCM(key) for key_id, key in keys.items()}
        self.key_id = next(iter(keys))

    @classmethod
    def from_setting(cls, text: str) -> EncryptionCodec:
        return cls(parse_keys(text))

    @property
    def key_ids(self) -> list[str]:
        """Every id that decrypts, the encrypting one first."""
        return list(self._ciphers)

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.encrypt(p) for p in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.decrypt(p) for p in payloads]

    def encrypt(self, payload: Payload) -> Payload:
        nonce = os.urandom(NONCE_BYTES)
        aad = self.key_id.encode("ascii")
        sealed = self._ciphers[self.key_id].encrypt(nonce, payload.SerializeToString(), aad)
        return Payload(
            metadata={"encoding": ENCODING, KEY_ID: aad},
            data=nonce + sealed,
        )

    def decrypt(self, payload: Payload) -> Payload:
        """The plain payload; one that is not encrypted is returned as it is."""
        if payload.metadata.get("encoding") != ENCODING:
            return payload
        raw_id = payload.metadata.get(KEY_ID, b"")
        key_id = raw_id.decode("ascii", "replace")
        if not _KEY_ID_PATTERN.fullmatch(key_id):
            raise PayloadDecodeError("encrypted payload without a valid key id")
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise PayloadDecodeError(
                f"payload encrypted with key id {key_id}, which {SETTING} does not hold"
            )
        nonce, sealed = payload.data[:NONCE_BYTES], payload.data[NONCE_BYTES:]
        try:
            plain = cipher.decrypt(nonce, sealed, raw_id)
        except (InvalidTag, ValueError):  # ValueError: too short to hold a nonce
            raise PayloadDecodeError(
                f"payload encrypted with key id {key_id} does not decrypt:"
                " it was changed, or the key under that id is not the one that wrote it"
            ) from None
        decoded = Payload()
        decoded.ParseFromString(plain)
        return decoded


def encrypts(settings: Settings) -> bool:
    """Whether payloads are encrypted: ``TANDEM_PAYLOAD_KEYS`` set and not blank (compose
    passes an unset variable on as an empty one)."""
    keys = settings.payload_keys
    return keys is not None and bool(keys.get_secret_value().strip())


def payload_codec(settings: Settings) -> EncryptionCodec | None:
    """The codec ``TANDEM_PAYLOAD_KEYS`` configures; None when unset or blank."""
    if settings.payload_keys is None or not encrypts(settings):
        return None
    return EncryptionCodec.from_setting(settings.payload_keys.get_secret_value())


def data_converter(settings: Settings) -> DataConverter:
    """The converter every client, worker and replayer uses: pydantic JSON, then (with keys)
    AES-GCM, with failure messages and stack traces moved into the encrypted attributes.
    Raises ``PayloadKeyError`` on a malformed setting."""
    codec = payload_codec(settings)
    if codec is None:
        return pydantic_data_converter
    return dataclasses.replace(
        pydantic_data_converter,
        payload_codec=codec,
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )
