"""Time expressions in chat messages resolved against the message's timestamp (pure, no I/O)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from ingestd.pipelines.memory import when

MON = datetime(2023, 5, 8, 14, 0, tzinfo=UTC)  # a Monday
AUTUMN = datetime(2024, 10, 28, 15, 0, tzinfo=UTC)  # a Monday in late October
NEW_YEAR = datetime(2024, 1, 2, 9, 0, tzinfo=UTC)  # a Tuesday, just past a year boundary
LEAP = datetime(2024, 3, 1, 8, 0, tzinfo=UTC)  # a Friday, the day after 29 February
EVE = datetime(2023, 12, 31, 23, 30, tzinfo=UTC)  # a Sunday, the last day of a year

CASES: list[tuple[str, datetime, list[tuple[str, str]]]] = [
    # days
    ("I went to the LGBTQ support group yesterday.", MON, [("yesterday", "7 May 2023")]),
    ("Tonight I'm cooking for the whole family", MON, [("Tonight", "8 May 2023")]),
    ("this morning I ran my first 5k!", MON, [("this morning", "8 May 2023")]),
    ("We signed the lease the day before yesterday", MON, [("the day before yesterday", "6 May 2023")]),
    ("see you tomorrow at the studio", MON, [("tomorrow", "9 May 2023")]),
    ("last night was wild", MON, [("last night", "7 May 2023")]),
    ("yesterday was Jan 1st, what a party", NEW_YEAR, [("yesterday", "1 January 2024"), ("Jan 1st", "1 January 2024")]),
    ("yesterday was the leap day", LEAP, [("yesterday", "29 February 2024")]),
    ("tomorrow we start fresh", EVE, [("tomorrow", "1 January 2024")]),
    # weekdays
    ("Last Saturday I went to a pride parade", MON, [("Last Saturday", "6 May 2023")]),
    ("last Monday the boss quit", MON, [("last Monday", "1 May 2023")]),
    ("this Friday is the deadline", MON, [("this Friday", "12 May 2023")]),
    ("next Tuesday works for me", MON, [("next Tuesday", "9 May 2023")]),
    ("On Sunday we went hiking with the kids", MON, [("Sunday", "7 May 2023")]),
    ("I painted a sunset on Friday", MON, [("Friday", "5 May 2023")]),
    ("We will meet on Friday at the cafe", MON, [("Friday", "12 May 2023")]),
    ("I'm going to the park on Saturday", MON, [("Saturday", "13 May 2023")]),
    ("last Saturday the shelter was packed", NEW_YEAR, [("last Saturday", "30 December 2023")]),
    ("last Saturday I finally cleaned the garage", LEAP, [("last Saturday", "24 February 2024")]),
    ("this past weekend we camped", MON, [("this past weekend", "the weekend of 6 May 2023")]),
    ("how was your weekend? mine was quiet", MON, []),
    ("I did nothing over the weekend", MON, [("the weekend", "the weekend of 6 May 2023")]),
    # last/this/next units
    ("last week my mom visited", MON, [("last week", "the week of 1 May 2023")]),
    ("next week I start the new job", MON, [("next week", "the week of 15 May 2023")]),
    ("this weekend we're going camping", MON, [("this weekend", "the weekend of 13 May 2023")]),
    ("last weekend was my sister's wedding", MON, [("last weekend", "the weekend of 6 May 2023")]),
    ("I moved out last month", MON, [("last month", "April 2023")]),
    ("I'm starting classes next month", MON, [("next month", "June 2023")]),
    ("last year I adopted a dog", MON, [("last year", "2022")]),
    ("next year I want to visit Japan", MON, [("next year", "2024")]),
    ("this year has been rough", MON, [("this year", "2023")]),
    ("last month I got promoted", NEW_YEAR, [("last month", "December 2023")]),
    ("last week was Christmas", NEW_YEAR, [("last week", "the week of 25 December 2023")]),
    ("next week we fly home", EVE, [("next week", "the week of 1 January 2024")]),
    ("this week was a blur", EVE, [("this week", "the week of 25 December 2023")]),
    ("the week before last I was sick", MON, [("the week before last", "the week of 24 April 2023")]),
    # seasons
    ("last summer we went to Spain", MON, [("last summer", "summer 2022")]),
    ("this spring my garden exploded", MON, [("this spring", "spring 2023")]),
    ("next winter I'll learn to ski", MON, [("next winter", "winter 2023-2024")]),
    ("last fall I started pottery", MON, [("last fall", "fall 2022")]),
    ("last winter was brutal", NEW_YEAR, [("last winter", "winter 2022-2023")]),
    ("this winter is mild", NEW_YEAR, [("this winter", "winter 2023-2024")]),
    ("we met in the summer of 2021", MON, [("summer of 2021", "summer 2021")]),
    # counted offsets
    ("two weeks ago we moved to Denver", MON, [("two weeks ago", "the week of 24 April 2023")]),
    ("3 days ago I got the keys", MON, [("3 days ago", "5 May 2023")]),
    ("a month ago I quit", MON, [("a month ago", "April 2023")]),
    ("two years ago I lost my grandma", MON, [("two years ago", "2021")]),
    ("a few days ago I saw a hawk", MON, [("a few days ago", "around 5 May 2023")]),
    ("a couple of weeks ago we talked", MON, [("a couple of weeks ago", "around the week of 24 April 2023")]),
    ("in two weeks I fly to Boston", MON, [("in two weeks", "the week of 22 May 2023")]),
    ("the results come in 3 days", MON, [("in 3 days", "11 May 2023")]),
    ("a year from now I'll be done", MON, [("a year from now", "2024")]),
    ("two days ago I was at the beach", NEW_YEAR, [("two days ago", "31 December 2023")]),
    ("a week ago it snowed", NEW_YEAR, [("a week ago", "the week of 25 December 2023")]),
    ("a month ago I signed up", LEAP, [("a month ago", "February 2024")]),
    # years
    ("I lived in Paris back in 2019", MON, [("2019", "2019")]),
    ("I've been painting since 2020", MON, [("2020", "2020")]),
    # months and days
    ("On May 7 we hiked Mount Si", MON, [("May 7", "7 May 2023")]),
    ("I ran a half marathon on 7 May", MON, [("7 May", "7 May 2023")]),
    ("my birthday was on the 3rd of March", MON, [("the 3rd of March", "3 March 2023")]),
    ("my birthday is on June 3rd, I'll throw a party", MON, [("June 3rd", "3 June 2023")]),
    ("In June I started a new job", MON, [("June", "June 2022")]),
    ("I'm going to move in June", MON, [("June", "June 2023")]),
    ("we got married in December", NEW_YEAR, [("December", "December 2023")]),
    ("I was there in June 2021", MON, [("June 2021", "June 2021")]),
    ("We met on May 7, 2023.", MON, [("May 7, 2023", "7 May 2023")]),
    ("I was sick in early March", MON, [("early March", "March 2023")]),
    ("on Feb 29 I proposed", LEAP, [("Feb 29", "29 February 2024")]),
    ("earlier this year I ran a marathon", MON, [("earlier this year", "2023")]),
    ("earlier this month I had a checkup", MON, [("earlier this month", "May 2023")]),
    ("On the 2nd we had a huge storm", MON, [("the 2nd", "2 May 2023")]),
    ("the party will be on the 20th, at my place", MON, [("the 20th", "20 May 2023")]),
    ("I started therapy in early 2022", MON, [("early 2022", "2022")]),
    # weekday abbreviations, before last, weekends counted, seasons without a year, holidays
    ("I joined the activist group last Tues.", MON, [("last Tues", "2 May 2023")]),
    ("see you on Fri!", MON, [("Fri", "12 May 2023")]),
    ("I ran a charity race the Sunday before last", MON, [("Sunday before last", "30 April 2023")]),
    ("we went to the beach two weekends ago", MON, [("two weekends ago", "the weekend of 29 April 2023")]),
    ("we got our dog in the spring", NEW_YEAR, [("the spring", "spring 2023")]),
    ("we're planning to visit in the fall", MON, [("the fall", "fall 2023")]),
    ("Last Christmas my brother gave me a camera", MON, [("Last Christmas", "25 December 2022")]),
    ("we'll be at my mom's for Thanksgiving", MON, [("Thanksgiving", "23 November 2023")]),
    ("I'm so done since Halloween", NEW_YEAR, [("Halloween", "31 October 2023")]),
    # chat spellings, and sentences whose future-looking words do not make the date future
    ("got my cast off 2 wks ago", MON, [("2 wks ago", "the week of 24 April 2023")]),
    ("last yr was rough", MON, [("last yr", "2022")]),
    ("party tonite!!", MON, [("tonite", "8 May 2023")]),
    ("I sat next to her on Saturday", MON, [("Saturday", "6 May 2023")]),
    ("I was going to call on Friday but forgot", MON, [("Friday", "5 May 2023")]),
    ("I didn't want to go on Saturday", MON, [("Saturday", "6 May 2023")]),
    ("the game was cancelled due to the rain on Sunday", MON, [("Sunday", "7 May 2023")]),
    # present tense speaks of the future; a bare date follows the message's other sentences
    ("A technician comes on Tuesday, he says the element is gone.", MON, [("Tuesday", "9 May 2023")]),
    ("I start in September", MON, [("September", "September 2023")]),
    ("we go to norway on the 10th of june", MON, [("the 10th of june", "10 June 2023")]),
    ("I booked flights to Japan for October", MON, [("October", "October 2023")]),
    ("Callum's moving in with me in December", MON, [("December", "December 2023")]),
    ("Thursday!", MON, [("Thursday", "4 May 2023")]),
    ("wednesday. Graham drove it up for me.", MON, [("wednesday", "3 May 2023")]),
    ("slipped on the ice on tuesday going to the hens", MON, [("tuesday", "2 May 2023")]),
    ("I was in the bakery until the 24th, then I slept", MON, [("the 24th", "24 April 2023")]),
    ("Hopefully end of June, if the solicitors stop faffing.", MON, [("end of June", "June 2023")]),
    ("Worse since winter.", MON, [("winter", "winter 2022-2023")]),
    ("He is moving to Canada in autumn", MON, [("autumn", "autumn 2023")]),
    ("I'm going back to full-time from September.", MON, [("September", "September 2023")]),
    # the tense cue nearest before the date decides, else the nearest after it
    ("OK so you'll enjoy this: Salt had babies on Thursday.", MON, [("Thursday", "4 May 2023")]),
    ("Flights are booked by the way, I land in Cardiff on 19 December.", MON, [("19 December", "19 December 2023")]),
    ("Got home on Tuesday and I'm still dreaming of it", MON, [("Tuesday", "2 May 2023")]),
    ("A gallery wants to show my photos. The Pike Gallery, in June!", MON, [("June", "June 2023")]),
    ("We went apple picking in October", MON, [("October", "October 2022")]),
    ("You were so excited about it at Christmas.", MON, [("Christmas", "25 December 2022")]),
    ("Senior backend engineer, starting in June.", MON, [("June", "June 2023")]),
    # no direction and no tense in its sentence: the nearest one; a present clause: the next within 8 months
    ("The inspection got moved. Early December.", AUTUMN, [("Early December", "December 2024")]),
    ("Worst week of my life in early September.", AUTUMN, [("early September", "September 2024")]),
    ("The tickets were $90 in June, so I grabbed two.", MON, [("June", "June 2023")]),
    ("The tickets were $90 in April, I missed them.", MON, [("April", "April 2023")]),
    ("The contractor is booked for Thursday.", MON, [("Thursday", "11 May 2023")]),
    ("Over the summer I finally learned to swim.", AUTUMN, [("the summer", "summer 2024")]),
    ("My lease ends in May.", MON, [("May", "May 2023")]),
    ("I defend my thesis in March.", AUTUMN, [("March", "March 2025")]),
    ("We play every Saturday until June.", MON, [("June", "June 2023")]),  # a habit's bound is a date
    # a past verb that arranged something dates the booking, unless a "for"/"to" names what was arranged
    (
        "I booked it on Monday with a company in Leh.",
        datetime(2024, 9, 14, 7, 40, tzinfo=UTC),
        [("Monday", "9 September 2024")],
    ),
    ("I was accepted for the summer school in May.", datetime(2025, 2, 22, tzinfo=UTC), [("May", "May 2025")]),
    ("Tiffin got accepted to the Arts Crawl in May.", datetime(2025, 4, 15, tzinfo=UTC), [("May", "May 2025")]),
    ("I've signed up for the trail race in May.", AUTUMN, [("May", "May 2025")]),
    ("I was accepted in May.", datetime(2023, 6, 9, tzinfo=UTC), [("May", "May 2023")]),
    ("They pushed it back to June because of a clash.", datetime(2025, 4, 17, tzinfo=UTC), [("June", "June 2025")]),
    (
        "The company moved me to September, same route.",
        datetime(2024, 11, 24, tzinfo=UTC),
        [("September", "September 2025")],
    ),
    ("We moved to Lisbon in May.", datetime(2023, 6, 9, tzinfo=UTC), [("May", "May 2023")]),
    ("Our flight was delayed six hours in July.", AUTUMN, [("July", "July 2024")]),
    (
        "The ferry runs from April to November.",
        datetime(2025, 5, 24, tzinfo=UTC),
        [("April", "April 2025"), ("November", "November 2025")],
    ),
    # a plan of either side of today is the nearest; "we'd" is would, not had
    ("We were going to rent a cottage in August.", datetime(2024, 7, 6, tzinfo=UTC), [("August", "August 2024")]),
    (
        "In winter we'd have to drive to the other port.",
        datetime(2024, 10, 1, tzinfo=UTC),
        [("winter", "winter 2024-2025")],
    ),
]


@pytest.mark.parametrize(("text", "reference", "expected"), CASES, ids=[c[0][:40] for c in CASES])
def test_expressions_resolve_to_their_labels(text: str, reference: datetime, expected: list[tuple[str, str]]) -> None:
    mentions = when.resolve_times(text, reference)
    assert [(m.text, m.label) for m in mentions] == expected
    for m in mentions:
        assert text[m.start : m.end] == m.text and m.first <= m.last


NOT_DATES = [
    "May I help you with that?",
    "I may go later, not sure",
    "They march on, no matter what.",
    "hold on a second",
    "I'll be there in a minute",
    "I love music from the 90s",
    "I have 2019 photos to sort",
    "out of 2000 applicants they picked me",
    "recently I started painting",
    "the other day I saw a fox",
    "that was a while ago",
    "Jan said hi to everyone",
    "April is my best friend",
    "the last week of the trip was the best",
    "I go to church every Sunday",
    "I run twice in a week",
    "the best day in a year",
    "we may march in the parade",
    "I'm 30 years old",
    "a march for climate",
    "we live on the 3rd floor",
    "I wed my best friend",
    "she broke her hip in the fall from the ladder",
    "I love Christmas music",
    "You ate nine in five days. I counted.",
    "Finally a Saturday morning where nobody needs driving anywhere",
    "I take a class on Tuesday nights",
    "Bev asked if I want to join the Thursday studio group",
    "I drove my last Saturday shift",
    "I talked to June about it",
]


@pytest.mark.parametrize("reference", [datetime(1, 1, 1), datetime(9999, 12, 31, 23, 59)])
def test_days_beyond_the_calendar_give_nothing_rather_than_an_error(reference: datetime) -> None:
    text = "999 years ago, yesterday, tomorrow, last week, next year, in June, at Christmas"
    assert all(m.first <= m.last for m in when.resolve_times(text, reference))
    assert when.annotate(when.annotate(text, reference), reference) == when.annotate(text, reference)


@pytest.mark.parametrize("text", NOT_DATES)
def test_phrases_that_are_not_dates_give_nothing(text: str) -> None:
    assert when.resolve_times(text, MON) == []


SPANS: list[tuple[str, datetime, date, date, when.Granularity]] = [
    ("last week", MON, date(2023, 5, 1), date(2023, 5, 7), "week"),
    ("last summer", MON, date(2022, 6, 1), date(2022, 8, 31), "season"),
    ("last winter", NEW_YEAR, date(2022, 12, 1), date(2023, 2, 28), "season"),
    ("a few days ago", MON, date(2023, 5, 4), date(2023, 5, 6), "day"),
    ("earlier this year", MON, date(2023, 1, 1), date(2023, 5, 8), "year"),
    ("this weekend", MON, date(2023, 5, 13), date(2023, 5, 14), "week"),
    ("in February", LEAP, date(2024, 2, 1), date(2024, 2, 29), "month"),
    ("since 2020", MON, date(2020, 1, 1), date(2020, 12, 31), "year"),
]


@pytest.mark.parametrize(("text", "reference", "first", "last", "granularity"), SPANS)
def test_spans_cover_the_named_days(
    text: str, reference: datetime, first: date, last: date, granularity: when.Granularity
) -> None:
    [mention] = when.resolve_times(text, reference)
    assert (mention.first, mention.last, mention.granularity) == (first, last, granularity)


def test_the_reference_own_wall_clock_date_is_today() -> None:
    just_after_midnight_in_berlin = datetime(2023, 5, 8, 0, 30, tzinfo=timezone(timedelta(hours=2)))
    assert [m.label for m in when.resolve_times("yesterday", just_after_midnight_in_berlin)] == ["7 May 2023"]


def test_annotate_writes_labels_after_relative_expressions_only() -> None:
    text = "I went yesterday. In 2019 we met on 7 May 2019, and two weeks ago I moved."
    assert when.annotate(text, MON) == (
        "I went yesterday [7 May 2023]. In 2019 we met on 7 May 2019, and two weeks ago [the week of 24 April 2023]"
        " I moved."
    )


@pytest.mark.parametrize("text", [c[0] for c in CASES])
def test_annotate_is_idempotent_and_labels_are_not_mentions(text: str) -> None:
    once = when.annotate(text, MON)
    assert when.annotate(once, MON) == once
    assert [m.label for m in when.resolve_times(once, MON)] == [m.label for m in when.resolve_times(text, MON)]


@pytest.mark.parametrize(
    "text",
    [
        "The geese leave in November, every year.",  # a habit
        "We usually camp at the lake in August.",
        "I always see my cousins at Christmas.",
        "Usually we meet on Sunday.",
        "They nest in August, so we came too late.",  # a present clause about a month ~a year away: a habit
    ],
)
def test_habits_give_no_date(text: str) -> None:
    assert when.resolve_times(text, AUTUMN) == []


def test_text_without_dates_is_unchanged() -> None:
    assert when.annotate("May I help you?", MON) == "May I help you?"


@pytest.mark.parametrize(
    ("day", "written"),
    [(date(2023, 5, 7), "7 May 2023"), (date(2024, 12, 1), "1 December 2024"), (date(1999, 1, 31), "31 January 1999")],
)
def test_format_day_writes_day_month_name_year(day: date, written: str) -> None:
    assert when.format_day(day) == written
