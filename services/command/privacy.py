"""Personal data on the command side: the process's key store, the sealer that seals each
event's personal texts as it is made, and the revealer that opens them in answers.

One :class:`PersonalData` per command-service process (``services/command/http/app.py``,
the demo seed), given to :class:`~services.command.application.TutoringCentres`: every
command it handles makes its events sealed (:func:`~services.command.domain.aggregate.sealing`),
so aggregates, snapshots, stored events and receipts hold only sealed texts; answers are
opened at the edge with :attr:`PersonalData.revealer`. See docs/privacy.md.
"""

from __future__ import annotations

from typing import TypeVar

from services.command.domain.aggregate import Aggregate, PersonDataWasErased
from shared.events import Event
from shared.eventstore.settings import EventStoreSettings
from shared.privacy import FieldCipher, KeyStore, PersonErased, PrivacySettings, Revealer
from shared.privacy.cipher import CiphertextError, is_sealed
from shared.privacy.erasure import ErasureCheck
from shared.privacy.fields import seal_event
from shared.privacy.keys import open_key_store

E = TypeVar("E", bound=Event)

SERVICE = "command"


class PersonalData:
    """The key store of a command-service process, and what seals and opens with it."""

    def __init__(self, keys: KeyStore, settings: PrivacySettings) -> None:
        self.keys = keys
        self.cipher = FieldCipher(keys)
        self.revealer = Revealer(keys)
        self.erasures = ErasureCheck.of(keys, settings)
        """Refuses the tokens of erased people (the API's check: told at once of an erasure
        made here)."""
        self.key_cache_seconds = settings.key_cache_seconds
        """How long another process may still use a destroyed key (its key cache)."""

    @classmethod
    def open(
        cls,
        event_store: EventStoreSettings,
        settings: PrivacySettings,
        *,
        dev_mode: bool,
        service: str = SERVICE,
    ) -> PersonalData:
        """The key store beside the events (its table made if the settings allow); a
        :class:`~shared.privacy.PrivacyConfigurationError` stops the start (logged for
        ``service``: the command service, or another process recording commands)."""
        return cls(open_key_store(service, event_store, settings, dev_mode=dev_mode), settings)

    def close(self) -> None:
        self.keys.close()

    def seal(self, event: E, aggregate: Aggregate) -> E:
        try:
            return seal_event(event, self.cipher, aggregate)
        except PersonErased:
            raise PersonDataWasErased() from None

    def same(self, recorded: str | None, text: str | None, centre_id: str) -> bool:
        if recorded is None or text is None or not is_sealed(recorded):
            return recorded == text
        try:
            opened = self.cipher.decrypt(recorded, centre_id=centre_id)
        except CiphertextError:
            return False
        return opened == text

    def ready(self) -> None:
        """Reads the key table (raises while it cannot be reached), for ``/ready``."""
        self.keys.probe()
