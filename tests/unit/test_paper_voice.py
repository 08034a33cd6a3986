"""Voice comments: recordings made by the tests (WAV with the standard library; Ogg Opus and
Vorbis pages, MP4 boxes and MP3 frames written out by hand) are told by kind and length;
three minutes is the most."""

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


def ogg(headers: list[bytes], granule: int) -> bytes:
    """An Ogg stream: a page per header packet, then one page of (silent) audio whose granule
    position says how far the stream reaches."""
    pages = []
    packets = [*headers, b"\xf8\xff\xfe" * 40]
    for sequence, packet in enumerate(packets):
        page = OggPage()  # type: ignore[no-untyped-call]
        page.packets = [packet]
        page.serial = 0x5EED
        page.sequence = sequence
        page.position = granule if sequence == len(packets) - 1 else 0
        page.first = sequence == 0
        page.last = sequence == len(packets) - 1
        pages.append(page.write())  # type: ignore[no-untyped-call]
    return b"".join(pages)


def ogg_opus(seconds: float) -> bytes:
    """Ogg Opus: the ID and comment headers; granule positions count 48 kHz samples."""
    pre_skip = 312
    head = b"OpusHead" + struct.pack("<BBHIhB", 1, 1, pre_skip, 48000, 0, 0)
    tags = b"OpusTags" + struct.pack("<I", 4) + b"test" + struct.pack("<I", 0)
    return ogg([head, tags], pre_skip + round(seconds * 48000))


def ogg_vorbis(seconds: float, rate: int = 44100) -> bytes:
    """Ogg Vorbis: the identification and comment headers; granule positions count samples."""
    ident = (
        b"\x01vorbis"
        + struct.pack("<IBI3i", 0, 1, rate, 0, 96000, 0)
        + bytes([0xB8, 0x01])  # block sizes 256 and 2048, framing bit
    )
    comment = b"\x03vorbis" + struct.pack("<I", 4) + b"test" + struct.pack("<I", 0) + b"\x01"
    return ogg([ident, comment], round(seconds * rate))


def _box(kind: bytes, *children: bytes) -> bytes:
    body = b"".join(children)
    return struct.pack(">I", 8 + len(body)) + kind + body


def _full_box(kind: bytes, payload: bytes, *children: bytes) -> bytes:
    return _box(kind, b"\0\0\0\0" + payload, *children)


def m4a(seconds: float, codec: bytes = b"mp4a") -> bytes:
    """An MP4 file with one sound track: its movie and media headers (the length), its sample
    description (AAC LC, or ``codec``) and an empty media data box."""
    scale, duration = 44100, round(seconds * 44100)
    matrix = struct.pack(">9I", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)
    mvhd = _full_box(
        b"mvhd",
        struct.pack(">IIIIIH", 0, 0, scale, duration, 0x10000, 0x100)
        + b"\0" * 10
        + matrix
        + b"\0" * 24
        + struct.pack(">I", 2),
    )
    mdhd = _full_box(b"mdhd", struct.pack(">IIIIHH", 0, 0, scale, duration, 0x55C4, 0))
    hdlr = _full_box(b"hdlr", b"\0" * 4 + b"soun" + b"\0" * 12 + b"Sound\0")
    specific = bytes([5, 2, 0x12, 0x10])  # AudioSpecificConfig: AAC LC, 44.1 kHz, stereo
    decoder = bytes([4, 13 + len(specific), 0x40, 0x15, 0, 0, 0])
    decoder += struct.pack(">II", 128000, 128000) + specific
    esds = _full_box(b"esds", bytes([3, 6 + len(decoder), 0, 1, 0]) + decoder + bytes([6, 1, 2]))
    entry = _box(
        codec,
        b"\0" * 6 + struct.pack(">H", 1) + b"\0" * 8,
        struct.pack(">HHHHI", 2, 16, 0, 0, scale << 16),
        esds,
    )
    stsd = _full_box(b"stsd", struct.pack(">I", 1), entry)
    track = _box(b"trak", _box(b"mdia", mdhd, hdlr, _box(b"minf", _box(b"stbl", stsd))))
    ftyp = _box(b"ftyp", b"M4A " + struct.pack(">I", 0) + b"M4A isom")
    return ftyp + _box(b"moov", mvhd, track) + _box(b"mdat", b"\0" * 100)


def mp3(seconds: float) -> bytes:
    """MPEG-1 Layer III frames of 128 kbit/s at 44.1 kHz (417 bytes, 1152 samples each)."""
    frame = b"\xff\xfb\x90\x00" + b"\x00" * 413
    return frame * round(seconds * 44100 / 1152)


@pytest.mark.parametrize(
    ("make", "content_type"),
    [
        (wav, "audio/wav"),
        (ogg_opus, "audio/ogg"),
        (ogg_vorbis, "audio/ogg"),
        (m4a, "audio/mp4"),
        (mp3, "audio/mpeg"),
    ],
)
def test_a_recording_is_told_by_its_kind_and_length(
    make: Callable[[float], bytes], content_type: str
) -> None:
    kind, seconds = voice_comment(make(10))
    assert kind == content_type
    assert seconds == pytest.approx(10, abs=0.1)


def test_three_minutes_is_accepted_and_three_minutes_one_second_is_refused() -> None:
    assert voice_comment(wav(180))[1] == pytest.approx(180)
    for too_long in (wav(181), ogg_opus(181), ogg_vorbis(181), m4a(181), mp3(181)):
        with pytest.raises(ScanRejected, match="at most 3 minutes") as refused:
            voice_comment(too_long)
        assert refused.value.status == 422 and refused.value.field == "file"


def test_other_kinds_of_file_are_refused_as_unsupported() -> None:
    gif = b"GIF89a" + b"\0" * 100
    vorbisless_ogg = b"OggS" + b"\0" * 200
    video = m4a(10, codec=b"avc1")
    for data in (gif, b"just some text", b"", vorbisless_ogg, b"\x1aE\xdf\xa3webm", video):
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
