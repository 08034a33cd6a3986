"""People's log format: colours on a terminal only, so a log written to a file reads clean."""

from __future__ import annotations

import subprocess
import sys

PROGRAM = (
    "import structlog\n"
    "from shared.observability import LogSettings, configure_logging\n"
    "configure_logging('demo', LogSettings(format='console'))\n"
    "structlog.get_logger().warning('session.started', centre='main-campus')\n"
)


def test_console_logs_written_to_a_file_carry_no_colour_codes() -> None:
    written = subprocess.run(
        [sys.executable, "-c", PROGRAM], capture_output=True, text=True, check=True
    ).stdout
    assert "session.started" in written
    assert "centre=main-campus" in written
    assert "\x1b[" not in written
