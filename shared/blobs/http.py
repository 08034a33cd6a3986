"""The query API's route for the filesystem store's files: ``GET {base}/{key}`` with the signed
``expires`` and ``signature`` of :meth:`FilesystemBlobStore.url`.

No bearer token: the signed URL is the permission (an ``<img src>`` sends no header), given only
to someone allowed to see the file and only for a short time. An unsigned, altered or expired
URL is a 403, a key that holds nothing a 404, a store that cannot be read a 503 with
Retry-After (all ``application/problem+json``). A file is served with its content type, never
sniffed (``X-Content-Type-Options: nosniff``), cached privately until the URL expires at most.

With the S3 store, URLs point at the store itself; this route then answers 404 to everything.
"""

from __future__ import annotations

import math
from typing import Annotated, Any

from litestar import Response, get
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, QueryParameter

from shared.blobs.filesystem import FilesystemBlobStore, UrlRefused
from shared.blobs.settings import BlobSettings
from shared.blobs.store import (
    OCTET_STREAM,
    BlobNotFound,
    BlobStore,
    BlobStoreUnavailable,
    content_type_of,
    parse_key,
)
from shared.http.problems import RETRY_AFTER_SECONDS, problem


def blob_route(store: BlobStore, settings: BlobSettings) -> HTTPRouteHandler:
    """The route handler serving ``store``'s files at ``settings.url_prefix()``."""

    @get(
        f"{settings.url_prefix()}/{{key:path}}",
        sync_to_thread=True,
        summary="A stored file (scan page, marked page, voice comment) by its signed URL",
        description=(
            "Serves a file of the filesystem blob store to whoever holds the short-lived URL "
            "an answer gave (no bearer token: the signature is the permission). 403 when the "
            "URL is unsigned, altered or expired; 404 when no file is stored under the key."
        ),
        tags=["blobs"],
        security=[{}],  # no bearer token: the signature is the permission
        include_in_schema=True,
        responses={
            200: ResponseSpec(
                data_container=bytes,
                media_type=OCTET_STREAM,
                description="The file, with its own content type (image/jpeg, image/png, "
                "audio/ogg, …)",
                generate_examples=False,
            )
        },
        opt={"problems": (403, 404)},
    )
    def serve_blob(
        key: FromPath[str],
        expires: Annotated[str | None, QueryParameter(name="expires", required=False)] = None,
        signature: Annotated[str | None, QueryParameter(name="signature", required=False)] = None,
    ) -> Response[Any]:
        key = key.lstrip("/")
        if not isinstance(store, FilesystemBlobStore):
            return problem(404, "Not found", "files are served by the object store's own URLs")
        try:
            parse_key(key)
            until = store.verify(key, expires, signature)
        except BlobNotFound:
            return problem(404, "Not found", "no stored file has this key")
        except UrlRefused as refused:
            return problem(403, "Forbidden", str(refused))
        try:
            data = store.get(key)
        except BlobNotFound:
            return problem(404, "Not found", "no stored file has this key")
        except BlobStoreUnavailable:
            return problem(
                503,
                "Service unavailable",
                f"the file store cannot be read now; retry in {RETRY_AFTER_SECONDS} s",
                headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
            )
        content_type = content_type_of(key)
        max_age = max(0, min(store.url_seconds, math.floor(until - store.clock())))
        headers = {
            "Cache-Control": f"private, max-age={max_age}",
            "X-Content-Type-Options": "nosniff",
        }
        if content_type == OCTET_STREAM:
            headers["Content-Disposition"] = "attachment"
        return Response(data, media_type=content_type, headers=headers)

    return serve_blob
