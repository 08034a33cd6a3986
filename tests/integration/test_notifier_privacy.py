"""The notifier over read models and events that hold personal texts sealed (real nats-server,
webhook receiver and SMTP server): what it sends carries them opened, what waits in TP_NOTIFY
only sealed; nothing is sent to a person who was erased, and another erased person's texts read
"[erased]"."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4

import msgspec
import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg
from prometheus_client import REGISTRY

from services.notifier.service import ERASED_RECIPIENT
from shared import events as ev
from shared.eventstore import EventStoreSettings
from shared.notifications import NotificationType
from shared.privacy import ERASED, FieldCipher, KeyStore, key_wrapper, open_key_store
from shared.privacy.fields import seal_event
from shared.privacy.settings import PrivacySettings
from shared.readmodels.documents import CONTACT
from shared.settings import load
from shared.tenancy.demo import DEMO_CENTRE, demo_person
from tests.integration.conftest import NatsAs
from tests.integration.test_notifier import (
    Mailbox,
    Receiver,
    configured_store,
    eventually,
    janes_reminder,
    mailbox,
    receiver,
    relay,
    start_notifier,
)
from tests.readside import demo_events

pytestmark = pytest.mark.integration
__all__ = ["mailbox", "receiver"]  # the fixtures of the notifier's tests, used here too

FEEDBACK = "Lovely working on question 3, Michael"
PRIVACY = PrivacySettings(key_cache_seconds=0)
"""The notifier reads a key (and whether its person was erased) afresh each time: an erasure
in another process is seen by its next delivery."""


class Command:
    """The command service's side: its key store in the event store's database, sealing events
    as it records them, and erasing people."""

    def __init__(self, folder: Path) -> None:
        self.event_store = load(
            EventStoreSettings, {"TUTORPULSE_SQLITE_PATH": str(folder / "events.sqlite")}
        )
        self.keys = open_key_store(
            "command", self.event_store, load(PrivacySettings), dev_mode=False
        )
        self.cipher = FieldCipher(self.keys)

    def sealed(self, event: ev.Event) -> ev.Event:
        return seal_event(event, self.cipher)

    def erase(self, handle: str) -> None:
        self.keys.destroy(
            DEMO_CENTRE,
            demo_person(handle).id,
            erased_by=demo_person("sarah").id,
            reason="the parent asked",
        )

    def notifier_keys(self) -> KeyStore:
        """How the notifier's process opens its own key store."""
        wrapper = key_wrapper(load(PrivacySettings), dev_mode=False)
        return KeyStore(self.event_store, PRIVACY, wrapper)


@pytest.fixture
def command(tmp_path: Path) -> Iterator[Command]:
    command = Command(tmp_path)
    yield command
    command.keys.close()


def michaels_paper_handed_back(version: int) -> ev.PaperHandedBack:
    """Michael's paper work marked with feedback: his parent Jennifer is told, by his name."""
    return ev.PaperHandedBack(
        centre_id=DEMO_CENTRE,
        aggregate_id=uuid4(),
        aggregate_version=version,
        occurred_at=datetime(2026, 4, 5, 10, 0, tzinfo=UTC),
        actor_id=demo_person("john").id,
        actor_role=demo_person("john").role,
        student_id=demo_person("michael").id,
        work_kind=ev.WorkKind.HOMEWORK,
        work_id=uuid4(),
        score=8,
        max_score=10,
        feedback=FEEDBACK,
    )


def erased_deliveries() -> float:
    return sum(
        sample.value
        for metric in REGISTRY.collect()
        if metric.name == "tutorpulse_notifier_deliveries"
        for sample in metric.samples
        if sample.name.endswith("_total") and sample.labels.get("outcome") == ERASED_RECIPIENT
    )


async def test_sent_opened_kept_sealed_and_nothing_sent_to_an_erased_person(
    tmp_path: Path,
    nats_as: NatsAs,
    nc: Client,
    receiver: Receiver,
    mailbox: tuple[Mailbox, int],
    command: Command,
) -> None:
    box, smtp_port = mailbox
    history = [(command.sealed(event), number) for event, number in demo_events()]
    chosen = {"jennifer": NotificationType.PAPER_HANDED_BACK}
    store = configured_store(tmp_path, receiver.url, history, chosen)
    jane, michael = demo_person("jane"), demo_person("michael")
    contact = store.get(CONTACT, str(jane.id))
    assert contact is not None and contact.doc.email.startswith("pd1.")

    waiting: list[bytes] = []  # every delivery as it is put in TP_NOTIFY

    async def kept(message: Msg) -> None:
        waiting.append(message.data)

    watching = await nc.subscribe("tp.notify.>", cb=kept)
    service, running = await start_notifier(
        nats_as, nc, store, smtp_port, command.notifier_keys, PRIVACY
    )
    try:
        await relay(nc, janes_reminder(store), 1_000_000)
        await relay(nc, command.sealed(michaels_paper_handed_back(1)), 1_000_001)
        await eventually(lambda: len(receiver.calls) == 2 and len(box.messages) == 2)
        letters = {letter["To"]: letter for letter in box.messages}
        assert set(letters) == {
            f"{jane.name} <{jane.email}>",
            f"{demo_person('jennifer').name} <{demo_person('jennifer').email}>",
        }
        to_parent = letters[f"{demo_person('jennifer').name} <{demo_person('jennifer').email}>"]
        assert to_parent["Subject"] == f"{michael.name}'s paper work is marked"
        body = to_parent.get_payload(decode=True)
        assert isinstance(body, bytes) and FEEDBACK in body.decode()
        calls = [msgspec.json.decode(call_body) for _, call_body in receiver.calls]
        about_michael = next(c for c in calls if c["notification"]["personId"] != str(jane.id))
        assert about_michael["notification"]["title"] == f"{michael.name}'s paper work is marked"
        assert FEEDBACK in about_michael["notification"]["body"]

        await nc.flush()
        assert len(waiting) == 4, "a webhook call and an e-mail for each"
        for data in waiting:
            delivery = msgspec.json.decode(data)
            if delivery["channel"] == "EMAIL" or delivery["notification"]["sourceEvent"] == (
                "PaperHandedBack"
            ):
                assert b"pd1." in data, "an address, a name or feedback, sealed"
            for plain in (jane.name, jane.email, michael.name, FEEDBACK, "Jennifer Lee"):
                assert plain.encode() not in data, plain

        marked_again = command.sealed(michaels_paper_handed_back(2))  # recorded before...
        command.erase("jane")  # the recipient: nothing more is sent to her
        command.erase("michael")  # whom the parent's notification is about: read as erased
        before = erased_deliveries()
        later = janes_reminder(store)
        later = msgspec.structs.replace(later, aggregate_version=later.aggregate_version + 1)
        await relay(nc, later, 1_000_002)
        await relay(nc, marked_again, 1_000_003)  # ...and delivered after the erasures
        await eventually(lambda: erased_deliveries() == before + 2)
        await eventually(lambda: len(receiver.calls) == 3 and len(box.messages) == 3)
        last = box.messages[-1]
        assert last["To"].startswith(demo_person("jennifer").name)
        assert last["Subject"] == f"{ERASED}'s paper work is marked"
        last_body = last.get_payload(decode=True)
        assert isinstance(last_body, bytes) and FEEDBACK not in last_body.decode()
        assert all(jane.email not in letter["To"] for letter in box.messages[2:])
        assert all(
            msgspec.json.decode(call_body)["notification"]["personId"] != str(jane.id)
            for _, call_body in receiver.calls[2:]
        )
    finally:
        await watching.unsubscribe()
        service.stop()
        await running
