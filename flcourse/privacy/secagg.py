"""The cryptographic pieces of secure aggregation (Bonawitz et al., CCS 2017): key agreement,
masks and the encryption of shares, all from the ``cryptography`` package, never numpy.

- **Key agreement.** Each client makes two X25519 key pairs a round: ``c`` to encrypt the
  shares it deals, ``s`` for its pairwise masks. Two clients u, v derive the same 32-byte key
  from their own private key and the other's public key, through HKDF-SHA256 with a label
  that keeps the two uses apart: KA(s_u, S_v) = KA(s_v, S_u).
- **Masks.** A 32-byte seed is expanded by AES-256 in counter mode (the keystream of zeros,
  a counter block of zeros: each seed is used once) into d little-endian uint32 words: a mask
  uniform in Z_{2^32}^d. Client u adds PRG(s_uv) for every v > u and subtracts it for every
  v < u, so the pairwise masks cancel in the sum; its self mask PRG(b_u) is removed by the
  server once t survivors reveal their shares of b_u.
- **Shares travel encrypted.** The share of u for v goes through the server under AES-GCM with
  the key KA(c_u, C_v), bound to (round, u, v) as associated data, so the server can neither
  read nor redirect it.

The protocol's rounds are in :mod:`~.secagg_protocol`; see notebook 08.
"""
from __future__ import annotations

import os
import struct

import numpy as np
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .._validation import check_scalar

KEY_BYTES = 32  # an X25519 key, a seed, an AES-256 key
NONCE_BYTES = 12  # AES-GCM's nonce
TAG_BYTES = 16  # AES-GCM's tag
MASK_LABEL, SHARE_LABEL = b"flcourse secagg mask", b"flcourse secagg share"
_RAW = serialization.Encoding.Raw, serialization.PublicFormat.Raw
_PAIR = struct.Struct("<qqq")  # (round, sender, receiver): what a share's ciphertext is bound to


class SecAggCryptoError(ValueError):
    """A key, ciphertext or seed is malformed or does not authenticate."""


def generate_keypair() -> tuple[X25519PrivateKey, bytes]:
    """A fresh X25519 key pair from the operating system's randomness: (private key, 32-byte public key)."""
    private = X25519PrivateKey.generate()
    return private, private.public_key().public_bytes(*_RAW)


def private_key_bytes(private: X25519PrivateKey) -> bytes:
    """The 32 raw bytes of an X25519 private key: what is Shamir-shared."""
    return private.private_bytes_raw()


def private_key_from_bytes(data: bytes) -> X25519PrivateKey:
    """The X25519 private key of 32 raw bytes (a key reconstructed from shares)."""
    if not isinstance(data, (bytes, bytearray)) or len(data) != KEY_BYTES:
        raise SecAggCryptoError(f"The 'data' parameter of private_key_from_bytes must be {KEY_BYTES} bytes. "
                                f"Got {_describe(data)} instead.")
    return X25519PrivateKey.from_private_bytes(bytes(data))


def check_public_key(public: bytes, owner: str = "check_public_key") -> X25519PublicKey:
    """The X25519 public key of 32 raw bytes, refused if it is malformed or of low order.

    A low-order point makes every shared secret all zeros (``cryptography`` raises on it);
    the server refuses such a key when it is advertised, so that one client cannot make every
    other client's key agreement fail.
    """
    if not isinstance(public, (bytes, bytearray)) or len(public) != KEY_BYTES:
        raise SecAggCryptoError(f"The 'public' parameter of {owner} must be {KEY_BYTES} bytes. "
                                f"Got {_describe(public)} instead.")
    key = X25519PublicKey.from_public_bytes(bytes(public))
    try:
        X25519PrivateKey.generate().exchange(key)
    except ValueError:
        raise SecAggCryptoError(f"The 'public' parameter of {owner} is a low-order X25519 point "
                                f"(its shared secrets are all zero). Got {bytes(public).hex()} instead.") from None
    return key


def agree(private: X25519PrivateKey, peer_public: bytes, label: bytes) -> bytes:
    """KA(private, peer): X25519, then HKDF-SHA256 to 32 bytes with ``label`` as its info.

    Symmetric: ``agree(a, B, label) == agree(b, A, label)`` for key pairs (a, A) and (b, B).
    """
    if not isinstance(peer_public, (bytes, bytearray)) or len(peer_public) != KEY_BYTES:
        raise SecAggCryptoError(f"The 'peer_public' parameter of agree must be {KEY_BYTES} bytes. "
                                f"Got {_describe(peer_public)} instead.")
    try:
        shared = private.exchange(X25519PublicKey.from_public_bytes(bytes(peer_public)))
    except ValueError:
        raise SecAggCryptoError(f"The 'peer_public' parameter of agree is a low-order X25519 point. "
                                f"Got {bytes(peer_public).hex()} instead.") from None
    return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=label).derive(shared)


def expand_mask(seed: bytes, d: int) -> np.ndarray:
    """PRG(seed): d words uniform in Z_{2^32}, the AES-256-CTR keystream of ``seed``.

    Parameters
    ----------
    seed : bytes of length 32
    d : int >= 0

    Returns
    -------
    ndarray of shape (d,), dtype uint32
    """
    if not isinstance(seed, (bytes, bytearray)) or len(seed) != KEY_BYTES:
        raise SecAggCryptoError(f"The 'seed' parameter of expand_mask must be {KEY_BYTES} bytes. "
                                f"Got {_describe(seed)} instead.")
    d = check_scalar(d, "d", "expand_mask", int, low=0, closed="left")
    encryptor = Cipher(algorithms.AES(bytes(seed)), modes.CTR(bytes(16))).encryptor()
    return np.frombuffer(encryptor.update(bytes(4 * d)), dtype="<u4").astype(np.uint32)


def pairwise_sign(own: int, other: int) -> int:
    """+1 if client ``own`` adds the mask it shares with ``other`` (other > own), -1 if it subtracts it."""
    if own == other:
        raise ValueError(f"The 'other' parameter of pairwise_sign must differ from 'own'. Got {other} for both.")
    return 1 if other > own else -1


def add_mask(total: np.ndarray, mask: np.ndarray, sign: int) -> None:
    """total += sign * mask, in place, mod 2^32 (uint32 arithmetic wraps)."""
    if sign > 0:
        np.add(total, mask, out=total)
    else:
        np.subtract(total, mask, out=total)


def encrypt_share(key: bytes, plaintext: bytes, server_round: int, sender: int, receiver: int) -> bytes:
    """AES-GCM(key) of ``plaintext`` bound to (round, sender, receiver): nonce, ciphertext, tag."""
    nonce = os.urandom(NONCE_BYTES)
    return nonce + AESGCM(key).encrypt(nonce, plaintext, _PAIR.pack(server_round, sender, receiver))


def decrypt_share(key: bytes, blob: bytes, server_round: int, sender: int, receiver: int) -> bytes:
    """The plaintext of :func:`encrypt_share`'s ``blob``; raises :class:`SecAggCryptoError` if it
    was altered, or was meant for another round, sender or receiver."""
    if len(blob) < NONCE_BYTES + TAG_BYTES:
        raise SecAggCryptoError(f"The 'blob' parameter of decrypt_share must hold at least "
                                f"{NONCE_BYTES + TAG_BYTES} bytes. Got {len(blob)} instead.")
    try:
        return AESGCM(key).decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:],
                                   _PAIR.pack(server_round, sender, receiver))
    except InvalidTag:
        raise SecAggCryptoError(f"the share from client {sender} to client {receiver} (round {server_round}) "
                                f"does not authenticate: altered, or meant for another round or client") from None


def as_wire_bytes(data: bytes) -> np.ndarray:
    """``data`` as a uint8 array: how bytes travel (the wire carries numbers and arrays)."""
    return np.frombuffer(bytes(data), dtype=np.uint8).copy()


def from_wire_bytes(array, length: int | None = None, owner: str = "from_wire_bytes") -> bytes:
    """The bytes of a uint8 array received, checked for its dtype, dimension and length."""
    if not isinstance(array, np.ndarray) or array.dtype != np.uint8 or array.ndim != 1 \
            or (length is not None and len(array) != length):
        expected = f"of length {length}" if length is not None else "1-d"
        raise SecAggCryptoError(f"{owner} expected a uint8 array {expected}. Got {_describe(array)} instead.")
    return array.tobytes()


def _describe(value) -> str:
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape} and dtype {value.dtype}"
    if isinstance(value, (bytes, bytearray)):
        return f"{len(value)} bytes"
    return f"{type(value).__name__}"
