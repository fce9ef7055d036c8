"""Real human speech with reference transcripts, from public packages, fetched once into ``bench/cache/``.

| category | package (registry) | what |
|---|---|---|
| prompts | Debian ``asterisk-core-sounds-en-wav`` + ``-en`` (text) | phone prompts, one voice, 8 kHz; CC-BY-SA-3.0 |
| audiobook | PyPI ``pocketsphinx`` 5.1.1 sdist, ``test/data`` | five LibriVox clips, "go forward ten meters" |
| call | PyPI ``pyannote-audio`` 4.0.7 wheel, ``sample/`` | a 30 s two-speaker phone call, RTTM + per-turn transcript |
| alsa | Debian ``alsa-utils`` | "front left", … (the file name is the text) |

Nothing is committed: the audio stays in the ignored cache folder.
"""

from __future__ import annotations

import gzip
import subprocess
import sys
import tarfile
import wave
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

CACHE = Path(__file__).resolve().parent / "cache"
ASTERISK = ("asterisk-core-sounds-en-wav", "asterisk-core-sounds-en")
POCKETSPHINX = "pocketsphinx==5.1.1"
PYANNOTE = "pyannote-audio==4.0.7"


@dataclass(frozen=True)
class Clip:
    category: str
    path: Path
    text: str
    turns: list[tuple[float, float, str, str]] = field(default_factory=list)  # start, end, speaker, text


def _run(cmd: list[str], cwd: Path) -> None:
    subprocess.run(cmd, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _debs(names: tuple[str, ...]) -> Path:
    folder = CACHE / "debian"
    root = folder / "root"
    if not all(any(folder.glob(f"{n}_*.deb")) for n in names):
        folder.mkdir(parents=True, exist_ok=True)
        _run(["apt-get", "download", *names], folder)
    for deb in folder.glob("*.deb"):
        marker = folder / f".{deb.name}.unpacked"
        if not marker.exists():
            _run(["dpkg-deb", "-x", str(deb), str(root)], folder)
            marker.touch()
    return root


def _pip_download(spec: str, *, sdist: bool) -> Path:
    folder = CACHE / "pypi"
    folder.mkdir(parents=True, exist_ok=True)
    name = spec.split("==")[0]
    found = [p for p in folder.iterdir() if p.name.lower().replace("_", "-").startswith(name)]
    if not found:
        extra = ["--no-binary", name] if sdist else ["--only-binary", ":all:"]
        _run([sys.executable, "-m", "pip", "download", "--no-deps", *extra, "-d", str(folder), spec], folder)
        found = [p for p in folder.iterdir() if p.name.lower().replace("_", "-").startswith(name)]
    return found[0]


def prompts(limit: int) -> list[Clip]:
    """Every n-th asterisk prompt (sorted by name) with a spoken transcript, ``limit`` of them."""
    root = _debs(ASTERISK)
    text_file = root / "usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz"
    sounds = next((root / "usr/share/asterisk/sounds").glob("en*"))
    clips = []
    for line in gzip.open(text_file, "rt", encoding="utf-8", errors="replace"):
        name, sep, text = line.partition(":")
        path = sounds / f"{name.strip()}.wav"
        if sep and text.strip() and "[" not in text and path.exists():
            clips.append(Clip("prompts", path, text.strip()))
    clips.sort(key=lambda c: c.path.name)
    step = max(1, len(clips) // max(limit, 1))
    return clips[::step][:limit]


def audiobook() -> list[Clip]:
    """The LibriVox clips and "go forward ten meters" of pocketsphinx's test data."""
    archive = _pip_download(POCKETSPHINX, sdist=True)
    root = CACHE / "pocketsphinx"
    if not root.exists():
        with tarfile.open(archive) as tar:
            members = [m for m in tar.getmembers() if "/test/data/" in m.name]
            tar.extractall(root, members=members, filter="data")
    data = next(root.glob("*/test/data"))
    clips = [Clip("audiobook", wav, wav.with_suffix(".txt").read_text().strip()) for wav in data.glob("librivox/*.wav")]
    raw = data / "goforward.raw"
    wav_path = root / "goforward.wav"
    if not wav_path.exists():
        with wave.open(str(wav_path), "wb") as out:  # headerless 16 kHz s16le, wrapped so any decoder reads it
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(16_000)
            out.writeframes(raw.read_bytes())
    return sorted([*clips, Clip("audiobook", wav_path, "go forward ten meters")], key=lambda c: c.path.name)


def call() -> list[Clip]:
    """pyannote-audio's two-speaker phone call, with who said what when (its STM transcript)."""
    wheel = _pip_download(PYANNOTE, sdist=False)
    root = CACHE / "pyannote"
    if not root.exists():
        with zipfile.ZipFile(wheel) as zf:
            for name in zf.namelist():
                if "/sample/sample." in name:
                    (root / Path(name).name).parent.mkdir(parents=True, exist_ok=True)
                    (root / Path(name).name).write_bytes(zf.read(name))
    turns = []
    for line in (root / "sample.stm").read_text().splitlines():
        parts = line.split(maxsplit=5)
        turns.append((float(parts[3]), float(parts[4]), parts[2], parts[5]))
    return [Clip("call", root / "sample.wav", " ".join(t[3] for t in turns), turns)]


def rttm(path: Path) -> list[tuple[float, float, str]]:
    """Who spoke when: (start, end, speaker) rows of an RTTM file."""
    rows = []
    for line in path.read_text().splitlines():
        parts = line.split()
        rows.append((float(parts[3]), float(parts[3]) + float(parts[4]), parts[7]))
    return rows


def alsa() -> list[Clip]:
    """alsa-utils' channel names ("Front_Left.wav": "front left"); its noise file has no words."""
    sounds = _debs(("alsa-utils",)) / "usr/share/sounds/alsa"
    return [
        Clip("alsa", wav, wav.stem.replace("_", " ").lower())
        for wav in sorted(sounds.glob("*.wav"))
        if wav.stem != "Noise"
    ]


def real_speech(prompt_limit: int) -> list[Clip]:
    """Every real-speech clip, by category."""
    return [*prompts(prompt_limit), *audiobook(), *call(), *alsa()]
