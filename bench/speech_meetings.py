"""Scripted two-voice meetings (SYNTHETIC: spoken by espeak-ng) with the action items and events they contain.

Written once and never edited; the structuring rules were revised after their output on these scripts was read
(general fixes: "I'll", "let's", "review" as a noun, evening times), so they are not held-out data.

Each turn is spoken by voice 0 or 1; an action item's ``owner`` is the voice that took it on (who said "I will…",
or who was asked and answered), its ``keys`` the words its description must contain; an event's ``date`` is its
day resolved against ``captured_at``.
"""

from __future__ import annotations

import subprocess
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

VOICES = ("en-us+m3", "en-gb+f3")
GAP_SECONDS = 0.6


@dataclass(frozen=True)
class Meeting:
    name: str
    captured_at: str
    turns: tuple[tuple[int, str], ...]
    actions: tuple[tuple[int, str], ...]  # (owner voice, words the description must contain)
    events: tuple[tuple[str, str], ...]  # (a word of the event, YYYY-MM-DD)


MEETINGS = (
    Meeting(
        "launch-sync",
        "2026-03-02T09:00:00+00:00",  # a Monday
        (
            (0, "Good morning. Let's go over the launch plan for the new billing page."),
            (1, "Sure. The design is finished, but the copy still needs a review."),
            (0, "I will review the copy by Wednesday."),
            (1, "Great. I'll send the final screenshots to the marketing team tomorrow."),
            (0, "The client demo is already booked for Thursday at three."),
            (1, "Okay. Then I will prepare the slides for the demo."),
            (0, "One more thing. Please update the pricing table before the demo."),
            (1, "Sure, I can do that today."),
            (0, "Our next planning meeting is next Monday at ten."),
            (1, "Sounds good. See you then."),
        ),
        (
            (0, "review copy"),
            (1, "send screenshots"),
            (1, "prepare slides"),
            (1, "update pricing table"),
        ),
        (("demo", "2026-03-05"), ("planning", "2026-03-09")),
    ),
    Meeting(
        "family-trip",
        "2026-04-10T18:30:00+00:00",  # a Friday
        (
            (0, "Hi. Did you look at the flights for the trip to Lisbon?"),
            (1, "Yes. There is a good flight on Saturday morning, but the prices go up after the weekend."),
            (0, "Then I will book the flights tonight."),
            (1, "Perfect. I'll ask my sister to feed the cat while we are away."),
            (0, "Don't forget to renew your passport. It expires in May."),
            (1, "Right, I will call the passport office on Monday."),
            (0, "Also, my dentist appointment is on Tuesday at four, so I can't pick up the kids."),
            (1, "No problem. I'll pick up the kids on Tuesday."),
            (0, "Thanks. And we should pay the rent by Monday."),
            (1, "Okay. The farewell dinner for Tom is on Sunday at seven, don't be late."),
        ),
        (
            (0, "book flights"),
            (1, "ask sister cat"),
            (1, "renew passport"),
            (1, "call passport office"),
            (1, "pick kids"),
            (0, "pay rent"),
        ),
        (("dentist", "2026-04-14"), ("dinner", "2026-04-12")),
    ),
    Meeting(
        "migration-one-on-one",
        "2026-05-20T14:00:00+00:00",  # a Wednesday
        (
            (0, "Thanks for joining. How is the migration to the new database going?"),
            (1, "It is mostly done. We moved the orders table last night without any downtime."),
            (0, "Nice work. What is left?"),
            (1, "The reporting jobs still read from the old server. I will switch them over by Friday."),
            (0, "Okay. Can you also write a short runbook for the on-call team?"),
            (1, "Yes, I'll write the runbook next week."),
            (0, "I need to tell finance about the new hosting costs. I will email them tomorrow."),
            (1, "Good idea. Should we set up a review with the security team?"),
            (0, "Yes. The security review is on Monday at eleven. I'll send the invite."),
            (1, "Great. After that we can shut down the old server."),
            (0, "Let's talk again at our one on one meeting next Wednesday."),
        ),
        (
            (1, "switch"),
            (1, "runbook"),
            (0, "email"),
            (0, "send invite"),
        ),
        (("security", "2026-05-25"), ("meeting", "2026-05-27")),
    ),
)


@dataclass(frozen=True)
class Rendered:
    path: Path
    turns: list[tuple[float, float, int, str]]  # start, end, voice, text
    seconds: float


def render(meeting: Meeting, folder: Path) -> Rendered:
    """Speak the meeting with espeak-ng, the two voices taking turns, into ``folder/<name>.wav`` (cached)."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{meeting.name}.wav"
    rate = 22_050
    pieces: list[np.ndarray] = []
    turns: list[tuple[float, float, int, str]] = []
    at = 0.5
    pieces.append(np.zeros(int(0.5 * rate), dtype="<i2"))
    for voice, text in meeting.turns:
        turn = folder / f"{meeting.name}.turn.wav"
        subprocess.run(["espeak-ng", "-v", VOICES[voice], "-s", "165", "-w", str(turn), text], check=True)
        with wave.open(str(turn)) as w:
            rate = w.getframerate()
            samples = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
        turn.unlink()
        turns.append((at, at + len(samples) / rate, voice, text))
        pieces += [samples, np.zeros(int(GAP_SECONDS * rate), dtype="<i2")]
        at += len(samples) / rate + GAP_SECONDS
    if not target.exists():
        with wave.open(str(target), "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(rate)
            out.writeframes(np.concatenate(pieces).tobytes())
    return Rendered(target, turns, at)
