"""docs/operations.md, "Backing up and restoring", run for real: the event tables dumped with
``pg_dump`` and restored into an empty database hold the same events under the same
notification ids, and a rebuild from them gives the read models the original had; SQLite's
online backup (``python -m services.ops backup``) likewise. ``python -m services.ops
after-restore`` then numbers new events past what ``TP_EVENTS`` holds and moves the relay's
position to the restored head, and refuses while a relay leads or where it cannot help."""

from __future__ import annotations

import asyncio
import re
import shlex
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nats
import pytest
from eventsourcing.persistence import Notification, Tracking
from nats.aio.client import Client

from services.command.application import TutoringCentres
from services.ops import restore
from services.ops.restore import (
    REFUSED,
    RestoreRefused,
    backup_sqlite,
    run_after_restore,
    run_verify,
)
from services.ops.settings import OpsSettings
from services.ops.verify import Streamed, compare
from services.projections.rebuild import rebuild
from services.relay.__main__ import lease_for
from services.relay.relay import TRACKING_NAME, Relay, message_id
from shared import events
from shared.eventstore import EventStore, EventStoreSettings
from shared.messaging import ensure_streams
from shared.messaging.auth import EVENTS_STREAM
from shared.messaging.settings import StreamSettings
from shared.messaging.stream_messages import NOTIFICATION_ID
from shared.readmodels.projector import apply_all
from shared.readmodels.store import ReadStore, ReadStoreSettings, open_read_store
from shared.settings import load
from tests.builders import plan, register_centre
from tests.integration.streams import read_stream
from tests.support.servers import (
    NatsServer,
    PostgresServer,
    free_port,
    postgres_bin_dir,
    running_nats,
)

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
EVENT_TABLES = ("tutorpulse_events", "tutorpulse_snapshots", "tutorpulse_tracking")


def write_history(env: dict[str, str], relayed_up_to: bool = True) -> list[Notification]:
    """A centre, its people and three sessions; the relay's position recorded at the head."""
    centres = TutoringCentres(load(EventStoreSettings, env))
    try:
        centre = register_centre(centres, "north")
        for hours in (1, 2, 3):
            centres.handle(centre["tutor"], plan(hours_from_now=hours))
        stored = centres.recorder.select_notifications(0, 10_000)
        if relayed_up_to:
            centres.tracking().insert_tracking(Tracking(TRACKING_NAME, stored[-1].id))
        return list(stored)
    finally:
        centres.close()


def stored(env: dict[str, str]) -> list[tuple[Any, ...]]:
    store = EventStore(load(EventStoreSettings, env))
    try:
        return [
            (n.id, n.originator_id, n.originator_version, n.topic, bytes(n.state))
            for n in store.recorder.select_notifications(0, 10_000)
        ]
    finally:
        store.close()


def projected(read_store: ReadStore, notifications: list[Notification]) -> None:
    apply_all(read_store, [(events.decode(n.state), n.id) for n in notifications])


def runbook_command(program: str) -> list[str]:
    """The command line docs/operations.md gives for ``program`` (continuation lines joined,
    a shell substitution as one word)."""
    lines = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8").splitlines()
    for index, line in enumerate(lines):
        if line.strip().startswith(f"{program} "):
            text = line.strip()
            while text.endswith("\\"):
                index += 1
                text = text[:-1] + " " + lines[index].strip()
            return shlex.split(re.sub(r"\$\([^)]*\)", "WHEN", text))
    raise AssertionError(f"docs/operations.md gives no {program} command")


def as_written(program: str, dsn: str, file: Path) -> list[str]:
    """The runbook's ``program`` command, run on this test's database and file."""
    argv = [str(postgres_bin_dir() / program)]
    for argument in runbook_command(program)[1:]:
        if argument.startswith("--dbname="):
            argument = f"--dbname={dsn}"
        elif argument.startswith("--file="):
            argument = f"--file={file}"
        elif argument.endswith(".dump"):
            argument = str(file)
        argv.append(argument)
    return argv


def restore_by_pg_dump(source: PostgresServer, target: PostgresServer, dump: Path) -> None:
    """The runbook's commands: the event tables dumped, restored into an empty database."""
    subprocess.run(as_written("pg_dump", source.dsn(), dump), check=True)
    subprocess.run(as_written("pg_restore", target.dsn(), dump), check=True)


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    with running_nats(tmp_path / "nats") as server:
        yield server


async def stream_events(server: NatsServer, ids: range) -> None:
    """``TP_EVENTS`` holding events under ``ids``, as the relay published them."""
    client: Client = await nats.connect(server.url)
    try:
        js = client.jetstream()
        await ensure_streams(js, StreamSettings())
        for notification_id in ids:
            await js.publish(
                f"tp.evt.north.session.p{notification_id}.SessionScheduled",
                b"{}",
                headers={
                    NOTIFICATION_ID: str(notification_id),
                    "Nats-Msg-Id": message_id(notification_id),
                },
                stream=EVENTS_STREAM,
            )
    finally:
        await client.close()


def ops_settings(server: PostgresServer, nats_server: NatsServer) -> OpsSettings:
    return load(OpsSettings, {**server.env(), **nats_server.env_for("ops")})


def relay_position(env: dict[str, str]) -> int:
    store = EventStore(load(EventStoreSettings, env))
    try:
        return store.tracking().max_tracking_id(TRACKING_NAME) or 0
    finally:
        store.close()


def test_pg_dump_of_the_event_tables_restores_the_events_and_a_rebuild_the_read_models(
    postgres: PostgresServer, tmp_path: Path
) -> None:
    source = postgres.fresh_database("backup_source")
    history = write_history(source.env())
    read_env = {**source.env(), "TUTORPULSE_READ_STORE": "postgres"}
    original = open_read_store(load(ReadStoreSettings, read_env))
    try:
        projected(original, history)
        before = original.dump(original.generation())
    finally:
        original.close()

    target = postgres.fresh_database("backup_target")
    restore_by_pg_dump(source, target, tmp_path / "events.dump")

    assert stored(target.env()) == stored(source.env())
    assert relay_position(target.env()) == history[-1].id
    dumped = runbook_command("pg_dump")
    assert {f"--table={table}" for table in EVENT_TABLES} <= set(dumped)
    # The read models are not in the dump: the migration makes their tables, a rebuild fills them.
    migrated = subprocess.run(
        [sys.executable, "-m", "services.migrate"],
        env={"PATH": "/usr/bin:/bin", **target.env(), "TUTORPULSE_READ_STORE": "postgres"},
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert migrated.returncode == 0, migrated.stderr
    store = EventStore(load(EventStoreSettings, target.env()))
    restored = open_read_store(
        load(ReadStoreSettings, {**target.env(), "TUTORPULSE_READ_STORE": "postgres"})
    )
    try:
        result = rebuild(store, restored, settle_timeout=0)
        assert result.events == len(history)
        assert restored.dump(restored.generation()) == before
        assert before["rm_docs"], "the history made read-model documents"
    finally:
        store.close()
        restored.close()
    # The notification ids' sequence came with the dump: the next event follows the last.
    centres = TutoringCentres(load(EventStoreSettings, target.env()))
    try:
        appended = centres.handle(register_centre(centres, "south")["tutor"], plan())
        assert appended.position is not None
        first = centres.recorder.select_notifications(history[-1].id, 1, inclusive_of_start=False)
        assert first[0].id == history[-1].id + 1
    finally:
        centres.close()


@pytest.mark.asyncio
async def test_after_restore_numbers_new_events_past_the_stream_and_moves_the_relay(
    pg: PostgresServer, nats_server: NatsServer
) -> None:
    history = write_history(pg.env(), relayed_up_to=False)
    head = history[-1].id
    store = EventStore(load(EventStoreSettings, pg.env()))
    try:  # the backup's relay position: half-way
        store.tracking().insert_tracking(Tracking(TRACKING_NAME, head // 2))
    finally:
        store.close()
    # The stream holds everything restored, and five events lost with the restore.
    await stream_events(nats_server, range(1, head + 6))
    settings = load(OpsSettings, {**pg.env(), **nats_server.env_for("ops")})

    done = await _in_thread(run_after_restore, settings)

    assert (done.head, done.streamed, done.next_id_after) == (head, head + 5, head + 5)
    assert (done.relay_was, done.relay_from) == (head // 2, head)
    assert relay_position(pg.env()) == head
    centres = TutoringCentres(load(EventStoreSettings, pg.env()))
    try:
        result = centres.handle(register_centre(centres, "south")["tutor"], plan())
        assert result.position is not None and result.position > head + 5
        first_new = centres.recorder.select_notifications(head, 1, inclusive_of_start=False)
        assert first_new[0].id == head + 6, "no id the stream holds is given again"
    finally:
        centres.close()

    again = await _in_thread(run_after_restore, settings)  # a second run changes nothing
    assert (again.relay_from, again.relay_was) == (head, head)
    assert again.next_id_after > head + 5


@pytest.mark.asyncio
async def test_after_restore_refuses_while_a_relay_leads(
    pg: PostgresServer, nats_server: NatsServer
) -> None:
    write_history(pg.env())
    await stream_events(nats_server, range(1, 3))
    store = EventStore(load(EventStoreSettings, pg.env()))
    lease = lease_for(store)
    try:
        assert lease.try_acquire()
        settings = load(OpsSettings, {**pg.env(), **nats_server.env_for("ops")})
        with pytest.raises(RestoreRefused, match="a relay is running"):
            await _in_thread(run_after_restore, settings)
    finally:
        lease.release()
        store.close()


def test_sqlite_online_backup_restores_the_events_and_a_rebuild_the_read_models(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    live = {"TUTORPULSE_SQLITE_PATH": str(tmp_path / "live" / "events.sqlite")}
    history = write_history(live)
    original = open_read_store(
        load(ReadStoreSettings, {"TUTORPULSE_READ_SQLITE_PATH": str(tmp_path / "live" / "rm")})
    )
    try:
        projected(original, history)
        before = original.dump(original.generation())
    finally:
        original.close()
    backup = tmp_path / "backups" / "events.sqlite"
    env = {"PATH": "/usr/bin:/bin", **live, **nats_server.env_for("ops")}

    made = run_ops(["backup", str(backup)], env)
    assert made.returncode == 0, made.stderr
    assert run_ops(["backup", str(backup)], env).returncode != 0, "never over an existing file"

    restored = {"TUTORPULSE_SQLITE_PATH": str(backup)}
    assert stored(restored) == stored(live)
    store = EventStore(load(EventStoreSettings, restored))
    read_store = open_read_store(
        load(ReadStoreSettings, {"TUTORPULSE_READ_SQLITE_PATH": str(tmp_path / "new" / "rm")})
    )
    try:
        rebuild(store, read_store, settle_timeout=0)
        assert read_store.dump(read_store.generation()) == before
    finally:
        store.close()
        read_store.close()

    # TP_EVENTS holds more than the backup: SQLite cannot number past it, so it is refused.
    asyncio.run(stream_events(nats_server, range(1, history[-1].id + 3)))
    refused = run_ops(["after-restore"], {**env, **restored})
    assert refused.returncode == REFUSED
    assert "delete the stream TP_EVENTS" in refused.stderr


def run_ops(arguments: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "services.ops", *arguments],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


async def _in_thread(function: Any, *arguments: Any) -> Any:
    """``run_after_restore`` runs its own event loop: call it off the test's."""
    return await asyncio.to_thread(function, *arguments)


def append_centre(env: dict[str, str], centre_id: str) -> list[bytes]:
    """A new centre and its people: the events' bytes."""
    centres = TutoringCentres(load(EventStoreSettings, env))
    try:
        head = centres.position
        register_centre(centres, centre_id)
        appended = centres.recorder.select_notifications(head, 1000, inclusive_of_start=False)
        return [bytes(n.state) for n in appended]
    finally:
        centres.close()


async def relay_everything(env: dict[str, str], client: Client) -> None:
    """Run the relay on the store of ``env`` until it has relayed up to the store's head."""
    store = EventStore(load(EventStoreSettings, env))
    relay = Relay(store, store.tracking(), client.jetstream(), lease_for(store), nc=client)
    task = asyncio.create_task(relay.run())
    try:
        for _ in range(400):
            if relay.position >= store.position and relay.position > 0:
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError(f"the relay stopped at {relay.position} of {store.position}")
    finally:
        relay.stop()
        await task
        store.close()


@pytest.mark.asyncio
async def test_new_events_after_a_restore_reach_the_stream_only_after_after_restore(
    postgres: PostgresServer, nats_server: NatsServer, tmp_path: Path
) -> None:
    """The relay on a store restored to an earlier point, whose stream holds the lost events:
    without ``after-restore`` the new events take the lost ones' notification ids and never
    reach the stream (skipped as already streamed, or dropped as repeats); after it they do,
    once each, after everything the stream held."""
    client = await nats.connect(nats_server.url)
    try:
        await ensure_streams(client.jetstream(), StreamSettings())
        live = postgres.fresh_database("restore_live")
        write_history(live.env(), relayed_up_to=False)
        await relay_everything(live.env(), client)
        dump = tmp_path / "events.dump"
        subprocess.run(as_written("pg_dump", live.dsn(), dump), check=True)
        backed_up = relay_position(live.env())
        append_centre(live.env(), "east")  # committed and relayed after the backup: lost
        await relay_everything(live.env(), client)
        held = await read_stream(client.jetstream())
        lost = [event.notification_id for event in held if event.notification_id > backed_up]
        verified = await _in_thread(run_verify, ops_settings(live, nats_server))
        assert verified.consistent and verified.checked == len(held), verified.describe()

        plain = postgres.fresh_database("restore_plain")
        subprocess.run(as_written("pg_restore", plain.dsn(), dump), check=True)
        await relay_everything(plain.env(), client)  # from the backup's position: nothing to do
        lost_new = append_centre(plain.env(), "south")
        await relay_everything(plain.env(), client)
        after_plain = await read_stream(client.jetstream())
        assert after_plain == held, "without after-restore the new events never reach the stream"
        assert not set(lost_new) & {event.data for event in after_plain}
        checked = run_ops(
            ["verify"], {"PATH": "/usr/bin:/bin", **plain.env(), **nats_server.env_for("ops")}
        )
        assert checked.returncode == 1, checked.stdout + checked.stderr
        assert "different bytes" in checked.stdout and "NOT consistent" in checked.stdout

        lined_up = postgres.fresh_database("restore_lined_up")
        subprocess.run(as_written("pg_restore", lined_up.dsn(), dump), check=True)
        settings = load(OpsSettings, {**lined_up.env(), **nats_server.env_for("ops")})
        await _in_thread(run_after_restore, settings)
        new = append_centre(lined_up.env(), "south")
        await relay_everything(lined_up.env(), client)
        streamed = await read_stream(client.jetstream())
        assert streamed[: len(held)] == held
        added = streamed[len(held) :]
        assert [event.data for event in added] == new
        assert min(event.notification_id for event in added) > held[-1].notification_id
        ids = [event.notification_id for event in streamed]
        assert len(ids) == len(set(ids)), "no notification id twice in the stream"
        verified = await _in_thread(run_verify, ops_settings(lined_up, nats_server))
        assert verified.consistent, verified.describe()
        assert verified.not_stored == lost
    finally:
        await client.close()


def test_after_restore_with_no_stream_changes_nothing_and_backup_wants_sqlite(
    tmp_path: Path, nats_server: NatsServer, pg: PostgresServer
) -> None:
    """NATS without ``TP_EVENTS`` (lost with its volumes): the relay keeps its position and
    publishes from it. ``backup`` copies SQLite only, and says what to use on PostgreSQL."""
    restored = {"TUTORPULSE_SQLITE_PATH": str(tmp_path / "events.sqlite")}
    history = write_history(restored)
    env = {"PATH": "/usr/bin:/bin", **restored, **nats_server.env_for("ops")}

    done = run_ops(["after-restore"], env)

    assert done.returncode == 0, done.stderr
    assert "TP_EVENTS ends at 0" in done.stdout
    assert relay_position(restored) == history[-1].id
    on_postgres = run_ops(["backup", str(tmp_path / "copy")], {**env, **pg.env()})
    assert on_postgres.returncode == REFUSED
    assert "pg_dump" in on_postgres.stderr
    assert not (tmp_path / "copy").exists()


def test_sqlite_backup_while_commands_commit_is_a_consistent_prefix(tmp_path: Path) -> None:
    """The online backup taken while another thread keeps committing holds the events up to
    some point, exactly as the live store has them, and nothing after."""
    live = {"TUTORPULSE_SQLITE_PATH": str(tmp_path / "events.sqlite")}
    write_history(live)
    stop = threading.Event()
    committed: list[int] = []

    def keep_committing() -> None:
        centres = TutoringCentres(load(EventStoreSettings, live))
        try:
            while not stop.is_set():
                register_centre(centres, f"c{len(committed)}")
                committed.append(centres.position)
        finally:
            centres.close()

    writer = threading.Thread(target=keep_committing)
    writer.start()
    try:
        while len(committed) < 2 and writer.is_alive():  # committing is under way
            time.sleep(0.01)
        backup_sqlite(Path(live["TUTORPULSE_SQLITE_PATH"]), tmp_path / "copy.sqlite")
        while len(committed) < 4 and writer.is_alive():  # and went on after the copy
            time.sleep(0.01)
    finally:
        stop.set()
        writer.join()
    assert len(committed) >= 4, "the writer stopped"
    copy = stored({"TUTORPULSE_SQLITE_PATH": str(tmp_path / "copy.sqlite")})
    everything = stored(live)
    assert copy == everything[: len(copy)]
    assert len(copy) < len(everything)


def test_after_restore_without_nats_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    restored = {"TUTORPULSE_SQLITE_PATH": str(tmp_path / "events.sqlite")}
    write_history(restored, relayed_up_to=False)
    monkeypatch.setattr(restore, "CONNECT_TIMEOUT", 0.5)
    nowhere = {"TUTORPULSE_NATS_URL": f"nats://127.0.0.1:{free_port()}"}
    settings = load(OpsSettings, {**restored, **nowhere, "TUTORPULSE_NATS_USER": "ops"})
    with pytest.raises(ConnectionError, match="no NATS server answered"):
        run_after_restore(settings)
    assert relay_position(restored) == 0


@pytest.mark.asyncio
async def test_after_restore_on_sqlite_moves_the_relay_when_the_stream_is_not_ahead(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    """A SQLite store restored from its latest backup: the stream ends at its head, so no id
    is in doubt and only the relay's position, as old as the backup's, moves to the head."""
    restored = {"TUTORPULSE_SQLITE_PATH": str(tmp_path / "events.sqlite")}
    head = write_history(restored, relayed_up_to=False)[-1].id
    store = EventStore(load(EventStoreSettings, restored))
    try:
        store.tracking().insert_tracking(Tracking(TRACKING_NAME, 3))
    finally:
        store.close()
    await stream_events(nats_server, range(1, head + 1))
    settings = load(OpsSettings, {**restored, **nats_server.env_for("ops")})

    done = await _in_thread(run_after_restore, settings)

    assert (done.streamed, done.next_id_after, done.relay_was, done.relay_from) == (
        head,
        head,
        3,
        head,
    )
    assert relay_position(restored) == head


def test_verify_names_what_is_missing_repeated_out_of_order_or_different(tmp_path: Path) -> None:
    env = {"TUTORPULSE_SQLITE_PATH": str(tmp_path / "events.sqlite")}
    history = write_history(env)
    good = [Streamed(i + 1, n.id, bytes(n.state)) for i, n in enumerate(history)]
    store = EventStore(load(EventStoreSettings, env))
    try:
        assert compare(store, good).consistent
        assert compare(store, []).head == history[-1].id
        broken = [*good[:2], good[3], good[2], good[3], *good[5:]]  # 4 and 5 swapped, 4 again
        broken[-1] = Streamed(broken[-1].sequence, broken[-1].notification_id, b"{}")
        found = compare(store, broken)
    finally:
        store.close()
    ids = [n.id for n in history]
    assert not found.consistent
    assert found.missing == [ids[4]]
    assert found.repeated == [ids[3]]
    assert found.out_of_order == [ids[2]]  # 3 after 4
    assert found.different == [ids[-1]]
    assert "NOT consistent" in found.describe()
