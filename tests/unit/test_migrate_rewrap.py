"""``python -m services.migrate rewrap``: after a master key rotation every person's data key is
wrapped by the new master key, so the old one can be removed and every sealed text still opens;
without it, removing the old master key would make every text unreadable."""

from __future__ import annotations

from pathlib import Path
from uuid import uuid4

import pytest

from services.migrate.migration import rewrap_keys
from services.migrate.settings import MigrateSettings
from shared.eventstore import EventStoreSettings
from shared.privacy import FieldCipher, PrivacySettings, UnwrapError, new_master_key
from shared.privacy.keys import open_key_store

CENTRE = "main-campus"


def test_a_rotation_is_finished_by_rewrap_and_the_old_master_key_can_go(tmp_path: Path) -> None:
    store = EventStoreSettings(sqlite_path=tmp_path / "events.sqlite")
    old, new = f"old={new_master_key()}", f"new={new_master_key()}"

    def cipher(master_keys: str) -> FieldCipher:
        keys = open_key_store("test", store, PrivacySettings(master_keys), dev_mode=False)
        return FieldCipher(keys)

    before = cipher(old)
    people = [uuid4() for _ in range(3)]
    sealed = [
        before.encrypt(f"Student {i}", centre_id=CENTRE, person_id=p) for i, p in enumerate(people)
    ]
    before.keys.close()

    only_new = cipher(new)
    with pytest.raises(UnwrapError):
        only_new.decrypt(sealed[0], centre_id=CENTRE)
    only_new.keys.close()

    settings = MigrateSettings(event_store=store, privacy=PrivacySettings(f"{new},{old}"))
    assert rewrap_keys(settings) == 3
    assert rewrap_keys(settings) == 0

    after = cipher(new)
    assert [after.decrypt(s, centre_id=CENTRE) for s in sealed] == [
        f"Student {i}" for i in range(3)
    ]
    after.keys.close()
