"""Encrypted workflow payloads: AES-GCM with key ids, on every client and worker when a key is set.

Workflow inputs, signals, activity arguments and results carry responders' emails and phones and
chat text; with `WARROOM_PAYLOAD_KEY` set they reach the Temporal server only as ciphertext.

Key format (`WARROOM_PAYLOAD_KEY`): comma-separated `<key id>:<base64 key>` entries, 16, 24 or 32
bytes each (AES-128/192/256), e.g. `2025b:q0ty…=,2025a:Zm9v…=`. The **first** key encrypts, every
listed key decrypts, so a rotation is: put the new key first (deploy everywhere), and drop an old
key only once no open history still holds payloads it encrypted. A bare `<base64 key>` gets the
key id `k<first 8 hex digits of its SHA-256>`. New key: `openssl rand -base64 32`.

Each encrypted payload is `nonce (12 bytes) || AES-GCM(ciphertext + tag)` of the serialized original
payload, with metadata `encoding: binary/encrypted` and `encryption-key-id: <kid>` (the layout of
Temporal's encryption samples). Payloads without that encoding pass through `decode` unchanged, so
histories written before the key was set stay readable. Failure messages and stack traces are
encoded too (they may quote an email), via `DefaultFailureConverterWithEncodedAttributes`.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import os
import re
from collections.abc import Sequence
from functools import lru_cache

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter, DefaultFailureConverterWithEncodedAttributes, PayloadCodec

from warroom.settings import Settings

ENCODING = b"binary/encrypted"
KEY_ID = "encryption-key-id"
NONCE_BYTES = 12
_KID = re.compile(r"[A-Za-z0-9_.-]{1,64}")


class PayloadKeyError(ValueError):
    """WARROOM_PAYLOAD_KEY is malformed, or a payload needs a key that is not configured."""


@dataclasses.dataclass(frozen=True)
class KeyRing:
    """Key ids and their AES-GCM ciphers; the first one encrypts."""

    ids: tuple[str, ...]
    _ciphers: dict[str, AESGCM] = dataclasses.field(repr=False)

    @classmethod
    def parse(cls, spec: str) -> KeyRing:
        ciphers: dict[str, AESGCM] = {}
        ids: list[str] = []
        for n, entry in enumerate(e.strip() for e in spec.split(",")):
            if not entry:
                continue
            kid, sep, material = entry.rpartition(":")
            try:
                std = material.replace("-", "+").replace("_", "/")  # standard or URL-safe alphabet
                key = base64.b64decode(std + "=" * (-len(std) % 4), validate=True)
            except (binascii.Error, ValueError):
                raise PayloadKeyError(f"WARROOM_PAYLOAD_KEY entry {n + 1} is not base64 key material") from None
            if len(key) not in (16, 24, 32):
                raise PayloadKeyError(
                    f"WARROOM_PAYLOAD_KEY entry {n + 1} is {len(key)} bytes; AES-GCM needs 16, 24 or 32 "
                    "(make one with `openssl rand -base64 32`)"
                )
            kid = kid if sep else "k" + hashlib.sha256(key).hexdigest()[:8]
            if not _KID.fullmatch(kid):
                raise PayloadKeyError(
                    f"WARROOM_PAYLOAD_KEY entry {n + 1}: key id {kid!r} is not [A-Za-z0-9_.-]{{1,64}}"
                )
            if kid in ciphers:
                raise PayloadKeyError(f"WARROOM_PAYLOAD_KEY lists key id {kid!r} twice")
            ciphers[kid] = AESGCM(key)
            ids.append(kid)
        if not ids:
            raise PayloadKeyError("WARROOM_PAYLOAD_KEY is set but holds no key")
        return cls(tuple(ids), ciphers)

    @property
    def current(self) -> str:
        return self.ids[0]

    def encrypt(self, plaintext: bytes) -> tuple[str, bytes]:
        nonce = os.urandom(NONCE_BYTES)
        return self.current, nonce + self._ciphers[self.current].encrypt(nonce, plaintext, None)

    def decrypt(self, kid: str, data: bytes) -> bytes:
        cipher = self._ciphers.get(kid)
        if cipher is None:
            raise PayloadKeyError(
                f"payload was encrypted with key id {kid!r}, which WARROOM_PAYLOAD_KEY does not list "
                f"(it lists {', '.join(self.ids)})"
            )
        try:
            return cipher.decrypt(data[:NONCE_BYTES], data[NONCE_BYTES:], None)
        except InvalidTag:
            raise PayloadKeyError(
                f"payload does not decrypt with key {kid!r}: wrong key material or corrupted"
            ) from None


class EncryptionCodec(PayloadCodec):
    """Temporal payload codec: encrypt with the current key, decrypt with whichever key id a payload names."""

    def __init__(self, keys: KeyRing) -> None:
        self.keys = keys

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.encrypt(p) for p in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.decrypt(p) for p in payloads]

    def encrypt(self, payload: Payload) -> Payload:
        kid, data = self.keys.encrypt(payload.SerializeToString())
        return Payload(metadata={"encoding": ENCODING, KEY_ID: kid.encode()}, data=data)

    def decrypt(self, payload: Payload) -> Payload:
        if payload.metadata.get("encoding") != ENCODING:
            return payload  # written before encryption was switched on, or not ours to decode
        kid = payload.metadata.get(KEY_ID, b"").decode()
        original = Payload()
        original.ParseFromString(self.keys.decrypt(kid, payload.data))
        return original


def payload_codec(settings: Settings) -> EncryptionCodec | None:
    """The codec for this deployment's WARROOM_PAYLOAD_KEY, or None when payloads stay plain."""
    spec = settings.payload_key.get_secret_value().strip()
    return _codec(spec) if spec else None


@lru_cache(maxsize=8)
def _codec(spec: str) -> EncryptionCodec:
    return EncryptionCodec(KeyRing.parse(spec))


def data_converter(settings: Settings) -> DataConverter:
    """The data converter every War Room client and worker must share: pydantic JSON, encrypted
    when WARROOM_PAYLOAD_KEY is set. Replaying recorded histories needs the same converter."""
    codec = payload_codec(settings)
    if codec is None:
        return pydantic_data_converter
    return dataclasses.replace(
        pydantic_data_converter,
        payload_codec=codec,
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )
