"""Encryption at rest (AES-256-GCM) for face images, templates and index snapshots.

Keys live in ``$VIGIL_HOME/keys/data.key`` (created with mode 0600 at init) or come from
``VIGIL_KEY`` (base64 of 32 bytes; servers pass it as a secret). The key file holds a
small keyring: every ciphertext names the key it was made with, so ``vigil keys rotate``
can add a key, re-encrypt everything, and only then retire the old one; a crash half way
leaves data readable with one key or the other, never lost.

Ciphertext layout: ``b"VGC1" | key id (8 bytes) | nonce (12) | AES-GCM(ciphertext + tag)``.
The associated data binds each ciphertext to its purpose and row (for example
``b"template:42"``), so a ciphertext copied into another row does not decrypt.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from vigil.errors import VigilError
from vigil.fsutil import atomic_write

MAGIC = b"VGC1"
KID_LEN = 8
NONCE_LEN = 12


class KeyError_(VigilError):
    """Missing, unreadable or wrong key."""


def _kid(key: bytes) -> bytes:
    return hashlib.sha256(b"vigil-kid" + key).digest()[:KID_LEN]


def write_secret_file(path: Path, text: str) -> None:
    """Create or replace a file readable only by its owner (0600), atomically."""
    atomic_write(path, text)


@dataclass
class Keyring:
    keys: dict[bytes, bytes]  # kid -> key
    active: bytes
    path: Path | None = None

    # -- construction -----------------------------------------------------------------
    @classmethod
    def generate(cls, path: Path | None = None) -> "Keyring":
        key = AESGCM.generate_key(bit_length=256)
        ring = cls({_kid(key): key}, _kid(key), path)
        if path:
            ring.save()
        return ring

    @classmethod
    def from_env_value(cls, value: str) -> "Keyring":
        keys = {}
        active = None
        for part in value.split(","):
            try:
                key = base64.b64decode(part.strip(), validate=True)
            except ValueError:
                raise KeyError_("VIGIL_KEY is not valid base64") from None
            if len(key) != 32:
                raise KeyError_("VIGIL_KEY must hold 32-byte keys (base64), the first one active")
            keys[_kid(key)] = key
            active = active or _kid(key)
        return cls(keys, active)

    @classmethod
    def load(cls, path: Path) -> "Keyring":
        try:
            data = json.loads(path.read_text())
            keys = {bytes.fromhex(k): base64.b64decode(v) for k, v in data["keys"].items()}
            return cls(keys, bytes.fromhex(data["active"]), path)
        except FileNotFoundError:
            raise KeyError_(f"key file {path} not found: run 'vigil init' or set VIGIL_KEY") from None
        except (ValueError, KeyError, TypeError):
            raise KeyError_(f"key file {path} is unreadable or corrupt") from None

    def save(self) -> None:
        if not self.path:
            raise KeyError_("this keyring came from the environment; rotate it where it is kept")
        data = {"active": self.active.hex(), "keys": {k.hex(): base64.b64encode(v).decode() for k, v in self.keys.items()}}
        write_secret_file(self.path, json.dumps(data))

    # -- use ----------------------------------------------------------------------------
    def encrypt(self, plaintext: bytes, context: bytes) -> bytes:
        nonce = secrets.token_bytes(NONCE_LEN)
        sealed = AESGCM(self.keys[self.active]).encrypt(nonce, plaintext, context)
        return MAGIC + self.active + nonce + sealed

    def decrypt(self, blob: bytes, context: bytes) -> bytes:
        if len(blob) < len(MAGIC) + KID_LEN + NONCE_LEN + 16 or not blob.startswith(MAGIC):
            raise KeyError_("not a Vigil ciphertext (wrong format or truncated)")
        kid = blob[4 : 4 + KID_LEN]
        nonce = blob[4 + KID_LEN : 4 + KID_LEN + NONCE_LEN]
        key = self.keys.get(kid)
        if key is None:
            raise KeyError_(f"data encrypted with key {kid.hex()} which this keyring does not hold")
        try:
            return AESGCM(key).decrypt(nonce, blob[4 + KID_LEN + NONCE_LEN :], context)
        except InvalidTag:
            raise KeyError_("ciphertext failed authentication (tampered, or used in the wrong place)") from None

    def key_id_of(self, blob: bytes) -> bytes:
        return blob[4 : 4 + KID_LEN]

    def needs_rotation(self, blob: bytes) -> bool:
        return self.key_id_of(blob) != self.active

    def add_key(self) -> bytes:
        key = AESGCM.generate_key(bit_length=256)
        kid = _kid(key)
        self.keys[kid] = key
        self.active = kid
        return kid

    def retire_all_but_active(self) -> int:
        old = [k for k in self.keys if k != self.active]
        for k in old:
            del self.keys[k]
        return len(old)

    def content_key(self, image_bytes: bytes) -> str:
        """Keyed hash of content, the idempotency key of enrolment. Without the key it cannot
        be used to test whether a known photo is held. Derived from the active key, so
        ``vigil keys rotate`` recomputes it while it re-encrypts (it has the plaintext then)."""
        sub = hmac.new(self.keys[self.active], b"vigil-content-hash", hashlib.sha256).digest()
        return hmac.new(sub, image_bytes, hashlib.sha256).hexdigest()


def load_keyring(home: Path, env_value: str | None) -> Keyring:
    if env_value:
        return Keyring.from_env_value(env_value)
    return Keyring.load(home / "keys" / "data.key")
