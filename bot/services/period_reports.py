"""Period reports: a period's statistics for the commune office, from the database
(service layer). Not the case report a villager makes (bot/flows/report.py).

`period_report` builds what one reader gets for a period: a short table as a chat message,
then the XLSX workbook and the PNG chart as stored files the channels send (the outbox loads
them; a channel that cannot carry files still delivers the caption). Officers ask for any
period with `/stats 2026-Q2` (the old `/report 2026-Q2` still works); report-deadline
reminders call `period_report` too.

Numbers are formatted here, in the reader's language (Babel: "1.234" in Vietnamese, "1,234"
in English); durations become texts with their unit ("45 phút", "2 giờ 5 phút"), and those
and the texts around them are rendered at the channel as usual.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from datetime import datetime
from typing import Final

from babel.dates import format_date
from babel.numbers import format_decimal

from bot import i18n
from bot.domain.local_time import LOCAL_TZ
from bot.domain.messages import Choice, Media, Reply, Text
from bot.domain.people import Person
from bot.domain.periods import Period, parse_period
from bot.domain.permissions import may_read_statistics
from bot.domain.statistics import (
    BREAKDOWNS,
    OPEN,
    CaseFacts,
    PeriodStats,
    Tally,
    duration_parts,
)
from bot.flows.routes import STATS_PREFIX
from bot.services.directory import Communes, Directory
from bot.services.report_files import (
    KNOWN_VALUES,
    LABEL_KEYS,
    VALUE_KIND,
    Durations,
    Labels,
    to_png,
    to_xlsx,
    value_key,
)
from storage import files, statistics
from storage.db import Tx
from storage.statistics import CaseFactRow

log = logging.getLogger(__name__)

XLSX_MIME: Final[str] = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PNG_MIME: Final[str] = "image/png"

# Values each kind of report_files label knows; anything else is shown as it is stored.
_KNOWN_BY_KIND: Final[dict[str, tuple[str, ...]]] = {
    VALUE_KIND[name]: values for name, values in KNOWN_VALUES.items()}
# Kinds of value the bot already names elsewhere, with the catalog prefix of those texts.
_CATALOG_PREFIX: Final[dict[str, str]] = {
    "form": "case_type", "sex": "sex", "age": "age", "urgency": "urgency", "outcome": "outcome",
}


def label_text(key: str) -> Text:
    """The catalog text for a report_files label key ("form.violence", "sheet.village").

    Values the bot already names elsewhere reuse those texts (a form is a case type); the
    rest live under "stats." (so does "outcome.open": an open case has no outcome)."""
    kind, _, value = key.partition(".")
    known = _KNOWN_BY_KIND.get(kind)
    if known is not None and value not in known:
        return Text("raw", {"text": value})
    prefix = _CATALOG_PREFIX.get(kind)
    if prefix is None or key == f"outcome.{OPEN}":
        return Text(f"stats.{key}")
    return Text(f"{prefix}.{value}")


# The label keys that have their own "stats." entries in the catalogs.
OWN_LABEL_KEYS: Final[tuple[str, ...]] = tuple(
    key for key in LABEL_KEYS if label_text(key).id.startswith("stats."))


def value_text(breakdown: str, value: str) -> Text:
    if breakdown == "village":
        return Text("raw", {"text": value}) if value else label_text("village.unknown")
    return label_text(value_key(breakdown, value))


def file_labels(language: str) -> Labels:
    """report_files' labels from the catalogs; an unknown key raises KeyError (shown as is)."""
    def label(key: str) -> str:
        text = label_text(key)
        if text.id != "raw" and text.id not in i18n.catalog(language) and (
                text.id not in i18n.catalog(i18n.DEFAULT_LOCALE)):
            raise KeyError(key)
        return i18n.render(text, language)
    return label


def number(value: float, language: str) -> str:
    return format_decimal(value, format="#,##0.#", locale=language)


def duration_text(minutes: float, language: str) -> Text:
    """A duration with its units, rounded up: "45 phút", "2 giờ 5 phút", "1 ngày 3 giờ"."""
    days, hours, mins = duration_parts(minutes)

    def n(value: int) -> str:
        return number(value, language)

    # English says "1 day" but "2 days"; hours and minutes are short for both ("1 h").
    if days == 1:
        return (Text("stats.duration.one_day_hours", {"hours": n(hours)}) if hours
                else Text("stats.duration.one_day"))
    if days and hours:
        return Text("stats.duration.days_hours", {"days": n(days), "hours": n(hours)})
    if days:
        return Text("stats.duration.days", {"days": n(days)})
    if hours and mins:
        return Text("stats.duration.hours_minutes", {"hours": n(hours), "minutes": n(mins)})
    if hours:
        return Text("stats.duration.hours", {"hours": n(hours)})
    return Text("stats.duration.minutes", {"minutes": n(mins)})


def duration_words(language: str) -> Durations:
    """duration_text rendered, for the workbook."""
    return lambda minutes: i18n.render(duration_text(minutes, language), language)


# A typed place longer than this is cut: a table row, not the reporter's sentence.
PLACE_MAX = 40


def place_name(raw: str | None) -> str:
    """A village's name, or the place a reporter typed, as one table row shows it (the same
    words typed with other spacing count together); "" when neither is known."""
    words = " ".join((raw or "").split())
    return words if len(words) <= PLACE_MAX else words[:PLACE_MAX - 1].rstrip() + "…"


def to_facts(row: CaseFactRow) -> CaseFacts:
    """The officer's confirmed form when recorded, else the first type the reporter chose."""
    form = row.confirmed_form or next((t for t in row.types.split(",") if t), "other")
    return CaseFacts(
        code=row.code, form=form, sex=row.sex, age_band=row.age_band,
        village=place_name(row.village), urgency=row.urgency, status=row.status,
        outcome=row.outcome, created_at=row.created_at, acknowledged_at=row.acknowledged_at,
        assessed_at=row.assessed_at, escalated=row.escalation_level > 1)


async def period_stats(tx: Tx, commune_id: int, period: Period,
                       villages: Iterable[str] = ()) -> PeriodStats:
    """Counted while the rows stream in, never all held; `villages` (the commune's) are
    listed even with no case."""
    start, end = period.bounds()
    tally = Tally(period, villages)
    async for chunk in statistics.case_facts(tx, commune_id, start, end):
        for row in chunk:
            tally.add(to_facts(row))
    return tally.result()


def chat_table(stats: PeriodStats, commune: str, language: str, now: datetime) -> Reply:
    """A phone-sized table: a few short paragraphs, one per breakdown, every value listed
    (zeros too), so two periods' tables read alike."""
    period = stats.period

    def n(value: float) -> str:
        return number(value, language)

    texts: list[Text] = [Text("stats.chat.title", {
        "commune": commune, "period": period.label,
        "start": format_date(period.start_local, "dd/MM/yyyy", locale=language),
        "end": format_date(period.last_local, "dd/MM/yyyy", locale=language)})]
    if now < period.bounds()[1]:
        texts.append(Text("stats.chat.so_far", {"now": now}))
    if stats.total == 0:
        texts.append(Text("stats.chat.no_cases"))
        return Reply(tuple(texts))
    texts.append(Text("stats.chat.summary", {
        "total": n(stats.total), "acknowledged": n(stats.acknowledged),
        "assessed": n(stats.assessed), "within_12h": n(stats.assessed_within_12h),
        "escalated": n(stats.escalated)}))
    # Half the cases within the median, 9 in 10 within the p90; both or neither are known.
    ack, assess = Text("stats.chat.ack_none"), Text("stats.chat.assess_none")
    if stats.ack_median_min is not None and stats.ack_p90_min is not None:
        ack = Text("stats.chat.ack_time", {
            "median": duration_text(stats.ack_median_min, language),
            "p90": duration_text(stats.ack_p90_min, language)})
    if stats.assess_median_min is not None and stats.assess_p90_min is not None:
        assess = Text("stats.chat.assess_time", {
            "median": duration_text(stats.assess_median_min, language),
            "p90": duration_text(stats.assess_p90_min, language)})
    texts.append(Text("stats.chat.times", {"ack": ack, "assess": assess}))
    for name in BREAKDOWNS:
        items = [Text("stats.chat.item", {"label": value_text(name, key), "count": n(count)})
                 for key, count in stats.breakdown(name)]
        texts.append(Text("stats.chat.breakdown", {"title": label_text(f"sheet.{name}"),
                                                   "items": items}))
    return Reply(tuple(texts))


def _render_files(stats: PeriodStats, language: str, title: str,
                  as_of: datetime) -> tuple[bytes, bytes]:
    labels = file_labels(language)
    return (to_xlsx(stats, labels, title, as_of, duration_words(language)),
            to_png(stats, labels, title))


async def period_report(tx: Tx, directory: Directory, period: Period, language: str,
                        now: datetime) -> list[Reply]:
    """The period's statistics as replies ready to enqueue for one reader: a short table
    message, the XLSX workbook as a document, the PNG chart as a photo."""
    villages = [name for _, name in directory.config.villages]
    stats = await period_stats(tx, directory.commune_id, period, villages)
    commune = directory.config.name
    title = i18n.t("stats.file.title", language, commune=commune)
    # Drawing the chart takes a few hundred milliseconds: off the event loop.
    xlsx, png = await asyncio.to_thread(_render_files, stats, language, title, now)
    base = f"safechild-{directory.config.key}-{period.label}"
    book = await files.add_file(tx, f"{base}.xlsx", XLSX_MIME, xlsx, now)
    chart = await files.add_file(tx, f"{base}.png", PNG_MIME, png, now)
    log.info("period report commune=%s period=%s cases=%s files=%s,%s", directory.commune_id,
             period.label, stats.total, book.id, chart.id)
    return [
        chat_table(stats, commune, language, now),
        Reply((Text("stats.file.workbook", {"period": period.label}),),
              media=Media("document", "stored", str(book.id), book.name)),
        Reply((Text("stats.file.chart", {"period": period.label}),),
              media=Media("photo", "stored", str(chart.id), chart.name)),
    ]


def period_choices(now: datetime) -> Reply:
    """/stats with no period (the staff menu's button): how to type one, and a button each
    for this month, this quarter, the last quarter and this year."""
    today = now.astimezone(LOCAL_TZ).date()
    quarter = (today.month - 1) // 3 + 1
    last = (today.year, quarter - 1) if quarter > 1 else (today.year - 1, 4)

    def button(period: Period, label: Text) -> Choice:
        return Choice(f"{STATS_PREFIX}{period.label}", label)

    return Reply((Text("stats.usage"),), (
        button(Period("month", today.year, today.month),
               Text("stats.pick.month", {"month": f"{today.month:02d}", "year": today.year})),
        button(Period("quarter", today.year, quarter),
               Text("stats.pick.quarter", {"quarter": quarter, "year": today.year})),
        button(Period("quarter", *last),
               Text("stats.pick.quarter", {"quarter": last[1], "year": last[0]})),
        button(Period("year", today.year), Text("stats.pick.year", {"year": today.year})),
    ))


class PeriodReports:
    """/stats <period>: a period's statistics for the commune office."""

    def __init__(self, communes: Communes) -> None:
        self.communes = communes

    async def command(self, tx: Tx, person: Person, args: str, now: datetime) -> list[Reply]:
        if (not may_read_statistics(person.role)
                or self.communes.get(person.commune_id) is None):
            return [Reply((Text("stats.not_allowed"),))]
        if not args.strip():
            return [period_choices(now)]
        try:
            period = parse_period(args)
            # Year 1's local midnight falls before the first UTC instant: no such period.
            period.bounds()
        except (ValueError, OverflowError):
            return [Reply((Text("stats.usage"),))]
        if period.start_local > now.astimezone(LOCAL_TZ).date():
            return [Reply((Text("stats.future", {"period": period.label}),))]
        log.info("period report asked person=%s period=%s", person.id, period.label)
        return list(await period_report(tx, self.communes.of(person.commune_id), period,
                                        person.language, now))
