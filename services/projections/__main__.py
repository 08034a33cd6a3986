"""``python -m services.projections``: the projection service with /health, /ready, /metrics.

``/health`` answers as soon as the process runs; ``/ready`` answers 200 only while NATS and
the read-model store both answer within a second, with the watermark and the number of dead
letters waiting in its body. If NATS or the read store cannot be reached at start, or the
streams do not exist yet (the relay creates them), the service waits for them (logging that
once, and saying so in ``/ready``) instead of exiting; SIGTERM ends any of these waits
(``services.read_side_process``). The blob store (``TUTORPULSE_BLOB_*``, as the command and
query services have it) is where a person's erasure deletes their uploads.

The service runs on uvloop's event loop, as the relay does: at live rates a batch holds one or
two events, and the event loop's own work around it (the fetch, the hop to the applying thread
and back, the acks and the change notices) is a large share of its CPU.
"""

from __future__ import annotations

import uvloop

from services.projections.service import ProjectionService, collect_garbage_less
from services.projections.settings import ProjectionServiceSettings
from services.read_side_process import run_read_side_process
from services.settings import start
from shared.blobs import open_blob_store

SERVICE = "projections"


async def main(settings: ProjectionServiceSettings) -> None:
    collect_garbage_less()
    blobs = open_blob_store(settings.blobs)
    try:
        await run_read_side_process(
            SERVICE,
            settings,
            lambda store, nc: ProjectionService(store, nc, settings.projection, blobs=blobs),
        )
    finally:
        blobs.close()


if __name__ == "__main__":
    uvloop.run(main(start(ProjectionServiceSettings, SERVICE)))
