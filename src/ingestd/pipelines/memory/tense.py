"""The tense a sentence speaks in, for a date written without a direction ("on Saturday", "in June").

"since" means past. Otherwise the tense cue nearest before the date in its sentence decides (else the nearest after
it): a past-tense verb ("went", "moved", "was") means past; a future cue ("will", "'ll", "going to", "next", "can
we", "is on") or a present-tense clause ("I start", "he has", "starting in") means future, as present tense about a
dated event speaks of the future ("I start in April", "the tables come on Wednesday"). With no cue in the sentence
("Thursday!", "Best day ever on Saturday") the message's other sentences decide, and past when they say nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from ingestd.pipelines.memory.day_spans import Choice

_FLAGS = re.IGNORECASE
FUTURE_CUE = re.compile(
    r"\b(?:will|shall|gonna|soon|upcoming|scheduled|let'?s|wanna|see\s+you|coming\s+up|looking\s+forward"
    r"|(?<!was\s)(?<!were\s)going\s+to(?!\s+(?:the|a|an|my|your|his|her|our|their|this|that)\b)"  # not "going to the"
    r"|plan(?:s|ning)?\s+(?:to|on)|can'?t\s+wait|hop(?:e|ing)\s+to|next(?!\s+to\b)|due(?!\s+to\b)"
    r"|(?<!n't\s)(?<!not\s)wants?\s+to|are\s+you\s+free|(?:can|could|shall|should)\s+we|how\s+about"
    r"|would\s+you\s+like|(?:is|are)\s+(?:on|in)|(?:are|am|is)\s+\w+ing)\b"
    r"|(?<=\w)'(?:re|m|s)\s+(?:\w+ing|on|in)\b|\w'll\b|\bwon'?t\b",
    _FLAGS,
)
_NOT_PAST = (  # words ending in -ed that are not past tense, or are adjectives after "I'm"
    "excited|interested|scared|worried|tired|bored|married|engaged|stressed|thrilled|pleased|prepared|supposed|used"
    "|based|need|feed|seed|speed|indeed|proceed|succeed|exceed|breed|weed|hundred|sacred|naked|wicked|beloved"
)
_IRREGULAR_PAST = (
    "went|got|came|took|made|saw|ran|ate|met|left|felt|found|gave|told|said|thought|bought|brought|caught|sold|sent"
    "|spent|built|lost|won|wrote|drove|rode|flew|fell|broke|spoke|woke|began|sang|sat|stood|slept|kept|heard|held|paid"
    "|knew|grew|threw|became|forgot|led|shook|chose|froze|hid|fed|fought|rang|swam|taught|wore"
)
PAST_CUE = re.compile(
    rf"\b(?:(?:was|were|had|did)(?:n'?t)?|been|ago|yesterday|{_IRREGULAR_PAST}|(?!(?:{_NOT_PAST})\b)\w{{2,}}ed)\b"
    r"|\w'(?:ve|d)\b",
    _FLAGS,
)
_NOT_A_VERB = "let|put|set|cut|hit|quit|read|just|also|really|still|never|always|only"  # after "I": tense unknown
_NOT_A_GERUND = r"\w*thing|morning|evening|spring|king|ring|wedding|ceiling|building|meeting|during"
PRESENT_CUE = re.compile(
    rf"\b(?:I|we|you|they|he|she|it)\s+(?!(?:{_NOT_A_VERB}|was|were|had|did|{_IRREGULAR_PAST})\b)(?!\w+ed\b)\w+"
    r"|\b(?:is|are|am|has|have|does|do|can|must|might|needs?|hopefully|probably|maybe|perhaps)\b|(?<=\w)'(?:s|re|m)\b"
    rf"|\b(?!(?:{_NOT_A_GERUND})\b)\w+ing\s+(?:in|on|by)\b",  # "starting in June"
    _FLAGS,
)
_SENTENCE_END = re.compile(r"[.!?;:\n]")
_CUES: tuple[tuple[re.Pattern[str], Choice], ...] = (
    (PAST_CUE, "past"),
    (FUTURE_CUE, "future"),
    (PRESENT_CUE, "future"),
)


@dataclass(frozen=True)
class Context:
    """The message a rule reads: its text and its day ("today")."""

    text: str
    today: date

    def sentence(self, match: re.Match[str]) -> tuple[int, int]:
        left = max(self.text.rfind(c, 0, match.start()) for c in ".!?;:\n") + 1
        right_match = _SENTENCE_END.search(self.text, match.end())
        return left, right_match.start() if right_match else len(self.text)

    def past_sentence(self, match: re.Match[str]) -> bool:
        """Whether the sentence around ``match`` holds a past-tense verb ("went", "moved", "was")."""
        return PAST_CUE.search(self.text, *self.sentence(match)) is not None

    def tense(self, match: re.Match[str]) -> Choice:
        """``past`` or ``future``, by the rules in the module docstring."""
        if self.before(match, 6).endswith("since ") or match.group(0)[:6].lower() == "since ":
            return "past"
        left, right = self.sentence(match)
        before = _nearest(self.text, left, match.start(), last=True)
        if before is not None:
            return before
        after = _nearest(self.text, match.end(), right, last=False)
        if after is not None:
            return after
        return "past" if PAST_CUE.search(self.text) or not FUTURE_CUE.search(self.text) else "future"

    def before(self, match: re.Match[str], chars: int = 12) -> str:
        return self.text[max(0, match.start() - chars) : match.start()].lower()


def _nearest(text: str, start: int, end: int, *, last: bool) -> Choice | None:
    """The tense of the cue in ``text[start:end]`` nearest its end (``last``) or its start; past wins a tie."""
    best: tuple[int, Choice] | None = None
    for pattern, choice in _CUES:
        found = list(pattern.finditer(text, start, end))
        if not found:
            continue
        distance = end - found[-1].end() if last else found[0].start() - start
        if best is None or distance < best[0]:
            best = (distance, choice)
    return None if best is None else best[1]
