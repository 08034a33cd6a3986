"""Field encryption: one text field of an event, sealed with the data key of the person it is
about, AES-256-GCM, as a string that fits where the plain text was.

    pd1.<key id>.<nonce>.<ciphertext and tag>        (base64url without padding)

``pd1`` is the format's version; the key id names the person's data key (:class:`DataKey`).
The associated data binds the ciphertext to (format version, centre, person, field name, key
id), so a ciphertext copied into another person's event, or into another field of the same
person, does not decrypt (:class:`TamperedCiphertext`), nor does one with a byte changed.

:meth:`FieldCipher.decrypt` returns the text, or :class:`Erased` once the person's key was
destroyed: a reader shows the person as erased, and counts and order stay as they were.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from uuid import UUID

import msgspec
from cryptography.exceptions import InvalidTag

from shared.privacy.keys import DataKey, Erased, KeyStore
from shared.privacy.kms import NONCE_BYTES

VERSION = "pd1"
_SEPARATOR = "."
_TAG_BYTES = 16


class CiphertextError(ValueError):
    """A sealed field cannot be opened, for a reason other than erasure."""


class MalformedCiphertext(CiphertextError):
    """The text is not a sealed field of a known version."""


class TamperedCiphertext(CiphertextError):
    """The sealed field was changed, or belongs to another person, field or centre."""


class MissingKey(CiphertextError):
    """The field names a key the person does not have (nor ever had, by the key store)."""


@dataclass(frozen=True)
class Sealed:
    """A sealed field's parts."""

    version: str
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


def _associated(centre_id: str, person_id: UUID, field: str, key_id: str) -> bytes:
    return msgspec.json.encode([VERSION, centre_id, str(person_id), field, key_id])


def is_sealed(value: str) -> bool:
    """Whether ``value`` looks like a sealed field (the plain text of an event written before
    encryption does not, unless it is exactly of this shape)."""
    try:
        parse(value)
    except MalformedCiphertext:
        return False
    return True


def parse(value: str) -> Sealed:
    """The parts of a sealed field; :class:`MalformedCiphertext` if it is not one."""
    parts = value.split(_SEPARATOR)
    if len(parts) != 4 or parts[0] != VERSION:
        raise MalformedCiphertext(f"not a sealed field of version {VERSION}")
    _, key_id, nonce_text, ciphertext_text = parts
    try:
        nonce, ciphertext = _unb64(nonce_text), _unb64(ciphertext_text)
    except (binascii.Error, ValueError):
        raise MalformedCiphertext("a sealed field's nonce and ciphertext are base64url") from None
    if not key_id or len(nonce) != NONCE_BYTES or len(ciphertext) < _TAG_BYTES:
        raise MalformedCiphertext("a sealed field's key id, nonce or ciphertext is cut short")
    return Sealed(VERSION, key_id, nonce, ciphertext)


def seal(key: DataKey, text: str, *, centre_id: str, person_id: UUID, field: str) -> str:
    """``text`` sealed with ``key`` for this centre, person and field."""
    nonce = os.urandom(NONCE_BYTES)
    ciphertext = key.aead.encrypt(
        nonce, text.encode("utf-8"), _associated(centre_id, person_id, field, key.key_id)
    )
    return _SEPARATOR.join((VERSION, key.key_id, _b64(nonce), _b64(ciphertext)))


def unseal(
    key: DataKey, value: str | Sealed, *, centre_id: str, person_id: UUID, field: str
) -> str:
    """The text sealed in ``value``; :class:`TamperedCiphertext` if it was changed or sealed
    for another centre, person or field, :class:`MissingKey` if ``key`` is not the one it
    names."""
    sealed = parse(value) if isinstance(value, str) else value
    if sealed.key_id != key.key_id:
        raise MissingKey(
            f"the field was sealed with key {sealed.key_id}, person {person_id}'s key is "
            f"{key.key_id}: it belongs to another person, or was changed"
        )
    try:
        plain = key.aead.decrypt(
            sealed.nonce,
            sealed.ciphertext,
            _associated(centre_id, person_id, field, key.key_id),
        )
    except InvalidTag:
        raise TamperedCiphertext(
            f"the {field!r} field of person {person_id} does not decrypt: it was changed, or "
            "sealed for another person or field"
        ) from None
    return plain.decode("utf-8")


class FieldCipher:
    """Seals and opens the personal fields of events with the key store's keys."""

    def __init__(self, keys: KeyStore) -> None:
        self.keys = keys

    def encrypt(self, text: str, *, centre_id: str, person_id: UUID, field: str) -> str:
        """``text`` sealed with the person's key (made if they have none);
        :class:`~shared.privacy.keys.PersonErased` if they were erased."""
        key = self.keys.get_or_create(centre_id, person_id)
        return seal(key, text, centre_id=centre_id, person_id=person_id, field=field)

    def decrypt(self, value: str, *, centre_id: str, person_id: UUID, field: str) -> str | Erased:
        """The text, or :class:`Erased` if the person's key was destroyed; a
        :class:`CiphertextError` if ``value`` is not a sealed field of this person and field."""
        sealed = parse(value)
        key = self.keys.fetch(centre_id, person_id)
        if isinstance(key, Erased):
            return key
        if key is None:
            raise MissingKey(f"person {person_id} of centre {centre_id} has no key")
        return unseal(key, sealed, centre_id=centre_id, person_id=person_id, field=field)

    def encrypt_optional(
        self, text: str | None, *, centre_id: str, person_id: UUID, field: str
    ) -> str | None:
        """As :meth:`encrypt`; ``None`` stays ``None`` (no key is made for it)."""
        if text is None:
            return None
        return self.encrypt(text, centre_id=centre_id, person_id=person_id, field=field)

    def decrypt_optional(
        self, value: str | None, *, centre_id: str, person_id: UUID, field: str
    ) -> str | Erased | None:
        if value is None:
            return None
        return self.decrypt(value, centre_id=centre_id, person_id=person_id, field=field)

    def encrypt_texts(
        self, texts: Sequence[str], *, centre_id: str, person_id: UUID, field: str
    ) -> tuple[str, ...]:
        """Each text sealed on its own (same field name: the list's order is not bound, as an
        event's list is never reordered without its texts)."""
        if not texts:
            return ()
        key = self.keys.get_or_create(centre_id, person_id)
        return tuple(
            seal(key, text, centre_id=centre_id, person_id=person_id, field=field) for text in texts
        )

    def decrypt_texts(
        self, values: Sequence[str], *, centre_id: str, person_id: UUID, field: str
    ) -> tuple[str, ...] | Erased:
        """The texts, or :class:`Erased` for the whole list (one person, one key)."""
        if not values:
            return ()
        sealed = [parse(value) for value in values]
        key = self.keys.fetch(centre_id, person_id)
        if isinstance(key, Erased):
            return key
        if key is None:
            raise MissingKey(f"person {person_id} of centre {centre_id} has no key")
        return tuple(
            unseal(key, item, centre_id=centre_id, person_id=person_id, field=field)
            for item in sealed
        )

    def encrypt_mapping(
        self, values: Mapping[str, str], *, centre_id: str, person_id: UUID, field: str
    ) -> dict[str, str]:
        """Each value sealed, bound to its key as well (``answers`` by question id: an answer
        moved to another question does not open); the keys stay readable."""
        if not values:
            return {}
        key = self.keys.get_or_create(centre_id, person_id)
        return {
            name: seal(key, text, centre_id=centre_id, person_id=person_id, field=f"{field}.{name}")
            for name, text in values.items()
        }

    def decrypt_mapping(
        self, values: Mapping[str, str], *, centre_id: str, person_id: UUID, field: str
    ) -> dict[str, str] | Erased:
        """The values, or :class:`Erased` for the whole mapping."""
        if not values:
            return {}
        sealed = {name: parse(value) for name, value in values.items()}
        key = self.keys.fetch(centre_id, person_id)
        if isinstance(key, Erased):
            return key
        if key is None:
            raise MissingKey(f"person {person_id} of centre {centre_id} has no key")
        return {
            name: unseal(
                key, item, centre_id=centre_id, person_id=person_id, field=f"{field}.{name}"
            )
            for name, item in sealed.items()
        }
