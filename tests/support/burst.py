"""Commands written as fast as one writer can, in a thread, while a test does something else."""

from __future__ import annotations

import threading

from services.command.application import TutoringCentres
from services.command.commands.sessions import CancelSession
from tests.builders import plan, register_centre, session_id


class Burst:
    """Schedules and cancels sessions in a thread until stopped. With ``counting_failures``, a
    command that fails (say, refused by a store that was frozen meanwhile) is counted in
    :attr:`failed` and the writer goes on: nothing of a failed command is stored. Without it,
    a failure ends the writer."""

    def __init__(self, centres: TutoringCentres, *, counting_failures: bool = False) -> None:
        self._centres = centres
        self._tutor = register_centre(centres, "alpha")["tutor"]
        self._counting_failures = counting_failures
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._write)
        self.failed = 0

    def _write(self) -> None:
        while not self._stop.is_set():
            try:
                session = session_id(self._centres.handle(self._tutor, plan()).body)
                self._centres.handle(self._tutor, CancelSession(session_id=session, reason="burst"))
            except Exception:
                if not self._counting_failures:
                    raise
                self.failed += 1

    def __enter__(self) -> Burst:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def __exit__(self, *_: object) -> None:
        self.stop()
