"""Time expressions in chat: ingestd's rules (``memory.when``) against dateparser and parsedatetime.

A labelled set of chat sentences (written for this comparison, not the unit tests' phrasings), each with the
message's reference time and the spans of days its time expressions name (none for the sentences that hold no date).
Per category it prints: expressions found (a library's date counts when it falls inside the labelled span, the
rules' span when it lies inside it), false positives (a detection matching no labelled span), and throughput.

    .venv/bin/python bench/when_eval.py            # the libraries are skipped when not installed
    pip install dateparser parsedatetime           # to compare against them
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime

from ingestd.pipelines.memory import when

AUG17 = datetime(2023, 8, 17, 15, 0)  # a Thursday
JAN04 = datetime(2022, 1, 4, 10, 0)  # a Tuesday, just past a year boundary
OCT29 = datetime(2023, 10, 29, 20, 0)  # a Sunday

R = {"aug17": AUG17, "jan04": JAN04, "oct29": OCT29}

# category, reference, sentence, labelled spans ("2023-08-16" or "2023-08-07..2023-08-13")
LABELLED: list[tuple[str, str, str, list[str]]] = [
    ("day", "aug17", "Ugh, I burned the lasagna yesterday lol", ["2023-08-16"]),
    ("day", "aug17", "Just got back from the vet today, Max is fine", ["2023-08-17"]),
    ("day", "aug17", "We're having a bonfire tonight if you wanna come", ["2023-08-17"]),
    ("day", "aug17", "I'll call the landlord tomorrow", ["2023-08-18"]),
    ("day", "aug17", "Remember the day before yesterday when it poured?", ["2023-08-15"]),
    ("day", "aug17", "Yesterday morning I finally submitted my portfolio", ["2023-08-16"]),
    ("day", "aug17", "Couldn't sleep last night, too excited about the trip", ["2023-08-16"]),
    ("day", "aug17", "The day after tomorrow is my first shift at the bakery!", ["2023-08-19"]),
    ("day", "jan04", "Yesterday I went sledding with the kids", ["2022-01-03"]),
    ("day", "oct29", "Yesterday was my daughter's recital", ["2023-10-28"]),
    ("day", "oct29", "This morning I went for a run by the river", ["2023-10-29"]),
    ("weekday", "aug17", "Last Sunday my sister and I went to the farmers market", ["2023-08-13"]),
    ("weekday", "aug17", "I had a job interview on Tuesday and I think it went well", ["2023-08-15"]),
    ("weekday", "aug17", "We watched the fireworks Saturday night", ["2023-08-12"]),
    ("weekday", "aug17", "this coming Friday we're driving up to the lake", ["2023-08-18"]),
    ("weekday", "aug17", "this Monday was my first day at the new office", ["2023-08-14"]),
    ("weekday", "aug17", "Can we do coffee on Wednesday?", ["2023-08-23"]),
    ("weekday", "aug17", "I'm going to the pottery class on Saturday", ["2023-08-19"]),
    ("weekday", "aug17", "my mom came over last Thursday", ["2023-08-10"]),
    ("weekday", "jan04", "Last Friday we threw a New Year's party", ["2021-12-31"]),
    ("weekday", "oct29", "Last Saturday I went to a Halloween party", ["2023-10-28"]),
    ("weekday", "oct29", "On Friday we carved pumpkins", ["2023-10-27"]),
    ("weekday", "aug17", "Last Friday I went to the gym and tomorrow I'm going hiking", ["2023-08-11", "2023-08-18"]),
    ("unit", "aug17", "last weekend we went camping at Rainier", ["2023-08-12..2023-08-13"]),
    ("unit", "aug17", "This weekend I'm finally painting the nursery", ["2023-08-19..2023-08-20"]),
    ("unit", "aug17", "Last week I started volunteering at the shelter", ["2023-08-07..2023-08-13"]),
    ("unit", "aug17", "Next week is the adoption hearing, wish me luck", ["2023-08-21..2023-08-27"]),
    ("unit", "aug17", "I got my license last month", ["2023-07-01..2023-07-31"]),
    ("unit", "aug17", "We're moving to Austin next month", ["2023-09-01..2023-09-30"]),
    ("unit", "aug17", "Last year I ran the Chicago marathon", ["2022-01-01..2022-12-31"]),
    ("unit", "aug17", "I want to go back to school next year", ["2024-01-01..2024-12-31"]),
    ("unit", "aug17", "Earlier this week I had a panic attack at work", ["2023-08-14..2023-08-17"]),
    ("unit", "aug17", "the week before last we had a power outage", ["2023-07-31..2023-08-06"]),
    ("unit", "aug17", "I read 12 books this month", ["2023-08-01..2023-08-31"]),
    ("unit", "jan04", "Last month I quit my job at the bank", ["2021-12-01..2021-12-31"]),
    ("unit", "jan04", "last week was a blur with the holidays", ["2021-12-27..2022-01-02"]),
    ("unit", "jan04", "last year was so hard for our family", ["2021-01-01..2021-12-31"]),
    ("unit", "jan04", "I'm starting a pottery course next month", ["2022-02-01..2022-02-28"]),
    ("unit", "oct29", "last week I got a promotion", ["2023-10-16..2023-10-22"]),
    ("unit", "oct29", "next week I start chemo", ["2023-10-30..2023-11-05"]),
    ("unit", "oct29", "Next month is my 30th birthday", ["2023-11-01..2023-11-30"]),
    ("season", "aug17", "Last summer I learned to surf in Portugal", ["2022-06-01..2022-08-31"]),
    ("season", "aug17", "this summer has been amazing so far", ["2023-06-01..2023-08-31"]),
    ("season", "aug17", "We're planning to visit my grandparents in the fall", ["2023-09-01..2023-11-30"]),
    ("season", "aug17", "Next spring I want to plant tomatoes", ["2024-03-01..2024-05-31"]),
    ("season", "aug17", "Last winter we had a leak in the basement", ["2022-12-01..2023-02-28"]),
    ("season", "jan04", "This winter has been so snowy", ["2021-12-01..2022-02-28"]),
    ("season", "aug17", "the summer of 2018 was the best of my life", ["2018-06-01..2018-08-31"]),
    ("counted", "aug17", "Three weeks ago I adopted a kitten named Luna", ["2023-07-24..2023-07-30"]),
    ("counted", "aug17", "I had the surgery 5 days ago", ["2023-08-12"]),
    ("counted", "aug17", "We broke up a month ago", ["2023-07-01..2023-07-31"]),
    ("counted", "aug17", "about two years ago I started journaling", ["2021-01-01..2021-12-31"]),
    ("counted", "aug17", "a few weeks ago I went to a poetry reading", ["2023-07-17..2023-08-06"]),
    ("counted", "aug17", "a couple days ago my son lost his first tooth", ["2023-08-14..2023-08-16"]),
    ("counted", "aug17", "In two weeks I'm flying to Seattle", ["2023-08-28..2023-09-03"]),
    ("counted", "aug17", "The baby is due in three months!", ["2023-11-01..2023-11-30"]),
    ("counted", "aug17", "I'll know the results in a few days", ["2023-08-19..2023-08-21"]),
    ("counted", "aug17", "ten years ago I moved here from Lagos", ["2013-01-01..2013-12-31"]),
    ("counted", "aug17", "I quit smoking 6 months ago", ["2023-02-01..2023-02-28"]),
    ("counted", "aug17", "We got engaged a year ago", ["2022-01-01..2022-12-31"]),
    ("counted", "aug17", "a fortnight ago I had covid", ["2023-07-31..2023-08-06"]),
    ("counted", "aug17", "I'll be 40 in two years", ["2025-01-01..2025-12-31"]),
    ("counted", "jan04", "Two days ago I started a new sketchbook", ["2022-01-02"]),
    ("counted", "jan04", "A week ago I was in Mexico", ["2021-12-27..2022-01-02"]),
    ("counted", "oct29", "a week from now I'll be in Tokyo", ["2023-10-30..2023-11-05"]),
    ("counted", "oct29", "my grandma passed away 2 weeks ago", ["2023-10-09..2023-10-15"]),
    ("month", "aug17", "My wedding was on June 24, 2022", ["2022-06-24"]),
    ("month", "aug17", "I started the job on July 10", ["2023-07-10"]),
    ("month", "aug17", "On 3 August I got my first tattoo", ["2023-08-03"]),
    ("month", "aug17", "In March I visited my cousins in Ohio", ["2023-03-01..2023-03-31"]),
    ("month", "aug17", "I'm going to Peru in October!", ["2023-10-01..2023-10-31"]),
    ("month", "aug17", "We adopted Bella in May 2021", ["2021-05-01..2021-05-31"]),
    ("month", "aug17", "My exam is on September 5th, I'm so nervous", ["2023-09-05"]),
    ("month", "aug17", "We've been together since January", ["2023-01-01..2023-01-31"]),
    ("month", "aug17", "Earlier this year I went to Iceland", ["2023-01-01..2023-08-17"]),
    ("month", "aug17", "I'll finish the mural by the end of September", ["2023-09-01..2023-09-30"]),
    ("month", "aug17", "Mid-July I had a bad fall off my bike", ["2023-07-01..2023-07-31"]),
    ("month", "aug17", "We went to Italy last June", ["2023-06-01..2023-06-30"]),
    ("month", "aug17", "on the 4th of July we had a barbecue", ["2023-07-04"]),
    ("month", "jan04", "I painted that in December", ["2021-12-01..2021-12-31"]),
    ("year", "aug17", "I moved to Boston in 2019", ["2019-01-01..2019-12-31"]),
    ("year", "aug17", "I've been vegan since 2020", ["2020-01-01..2020-12-31"]),
    ("year", "aug17", "We met back in 2015 at a concert", ["2015-01-01..2015-12-31"]),
    ("year", "aug17", "I graduated in 2017 and moved here", ["2017-01-01..2017-12-31"]),
    ("year", "aug17", "I started therapy in early 2022", ["2022-01-01..2022-12-31"]),
    ("none", "aug17", "May I ask what inspired the painting?", []),
    ("none", "aug17", "You may want to try the blue one", []),
    ("none", "aug17", "The band will march on Main Street", []),
    ("none", "aug17", "Give me a second, I'm driving", []),
    ("none", "aug17", "I love 80s music so much", []),
    ("none", "aug17", "I've been feeling better recently", []),
    ("none", "aug17", "The other day I saw a rainbow", []),
    ("none", "aug17", "That was a long time ago", []),
    ("none", "aug17", "I have 2000 followers now!", []),
    ("none", "aug17", "See you in a bit!", []),
    ("none", "aug17", "Sunday school was my favorite as a kid", []),
    ("none", "aug17", "She is the best mom in the world", []),
    ("none", "aug17", "Time flies, right?", []),
    ("none", "aug17", "I read 12 books so far", []),
    ("none", "aug17", "It took me 3 weeks to finish it", []),
    ("none", "aug17", "We spend every Saturday at the park", []),
    ("none", "aug17", "April and June are my best friends", []),
    ("none", "aug17", "The last day of camp was emotional", []),
]

# Written after the rules were tuned on LABELLED and run once before any change: two-speaker chat as the long-memory
# benchmarks phrase it. Its first score is the one the report quotes as held out (one label added after: the
# Christmas below, a date the first labelling missed).
MAR14 = datetime(2023, 3, 14, 18, 0)  # a Tuesday
NOV27 = datetime(2022, 11, 27, 12, 0)  # a Sunday
JUN03 = datetime(2024, 6, 3, 9, 30)  # a Monday
R |= {"mar14": MAR14, "nov27": NOV27, "jun03": JUN03}
HELD_OUT: list[tuple[str, str, str, list[str]]] = [
    (
        "weekday",
        "mar14",
        "Hey Mel! Guess what - I finally went to that transgender conference last Friday, it was amazing.",
        ["2023-03-10"],
    ),
    (
        "weekday",
        "mar14",
        "Oh nice! I took the kids to the pottery workshop on Saturday, they made little bowls.",
        ["2023-03-11"],
    ),
    (
        "season",
        "mar14",
        "I've been thinking about adopting since last summer, and yesterday I filled out the application.",
        ["2022-06-01..2022-08-31", "2023-03-13"],
    ),
    ("none", "mar14", "That's huge! When we adopted Oliver, it took about six months.", []),
    (
        "unit",
        "mar14",
        "My friend is throwing me a going-away party next weekend before I move.",
        ["2023-03-25..2023-03-26"],
    ),
    ("counted", "mar14", "We went to the beach two weekends ago and the kids loved it.", ["2023-03-04..2023-03-05"]),
    ("unit", "mar14", "I started a new painting of a sunset this week.", ["2023-03-13..2023-03-19"]),
    ("day", "mar14", "I'll be giving a talk at the school tomorrow night, wish me luck!", ["2023-03-15"]),
    ("weekday", "mar14", "I ran a charity race for mental health the Sunday before last.", ["2023-03-05"]),
    ("weekday", "mar14", "I joined a new LGBTQ activist group last Tues.", ["2023-03-07"]),
    (
        "counted",
        "mar14",
        "Melanie, you said a couple of months ago that you wanted to go camping - still on?",
        ["2022-12-01..2023-02-28"],
    ),
    ("year", "mar14", "Back in 2016 I came out to my family, it was scary.", ["2016-01-01..2016-12-31"]),
    ("none", "mar14", "My grandma gave me this necklace when I was a kid", []),
    ("none", "mar14", "I've been volunteering at the youth center for 3 years now.", []),
    ("month", "mar14", "We're going camping in the mountains in June!", ["2023-06-01..2023-06-30"]),
    ("month", "mar14", "I read that book in January and loved it.", ["2023-01-01..2023-01-31"]),
    ("month", "mar14", "On the 2nd we had a huge storm", ["2023-03-02"]),
    ("month", "mar14", "The adoption agency interview is on March 20.", ["2023-03-20"]),
    ("month", "mar14", "I saw that play on Feb 18th", ["2023-02-18"]),
    ("unit", "mar14", "Last month my son broke his arm skateboarding", ["2023-02-01..2023-02-28"]),
    ("weekday", "nov27", "The party was at my parents' place on Thursday, so much food", ["2022-11-24"]),
    ("day", "nov27", "I went hiking yesterday with my dog and a friend from work", ["2022-11-26"]),
    ("unit", "nov27", "Last week I started my new job at the hospital!", ["2022-11-14..2022-11-20"]),
    ("unit", "nov27", "We're visiting my in-laws for Christmas next month", ["2022-12-25", "2022-12-01..2022-12-31"]),
    ("counted", "nov27", "I bought a new guitar a few days ago", ["2022-11-23..2022-11-25"]),
    ("unit", "nov27", "Earlier this month I went to a concert in Seattle", ["2022-11-01..2022-11-27"]),
    ("unit", "nov27", "I'm hoping to finish the sculpture this week", ["2022-11-21..2022-11-27"]),
    ("month", "nov27", "My sister graduated in May", ["2022-05-01..2022-05-31"]),
    ("season", "nov27", "We got our dog in the spring", ["2022-03-01..2022-05-31"]),
    ("unit", "nov27", "Last year around this time I was in Kenya", ["2021-01-01..2021-12-31"]),
    ("month", "nov27", "I've been sober since March 2021", ["2021-03-01..2021-03-31"]),
    ("weekday", "nov27", "I'll start the art class next Monday", ["2022-11-28"]),
    ("day", "nov27", "I was so tired last night after the show", ["2022-11-26"]),
    ("counted", "nov27", "The fundraiser was 2 weeks ago and we raised $3000!", ["2022-11-07..2022-11-13"]),
    ("counted", "nov27", "In three weeks I'll be on a plane to Lisbon", ["2022-12-12..2022-12-18"]),
    ("month", "nov27", "I have a dentist appointment on the 5th", ["2022-12-05"]),
    ("month", "nov27", "We went apple picking in October", ["2022-10-01..2022-10-31"]),
    ("weekday", "nov27", "Do you want to grab dinner on Friday?", ["2022-12-02"]),
    ("counted", "nov27", "My birthday's in a month", ["2022-12-01..2022-12-31"]),
    ("season", "nov27", "I moved here in the fall of 2019", ["2019-09-01..2019-11-30"]),
    ("day", "jun03", "Hey Jon! Yesterday I finally opened my dance studio!", ["2024-06-02"]),
    (
        "unit",
        "jun03",
        "Congrats Gina! I lost my job at the bank last month, so I'm looking for something new.",
        ["2024-05-01..2024-05-31"],
    ),
    ("weekday", "jun03", "I went to a networking event last Wednesday.", ["2024-05-29"]),
    ("month", "jun03", "I started my online clothing store back in January.", ["2024-01-01..2024-01-31"]),
    ("counted", "jun03", "My team won the dance competition two years ago.", ["2022-01-01..2022-12-31"]),
    ("weekday", "jun03", "This Friday I'm meeting an investor", ["2024-06-07"]),
    ("unit", "jun03", "Over the weekend I practiced my routine for hours", ["2024-06-01..2024-06-02"]),
    ("month", "jun03", "I'll be in Paris from June 20 to June 27", ["2024-06-20", "2024-06-27"]),
    ("counted", "jun03", "I went to Rome a few years ago", ["2020-01-01..2022-12-31"]),
    ("weekday", "jun03", "My studio lease starts next Monday", ["2024-06-10"]),
    ("weekday", "jun03", "I was nervous the whole day on Saturday", ["2024-06-01"]),
    ("counted", "jun03", "The grand opening is in 2 weeks", ["2024-06-17..2024-06-23"]),
    ("none", "jun03", "I've been dancing since I was 7", []),
    ("month", "jun03", "We first met at a festival in August 2022", ["2022-08-01..2022-08-31"]),
    ("day", "jun03", "Last Christmas my brother gave me a camera", ["2023-12-25"]),
    ("day", "jun03", "I'm so happy today!", ["2024-06-03"]),
    ("unit", "jun03", "I finished the course at the end of last year", ["2023-01-01..2023-12-31"]),
    ("none", "jun03", "I got this tattoo in my 20s", []),
    ("unit", "jun03", "Let's catch up next week", ["2024-06-10..2024-06-16"]),
    ("none", "jun03", "Sure, may the best dancer win!", []),
    ("none", "jun03", "It took two days to set up the studio", []),
    ("none", "jun03", "I can't wait for the summer vibes", []),
    ("none", "jun03", "Every Friday we have a jam session", []),
    ("none", "jun03", "She was born in the 1990s", []),
    ("none", "jun03", "My mom is a March baby", []),
    ("none", "jun03", "I march to my own beat", []),
]

Found = list[tuple[date, date]]  # the span each detection names (a library's date is a one-day span)
Resolver = Callable[[str, datetime], Found]


def _span(labelled: str) -> tuple[date, date]:
    first, _, last = labelled.partition("..")
    return date.fromisoformat(first), date.fromisoformat(last or first)


def rules(text: str, reference: datetime) -> Found:
    return [(m.first, m.last) for m in when.resolve_times(text, reference)]


def dateparser_resolver() -> Resolver | None:
    try:
        from dateparser.search import search_dates  # type: ignore[import-untyped]
    except ImportError:
        return None

    def resolve(text: str, reference: datetime) -> Found:
        settings = {"RELATIVE_BASE": reference, "PREFER_DATES_FROM": "past"}
        hits = search_dates(text, languages=["en"], settings=settings) or []
        return [(d.date(), d.date()) for _, d in hits]

    return resolve


def parsedatetime_resolver() -> Resolver | None:
    try:
        import parsedatetime  # type: ignore[import-untyped]
    except ImportError:
        return None
    calendar = parsedatetime.Calendar()

    def resolve(text: str, reference: datetime) -> Found:
        hits = calendar.nlp(text, sourceTime=reference) or ()
        return [(hit[0].date(), hit[0].date()) for hit in hits]

    return resolve


@dataclass
class Tally:
    expressions: int = 0
    found: int = 0
    false_positives: int = 0


def score(resolve: Resolver, sentences: list[tuple[str, str, str, list[str]]]) -> dict[str, Tally]:
    """Per category: labelled expressions found (a detection inside the span) and detections matching none."""
    tallies: dict[str, Tally] = {}
    for category, ref, text, labelled in sentences:
        tally = tallies.setdefault(category, Tally())
        detections = resolve(text, R[ref])
        unmatched = list(detections)
        for first, last in map(_span, labelled):
            tally.expressions += 1
            hit = next((d for d in unmatched if first <= d[0] and d[1] <= last), None)
            if hit is not None:
                tally.found += 1
                unmatched.remove(hit)
        tally.false_positives += len(unmatched)
    return tallies


def throughput(resolve: Resolver, seconds: float) -> float:
    """Sentences per second over the labelled set, repeated for about ``seconds``."""
    done, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        for _, ref, text, _ in LABELLED + HELD_OUT:
            resolve(text, R[ref])
        done += len(LABELLED) + len(HELD_OUT)
    return done / (time.perf_counter() - started)


def table(title: str, sentences: list[tuple[str, str, str, list[str]]], resolvers: dict[str, Resolver | None]) -> None:
    categories = list(dict.fromkeys(c for c, *_ in sentences))
    expressions = sum(len(x[3]) for x in sentences)
    print(f"\n{title}: {len(sentences)} sentences, {expressions} labelled expressions\n")
    header = "| resolver | " + " | ".join(categories) + " | all found | false positives |"
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    for name, resolve in resolvers.items():
        if resolve is None:
            print(f"| {name} | not installed |")
            continue
        tallies = score(resolve, sentences)
        cells = [f"{tallies[c].found}/{tallies[c].expressions}" if c != "none" else "-" for c in categories]
        found = sum(t.found for t in tallies.values()) / expressions
        wrong = sum(t.false_positives for t in tallies.values())
        print(f"| {name} | {' | '.join(cells)} | {found:.2f} | {wrong} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="time spent measuring each resolver's speed")
    args = parser.parse_args()
    resolvers = {"ingestd rules": rules, "dateparser": dateparser_resolver(), "parsedatetime": parsedatetime_resolver()}
    table("Tuning set", LABELLED, resolvers)
    table("Held-out set", HELD_OUT, resolvers)
    print("\n| resolver | sentences/s (one core, both sets) |\n|---|---|")
    for name, resolve in resolvers.items():
        if resolve is not None:
            print(f"| {name} | {throughput(resolve, args.seconds):,.0f} |")


if __name__ == "__main__":
    main()
