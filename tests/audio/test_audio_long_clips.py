"""A clip longer than Whisper's 30 s window is cut at its pauses into pieces that are decoded together
(``whisper.chunks``), and every piece's words come back: no repetition loop carried from one window into the
next, no piece left undecoded."""

from __future__ import annotations

import itertools

import numpy as np
from audio_support import MEMO, pcm16k

from ingestd.providers.whisper import CHUNK_SECONDS, WhisperTranscriber, chunks

RATE = 16000


def test_a_long_clip_is_cut_in_its_pauses() -> None:
    rng = np.random.default_rng(0)
    speech = (rng.normal(0, 3000, 20 * RATE)).astype(np.float32)
    pause = np.zeros(int(0.6 * RATE), np.float32)
    audio = np.concatenate([speech, pause, speech, pause, speech])
    pieces = chunks(audio)
    assert pieces[0][0] == 0.0 and pieces[-1][1] == len(audio) / RATE
    assert all(end - start <= CHUNK_SECONDS for start, end in pieces)
    assert all(a[1] == b[0] for a, b in itertools.pairwise(pieces))  # nothing left out
    for _, cut in pieces[:-1]:  # each cut falls inside a pause
        assert any(20.0 + k * 20.6 <= cut <= 20.6 + k * 20.6 for k in range(2)), cut
    assert chunks(audio[: 10 * RATE]) == [(0.0, 10.0)]


def test_a_long_recording_is_transcribed_to_its_end() -> None:
    memo = pcm16k("voice-memo.flac")
    pause = np.zeros(int(0.8 * RATE), np.int16)
    audio = np.concatenate([np.concatenate([memo, pause]) for _ in range(8)])  # ~70 s: three pieces or more
    transcript = WhisperTranscriber().transcribe_sync(audio.tobytes())
    text = transcript.text.lower()
    assert text.count("dentist") == 8, text
    assert text.count("milk") == 8, text
    words = [w for s in transcript.segments for w in s.words]
    assert len(words) >= 8 * len(MEMO.split()) - 8
    assert words[-1].end > len(audio) / RATE - 3.0
