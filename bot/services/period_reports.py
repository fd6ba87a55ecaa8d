"""Period reports: a period's statistics for the commune office, from the database
(service layer). Not the case report a villager makes (bot/flows/report.py).

`period_report` builds what one reader gets for a period: a short table as a chat message,
then the XLSX workbook and the PNG chart as stored files the channels send (the outbox loads
them; a channel that cannot carry files still delivers the caption). Officers ask for any
period with `/stats 2026-Q2` (the old `/report 2026-Q2` still works); report-deadline
reminders call `period_report` too.

A province's people who may read statistics get the province's report (`province_report`):
the same table for the whole province, each commune's count of cases, a workbook with a
row per commune in each breakdown, and a chart of the cases per commune. Every commune's
cases are counted on their own, as its own report counts them, then added up: the
province's figures are the sums of its communes', exactly.

Numbers are formatted here, in the reader's language (Babel: "1.234" in Vietnamese, "1,234"
in English); durations become texts with their unit ("45 phút", "2 giờ 5 phút"), and those
and the texts around them are rendered at the channel as usual.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Final

from babel.dates import format_date
from babel.numbers import format_decimal

from bot import i18n
from bot.domain.folding import without_marks
from bot.domain.local_time import LOCAL_TZ
from bot.domain.messages import Choice, Media, Reply, Text
from bot.domain.people import Person
from bot.domain.periods import Period, parse_period
from bot.domain.permissions import may_read_statistics
from bot.domain.statistics import (
    BREAKDOWNS,
    OPEN,
    PROVINCE_BREAKDOWNS,
    UNKNOWN_SETTING,
    PeriodStats,
    Tally,
    duration_parts,
    village_sort_key,
)
from bot.flows.routes import STATS_PREFIX
from bot.services.directory import Communes, Directory
from bot.services.report_files import (
    KNOWN_VALUES,
    LABEL_KEYS,
    VALUE_KIND,
    Durations,
    Labels,
    province_png,
    province_xlsx,
    to_png,
    to_xlsx,
    value_key,
)
from storage import audit, files, people, statistics
from storage.db import Tx
from storage.statistics import Part

log = logging.getLogger(__name__)

XLSX_MIME: Final[str] = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PNG_MIME: Final[str] = "image/png"

# Values each kind of report_files label knows; anything else is shown as it is stored.
_KNOWN_BY_KIND: Final[dict[str, tuple[str, ...]]] = {
    VALUE_KIND[name]: values for name, values in KNOWN_VALUES.items()}
# Kinds of value the bot already names elsewhere, with the catalog prefix of those texts.
_CATALOG_PREFIX: Final[dict[str, str]] = {
    "form": "case_type", "sex": "sex", "age": "age", "urgency": "urgency", "outcome": "outcome",
    "setting": "setting",
}


def label_text(key: str) -> Text:
    """The catalog text for a report_files label key ("form.violence", "sheet.village").

    Values the bot already names elsewhere reuse those texts (a form is a case type); the
    rest live under "stats." (so do "outcome.open": an open case has no outcome, and
    "setting.unknown": not assessed yet)."""
    kind, _, value = key.partition(".")
    known = _KNOWN_BY_KIND.get(kind)
    if known is not None and value not in known:
        return Text("raw", {"text": value})
    prefix = _CATALOG_PREFIX.get(kind)
    if prefix is None or key in (f"outcome.{OPEN}", f"setting.{UNKNOWN_SETTING}"):
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


def _first_type(types: str) -> str:
    return next((t for t in types.split(",") if t), "other")


async def period_tallies(tx: Tx, villages: Mapping[int, Iterable[str]],
                         period: Period) -> dict[int, Tally]:
    """Each commune's cases of the period (`villages`: its village names by commune id,
    listed even with no case), counted by the database in one statement, never all held:
    counts by breakdown, and the times of each case that has one."""
    start, end = period.bounds()
    tallies = {commune_id: Tally(period, names) for commune_id, names in villages.items()}
    places: dict[str | None, str] = {}
    async for chunk in statistics.case_counts(tx, list(tallies), start, end):
        # Unpacked, not read by name: a province's year is 75,000 rows of times.
        for part, commune_id, first, second, third, level, n, made, ack, done in chunk:
            tally = tallies[commune_id]
            if part == Part.TIMES:
                # Each case's own: the medians and p90s are of all the cases' times.
                assert made is not None  # every case has one
                tally.add_times(made, ack, done)
            elif part == Part.FORM:
                # The officer's confirmed form, else the reporter's first type.
                tally.add_counted("form", first or _first_type(second or ""), n)
            elif part == Part.PEOPLE:
                tally.add_counted("sex", first, n)
                tally.add_counted("age_band", second, n)
                tally.add_counted("setting", third, n)
            elif part == Part.HANDLING:
                tally.add_counted("urgency", first, n)
                tally.add_counted("status", second, n)
                tally.add_counted("outcome", third, n)
                tally.add_cases(n, escalated=(level or 0) > 1)
            elif part == Part.PLACE:
                # Typed places that differ only in spacing count together.
                place = places.get(first)
                if place is None:
                    place = places[first] = place_name(first)
                tally.add_counted("village", place, n)
    return tallies


async def period_tally(tx: Tx, commune_id: int, period: Period,
                       villages: Iterable[str] = ()) -> Tally:
    """The commune's cases of the period counted (`period_tallies`)."""
    return (await period_tallies(tx, {commune_id: villages}, period))[commune_id]


async def period_stats(tx: Tx, commune_id: int, period: Period,
                       villages: Iterable[str] = ()) -> PeriodStats:
    """`period_tally`'s figures."""
    return (await period_tally(tx, commune_id, period, villages)).result()


def chat_table(stats: PeriodStats, commune: str, language: str, now: datetime,
               province: bool = False) -> Reply:
    """A phone-sized table: a few short paragraphs, one per breakdown, every value listed
    (zeros too), so two periods' tables read alike. A province's (`province`) says so in
    its title and has its breakdowns (by setting; villages are each commune's own)."""
    period = stats.period

    def n(value: float) -> str:
        return number(value, language)

    start = format_date(period.start_local, "dd/MM/yyyy", locale=language)
    end = format_date(period.last_local, "dd/MM/yyyy", locale=language)
    texts: list[Text] = [
        Text("stats.chat.province_title", {"province": commune, "period": period.label,
                                           "start": start, "end": end}) if province
        else Text("stats.chat.title", {"commune": commune, "period": period.label,
                                       "start": start, "end": end})]
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
    for name in PROVINCE_BREAKDOWNS if province else BREAKDOWNS:
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


async def _audit_made(tx: Tx, commune_id: int, reader_id: int | None, period: Period,
                      file_ids: Sequence[int], now: datetime) -> None:
    """Statistics made for a reader (None: the calendar's reminder): a read of the commune's
    figures, on its audit chain, with no case."""
    await audit.record(tx, commune_id=commune_id, actor_id=reader_id, action="stats_made",
                       at=now, detail={"period": period.label, "files": list(file_ids)})


async def period_report(tx: Tx, directory: Directory, period: Period, language: str,
                        now: datetime, reader_id: int | None = None) -> list[Reply]:
    """The period's statistics as replies ready to enqueue for one reader: a short table
    message, the XLSX workbook as a document, the PNG chart as a photo."""
    villages = [name for _, name in directory.config.villages]
    stats = await period_stats(tx, directory.commune_id, period, villages)
    commune = directory.config.name
    title = i18n.t("stats.file.title", language, commune=commune)
    # Drawing the chart takes a few hundred milliseconds: off the event loop.
    xlsx, png = await asyncio.to_thread(_render_files, stats, language, title, now)
    base = f"safechild-{directory.config.key}-{period.label}"
    book = await files.add_file(tx, f"{base}.xlsx", XLSX_MIME, xlsx, now,
                                commune_id=directory.commune_id)
    chart = await files.add_file(tx, f"{base}.png", PNG_MIME, png, now,
                                 commune_id=directory.commune_id)
    await _audit_made(tx, directory.commune_id, reader_id, period, (book.id, chart.id), now)
    log.info("period report commune=%s period=%s cases=%s files=%s,%s", directory.commune_id,
             period.label, stats.total, book.id, chart.id)
    return [
        chat_table(stats, commune, language, now),
        Reply((Text("stats.file.workbook", {"period": period.label}),),
              media=Media("document", "stored", str(book.id), book.name)),
        Reply((Text("stats.file.chart", {"period": period.label}),),
              media=Media("photo", "stored", str(chart.id), chart.name)),
    ]


# Communes in one message of a province's per-commune list: Zalo takes 2,000 characters,
# Telegram 4,096, and a province may have 166 communes.
COMMUNES_PER_MESSAGE: Final[int] = 60


def commune_lines(communes: Sequence[tuple[str, PeriodStats]], language: str) -> list[Reply]:
    """Each commune's count of cases, a line each, in messages of COMMUNES_PER_MESSAGE."""
    lines = [i18n.t("stats.chat.commune", language, commune=name,
                    count=number(stats.total, language)) for name, stats in communes]
    replies: list[Reply] = []
    for first in range(0, len(lines), COMMUNES_PER_MESSAGE):
        block = Text("raw", {"text": "\n".join(lines[first:first + COMMUNES_PER_MESSAGE])})
        replies.append(Reply((Text("stats.chat.communes", {
            "count": number(len(lines), language), "lines": block}),) if first == 0
            else (block,)))
    return replies


def file_slug(name: str) -> str:
    """A name as a file's name carries it: "Thanh Hóa" -> "thanh-hoa"."""
    words = "".join(c if c.isalnum() else " " for c in without_marks(name).lower()).split()
    return "-".join(words) or "province"


def _render_province_files(province: PeriodStats, communes: Sequence[tuple[str, PeriodStats]],
                           language: str, title: str, as_of: datetime) -> tuple[bytes, bytes]:
    labels = file_labels(language)
    return (province_xlsx(province, communes, labels, title, as_of, duration_words(language)),
            province_png(province, communes, labels, title))


async def province_figures(tx: Tx, communes: Communes, period: Period
                           ) -> tuple[PeriodStats, list[tuple[str, PeriodStats]]]:
    """The province's figures and each commune's (by name), each commune's cases counted
    as its own report counts them; the province's are their sums, its medians those of
    all its cases' times."""
    ordered = sorted(communes, key=lambda d: village_sort_key(d.config.name))
    tallies = await period_tallies(
        tx, {d.commune_id: [name for _, name in d.config.villages] for d in ordered}, period)
    province = Tally.combined(period, tallies.values()).result()
    return province, [(d.config.name, tallies[d.commune_id].result()) for d in ordered]


async def province_report(tx: Tx, communes: Communes, period: Period, language: str,
                          now: datetime, reader_id: int | None = None) -> list[Reply]:
    """The province's statistics for one reader: its table, each commune's count of cases,
    the workbook (a row per commune in each breakdown) and the chart (cases per commune)."""
    province, per_commune = await province_figures(tx, communes, period)
    name = communes.province_name
    title = i18n.t("stats.file.province_title", language, province=name)
    xlsx, png = await asyncio.to_thread(_render_province_files, province, per_commune,
                                        language, title, now)
    base = f"safechild-{file_slug(name)}-{period.label}"
    # The province's own row holds its figures' audit chain (and its files).
    owner = communes.province_id
    book = await files.add_file(tx, f"{base}.xlsx", XLSX_MIME, xlsx, now, commune_id=owner)
    chart = await files.add_file(tx, f"{base}.png", PNG_MIME, png, now, commune_id=owner)
    if owner is not None:
        await _audit_made(tx, owner, reader_id, period, (book.id, chart.id), now)
    log.info("province report communes=%s period=%s cases=%s files=%s,%s", len(per_commune),
             period.label, province.total, book.id, chart.id)
    return [
        chat_table(province, name, language, now, province=True),
        *(commune_lines(per_commune, language) if province.total else ()),
        Reply((Text("stats.file.province_workbook", {"period": period.label}),),
              media=Media("document", "stored", str(book.id), book.name)),
        Reply((Text("stats.file.province_chart", {"period": period.label}),),
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
    """/stats <period>: a period's statistics for the commune office, or the province's
    for its people."""

    def __init__(self, communes: Communes) -> None:
        self.communes = communes

    def of_province(self, person: Person) -> bool:
        return (self.communes.province_id is not None
                and person.commune_id == self.communes.province_id)

    async def command(self, tx: Tx, person: Person, args: str, now: datetime) -> list[Reply]:
        province = self.of_province(person)
        # Someone who works in several communes reads each one's where their role there
        # may: one report per commune, each naming it.
        readable = [] if province else [
            row for row in await people.rows_of_account(tx, person.account)
            if may_read_statistics(row.role) and self.communes.get(row.commune_id) is not None]
        if not (readable or (province and may_read_statistics(person.role))):
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
        if province:
            return await province_report(tx, self.communes, period, person.language, now,
                                         reader_id=person.id)
        return [reply for row in readable
                for reply in await period_report(tx, self.communes.of(row.commune_id), period,
                                                 person.language, now, reader_id=row.id)]
