"""Due dates as people say them: "Friday", "next Friday", "tomorrow", "in 3 days", "Dec 1".

Everything is relative to a ``today`` you pass in, so results are
deterministic in tests and notebooks.  The conventions:

- a weekday ("Friday", "this Friday") is the coming one, today included;
- "next Friday" is the Friday of next week (the week starting next Monday);
- a month and day without a year ("Dec 1") is the next one on or after today;
- numeric dates other than ISO (``1/12``) are refused as ambiguous.
"""

from __future__ import annotations

import re
from datetime import date, timedelta

__all__ = ["DateParseError", "parse_due_date", "describe_date"]


class DateParseError(ValueError):
    """The text is not a due date this parser understands; the message says what to write."""


_WEEKDAYS = {
    "monday": 0, "mon": 0,
    "tuesday": 1, "tue": 1, "tues": 1,
    "wednesday": 2, "wed": 2,
    "thursday": 3, "thu": 3, "thur": 3, "thurs": 3,
    "friday": 4, "fri": 4,
    "saturday": 5, "sat": 5,
    "sunday": 6, "sun": 6,
}  # fmt: skip

_MONTHS = {
    "january": 1, "jan": 1, "february": 2, "feb": 2, "march": 3, "mar": 3,
    "april": 4, "apr": 4, "may": 5, "june": 6, "jun": 6, "july": 7, "jul": 7,
    "august": 8, "aug": 8, "september": 9, "sep": 9, "sept": 9,
    "october": 10, "oct": 10, "november": 11, "nov": 11, "december": 12, "dec": 12,
}  # fmt: skip

_NUMBER_WORDS = {
    "a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5,
    "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10,
}  # fmt: skip

_DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

_LEAD_WORDS = re.compile(r"^(?:due|by|on|before|until|for)\s+")
_WEEKDAY_RE = "|".join(sorted(_WEEKDAYS, key=len, reverse=True))
_MONTH_RE = "|".join(sorted(_MONTHS, key=len, reverse=True))
_ORDINAL = r"(?:st|nd|rd|th)?"

_RELATIVE = re.compile(r"^in\s+(\d+|" + "|".join(_NUMBER_WORDS) + r")\s+(day|days|week|weeks)$")
_WEEKDAY = re.compile(rf"^(?:(this|coming|next)\s+)?({_WEEKDAY_RE})(\s+next\s+week)?$")
_ISO = re.compile(r"^(\d{4})[-/](\d{1,2})[-/](\d{1,2})$")
_MONTH_DAY = re.compile(rf"^({_MONTH_RE})\.?\s+(\d{{1,2}}){_ORDINAL}(?:\s+(\d{{4}}))?$")
_DAY_MONTH = re.compile(rf"^(\d{{1,2}}){_ORDINAL}\s+(?:of\s+)?({_MONTH_RE})\.?(?:\s+(\d{{4}}))?$")
_NUMERIC = re.compile(r"^\d{1,2}[/.-]\d{1,2}(?:[/.-]\d{2,4})?$")

_HINT = "Try 'Friday', 'next Friday', 'tomorrow', 'in 3 days', 'Dec 1' or a date like 2026-12-01."


def parse_due_date(text: str, *, today: date | None = None) -> date:
    """The date ``text`` means, counted from ``today`` (default: the local date now).

    Raises :class:`DateParseError` with a suggestion when the text is not a
    date this understands or names a day that does not exist.
    """
    today = today or date.today()
    phrase = _clean(text)
    if not phrase:
        raise DateParseError(f"The due date is empty. {_HINT}")

    if phrase in ("today", "tonight", "eod", "end of day"):
        return today
    if phrase in ("tomorrow", "tmrw", "tmr"):
        return today + timedelta(days=1)
    if phrase in ("day after tomorrow", "the day after tomorrow"):
        return today + timedelta(days=2)

    if m := _RELATIVE.match(phrase):
        count = int(m.group(1)) if m.group(1).isdigit() else _NUMBER_WORDS[m.group(1)]
        return today + timedelta(days=count * (7 if m.group(2).startswith("week") else 1))

    if m := _WEEKDAY.match(phrase):
        modifier, weekday = m.group(1), _WEEKDAYS[m.group(2)]
        if modifier == "next" or m.group(3):
            next_monday = today + timedelta(days=7 - today.weekday())
            return next_monday + timedelta(days=weekday)
        return today + timedelta(days=(weekday - today.weekday()) % 7)

    if m := _ISO.match(phrase):
        return _make_date(int(m.group(1)), int(m.group(2)), int(m.group(3)), text)

    if m := _MONTH_DAY.match(phrase):
        return _month_day(_MONTHS[m.group(1)], int(m.group(2)), m.group(3), today, text)
    if m := _DAY_MONTH.match(phrase):
        return _month_day(_MONTHS[m.group(2)], int(m.group(1)), m.group(3), today, text)

    if _NUMERIC.match(phrase):
        raise DateParseError(
            f"{text.strip()!r} is ambiguous (day/month or month/day?); write it as YYYY-MM-DD or like 'Dec 1'."
        )
    raise DateParseError(f"Could not understand the due date {text.strip()!r}. {_HINT}")


def describe_date(day: date) -> str:
    """A short, locale-independent label such as ``Fri 8 May 2026``."""
    return f"{_DAY_NAMES[day.weekday()]} {day.day} {_MONTH_NAMES[day.month - 1]} {day.year}"


def _clean(text: str) -> str:
    phrase = " ".join(str(text).lower().replace(",", " ").split()).rstrip(".!?")
    while True:
        shorter = _LEAD_WORDS.sub("", phrase)
        if shorter == phrase:
            return phrase
        phrase = shorter


def _month_day(month: int, day: int, year: str | None, today: date, text: str) -> date:
    if year is not None:
        return _make_date(int(year), month, day, text)
    # Without a year, the next such day: check the day exists at all first
    # (Feb 29 exists in leap years, so try the next few years).
    for offset in range(0, 8):
        try:
            candidate = date(today.year + offset, month, day)
        except ValueError:
            continue
        if candidate >= today:
            return candidate
    raise DateParseError(f"{text.strip()!r} is not a real date: {_MONTH_NAMES[month - 1]} has no day {day}.")


def _make_date(year: int, month: int, day: int, text: str) -> date:
    try:
        return date(year, month, day)
    except ValueError:
        raise DateParseError(f"{text.strip()!r} is not a real date; check the month and day.") from None
