"""The key store's settings: the master keys that wrap every person's data key, where wrapping
is done, and how long a process keeps unwrapped keys (see :mod:`shared.privacy`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from shared.settings import setting


@dataclass(frozen=True)
class PrivacySettings:
    master_keys: str | None = setting(
        "TUTORPULSE_PRIVACY_MASTER_KEYS",
        None,
        "the master keys wrapping each person's data key, `id=key` comma-separated (key: 32 "
        "random bytes in base64url; secret `tutorpulse-secrets`): the first wraps new keys, "
        "every one listed unwraps (rotation); required outside development mode",
        secret=True,
    )
    kms: Literal["local"] = setting(
        "TUTORPULSE_PRIVACY_KMS",
        "local",
        "who wraps and unwraps data keys: `local` (AES-256-GCM with the master keys, in "
        "process); see docs/privacy.md for what a KMS adapter implements",
    )
    key_cache_size: int = setting(
        "TUTORPULSE_PRIVACY_KEY_CACHE_SIZE",
        10000,
        "unwrapped data keys a process keeps (least recently used go first)",
        minimum=0,
    )
    key_cache_seconds: float = setting(
        "TUTORPULSE_PRIVACY_KEY_CACHE_SECONDS",
        5.0,
        "seconds a process uses a kept data key before reading its row again: the longest "
        "another replica may still decrypt with a key after it was destroyed",
        minimum=0,
    )
