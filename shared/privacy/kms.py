"""Who wraps and unwraps the data keys: a :class:`KeyWrapper` (the local one here; a cloud KMS
or Vault's transit engine would be another implementation of the same three members).

A data key is never stored as it is: the key store keeps it wrapped (encrypted) by a master key,
together with the master key's id, so that master keys can be rotated: a new master key is
listed first and wraps every key made from then on, the old ones stay listed to unwrap until
:meth:`shared.privacy.keys.KeyStore.rewrap` has re-wrapped every row with the new one.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Mapping
from typing import Protocol

import structlog
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from shared.privacy.settings import PrivacySettings

log = structlog.get_logger(__name__)

KEY_BYTES = 32
"""AES-256: master keys and data keys alike."""
NONCE_BYTES = 12

DEV_MASTER_KEY_ID = "dev"
DEV_MASTER_KEY = b"tutorpulse-dev-master-key-32byte"
"""Public (it is in the source): used only in development mode when no master key is set."""


class PrivacyConfigurationError(RuntimeError):
    """The key store's settings are unsafe or unusable: the service must not start."""


class UnwrapError(RuntimeError):
    """A wrapped key cannot be unwrapped: its master key is not listed, or the bytes (or the
    row they are bound to) were changed."""


class KeyWrapper(Protocol):
    """Wraps data keys with a master key and unwraps them; ``context`` (the centre and person
    a key belongs to) is bound to the wrapped bytes, so a wrapped key moved to another row does
    not unwrap."""

    @property
    def current_key_id(self) -> str:
        """The master key new keys are wrapped with."""
        ...

    def wrap(self, key: bytes, context: bytes) -> tuple[str, bytes]:
        """``key`` wrapped by the current master key: (that master key's id, the bytes)."""
        ...

    def unwrap(self, master_key_id: str, wrapped: bytes, context: bytes) -> bytes:
        """The data key wrapped by ``master_key_id``; :class:`UnwrapError` if it cannot be."""
        ...


class LocalKms:
    """AES-256-GCM key wrapping in process, with master keys from the settings."""

    def __init__(self, master_keys: Mapping[str, bytes]) -> None:
        if not master_keys:
            raise PrivacyConfigurationError("no master key")
        for key_id, key in master_keys.items():
            if len(key) != KEY_BYTES:
                raise PrivacyConfigurationError(
                    f"master key {key_id!r} has {len(key)} bytes, not {KEY_BYTES}"
                )
        self._keys = {key_id: AESGCM(key) for key_id, key in master_keys.items()}
        self._current = next(iter(master_keys))

    @property
    def current_key_id(self) -> str:
        return self._current

    @property
    def key_ids(self) -> tuple[str, ...]:
        return tuple(self._keys)

    def wrap(self, key: bytes, context: bytes) -> tuple[str, bytes]:
        nonce = os.urandom(NONCE_BYTES)
        return self._current, nonce + self._keys[self._current].encrypt(nonce, key, context)

    def unwrap(self, master_key_id: str, wrapped: bytes, context: bytes) -> bytes:
        aead = self._keys.get(master_key_id)
        if aead is None:
            raise UnwrapError(f"master key {master_key_id!r} is not among the listed ones")
        try:
            return aead.decrypt(wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:], context)
        except InvalidTag:
            raise UnwrapError(
                f"a key wrapped by master key {master_key_id!r} does not unwrap: changed, or "
                "moved from another person's row"
            ) from None


def parse_master_keys(text: str) -> dict[str, bytes]:
    """``id=key,id=key`` (keys in base64url, padding optional) in order; the first is current."""
    keys: dict[str, bytes] = {}
    for item in text.split(","):
        key_id, equals, encoded = item.strip().partition("=")
        key_id = key_id.strip()
        if not equals or not key_id or not key_id.replace("-", "").replace("_", "").isalnum():
            raise PrivacyConfigurationError(
                "TUTORPULSE_PRIVACY_MASTER_KEYS: each item is id=key, the id made of letters, "
                "digits, - and _"
            )
        if key_id in keys:
            raise PrivacyConfigurationError(
                f"TUTORPULSE_PRIVACY_MASTER_KEYS names master key {key_id!r} twice"
            )
        try:
            encoded = encoded.strip()
            key = base64.b64decode(
                encoded + "=" * (-len(encoded) % 4), altchars=b"-_", validate=True
            )
        except (binascii.Error, ValueError):
            raise PrivacyConfigurationError(
                f"TUTORPULSE_PRIVACY_MASTER_KEYS: master key {key_id!r} is not base64url"
            ) from None
        if len(key) != KEY_BYTES:
            raise PrivacyConfigurationError(
                f"TUTORPULSE_PRIVACY_MASTER_KEYS: master key {key_id!r} has {len(key)} bytes, "
                f"not {KEY_BYTES}"
            )
        keys[key_id] = key
    return keys


def new_master_key() -> str:
    """A fresh master key as ``TUTORPULSE_PRIVACY_MASTER_KEYS`` takes it (without its id)."""
    return base64.urlsafe_b64encode(os.urandom(KEY_BYTES)).decode().rstrip("=")


def key_wrapper(settings: PrivacySettings, *, dev_mode: bool) -> KeyWrapper:
    """The wrapper ``settings`` choose; :class:`PrivacyConfigurationError` without a master key
    outside development mode (``dev_mode`` is ``TUTORPULSE_DEV_MODE``), where the public
    development key is used (and a warning logged)."""
    text = (settings.master_keys or "").strip()
    if not text:
        if not dev_mode:
            raise PrivacyConfigurationError(
                "TUTORPULSE_PRIVACY_MASTER_KEYS is required outside development mode: without "
                "it, personal data would be encrypted with a key published in the source"
            )
        log.warning(
            "privacy.development_master_key",
            detail="TUTORPULSE_DEV_MODE: data keys are wrapped with the public development key",
        )
        return LocalKms({DEV_MASTER_KEY_ID: DEV_MASTER_KEY})
    return LocalKms(parse_master_keys(text))
