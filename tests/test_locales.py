"""Every message id the code can use exists in every catalog, with the same placeholders."""

from __future__ import annotations

import ast
import re
import string
from pathlib import Path

import pytest

from bot import i18n
from bot.config import DEADLINE_STEPS, URGENCIES
from bot.flows import case_team, help, report
from bot.services import alerts

ID_RE = re.compile(r"^[a-z_]+(\.[A-Za-z0-9_\-]+)+$")
# File names and the prefixes `_opts` builds ids from are not ids themselves.
NOT_IDS = {"simulator.html", "demo_commune.toml", "report.contact", "report.count",
           "report.danger", "telegram.share_"}


def literal_ids() -> set[str]:
    found: set[str] = set()
    for path in Path("bot").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Constant) and isinstance(node.value, str)
                    and ID_RE.match(node.value) and node.value not in NOT_IDS):
                found.add(node.value)
    return found


def family_ids() -> set[str]:
    ids = {f"case_type.{t}" for t in report.CASE_TYPES}
    ids |= {f"age.{a}" for a in report.AGE_BANDS} | {f"sex.{s}" for s in report.SEXES}
    ids |= {f"urgency.{u}" for u in URGENCIES} | {f"report.next.{u}" for u in URGENCIES}
    ids |= {f"step.{s}" for s in DEADLINE_STEPS}
    ids |= {f"report.step.{s}" for s in report.REPORT.steps}
    ids |= {f"report.danger.{d}" for d in ("yes", "no", "unsure")}
    ids |= {f"help.{t}" for t in help.TOPICS} | {f"help.{t}.button" for t in help.TOPICS}
    ids |= {f"status.{s}" for s in ("received", "handling", "closed")}
    ids |= {f"case.button.{a}" for a in (*alerts.ACTIONS, "reply")}
    ids |= {f"telegram.share_{r}" for r in ("location", "contact")}
    for options in (case_team.RISKS, case_team.SETTINGS, case_team.OUTCOMES,
                    case_team.MILESTONES, report.AGES, report.SEX, report.COUNTS,
                    report.CONTACT, report.DANGER):
        ids |= {c.label.id for c in options}
    return ids


ALL_IDS = sorted(literal_ids() | family_ids())


def placeholders(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


@pytest.mark.parametrize("locale", ["vi", "en"])
def test_every_id_is_translated(locale: str) -> None:
    catalog = i18n.catalog(locale)
    missing = [i for i in ALL_IDS if not catalog.get(i)]
    assert missing == []
    assert len(ALL_IDS) > 150


def test_placeholders_match_between_languages() -> None:
    vi, en = i18n.catalog("vi"), i18n.catalog("en")
    assert set(vi) == set(en)
    mismatched = [i for i in vi if placeholders(vi[i]) != placeholders(en[i])]
    assert mismatched == []


def test_rendering_with_parameters_and_vietnamese_dates() -> None:
    from datetime import datetime

    from bot.clock import LOCAL_TZ
    from bot.flows.vocabulary import Text

    due = datetime(2026, 11, 22, 14, 5, tzinfo=LOCAL_TZ)
    text = i18n.render(Text("reminder.deadline", {"code": "VT-2026-0042",
                                                  "step": Text("step.acknowledge"), "due": due}))
    assert "VT-2026-0042" in text and "22/11/2026 14:05" in text and "tiếp nhận" in text
    english = i18n.render(Text("alert.details", {
        "code": "VT-1", "urgency": Text("urgency.URGENT"),
        "types": [Text("case_type.violence"), Text("case_type.abandonment")], "place": "X",
        "age": Text("age.0-5"), "sex": Text("sex.girl"), "count": 2, "name": "-"}), "en")
    assert "Violence, Abandonment or neglect" in english and "Girl" in english
