"""An admin adds an event to the commune's reminder calendar from chat (flow layer).

The rule is typed in the same syntax as the config file ("yearly 06-01", "lunar 08-15"...), so
one parser checks both; the host stores the event when the flow submits `calendar_add`, and
checks again there that the person is an admin.
"""

from __future__ import annotations

import re
from typing import Any, Final

from bot.domain.commune_calendar import (
    MAX_DAYS_BEFORE,
    MAX_TITLE,
    LunarRule,
    MonthlyDayRule,
    MonthlyWeekdayRule,
    OnceRule,
    QuarterlyRule,
    Rule,
    YearlyRule,
    day_text,
    parse_rule,
)
from bot.domain.messages import Choice, Input, Text
from bot.domain.roles import Role
from bot.flows.effects import AddCalendarEvent
from bot.flows.engine import Context, Flow, Go, Outcome, Retry, State
from bot.flows.steps import ask_text, choose, meaningful

# More lead days than this is a nag, not a reminder.
MAX_LEADS: Final[int] = 5
DEFAULT_AT: Final[str] = "08:00"

WHO: Final[dict[str, tuple[Role, ...]]] = {
    "collaborator": (Role.COLLABORATOR,),
    "officer": (Role.OFFICER,),
    "both": (Role.OFFICER, Role.COLLABORATOR),
    "staff": (Role.OFFICER, Role.POLICE, Role.LEADER),
    # A province's report writers (its defaults' roles: bot/default_province_calendar.toml).
    "province": (Role.OFFICER, Role.LEADER),
}
WHO_CHOICES: Final[tuple[Choice, ...]] = (
    Choice("who:collaborator", Text("calendar.add.who.collaborator")),
    Choice("who:officer", Text("calendar.add.who.officer")),
    Choice("who:both", Text("calendar.add.who.both")),
    Choice("who:staff", Text("calendar.add.who.staff")),
)
# A province's own calendar reminds the province's people: it has no collaborators.
PROVINCE_WHO_CHOICES: Final[tuple[Choice, ...]] = (
    Choice("who:province", Text("calendar.add.who.province")),
    Choice("who:staff", Text("calendar.add.who.province_staff")),
)
WHO_LABELS: Final[dict[str, Text]] = {c.id.split(":", 1)[1]: c.label for c in WHO_CHOICES}
PROVINCE_WHO_LABELS: Final[dict[str, Text]] = {
    c.id.split(":", 1)[1]: c.label for c in PROVINCE_WHO_CHOICES}


def at_province(ctx: Context) -> bool:
    """The admin is one of the province's own people (of no commune), so the calendar is
    the province's."""
    return ctx.needs_commune


def who_choices(state: State, ctx: Context) -> tuple[Choice, ...]:
    return PROVINCE_WHO_CHOICES if at_province(ctx) else WHO_CHOICES

WEEKDAY_TEXTS: Final[tuple[Text, ...]] = (
    Text("calendar.weekday.monday"), Text("calendar.weekday.tuesday"),
    Text("calendar.weekday.wednesday"), Text("calendar.weekday.thursday"),
    Text("calendar.weekday.friday"), Text("calendar.weekday.saturday"),
    Text("calendar.weekday.sunday"),
)
ORDINAL_TEXTS: Final[dict[int, Text]] = {
    1: Text("calendar.ordinal.first"), 2: Text("calendar.ordinal.second"),
    3: Text("calendar.ordinal.third"), 4: Text("calendar.ordinal.fourth"),
    -1: Text("calendar.ordinal.last"),
}

_HH_MM = re.compile(r"(\d{1,2})[:hH.](\d{2})")


def rule_words(rule: Rule) -> Text:
    """A rule as a villager reads it: "every year on 01/06", not "yearly 06-01"."""
    if isinstance(rule, YearlyRule):
        return Text("calendar.rule.yearly", {"day": f"{rule.day:02d}",
                                             "month": f"{rule.month:02d}"})
    if isinstance(rule, QuarterlyRule):
        return Text("calendar.rule.quarterly", {"day": rule.day, "month": rule.month})
    if isinstance(rule, LunarRule):
        return Text("calendar.rule.lunar", {"day": f"{rule.day:02d}",
                                            "month": f"{rule.month:02d}"})
    if isinstance(rule, MonthlyDayRule):
        return Text("calendar.rule.monthly_day", {"day": rule.day})
    if isinstance(rule, MonthlyWeekdayRule):
        return Text("calendar.rule.monthly_weekday", {"weekday": WEEKDAY_TEXTS[rule.weekday],
                                                      "ordinal": ORDINAL_TEXTS[rule.nth]})
    assert isinstance(rule, OnceRule)
    return Text("calendar.rule.once", {"date": day_text(rule.day)})


def parse_days(text: str) -> tuple[int, ...] | None:
    """ "7, 1, 0" -> (7, 1, 0): distinct whole days 0..MAX_DAYS_BEFORE, at most MAX_LEADS."""
    parts = [p for p in re.split(r"[\s,;]+", text.strip()) if p]
    if not parts or len(parts) > MAX_LEADS or not all(p.isdigit() for p in parts):
        return None
    days = tuple(int(p) for p in parts)
    if len(set(days)) != len(days) or any(d > MAX_DAYS_BEFORE for d in days):
        return None
    return tuple(sorted(days, reverse=True))


def parse_at(text: str) -> str | None:
    """ "7:30", "07h30", "14.00" -> "07:30" / "14:00"; None when not a time of day."""
    match = _HH_MM.fullmatch(text.strip())
    if match is None:
        return None
    hour, minute = int(match[1]), int(match[2])
    if hour > 23 or minute > 59:
        return None
    return f"{hour:02d}:{minute:02d}"


def on_title(inp: Input, state: State, ctx: Context) -> Outcome:
    title = " ".join(inp.text.split()) if inp.kind == "text" else ""
    if not meaningful(title) or len(title) > MAX_TITLE:
        return Retry(Text("calendar.add.bad_title"))
    return Go("rule", {"title": title})


def on_rule(inp: Input, state: State, ctx: Context) -> Outcome:
    if inp.kind != "text":
        return Retry(Text("calendar.add.bad_rule"))
    try:
        rule = parse_rule(inp.text)
    except ValueError:
        return Retry(Text("calendar.add.bad_rule"))
    return Go("who", {"rule": str(rule)})


def on_who(picked: str, state: State, ctx: Context) -> Outcome:
    return Go("days", {"who": picked.split(":", 1)[1]})


def _answer(inp: Input) -> str | None:
    """A tapped option's value (a typed option label arrives as the option), or the typed
    text. Not `pick`: a typed "1" here means one day or one o'clock, not the first button."""
    if inp.kind == "choice":
        return inp.choice.split(":", 1)[1]
    if inp.kind != "text":
        return None
    return inp.text


def on_days(inp: Input, state: State, ctx: Context) -> Outcome:
    raw = _answer(inp)
    days = parse_days(raw) if raw is not None else None
    if days is None:
        return Retry(Text("calendar.add.bad_days"))
    return Go("at", {"days_before": list(days)})


def on_at(inp: Input, state: State, ctx: Context) -> Outcome:
    raw = _answer(inp)
    at = parse_at(raw) if raw is not None else None
    if at is None:
        return Retry(Text("calendar.add.bad_at"))
    return Go("confirm", {"at": at})


def on_save(picked: str, state: State, ctx: Context) -> Outcome:
    data = state.data
    return Go(None, effects=(AddCalendarEvent(
        title=data["title"], rule=data["rule"], roles=WHO[data["who"]],
        days_before=tuple(data["days_before"]), at=data["at"],
        commune_id=data["commune_id"] if isinstance(data.get("commune_id"), int) else None),))


def summary(state: State, ctx: Context) -> dict[str, Any]:
    data = state.data
    try:
        rule: Text | str = rule_words(parse_rule(data["rule"]))
    except (KeyError, ValueError):
        rule = "-"
    days = data.get("days_before") or [0]
    return {"title": data.get("title", "-"), "rule": rule,
            "who": (PROVINCE_WHO_LABELS if at_province(ctx) else WHO_LABELS).get(
                str(data.get("who")), "-"),
            "days": ", ".join(str(d) for d in days), "at": data.get("at", DEFAULT_AT)}


DAYS_CHOICES = (Choice("days:0", Text("calendar.add.days.same_day")),
                Choice("days:7,1,0", Text("calendar.add.days.week")))
AT_CHOICES = (Choice(f"at:{DEFAULT_AT}", Text("calendar.add.at.default")),)
SAVE = (Choice("calendar:save", Text("calendar.add.save")),)

CALENDAR_ADD = Flow("calendar_add", first="title", steps={
    "title": ask_text("title", "calendar.add.title", on_title, frozenset({"rule"})),
    "rule": ask_text("rule", "calendar.add.rule", on_rule, frozenset({"who"})),
    "who": choose("who", "calendar.add.who", who_choices, on_who, frozenset({"days"})),
    "days": ask_text("days", "calendar.add.days", on_days, frozenset({"at"}),
                     options=DAYS_CHOICES, labels_typed=True),
    "at": ask_text("at", "calendar.add.at", on_at, frozenset({"confirm"}), options=AT_CHOICES,
                   labels_typed=True),
    "confirm": choose("confirm", "calendar.add.confirm", SAVE, on_save, params=summary),
})
