"""Sealing what crosses NATS with Vigil's keys, so the broker never holds a template in clear.

Every process of a site holds the site's data keyring (``$VIGIL_HOME/keys/data.key`` or
``VIGIL_KEY``). A message is sealed with AES-256-GCM under a *transport key* derived from
one of those keys (HMAC-SHA256 of the data key and a fixed purpose label), never the data
key itself, so a message key and a stored ciphertext key are separate by construction.

Layout: ``b"VCT1" | key id (8 bytes, the data key's) | nonce (12) | ciphertext + tag``.
The associated data names the channel and the request (for example
``b"gallery:custody:2/4:<request id>:answer"``): a sealed answer cannot be replayed as the
answer to another request, another shard, or as a request. A receiver that does not hold
the key a message names (another site, or a process started before ``vigil keys rotate``
that has not been restarted) gets a :class:`SealError` saying so.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets

import numpy as np
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from vigil.errors import VigilError

MAGIC = b"VCT1"
KID_LEN = 8
NONCE_LEN = 12
PURPOSE = b"vigil-cluster-transport-v1"


class SealError(VigilError):
    """A message could not be opened: not sealed, tampered, or sealed with another key."""


class Sealer:
    """Seals and opens cluster messages with transport keys derived from ``keyring``
    (:class:`vigil.store.crypto.Keyring`, reached as ``vigil.store.keyring``)."""

    def __init__(self, keyring):
        self._keyring = keyring
        self._derived: dict[bytes, AESGCM] = {}

    def _aead(self, kid: bytes) -> AESGCM:
        aead = self._derived.get(kid)
        if aead is None:
            key = self._keyring.keys.get(kid)
            if key is None:
                raise SealError(f"message sealed with key {kid.hex()}, which this process does not hold "
                                "(another site, or restart it after 'vigil keys rotate')")
            aead = AESGCM(hmac.new(key, PURPOSE, hashlib.sha256).digest())
            self._derived[kid] = aead
        return aead

    def seal(self, plaintext: bytes, context: bytes) -> bytes:
        kid = self._keyring.active
        nonce = secrets.token_bytes(NONCE_LEN)
        return MAGIC + kid + nonce + self._aead(kid).encrypt(nonce, plaintext, context)

    def open(self, blob: bytes, context: bytes) -> bytes:
        if len(blob) < len(MAGIC) + KID_LEN + NONCE_LEN + 16 or not blob.startswith(MAGIC):
            raise SealError("not a sealed Vigil cluster message")
        kid = blob[len(MAGIC) : len(MAGIC) + KID_LEN]
        nonce = blob[len(MAGIC) + KID_LEN : len(MAGIC) + KID_LEN + NONCE_LEN]
        try:
            return self._aead(kid).decrypt(nonce, blob[len(MAGIC) + KID_LEN + NONCE_LEN :], context)
        except InvalidTag:
            raise SealError("sealed message failed authentication (tampered, or meant for another "
                            "request or channel)") from None


# -- framing: a JSON header and raw arrays --------------------------------------------------

def pack(header: dict, *arrays: np.ndarray) -> bytes:
    """``len(header) | header JSON | array bytes...``; the header records each array's dtype
    and shape so :func:`unpack` restores them without pickle."""
    arrays = tuple(np.ascontiguousarray(a) for a in arrays)
    meta = dict(header, _arrays=[[a.dtype.str, list(a.shape)] for a in arrays])
    head = json.dumps(meta, separators=(",", ":")).encode()
    return len(head).to_bytes(4, "big") + head + b"".join(a.tobytes() for a in arrays)


def unpack(data: bytes) -> tuple[dict, list[np.ndarray]]:
    try:
        n = int.from_bytes(data[:4], "big")
        header = json.loads(data[4 : 4 + n])
        offset = 4 + n
        arrays = []
        for dtype, shape in header.pop("_arrays"):
            dt = np.dtype(dtype)
            if dt.kind not in "fiu":
                raise ValueError(f"unexpected dtype {dtype}")
            count = int(np.prod(shape)) if shape else 1
            arrays.append(np.frombuffer(data, dt, count, offset).reshape(shape))
            offset += count * dt.itemsize
        if offset != len(data):
            raise ValueError("trailing bytes")
        return header, arrays
    except (ValueError, KeyError, TypeError) as exc:
        raise SealError(f"malformed cluster message: {exc}") from None
