"""A lone short word is heard: the voice detector's second look when its usual rules find no speech at all."""

from __future__ import annotations

import numpy as np

from ingestd.providers.silero import FAINT, SpanRules, spans_from_probabilities

# Silero v6's per-window (32 ms) speech probabilities of two asterisk phone prompts, "hours" and "is"
# (asterisk-core-sounds-en-wav, measured with ingestd.providers.silero.speech_probabilities): the word peaks
# at 0.59 for 64 ms, or never reaches the 0.5 threshold. Through the pipeline both came back empty.
HOURS = [0.03, 0.01, 0.02, 0.03, 0.07, 0.05, 0.04, 0.05, 0.1, 0.09, 0.07, 0.03, 0.03, 0.05, 0.08, 0.23, 0.38]
HOURS += [0.45, 0.59, 0.54, 0.45, 0.34, 0.29, 0.24, 0.12, 0.07, 0.05, 0.04]
IS = [0.06, 0.33, 0.3, 0.4, 0.42, 0.36, 0.39, 0.37, 0.38, 0.39, 0.4, 0.31, 0.29, 0.14, 0.08, 0.06, 0.06, 0.02, 0.02]
SILENCE = [0.01, 0.02, 0.03, 0.02, 0.01] * 6


def test_usual_rules_miss_a_short_faint_word_and_the_second_look_keeps_it() -> None:
    for probs in (HOURS, IS):
        total = len(probs) * 0.032
        assert spans_from_probabilities(np.array(probs), SpanRules(), total) == []
        spans = spans_from_probabilities(np.array(probs), FAINT, total)
        assert len(spans) == 1
        peak = int(np.argmax(probs)) * 0.032
        assert spans[0].start <= peak < spans[0].end


def test_the_second_look_still_hears_nothing_in_silence() -> None:
    assert spans_from_probabilities(np.array(SILENCE), FAINT, len(SILENCE) * 0.032) == []
