"""Field encryption: one text of an event, sealed with the data key of the person it is about,
AES-256-GCM, as a string that fits where the plain text was.

    pd1.<person id>.<key id>.<nonce>.<ciphertext and tag>      (base64url without padding)

``pd1`` is the format's version; the person id (their UUID's 16 bytes) and the key id name the
key that opens it, so a sealed text opens wherever it travels (an event, a read-model document,
a rendered notification, an API answer) with nothing but the centre it is read in: see
:mod:`shared.privacy.reveal`. The associated data binds the ciphertext to (format version,
centre, person, key id), so a sealed text of another centre, or one naming another person than
it was sealed for, does not open (:class:`TamperedCiphertext`), nor does one with a byte
changed.

:meth:`FieldCipher.decrypt` returns the text, or :class:`Erased` once the person's key was
destroyed: a reader shows the person as erased, and counts and order stay as they were.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from dataclasses import dataclass
from uuid import UUID

import msgspec
from cryptography.exceptions import InvalidTag

from shared.privacy.keys import DataKey, Erased, KeyStore
from shared.privacy.kms import NONCE_BYTES

VERSION = "pd1"
_SEPARATOR = "."
_TAG_BYTES = 16

TOKEN = re.compile(r"pd1\.[A-Za-z0-9_-]{22}\.[0-9a-f]{12}\.[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]{22,}")
"""A sealed text anywhere in a longer text (a rendered notification, an encoded answer)."""


class CiphertextError(ValueError):
    """A sealed text cannot be opened, for a reason other than erasure."""


class MalformedCiphertext(CiphertextError):
    """The text is not a sealed text of a known version."""


class TamperedCiphertext(CiphertextError):
    """The sealed text was changed, or belongs to another person or centre."""


class MissingKey(CiphertextError):
    """The text names a key the person does not have (nor ever had, by the key store)."""


@dataclass(frozen=True)
class Sealed:
    """A sealed text's parts."""

    version: str
    person_id: UUID
    key_id: str
    nonce: bytes
    ciphertext: bytes
    """The encrypted text and GCM's 16-byte tag."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    data = base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
    if _b64(data) != text:
        # Spare bits set in the last character: one ciphertext has one spelling.
        raise binascii.Error("not canonical base64url")
    return data


def _associated(centre_id: str, person_id: UUID, key_id: str) -> bytes:
    return msgspec.json.encode([VERSION, centre_id, str(person_id), key_id])


def is_sealed(value: str) -> bool:
    """Whether ``value`` is a sealed text (the plain text of an event written before
    encryption is not, unless it is exactly of this shape)."""
    try:
        parse(value)
    except MalformedCiphertext:
        return False
    return True


def parse(value: str) -> Sealed:
    """The parts of a sealed text; :class:`MalformedCiphertext` if it is not one."""
    parts = value.split(_SEPARATOR)
    if len(parts) != 5 or parts[0] != VERSION:
        raise MalformedCiphertext(f"not a sealed text of version {VERSION}")
    _, person_text, key_id, nonce_text, ciphertext_text = parts
    try:
        person = _unb64(person_text)
        nonce, ciphertext = _unb64(nonce_text), _unb64(ciphertext_text)
    except (binascii.Error, ValueError):
        raise MalformedCiphertext("a sealed text's parts are base64url") from None
    if (
        len(person) != 16
        or not re.fullmatch(r"[0-9a-f]{12}", key_id)
        or len(nonce) != NONCE_BYTES
        or len(ciphertext) < _TAG_BYTES
    ):
        raise MalformedCiphertext(
            "a sealed text's person, key id, nonce or ciphertext is cut short"
        )
    return Sealed(VERSION, UUID(bytes=person), key_id, nonce, ciphertext)


def seal(key: DataKey, text: str, *, centre_id: str, person_id: UUID) -> str:
    """``text`` sealed with ``key``, the data key of this person of this centre."""
    nonce = os.urandom(NONCE_BYTES)
    ciphertext = key.aead.encrypt(
        nonce, text.encode("utf-8"), _associated(centre_id, person_id, key.key_id)
    )
    return _SEPARATOR.join(
        (VERSION, _b64(person_id.bytes), key.key_id, _b64(nonce), _b64(ciphertext))
    )


def unseal(key: DataKey, value: str | Sealed, *, centre_id: str) -> str:
    """The text sealed in ``value`` with ``key`` (the key of the person it names);
    :class:`TamperedCiphertext` if it was changed or sealed in another centre,
    :class:`MissingKey` if ``key`` is not the one it names."""
    sealed = parse(value) if isinstance(value, str) else value
    if sealed.key_id != key.key_id:
        raise MissingKey(
            f"the text was sealed with key {sealed.key_id}, person {sealed.person_id}'s key is "
            f"{key.key_id}: it belongs to another person, or was changed"
        )
    try:
        plain = key.aead.decrypt(
            sealed.nonce,
            sealed.ciphertext,
            _associated(centre_id, sealed.person_id, key.key_id),
        )
    except InvalidTag:
        raise TamperedCiphertext(
            f"a text of person {sealed.person_id} does not decrypt in centre {centre_id}: it "
            "was changed, or sealed in another centre"
        ) from None
    return plain.decode("utf-8")


class FieldCipher:
    """Seals and opens personal texts with the key store's keys."""

    def __init__(self, keys: KeyStore) -> None:
        self.keys = keys

    def encrypt(self, text: str, *, centre_id: str, person_id: UUID) -> str:
        """``text`` sealed with the person's key (made if they have none);
        :class:`~shared.privacy.keys.PersonErased` if they were erased."""
        key = self.keys.get_or_create(centre_id, person_id)
        return seal(key, text, centre_id=centre_id, person_id=person_id)

    def decrypt(self, value: str, *, centre_id: str) -> str | Erased:
        """The text, or :class:`Erased` if the key of the person it names was destroyed; a
        :class:`CiphertextError` if ``value`` is not a sealed text of this centre."""
        sealed = parse(value)
        key = self.keys.fetch(centre_id, sealed.person_id)
        if isinstance(key, Erased):
            return key
        if key is None:
            raise MissingKey(f"person {sealed.person_id} of centre {centre_id} has no key")
        return unseal(key, sealed, centre_id=centre_id)

    def person_of(self, value: str) -> UUID:
        """Whom a sealed text is about (:class:`MalformedCiphertext` if it is not one)."""
        return parse(value).person_id
