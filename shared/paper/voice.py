"""Voice comments on marked work: what kind of recording a file is, and how long it lasts.

The kind is told by the file's first bytes (Ogg, WAV, MP4/M4A, MP3; what the client declared
is not trusted), then read by mutagen with that format's reader alone (guessing among all of
them would take stray bytes for MP3 frames). Ogg must carry Opus or Vorbis, MP4 must carry AAC
audio. A recording longer than :data:`VOICE_COMMENT_SECONDS`, empty or unreadable is refused
(422); any other kind of file is refused as 415.
"""

from __future__ import annotations

import io
import math

import mutagen
from mutagen.mp3 import MP3
from mutagen.mp4 import MP4
from mutagen.oggopus import OggOpus
from mutagen.oggvorbis import OggVorbis
from mutagen.wave import WAVE

from shared.events.paper import VOICE_COMMENT_SECONDS
from shared.paper.scans import ScanRejected

FIELD = "file"
"""The form field a voice comment is uploaded in."""
OGG = "audio/ogg"
WAV = "audio/wav"
MP4_AUDIO = "audio/mp4"
MPEG = "audio/mpeg"


def voice_comment(data: bytes, *, max_bytes: int | None = None) -> tuple[str, float]:
    """``(content type, seconds)`` of a voice comment; :class:`ScanRejected` (field ``file``)
    when it is too large (413), not a recording of a kind accepted (415), or unreadable, empty
    or longer than three minutes (422)."""
    if max_bytes is not None and len(data) > max_bytes:
        raise ScanRejected(
            413, f"the recording has {len(data)} bytes; at most {max_bytes} are accepted", FIELD
        )
    kind = _sniff(data)
    if kind is None:
        raise ScanRejected(
            415, "a voice comment is Ogg (Opus or Vorbis), MP4/M4A (AAC), MP3 or WAV", FIELD
        )
    content_type, reader = kind
    try:
        recording = reader(io.BytesIO(data))
    except (mutagen.MutagenError, ValueError, EOFError, OSError, IndexError) as error:
        raise ScanRejected(422, f"the recording cannot be read: {error}", FIELD) from None
    if isinstance(recording, MP4):
        codec = str(getattr(recording.info, "codec", ""))
        if not codec.startswith("mp4a"):
            raise ScanRejected(415, f"an MP4 voice comment is AAC audio, not {codec!r}", FIELD)
    seconds = float(getattr(recording.info, "length", 0.0) or 0.0)
    if not math.isfinite(seconds) or seconds <= 0:
        raise ScanRejected(422, "the recording is empty", FIELD)
    if seconds > VOICE_COMMENT_SECONDS:
        raise ScanRejected(
            422,
            f"the recording lasts {seconds:.0f} s; a voice comment lasts at most "
            f"{VOICE_COMMENT_SECONDS // 60} minutes",
            FIELD,
        )
    return content_type, round(seconds, 3)


Reader = type[OggOpus] | type[OggVorbis] | type[WAVE] | type[MP4] | type[MP3]


def _sniff(data: bytes) -> tuple[str, Reader] | None:
    if data.startswith(b"OggS"):
        head = data[:512]
        if b"OpusHead" in head:
            return OGG, OggOpus
        if b"\x01vorbis" in head:
            return OGG, OggVorbis
        return None
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        return WAV, WAVE
    if len(data) >= 12 and data[4:8] == b"ftyp":
        return MP4_AUDIO, MP4
    if data.startswith(b"ID3") or (len(data) >= 2 and data[0] == 0xFF and data[1] & 0xE0 == 0xE0):
        return MPEG, MP3
    return None
