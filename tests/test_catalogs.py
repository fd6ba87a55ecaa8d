"""The gettext catalogs cover every message id the code can use, in every language, with the
placeholders its call sites pass, and render with real parameters.

Ids come from two places: literal ids found in bot/**/*.py (Text("…"), say("…"), prompts of
choose()/ask_text(), i18n.t("…")), and f-string families (Text(f"case_type.{t}")) expanded from
the code's own constants. A new f-string family fails the test until it is listed in FAMILIES.
"""

from __future__ import annotations

import ast
import inspect
import re
import string
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from babel.messages.pofile import read_po

from bot import i18n
from bot.config import load_default_calendar
from bot.domain import alerts, cases
from bot.domain.cases import DEADLINE_STEPS, URGENCIES
from bot.domain.messages import Reply, Text
from bot.domain.roles import INVITABLE, Role
from bot.flows import case_team, help, report, routes
from bot.services import period_reports
from tests.support.catalog_samples import DUE, built_replies

ROOT = Path(__file__).resolve().parent.parent
LOCALES = ("vi", "en")
MAX_BUTTON = 36  # Telegram and Zalo cut long labels; buttons stay short

ID = r"[a-z][a-z_]*(?:\.[A-Za-z0-9_\-]+)*"
LITERAL_PATTERNS = (
    # Text("id", …), say("id", …), Retry(Text("id")), Choice(…, Text("id")), i18n.t("id")
    re.compile(rf'\b(?:Text|say|t)\(\s*"({ID})"'),
    # Text("a" if … else "b", …)
    re.compile(rf'\bText\(\s*"{ID}"\s+if\s+[^"\n]*?\s+else\s+"({ID})"'),
    # choose("step", "prompt.id", …) and ask_text("step", "prompt.id", …)
    re.compile(rf'\b(?:choose|ask_text)\(\s*"[^"]*",\s*"({ID})"'),
)
FSTRING = re.compile(r'\b(?:Text|say|t)\(\s*f"([^"]*)"')


def labels(*groups: tuple[Any, ...]) -> set[str]:
    return {c.label.id for group in groups for c in group}


def coarse_statuses() -> set[str]:
    """The values cases.coarse_status can return, read from its own source."""
    tree = ast.parse(inspect.getsource(cases.coarse_status))
    return {node.value.value for node in ast.walk(tree)
            if isinstance(node, ast.Return) and isinstance(node.value, ast.Constant)}


@cache
def families() -> dict[str, frozenset[str]]:
    """Each f-string id shape in the code (braces replaced by *) and the ids it can produce."""
    table = {
        "case_type.*": {f"case_type.{t}" for t in cases.CASE_TYPES},
        "age.*": {f"age.{a}" for a in cases.AGE_BANDS},
        "sex.*": {f"sex.{s}" for s in cases.SEXES},
        "urgency.*": {f"urgency.{u}" for u in URGENCIES},
        "report.next.*": {f"report.next.{u}" for u in URGENCIES},
        "step.*": {f"step.{s}" for s in DEADLINE_STEPS},
        "report.step.*": {f"report.step.{s}" for s in report.REPORT.steps},
        "report.danger.*": labels(report.DANGER),
        # report._opts builds Text(f"{label_prefix}.{v}") for these option groups.
        "*.*": labels(report.DANGER, report.AGES, report.SEX, report.COUNTS, report.CONTACT),
        "help.*": {f"help.{t}" for t in help.TOPICS},
        "help.*.button": {f"help.{t}.button" for t in help.TOPICS},
        "status.*": {f"status.{s}" for s in coarse_statuses()},
        "case.button.*": {f"case.button.{a}" for a in (*alerts.ACTIONS, *alerts.FOLLOW_UP)},
        "risk.*": labels(case_team.RISK_CHOICES),
        "setting.*": labels(case_team.SETTING_CHOICES),
        "outcome.*": labels(case_team.OUTCOME_CHOICES),
        "milestone.*": labels(case_team.MILESTONE_CHOICES),
        "role.*": {f"role.{r}" for r in INVITABLE},
        # telegram.commands describes each command of any role's command menu.
        "command.*": {f"command.{n}" for r in Role for n in routes.command_menu(r)},
        # telegram.render asks for a location or a contact with a reply-keyboard button.
        "telegram.share_*": {"telegram.share_location", "telegram.share_contact"},
        # reminders.title_of: every default calendar event has a catalog title.
        "calendar.event.*": {f"calendar.event.{e.key}" for e in load_default_calendar()},
        # reports.label_text: statistics labels without a catalog entry elsewhere.
        "stats.*": {f"stats.{k}" for k in period_reports.OWN_LABEL_KEYS},
    }
    return {shape: frozenset(ids) for shape, ids in table.items()}


def shape_of(template: str) -> str:
    return re.sub(r"\{[^{}]*\}", "*", template)


def sources() -> Iterator[tuple[Path, str]]:
    for path in sorted((ROOT / "bot").rglob("*.py")):
        yield path, path.read_text(encoding="utf-8")


@cache
def literal_ids() -> frozenset[str]:
    found: set[str] = set()
    for _, text in sources():
        for pattern in LITERAL_PATTERNS:
            found.update(pattern.findall(text))
    return frozenset(found)


@cache
def fstring_shapes() -> dict[str, str]:
    """Every f-string id shape used in the code, with one place it is used."""
    found: dict[str, str] = {}
    for path, text in sources():
        for match in FSTRING.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            found.setdefault(shape_of(match.group(1)), f"{path.relative_to(ROOT)}:{line}")
    return found


# ---- what the code passes: call sites read with ast, replies built by the real code -------

def _ids_of(node: ast.expr) -> tuple[set[str], bool] | None:
    """The ids an id argument can be, and whether they came from an f-string family."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return {node.value}, False
    if isinstance(node, ast.IfExp):
        body, orelse = _ids_of(node.body), _ids_of(node.orelse)
        if body and orelse and not body[1] and not orelse[1]:
            return body[0] | orelse[0], False
        return None
    if isinstance(node, ast.JoinedStr):
        shape = "".join(v.value if isinstance(v, ast.Constant) else "*" for v in node.values)
        return set(families().get(shape, ())), True
    return None


def _keys_of(call: ast.Call, name: str) -> frozenset[str] | None:
    if name == "Text":
        if len(call.args) == 1 and not call.keywords:
            return frozenset()
        params = call.args[1] if len(call.args) > 1 else None
        if isinstance(params, ast.Dict) and all(
                isinstance(k, ast.Constant) and isinstance(k.value, str) for k in params.keys):
            return frozenset(k.value for k in params.keys)  # type: ignore[union-attr]
        return None
    keys = [k.arg for k in call.keywords if k.arg not in ("choices", "request", "phones")]
    return None if None in keys else frozenset(k for k in keys if k is not None)


def static_sites() -> dict[str, set[frozenset[str]]]:
    """Id -> the sets of parameter names its Text(…)/say(…) call sites pass."""
    literal: dict[str, set[frozenset[str]]] = {}
    family: dict[str, set[frozenset[str]]] = {}
    for _, text in sources():
        for node in ast.walk(ast.parse(text)):
            if not (isinstance(node, ast.Call) and node.args):
                continue
            func = node.func
            name = func.id if isinstance(func, ast.Name) else None
            if name not in ("Text", "say"):
                continue
            ids, keys = _ids_of(node.args[0]), _keys_of(node, name)
            if ids is None or keys is None:
                continue
            target = family if ids[1] else literal
            for msgid in ids[0]:
                target.setdefault(msgid, set()).add(keys)
    # A literal call site says more than a family that could, in principle, produce the id.
    return literal | {i: k for i, k in family.items() if i not in literal}


def texts_in(reply: Reply) -> Iterator[Text]:
    def walk(text: Text) -> Iterator[Text]:
        yield text
        for value in text.params.values():
            for item in value if isinstance(value, list | tuple) else (value,):
                if isinstance(item, Text):
                    yield from walk(item)

    for text in (*reply.texts, *(c.label for c in reply.choices)):
        yield from walk(text)


@cache
def built_sites() -> dict[str, set[frozenset[str]]]:
    sites: dict[str, set[frozenset[str]]] = {}
    for reply in built_replies():
        for text in texts_in(reply):
            sites.setdefault(text.id, set()).add(frozenset(text.params))
    return sites


@cache
def all_ids() -> frozenset[str]:
    ids = set(literal_ids()) | set(built_sites())
    for shape in fstring_shapes():
        ids |= families().get(shape, frozenset())
    return frozenset(ids)


def placeholders(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}


def read_catalog_file(locale: str) -> Any:
    with i18n.catalog_file(locale).open("rb") as fh:
        return read_po(fh, locale=locale)


# ---- the tests ---------------------------------------------------------------------------


def test_every_fstring_id_family_is_known() -> None:
    unknown = {shape: where for shape, where in fstring_shapes().items()
               if shape not in families()}
    assert unknown == {}, "expand these f-string ids in FAMILIES (tests/test_catalogs.py)"


def test_the_scan_finds_the_ids_it_should() -> None:
    ids = all_ids()
    for expected in ("raw", "welcome", "report.danger.prompt", "report.type.option",
                     "report.type.chosen", "report.contact.allow", "error.use_buttons",
                     "report.count.4", "age.unknown", "step.plan_approved",
                     "report.step.review", "help.drowning.button", "help.officer.none",
                     "status.handling", "status.bad_code", "case.button.reply",
                     "milestone.referral", "language.en", "alert.deadlines"):
        assert expected in ids
    assert len(ids) > 150


@pytest.mark.parametrize("locale", LOCALES)
def test_every_id_is_translated(locale: str) -> None:
    catalog = i18n.catalog(locale)
    missing = sorted(i for i in all_ids() if not catalog.get(i, "").strip())
    assert missing == []


@pytest.mark.parametrize("locale", LOCALES)
def test_no_unused_entries(locale: str) -> None:
    unused = sorted(set(i18n.catalog(locale)) - all_ids())
    assert unused == []


def test_catalog_files_are_parallel_and_clean() -> None:
    order = {}
    for locale in LOCALES:
        po = read_catalog_file(locale)
        assert str(po.locale) == locale
        assert not po.fuzzy and not [m.id for m in po if m.id and m.fuzzy]
        order[locale] = [m.id for m in po if m.id]
        assert len(order[locale]) == len(set(order[locale]))
    assert order["vi"] == order["en"]


@pytest.mark.parametrize("locale", LOCALES)
def test_templates_are_well_formed(locale: str) -> None:
    """Only named {placeholders}: no positional ones, no format specs, no stray braces."""
    bad = []
    for msgid, template in i18n.catalog(locale).items():
        for literal, name, spec, conversion in string.Formatter().parse(template):
            if "{" in literal or "}" in literal or spec or conversion or (
                    name is not None and not name.isidentifier()):
                bad.append(msgid)
    assert bad == []
    assert i18n.catalog(locale)["raw"] == "{text}"


def test_placeholders_are_the_same_in_every_language() -> None:
    vi, en = i18n.catalog("vi"), i18n.catalog("en")
    assert set(vi) == set(en)
    assert [i for i in sorted(vi) if placeholders(vi[i]) != placeholders(en[i])] == []


@pytest.mark.parametrize("locale", LOCALES)
def test_placeholders_are_exactly_what_the_code_passes(locale: str) -> None:
    catalog = i18n.catalog(locale)
    sites: dict[str, set[frozenset[str]]] = {}
    for found in (static_sites(), built_sites()):
        for msgid, keys in found.items():
            sites.setdefault(msgid, set()).update(keys)
    assert len(sites) > 150
    wrong = {msgid: (sorted(placeholders(catalog[msgid])), sorted(map(sorted, keys)))
             for msgid, keys in sites.items()
             if msgid in catalog and any(placeholders(catalog[msgid]) != k for k in keys)}
    assert wrong == {}


@pytest.mark.parametrize("locale", LOCALES)
def test_replies_render_completely(locale: str) -> None:
    """Every reply the code builds renders with no {placeholder} or raw id left over."""
    for reply in built_replies():
        for text in (*reply.texts, *(c.label for c in reply.choices)):
            rendered = i18n.render(text, locale)
            assert rendered.strip() and rendered != text.id, text
            assert "{" not in rendered and "}" not in rendered, (text, rendered)


@pytest.mark.parametrize("locale", LOCALES)
def test_buttons_are_short_and_distinct(locale: str) -> None:
    """Typed answers are matched to buttons by label, so labels in one reply must differ."""
    for reply in built_replies():
        shown = [i18n.render(c.label, locale) for c in reply.choices]
        assert len(shown) == len({s.casefold() for s in shown}), shown
        assert [s for s in shown if len(s) > MAX_BUTTON] == []


@pytest.mark.parametrize("locale", LOCALES)
def test_rendering_with_parameters(locale: str) -> None:
    assert i18n.t("raw", locale, text="Thôn Đông") == "Thôn Đông"
    received = i18n.t("report.received", locale, code="VT-2026-0042")
    assert "VT-2026-0042" in received
    reminder = i18n.render(Text("reminder.deadline", {
        "code": "VT-2026-0042", "step": Text("step.acknowledge"), "due": DUE}), locale)
    assert "VT-2026-0042" in reminder and "22/11/2026 14:05" in reminder
    assert i18n.t("step.acknowledge", locale) in reminder
    details = i18n.render(Text("alert.details", {
        "code": "VT-1", "urgency": Text("urgency.URGENT"),
        "types": [Text("case_type.violence"), Text("case_type.abandonment")],
        "place": "Thôn Tây", "age": Text("age.0-5"), "sex": Text("sex.girl"), "count": 3,
        "name": "Bé Na"}), locale)
    joined = f"{i18n.t('case_type.violence', locale)}, {i18n.t('case_type.abandonment', locale)}"
    for value in ("VT-1", joined, "Thôn Tây", i18n.t("age.0-5", locale),
                  i18n.t("sex.girl", locale), "3", "Bé Na", i18n.t("urgency.URGENT", locale)):
        assert value in details
    lines = [Text("alert.deadline_line", {"step": Text(f"step.{s}"), "due": DUE})
             for s in ("acknowledge", "initial_assessment")]
    deadlines = i18n.render(Text("alert.deadlines", {"lines": lines}), locale)
    assert deadlines.count("22/11/2026 14:05") == 2 and ", " in deadlines


def test_key_vietnamese_texts() -> None:
    vi = i18n.catalog("vi")
    assert vi["report.danger.prompt"] == "Trẻ có đang gặp nguy hiểm ngay lúc này không?"
    for number in ("113", "115", "111"):
        assert number in vi["report.emergency_numbers"] and number in vi["help.hotlines"]
    assert "miễn phí" in vi["report.emergency_numbers"]
    assert [vi[f"case_type.{t}"] for t in cases.CASE_TYPES] == [
        "Bạo lực", "Xâm hại tình dục", "Bỏ rơi, bỏ mặc", "Tai nạn, thương tích, đuối nước",
        "Bóc lột, lao động trẻ em", "Mua bán, mất tích", "Tảo hôn", "Nguy cơ khác"]
    buttons = {a: vi[f"case.button.{a}"] for a in
               ("ack", "ask", "handover", "assess", "progress", "close", "reply")}
    for action, words in {"ack": "Tiếp nhận", "ask": "Cần thêm thông tin", "handover": "Chuyển",
                          "assess": "Đánh giá ban đầu", "progress": "Ghi tiến độ",
                          "close": "Đóng", "reply": "Trả lời"}.items():
        assert words in buttons[action]
    status = {s: i18n.t(f"status.{s}", "vi", code="VT-2026-0042") for s in coarse_statuses()}
    assert "Đã tiếp nhận" in status["received"] and "Đang xử lý" in status["handling"]
    assert "Đã đóng" in status["closed"]
