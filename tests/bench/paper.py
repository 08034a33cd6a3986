"""``make bench``, paper work: scans routed per second and upload -> routed latency through a
real command service, beside decoding the same photos alone in the same run.

1. A live session of 5 students with several pieces of work set, its worksheets printed as one
   PDF through the API, and phone photos of every sheet made by ``tests.support.paper_photos``
   (a few distinct photos per sheet: turned, tilted in perspective, blurred, grainy, dim).
2. Baseline: ``prepare_scan`` + ``find_code`` of the same photos in this process, one thread,
   while the service is idle (pages per second).
3. The photos handed in by their students over HTTP (``POST /api/v1/paper/uploads``, a few
   concurrent clients) to ``python -m services.command`` on PostgreSQL with a filesystem blob
   store: each request prepares the page, stores it, reads its QR code and runs HandInPaper, so
   the request's latency is upload -> routed. Every answer must be ROUTED to the student and
   the work the photographed sheet was printed for; a wrong or unroutable answer is counted as
   such, never as throughput.

Runs on its own as ``python -m tests.bench.paper`` (BENCH_PAPER_PHOTOS, BENCH_PAPER_CLIENTS and
BENCH_WORKERS make it smaller or larger).
"""

from __future__ import annotations

import asyncio
import math
import os
import re
import secrets
import shutil
import statistics
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pypdfium2  # type: ignore[import-untyped]
from PIL import Image

from services.command.application import TutoringCentres
from shared.eventstore import EventStoreSettings
from shared.paper.scans import ScanLimits, find_code, prepare_scan
from shared.paper.settings import PaperSettings
from shared.privacy import new_master_key
from shared.settings import load
from tests.builders import Centre, register_centre
from tests.support.paper_photos import phone_photo, rasterise
from tests.support.servers import PostgresServer, free_port

PHOTOS = int(os.environ.get("BENCH_PAPER_PHOTOS", "60"))
CLIENTS = int(os.environ.get("BENCH_PAPER_CLIENTS", "4"))
WORKERS = int(os.environ.get("BENCH_WORKERS", "2"))
STUDENTS = ("ann", "ben", "cal", "dee", "eve")

SHOTS: list[dict[str, Any]] = [
    {"angle": 5, "blur": 0.8, "noise": 6},
    {"turn": 90, "angle": -4, "tilt": 0.1, "light": 0.75, "quality": 75},
    {"turn": 180, "angle": 9, "tilt": 0.05, "blur": 1.0, "noise": 10, "quality": 70},
]
"""The distinct photos taken of each sheet, in turn (a phone held differently each time)."""
WARM_UP: dict[str, Any] = {"angle": -2, "blur": 0.5}
"""Photos handed in before the clock starts, one per client: the workers' first requests."""
ALONE: dict[str, Any] = {"angle": -7, "tilt": 0.08, "noise": 8}
"""Photos handed in one at a time after the load: the latency without queueing."""
ALONE_COUNT = 10


@dataclass(frozen=True)
class Photo:
    data: bytes
    student: str
    student_id: str
    work_id: str


@dataclass
class Uploads:
    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    routed: int = 0
    wrong: list[str] = field(default_factory=list)


def tree_cpu(pid: int) -> float:
    """CPU seconds used so far by a process and every process under it."""
    tick = os.sysconf("SC_CLK_TCK")
    total, pending = 0.0, [pid]
    while pending:
        current = pending.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
            for task in Path(f"/proc/{current}/task").iterdir():
                pending.extend(int(child) for child in (task / "children").read_text().split())
        except (OSError, ValueError):
            continue
    return total


def machine_busy() -> float:
    """Busy CPU seconds of the whole machine so far, every process on it (/proc/stat: user,
    nice, system, irq and softirq; not idle, I/O wait, or time stolen by the hypervisor)."""
    ticks = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:8]]
    return (ticks[0] + ticks[1] + ticks[2] + ticks[5] + ticks[6]) / os.sysconf("SC_CLK_TCK")


def postmaster_pid(pg: PostgresServer) -> int | None:
    if pg.control is None:
        return None
    try:
        return int((pg.control.data / "postmaster.pid").read_text().split("\n", 1)[0])
    except (OSError, ValueError):
        return None


async def _call(
    client: httpx.AsyncClient, path: str, headers: dict[str, str], body: Any = None
) -> httpx.Response:
    response = await client.post(path, json=body, headers=headers)
    if response.status_code >= 300:
        raise RuntimeError(f"{path}: {response.status_code} {response.text}")
    return response


async def print_worksheets(
    client: httpx.AsyncClient, centre: Centre, pieces: int
) -> tuple[bytes, dict[tuple[str, str], str]]:
    """A live session of STUDENTS with ``pieces`` exercises set, and its worksheets as one PDF;
    with the work id of each (student's name, exercise title)."""
    tutor = centre.auth("tutor")
    starts = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)
    session = (
        await _call(
            client,
            "/api/v1/sessions",
            tutor,
            {
                "title": "Ratios on paper",
                "startsAt": starts.isoformat(),
                "endsAt": (starts + timedelta(hours=1)).isoformat(),
                "mode": "ONLINE",
                "meetingLink": "https://meet.example.org/paper",
            },
        )
    ).json()["sessionId"]
    for student in STUDENTS:
        await _call(
            client,
            f"/api/v1/sessions/{session}/enrolments",
            tutor,
            {"studentId": str(centre[student].user_id), "courseId": "maths"},
        )
    await _call(client, f"/api/v1/sessions/{session}/start", tutor)
    names = {str(centre[s].user_id): s.title() for s in STUDENTS}
    work_ids: dict[tuple[str, str], str] = {}
    for piece in range(1, pieces + 1):
        title = f"Ratios, sheet {piece}"
        exercise = (
            await _call(
                client,
                "/api/v1/exercises",
                tutor,
                {
                    "title": title,
                    "courseId": "maths",
                    "exerciseType": "SHORT_ANSWER",
                    "questions": [
                        {"questionId": "q1", "prompt": "Explain 2:3 in your words", "points": 4}
                    ],
                },
            )
        ).json()["exerciseId"]
        work = await _call(
            client, f"/api/v1/sessions/{session}/work", tutor, {"exerciseId": exercise}
        )
        for item in work.json()["work"]:
            work_ids[(names[item["studentId"]], title)] = item["workId"]
    pdf = await _call(client, f"/api/v1/sessions/{session}/worksheets", tutor)
    return pdf.content, work_ids


def who_is_on(pdf: bytes, work_ids: dict[tuple[str, str], str]) -> list[tuple[str, str]]:
    """For each page of the PDF, the (student's name, exercise title) printed on it."""
    document = pypdfium2.PdfDocument(pdf)
    try:
        texts = [document[i].get_textpage().get_text_range() for i in range(len(document))]
    finally:
        document.close()
    owners = []
    for number, text in enumerate(texts):
        found = [
            key
            for key in work_ids
            if re.search(rf"\b{re.escape(key[0])}\b", text) and key[1] in text
        ]
        if len(found) != 1:
            raise RuntimeError(f"page {number} names {found or 'no sheet'} of the work set")
        owners.append(found[0])
    return owners


def photograph(
    pages: list[Image.Image],
    owners: list[tuple[str, str]],
    work_ids: dict[tuple[str, str], str],
    centre: Centre,
    count: int,
) -> tuple[list[Photo], list[Photo], list[Photo]]:
    """``count`` photos, every sheet in turn taken from the next of SHOTS; one warm-up photo
    per client; and ALONE_COUNT photos to hand in one at a time."""

    def take(index: int, shot: dict[str, Any]) -> Photo:
        name, title = owners[index % len(pages)]
        student = name.lower()
        return Photo(
            data=phone_photo(pages[index % len(pages)], **shot),
            student=student,
            student_id=str(centre[student].user_id),
            work_id=work_ids[(name, title)],
        )

    photos = [take(i, SHOTS[(i // len(pages)) % len(SHOTS)]) for i in range(count)]
    warm_up = [take(i, WARM_UP) for i in range(CLIENTS)]
    return photos, warm_up, [take(i, ALONE) for i in range(ALONE_COUNT)]


def decode_alone(photos: list[Photo], limits: ScanLimits) -> tuple[float, float, int]:
    """Seconds, CPU seconds, and codes found for prepare_scan + find_code of every photo."""
    prepare_scan(photos[0].data, limits)  # imports and first-use set-up outside the clock
    found = 0
    cpu, started = time.process_time(), time.perf_counter()
    for photo in photos:
        found += sum(find_code(page) is not None for page in prepare_scan(photo.data, limits))
    return time.perf_counter() - started, time.process_time() - cpu, found


async def hand_in(
    base: str, centre: Centre, photos: list[Photo], result: Uploads, clients: int = CLIENTS
) -> None:
    """Every photo handed in by its student, ``clients`` at a time; each answer checked."""
    queue: asyncio.Queue[Photo] = asyncio.Queue()
    for photo in photos:
        queue.put_nowait(photo)
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:

        async def one(photo: Photo) -> None:
            started = time.perf_counter()
            response = await client.post(
                "/api/v1/paper/uploads",
                files=[("files", ("page.jpg", photo.data, "image/jpeg"))],
                headers=centre.auth(photo.student),
            )
            elapsed = (time.perf_counter() - started) * 1000
            body: dict[str, Any] = response.json() if response.content else {}
            if response.status_code != 201:
                result.wrong.append(f"HTTP {response.status_code} {response.text[:200]}")
            elif body.get("status") != "ROUTED":
                result.wrong.append(f"{body.get('status')}: {body.get('reason')}")
            elif (body.get("studentId"), body.get("workId")) != (photo.student_id, photo.work_id):
                result.wrong.append(
                    f"routed to {body.get('studentId')}/{body.get('workId')}, printed for "
                    f"{photo.student_id}/{photo.work_id}"
                )
            else:
                result.routed += 1
                result.latencies_ms.append(elapsed)

        async def client_loop() -> None:
            while not queue.empty():
                await one(queue.get_nowait())

        started = time.perf_counter()
        await asyncio.wait_for(asyncio.gather(*[client_loop() for _ in range(clients)]), 600)
        result.seconds = time.perf_counter() - started


async def run(pg: PostgresServer, work: Path, start_service: Any, wait_http: Any) -> list[str]:
    """The report's section on paper work."""
    database = pg.fresh_database("bench_paper")
    port = free_port()
    env = {
        **os.environ,
        **database.env(),
        "TUTORPULSE_LOG_LEVEL": "WARNING",
        "TUTORPULSE_COMMAND_PORT": str(port),
        "TUTORPULSE_COMMAND_WORKERS": str(WORKERS),
        "TUTORPULSE_BLOB_STORE": "filesystem",
        "TUTORPULSE_BLOB_DIR": str(work / "paper-blobs"),
        # keys of its own, as in production (development mode would accept public ones)
        "TUTORPULSE_PAPER_KEY": secrets.token_urlsafe(48),
        "TUTORPULSE_BLOB_URL_KEY": secrets.token_urlsafe(48),
    }
    centres = TutoringCentres(load(EventStoreSettings, database.env()))
    centre = register_centre(centres, "paper")
    centres.close()
    limits = ScanLimits.from_settings(load(PaperSettings, env))
    pieces = max(1, math.ceil(PHOTOS / (len(STUDENTS) * len(SHOTS))))
    service = start_service("services.command", env, work / "paper-command.log")
    base = f"http://127.0.0.1:{port}"
    result, unloaded = Uploads(), Uploads()
    try:
        await wait_http(f"{base}/ready")
        async with httpx.AsyncClient(base_url=base, timeout=60) as client:
            pdf, work_ids = await print_worksheets(client, centre, pieces)
        owners = who_is_on(pdf, work_ids)
        pages = rasterise(pdf)
        photos, warm_up, alone = photograph(pages, owners, work_ids, centre, PHOTOS)
        decode_seconds, decode_cpu, decoded = decode_alone(photos, limits)

        await hand_in(base, centre, warm_up, Uploads())
        postmaster = postmaster_pid(pg)
        pids = {"services.command": service.pid}
        if postmaster is not None:
            pids["postgres"] = postmaster
        before = {kind: tree_cpu(pid) for kind, pid in pids.items()}
        clients_cpu = time.process_time()  # this process alone: the service is its child
        busy = machine_busy()
        await hand_in(base, centre, photos, result)
        used = {kind: tree_cpu(pid) - before[kind] for kind, pid in pids.items()}
        used["tests.bench (clients)"] = time.process_time() - clients_cpu
        busy = machine_busy() - busy
        await hand_in(base, centre, alone, unloaded, clients=1)
    finally:
        service.terminate()
        service.wait(timeout=15)
    return report(
        photos=len(photos),
        sheets=len(pages),
        decode_seconds=decode_seconds,
        decode_cpu=decode_cpu,
        decoded=decoded,
        result=result,
        unloaded=unloaded,
        used=used,
        busy=busy,
    )


def report(
    *,
    photos: int,
    sheets: int,
    decode_seconds: float,
    decode_cpu: float,
    decoded: int,
    result: Uploads,
    unloaded: Uploads,
    used: dict[str, float],
    busy: float,
) -> list[str]:
    decode_rate = photos / decode_seconds
    cores = os.cpu_count() or 1
    routed_rate = result.routed / result.seconds if result.seconds else 0.0
    out = [
        "",
        "## Paper work: scans routed",
        "",
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC. {photos} phone photos (1600x2000 JPEG; "
        f"{len(SHOTS)} distinct per sheet: turned, tilted, blurred, grainy, dim) of the "
        f"{sheets} worksheets printed through the API for a live session of "
        f"{len(STUDENTS)} students, handed in by their students to the command service "
        f"(uvicorn x{WORKERS}, PostgreSQL, filesystem blob store) by {CLIENTS} concurrent "
        "clients; decoding alone runs in the load generator's process beforehand.",
        "",
        "| what | count | seconds | per second | vs. decode alone |",
        "|---|---:|---:|---:|---:|",
        f"| decode alone: prepare_scan + find_code of the same photos, one process, one thread "
        f"(baseline; {decoded} codes found) | {photos} | {decode_seconds:.2f} "
        f"| {decode_rate:,.1f} | baseline |",
        f"| scans routed: POST /api/v1/paper/uploads -> 201 ROUTED to the right student and "
        f"work (prepared, stored, decoded, HandInPaper) | {result.routed} | {result.seconds:.2f} "
        f"| {routed_rate:,.1f} | {routed_rate / decode_rate:.2f}x |",
        "",
    ]
    if result.wrong:
        out.append(
            f"NOT ROUTED RIGHT: {len(result.wrong)} of {photos} "
            f"(first: {'; '.join(result.wrong[:3])})."
        )
    else:
        out.append(f"All {photos} uploads came back ROUTED to the student and work printed.")
    if len(result.latencies_ms) >= 2:
        q = statistics.quantiles(result.latencies_ms, n=100, method="inclusive")
        out.append(
            f"Upload -> routed (the request, since routing happens in it), "
            f"{len(result.latencies_ms)} uploads: p50 {q[49]:.0f} ms, p90 {q[89]:.0f} ms, "
            f"p99 {q[98]:.0f} ms, max {max(result.latencies_ms):.0f} ms."
        )
    if unloaded.latencies_ms:
        out.append(
            f"Without queueing ({len(unloaded.latencies_ms)} more photos handed in one at a "
            f"time, {unloaded.routed} routed right): p50 "
            f"{statistics.median(unloaded.latencies_ms):.0f} ms, "
            f"max {max(unloaded.latencies_ms):.0f} ms."
        )
    if unloaded.wrong:
        out.append(f"NOT ROUTED RIGHT one at a time: {'; '.join(unloaded.wrong[:3])}.")
    if result.routed:
        busy_share = min(1.0, busy / result.seconds / cores)
        split = ", ".join(
            f"{kind} {seconds / result.routed * 1000:.0f}" for kind, seconds in sorted(used.items())
        )
        out.append(
            f"CPU: decoding alone {decode_cpu / photos * 1000:.0f} ms per photo; an upload "
            f"{sum(used.values()) / result.routed * 1000:.0f} ms in all (ms per upload by "
            f"process: {split}). The machine's cores were {busy_share:.0%} "
            f"busy during the load, {sum(used.values()) / busy:.0%} of it this benchmark's "
            "(the rest is other work on the machine)."
        )
    return out


async def main() -> None:
    import tempfile

    from tests.bench.__main__ import start_service, wait_http
    from tests.support.servers import running_postgres

    os.environ.setdefault("TUTORPULSE_JWT_SECRET", secrets.token_urlsafe(48))
    os.environ.setdefault("TUTORPULSE_PRIVACY_MASTER_KEYS", f"bench={new_master_key()}")
    os.environ.setdefault("TUTORPULSE_RATE_LIMIT", "1000000/second")
    work = Path(tempfile.mkdtemp(prefix="tp-bench-paper-"))
    try:
        with running_postgres() as pg:
            print("\n".join(await run(pg, work, start_service, wait_http)))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
