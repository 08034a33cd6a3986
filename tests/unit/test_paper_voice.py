"""Voice comments: recordings made by the tests (WAV with the standard library, Ogg Opus pages
and MP3 frames written out by hand) are told by kind and length; three minutes is the most."""

from __future__ import annotations

import io
import struct
import wave
from collections.abc import Callable

import pytest
from mutagen.ogg import OggPage

from shared.paper.scans import ScanRejected
from shared.paper.voice import voice_comment


def wav(seconds: float, rate: int = 8000) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as recording:
        recording.setnchannels(1)
        recording.setsampwidth(1)
        recording.setframerate(rate)
        recording.writeframes(b"\x80" * round(seconds * rate))
    return out.getvalue()


def ogg_opus(seconds: float) -> bytes:
    """An Ogg Opus stream: its ID and comment headers, then one page of (silent) audio whose
    granule position says how long the stream is, at Opus's 48 kHz."""
    pre_skip = 312
    head = b"OpusHead" + struct.pack("<BBHIhB", 1, 1, pre_skip, 48000, 0, 0)
    tags = b"OpusTags" + struct.pack("<I", 4) + b"test" + struct.pack("<I", 0)
    pages = []
    for sequence, (packet, position) in enumerate(
        [(head, 0), (tags, 0), (b"\xf8\xff\xfe" * 40, pre_skip + round(seconds * 48000))]
    ):
        page = OggPage()  # type: ignore[no-untyped-call]
        page.packets = [packet]
        page.serial = 0x5EED
        page.sequence = sequence
        page.position = position
        page.first = sequence == 0
        page.last = sequence == 2
        pages.append(page.write())  # type: ignore[no-untyped-call]
    return b"".join(pages)


def mp3(seconds: float) -> bytes:
    """MPEG-1 Layer III frames of 128 kbit/s at 44.1 kHz (417 bytes, 1152 samples each)."""
    frame = b"\xff\xfb\x90\x00" + b"\x00" * 413
    return frame * round(seconds * 44100 / 1152)


@pytest.mark.parametrize(
    ("make", "content_type"),
    [(wav, "audio/wav"), (ogg_opus, "audio/ogg"), (mp3, "audio/mpeg")],
)
def test_a_recording_is_told_by_its_kind_and_length(
    make: Callable[[float], bytes], content_type: str
) -> None:
    kind, seconds = voice_comment(make(10))
    assert kind == content_type
    assert seconds == pytest.approx(10, abs=0.1)


def test_three_minutes_is_accepted_and_three_minutes_one_second_is_refused() -> None:
    assert voice_comment(wav(180))[1] == pytest.approx(180)
    for too_long in (wav(181), ogg_opus(181), mp3(181)):
        with pytest.raises(ScanRejected, match="at most 3 minutes") as refused:
            voice_comment(too_long)
        assert refused.value.status == 422 and refused.value.field == "file"


def test_other_kinds_of_file_are_refused_as_unsupported() -> None:
    gif = b"GIF89a" + b"\0" * 100
    vorbisless_ogg = b"OggS" + b"\0" * 200
    for data in (gif, b"just some text", b"", vorbisless_ogg, b"\x1aE\xdf\xa3webm"):
        with pytest.raises(ScanRejected) as refused:
            voice_comment(data)
        assert refused.value.status == 415


def test_a_broken_or_empty_recording_is_refused_as_unreadable() -> None:
    for data in (
        wav(10)[:30],
        b"RIFF\x10\x00\x00\x00WAVEjunkjunkjunk",
        ogg_opus(10)[:60],
        wav(0),
        b"\x00\x00\x00\x18ftypM4A \x00\x00\x00\x00" + b"\x00" * 50,
    ):
        with pytest.raises(ScanRejected) as refused:
            voice_comment(data)
        assert refused.value.status == 422


def test_a_recording_too_large_is_refused_before_it_is_read() -> None:
    with pytest.raises(ScanRejected) as refused:
        voice_comment(wav(10), max_bytes=1000)
    assert refused.value.status == 413
