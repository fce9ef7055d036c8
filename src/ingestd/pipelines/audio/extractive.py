"""The offline analysis of a conversation: deterministic and extractive, labelled ``extractive-offline``.

No small model that ships in a package writes a useful summary (see shared/research/offline-models.md), so the
offline default does not pretend to: the title is the most central of the opening sentences (greetings and
thanks skipped) cut at a clause boundary, the overview the highest-scoring sentences (by the frequency of their
content words), action items are sentences that commit someone to something or ask for it ("Maria will
send...", "Please update...", "Can you write...?"), calendar events are sentences that name a meeting-like
thing and a day, folders are chosen by the words they share with the transcript, and a conversation with too
few words is flagged as chatter to discard. Dates are resolved against the time the conversation started when
it is known (``captured_at``), and left as the spoken phrase otherwise.

Given the transcript's segments, sentences keep their speaker, and a segment that ends without punctuation ends
its sentence when the next one starts a new thought (a capital, another speaker) or when the transcript has
hardly any punctuation at all. An action item's ``owner`` is a name said as its subject ("Maria will send…",
whoever said it), else the speaker who took it: who said "I will…" or "we should…", or, for a request
("Please…", "Can you…?"), the next other speaker to answer it.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from ingestd.models import JSON

PROVIDER = "extractive-offline"
MIN_WORDS = 12  # fewer words than this is chatter, not a conversation worth keeping
STOPWORDS = frozenset(
    """a about after again all also am an and any are as at be been before being both but by can could did do
    does doing don't down during each few for from further had has have having he her here hers him his how i
    i'm i'll if in into is it it's its itself just let's me more most my no nor not now of off on once only or
    other our ours out over own same she should so some such than that the their them then there these they
    this those through to too under until up very was we we'll were what when where which while who whom why
    will with would you your yes yeah okay ok oh um uh like well really right see got get going go thanks
    thank everyone everybody good morning hi hello""".split()
)
WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
NUMBERS = "one two three four five six seven eight nine ten eleven twelve".split()
CATEGORIES: dict[str, tuple[str, set[str]]] = {
    "work": ("💼", set("meeting project client launch plan report budget deadline demo team review design "
                       "supplier shipment office presentation roadmap customer sprint numbers".split())),
    "health": ("🩺", set("doctor dentist appointment medicine pharmacy gym workout health sleep".split())),
    "shopping": ("🛒", set("buy milk bread groceries store shop order".split())),
    "sports": ("🏅", set("game match team score overtime season player won lost".split())),
    "finance": ("💰", set("money bank invoice payment tax rent salary".split())),
    "travel": ("✈️", set("flight hotel trip airport train travel booking".split())),
    "education": ("📚", set("class lecture homework exam course study school".split())),
}  # fmt: skip
_COMMITMENT = re.compile(
    r"\b((?i:i|we|you|he|she|they)|[A-Z][a-z]+)(?:\s+(will|shall|need to|needs to|have to|has to|must|"
    r"should|is going to|are going to|am going to)|(?i:'ll))\s+\w+",
)
# A capitalised subject that is not a name: the speaker (or the next one) stays the owner.
_NOT_NAMES = frozenset(
    """we you he she they it this that there here everyone everybody someone somebody nobody anyone anybody
    who what which then now so and but also""".split()
)
# "Let's…" proposes (an agenda, a next meeting) rather than hands someone a task: not an action item by itself.
_REQUEST = re.compile(r"^(please|remember to|don't forget to|make sure)\b", re.IGNORECASE)
_ASK = re.compile(r"^(?:\w+, )?(can|could|would|will) you (please )?\w+", re.IGNORECASE)
_ADDRESSED = re.compile(
    r"^(you|you'll)\b|^(please|can you|could you|would you|will you|don't forget|remember to|"
    r"make sure)\b|^\w+, (please|can|could|would|will)\b",
    re.IGNORECASE,
)
_IMPERATIVE = re.compile(
    r"^(buy|call|send|book|email|schedule|review|update|pay|pick up|finish|prepare|write|check|ask|remind|move)\b",
    re.IGNORECASE,
)
_EVENT_WORDS = re.compile(
    r"\b(meeting|demo|(?:a|the|our|phone|video) call|appointment|interview|lunch|dinner|party|presentation|"
    r"(?:a|an|the|our|your|their|this|next)(?: \w+)? review|workshop|stand-?up|webinar)\b"
)
_EVENING = re.compile(r"\b(dinner|party|tonight|evening|drinks)\b", re.IGNORECASE)
_FILLER = re.compile(
    r"^((good (morning|afternoon|evening)|hi|hello|hey|so|okay|ok|um|uh|well|reminder to self|note to self)\b[ ,.:]*"
    r"|(everyone|everybody|all|guys)\b[ ,]*)+",
    re.IGNORECASE,
)
_DUE = re.compile(
    r"\b(by|on|before|until|next|this)?\s*(today|tonight|tomorrow|(?:the )?end of (?:the|this) week|next week|"
    + "|".join(WEEKDAYS)
    + r")\b",
    re.IGNORECASE,
)
_TIME = re.compile(r"\bat\s+(\d{1,2}|" + "|".join(NUMBERS) + r")(?::(\d\d))?\s*(a\.?m\.?|p\.?m\.?)?", re.IGNORECASE)


_GREETING = re.compile(
    r"^(thanks|thank you|good (morning|afternoon|evening)|hi|hello|hey|welcome|how are you|sounds good|great|"
    r"okay|ok|sure|yes|no|right|nice)\b",
    re.IGNORECASE,
)
_CLAUSE = re.compile(r"[,;:]\s+|\s+(?:and|but|because|so|which|while|although)\s+")
_ENDS = re.compile(r"[.!?]")


@dataclass(frozen=True)
class Said:
    """One sentence and who said it (None when the transcript has no speakers)."""

    text: str
    speaker: str | None = None


def sentences(text: str) -> list[str]:
    """Sentences of a transcript (split after ., ! and ?)."""
    return [s.strip() for s in re.split(r"(?<=[.!?])\s+", text.strip()) if s.strip()]


def spoken_sentences(text: str, segments: Sequence[JSON] = ()) -> list[Said]:
    """Sentences with their speakers: from the segments when given, else from the text alone."""
    if not segments:
        return [Said(s) for s in sentences(text)]
    sparse = len(_ENDS.findall(text)) * 40 < max(len(text.split()), 1)  # under one stop per 40 words
    out: list[Said] = []
    pending: list[str] = []
    for i, seg in enumerate(segments):
        speaker, said = seg.get("speaker"), str(seg.get("text", "")).strip()
        pieces = sentences(said)
        if not pieces:
            continue
        if pending and (out_speaker := _speaker_before(segments, i)) != speaker:
            out.append(Said(" ".join(pending), out_speaker))
            pending = []
        pending.append(pieces[0])
        for piece in pieces[1:]:
            out.append(Said(" ".join(pending), speaker))
            pending = [piece]
        following = str(segments[i + 1].get("text", "")).strip() if i + 1 < len(segments) else ""
        if _ENDS.search(pieces[-1][-1:]) or sparse or _starts_anew(following):
            out.append(Said(" ".join(pending), speaker))
            pending = []
    if pending:
        out.append(Said(" ".join(pending), segments[-1].get("speaker")))
    return out


def _speaker_before(segments: Sequence[JSON], index: int) -> str | None:
    speaker: str | None = segments[index - 1].get("speaker") if index > 0 else None
    return speaker


def _starts_anew(following: str) -> bool:
    """Whether the next segment begins a new sentence (a capital that is not "I …")."""
    return bool(following[:1].isupper()) and not re.match(r"I\b", following)


def words(text: str) -> list[str]:
    return re.findall(r"[a-z][a-z']*", text.lower())


def content_words(text: str) -> list[str]:
    return [w for w in words(text) if w not in STOPWORDS and len(w) > 2]


def stems(text: str) -> set[str]:
    """Content words with a plural or possessive "s" removed, for matching "clients" with "client"."""
    return {w.removesuffix("'s").removesuffix("s") if not w.endswith("ss") else w for w in content_words(text)}


def structure(text: str, started_at: datetime | None, segments: Sequence[JSON] = ()) -> JSON:
    """Title, overview, emoji, category, action items (with owners) and calendar events of a transcript."""
    spoken = spoken_sentences(text, segments)
    said = [s.text for s in spoken]
    category, emoji = categorize(text)
    actions = []
    for index, sentence in enumerate(spoken):
        action = action_item(sentence.text, started_at)
        if action is not None:
            actions.append({**action, "owner": owner_of(spoken, index)})
    return {
        "title": title_of(said),
        "overview": overview_of(said),
        "emoji": emoji,
        "category": category,
        "action_items": actions,
        "events": [event for s in said if (event := calendar_event(s, started_at)) is not None],
    }


def owner_of(spoken: Sequence[Said], index: int) -> str | None:
    """Who took the action item said at ``index``: a name said as its subject ("Maria will…", whoever said
    it: the text names the owner, a speaker label would only name who reported it); else the next other
    speaker for a request addressed to someone, the speaker otherwise."""
    sentence = spoken[index]
    subject = _COMMITMENT.search(sentence.text)
    named = subject.group(1) if subject and subject.group(1)[:1].isupper() and subject.group(1) != "I" else None
    if named is not None and named.lower() not in _NOT_NAMES:
        return named
    if sentence.speaker is None:
        return named
    if _ADDRESSED.search(sentence.text.strip()):
        answer = next((s.speaker for s in spoken[index + 1 : index + 4] if s.speaker != sentence.speaker), None)
        return answer
    return sentence.speaker


def title_of(said: Sequence[str], max_chars: int = 60) -> str:
    """The first sentence that says something (not a greeting or thanks), with its filler removed, cut at a
    clause boundary so the title never stops mid-phrase."""
    stripped = [_FILLER.sub("", s).strip().rstrip(".!?") for s in said]
    first = next((s for s in stripped if len(content_words(s)) >= 2 and not _GREETING.match(s)), None)
    if first is None:
        first = next((s for s in stripped if len(words(s)) > 1), said[0].rstrip(".!?") if said else "")
    return _short(first[:1].upper() + first[1:], max_chars)


def _short(text: str, max_chars: int) -> str:
    """``text`` if it fits, else its first clause that fits, else whole words up to a content word."""
    if len(text) <= max_chars:
        return text
    clause = _CLAUSE.split(text)[0].strip()
    if len(words(clause)) >= 3 and len(clause) <= max_chars:
        return clause
    kept = text[: max_chars + 1].rsplit(" ", 1)[0].split()
    while len(kept) > 1 and (kept[-1].lower().strip(",;:") in STOPWORDS or kept[-1].endswith(",")):
        kept.pop()  # never end on "the", "of", "and"…
    return " ".join(kept) + "…"


def overview_of(said: Sequence[str], count: int = 3) -> str:
    """The ``count`` sentences whose content words are most frequent in the conversation, in spoken order."""
    freq = Counter(w for s in said for w in content_words(s))

    def score(s: str) -> float:
        ws = content_words(s)
        return sum(freq[w] for w in ws) / (len(ws) ** 0.5) if ws else 0.0

    best = sorted(range(len(said)), key=lambda i: (-score(said[i]), i))[:count]
    return " ".join(said[i] for i in sorted(best))


def categorize(text: str) -> tuple[str, str]:
    """The category whose keywords the text uses most, and its emoji ("other", 💬 when none)."""
    ws = Counter(words(text))
    scores = {name: sum(ws[w] for w in keys) for name, (_, keys) in CATEGORIES.items()}
    name = max(scores, key=lambda n: (scores[n], -list(CATEGORIES).index(n)))
    return (name, CATEGORIES[name][0]) if scores[name] > 0 else ("other", "💬")


def action_item(sentence: str, started_at: datetime | None) -> JSON | None:
    """An action item when the sentence commits someone to something or asks for it."""
    plain = re.sub(r"^(reminder to self|note to self|reminder)[.:,]?\s*", "", sentence, flags=re.IGNORECASE)
    if not (_COMMITMENT.search(plain) or _REQUEST.match(plain) or _IMPERATIVE.match(plain) or _ASK.match(plain)):
        return None
    due_text, due = due_date(plain, started_at)
    return {"description": plain.rstrip("."), "due": due, "due_text": due_text}


def calendar_event(sentence: str, started_at: datetime | None) -> JSON | None:
    """A calendar event when the sentence names a meeting-like thing and a day."""
    thing = _EVENT_WORDS.search(sentence.lower())
    due_text, day = due_date(sentence, started_at)
    if thing is None or due_text is None:
        return None
    name = [w for w in words(thing.group(1)) if w not in STOPWORDS]  # "the security review": "security review"
    before = words(sentence[: thing.start()])[-1:] if len(name) == 1 else []  # "client demo", "dentist appointment"
    title = " ".join([*(w for w in before if w not in STOPWORDS), *name]).capitalize()
    return {"title": title, "starts_at": _with_time(day, sentence), "when_text": due_text, "description": sentence}


def due_date(sentence: str, started_at: datetime | None) -> tuple[str | None, str | None]:
    """The spoken deadline ("by Friday") and, given when the conversation happened, its date (ISO)."""
    match = _DUE.search(sentence)
    if match is None:
        return None, None
    spoken = match.group(0).strip()
    if started_at is None:
        return spoken, None
    return spoken, resolve_day(match.group(2).lower(), (match.group(1) or "").lower(), started_at.date()).isoformat()


def resolve_day(word: str, prefix: str, today: date) -> date:
    """The date a spoken day means, seen from ``today``."""
    if word in ("today", "tonight"):
        return today
    if word == "tomorrow":
        return today + timedelta(days=1)
    if word == "next week":
        return today + timedelta(days=7 - today.weekday())  # next Monday
    target = 4 if "end of" in word else WEEKDAYS.index(word)  # the end of the week: Friday
    ahead = (target - today.weekday()) % 7 or 7
    if prefix == "next" and ahead < 7 and "end of" not in word:
        ahead += 7 if today.weekday() < target else 0
    return today + timedelta(days=ahead)


def _with_time(day: str | None, sentence: str) -> str | None:
    if day is None:
        return None
    match = _TIME.search(sentence)
    if match is None:
        return day
    raw = match.group(1).lower()
    hour = int(raw) if raw.isdigit() else NUMBERS.index(raw) + 1
    suffix = (match.group(3) or "").replace(".", "").lower()
    evening = not suffix and _EVENING.search(sentence) is not None and hour < 12  # "dinner at seven": 19:00
    if (suffix == "pm" and hour < 12) or (not suffix and 1 <= hour <= 6) or evening:  # "at three": office hours
        hour += 12
    return f"{day}T{hour % 24:02d}:{int(match.group(2) or 0):02d}:00"


def choose_folder(text: str, folders: Sequence[JSON]) -> JSON:
    """The folder whose name and description share the most content words with the transcript, if any."""
    spoken = stems(text)
    best: tuple[int, str | None] = (0, None)
    for folder in folders:
        keys = stems(f"{folder.get('name', '')} {folder.get('description', '')}")
        overlap = len(spoken & keys)
        if overlap > best[0]:
            best = (overlap, str(folder.get("name")))
    reason = f"{best[0]} shared keyword(s)" if best[1] else "no folder shares a keyword with the conversation"
    return {"folder": best[1], "reason": reason}


def discard_check(text: str) -> JSON:
    """Flag a conversation with too few words to be worth keeping."""
    n = len(words(text))
    if n < MIN_WORDS:
        return {"discard": True, "reason": f"only {n} words (fewer than {MIN_WORDS})"}
    return {"discard": False, "reason": f"{n} words"}


__all__ = ["PROVIDER", "Said", "choose_folder", "discard_check", "sentences", "spoken_sentences", "structure"]
