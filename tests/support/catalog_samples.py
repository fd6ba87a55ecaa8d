"""Sample flow contexts and the replies the real code builds from them (the catalog tests
and the channels' rendering tests walk the same replies)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any

from bot.domain import alerts
from bot.domain.cases import DEADLINE_STEPS, Attachment
from bot.domain.local_time import LOCAL_TZ
from bot.domain.messages import Reply
from bot.domain.periods import Period
from bot.domain.statistics import CaseFacts, compute
from bot.domain.top_digest import WaitingCase
from bot.flows import help, report
from bot.flows.book import FLOWS
from bot.flows.engine import Context, State
from bot.services.period_reports import chat_table, commune_lines

SAMPLE_CTX = Context(
    role="officer", villages=(("dong", "Thôn Đông"), ("tay", "Thôn Tây")),
    team=(("7", "Anh Tuấn"),), officer_phone="0912 345 678",
    trusted_addresses=("Trạm Y tế xã Vĩnh Thủy",), commune_name="Vĩnh Thủy")
SAMPLE_DATA: tuple[dict[str, Any], ...] = (
    {},
    {"danger": "yes", "types": ["violence", "abandonment"], "village": "dong",
     "age_band": "6-10", "sex": "boy", "child_name": "Bé Na", "child_count": 2,
     "description": "Bố say rượu đánh bé.", "photos": ["p1", "p2"], "anonymous": False,
     "code": "VT-2026-0042", "resume_to": "where"},
    {"latitude": 19.8, "longitude": 105.7, "types": ["other"], "voice_ref": "v1"},
)
DUE = datetime(2026, 11, 22, 14, 5, tzinfo=LOCAL_TZ)


def fake_case(**changes: Any) -> Any:
    """A case as the alert builders read it (bot.domain.cases.Case: `types` a tuple)."""
    case = dict(id=42, code="VT-2026-0042", urgency="URGENT", types=("violence", "abandonment"),
                latitude=None, longitude=None, location_text="Gần chợ", age_band="0-5",
                sex="girl", child_count=2, child_name=None, description="Bé bị đánh.",
                reporter_anonymous=True, reporter_phone=None, assignee_id=None, status="new")
    return SimpleNamespace(**(case | changes))


def built_replies() -> Iterator[Reply]:
    """Replies made by the real code: every flow prompt and the alerts of a sample case."""
    for flow in FLOWS.flows.values():
        for step in flow.steps.values():
            for data in SAMPLE_DATA:
                yield step.prompt(State(flow.id, step.id, data, ("x",)), SAMPLE_CTX)
    for topic in help.TOPICS:
        yield help.answer(topic, SAMPLE_CTX)
        yield help.answer(topic, Context())
    yield report.emergency_numbers()
    deadlines = [SimpleNamespace(step=s, due_at=DUE, met_at=None) for s in DEADLINE_STEPS]
    for case in (fake_case(), fake_case(latitude=19.8, longitude=105.7, assignee_id=3,
                                        reporter_anonymous=False, reporter_phone="0912345678",
                                        description=None, urgency="EMERGENCY")):
        photos = [Attachment("photo", "sim", "p1"), Attachment("photo", "sim", "p2")]
        details = alerts.case_details(case, None, deadlines, photos)
        yield alerts.team_alert(case, details)
        yield alerts.additions(case, details)
        yield alerts.additions_received(case)
        yield alerts.emergency_alerted(case)
        yield alerts.team_alert(case, alerts.case_details(case, None, deadlines, photos[:1]))
        yield alerts.team_alert(case, alerts.case_details(case, None, deadlines, [
            Attachment("voice", "sim", "v1")]))
        for step in ("acknowledge", "initial_assessment"):
            yield alerts.team_alert(case, details, alerts.Climb(
                step, timedelta(minutes=15), (("Anh Tuấn", "police"), ("Chị Hoa", "officer"),
                                              ("Ông Bình", "leader"), ("Chị Mai", "admin"))))
        yield alerts.village_notice(case, "Thôn Đông")
        yield alerts.many_reports(case, 6)
        yield alerts.reminder(case, "initial_assessment", DUE)
    # The top of the chain's digest: one case taken, one not, one placed on a map, and
    # more cases than it lists one by one; every unit of "waited".
    waiting = [(WaitingCase(fake_case(id=n, code=f"VT-2026-{n:04d}", created_at=DUE - age,
                                      assignee_id=3 if n % 2 else None,
                                      latitude=19.8 if n == 2 else None,
                                      longitude=105.7 if n == 2 else None), step), village)
               for n, (age, step, village) in enumerate(
                   [(timedelta(minutes=1), "acknowledge", "Thôn Đông"),
                    (timedelta(minutes=40), "initial_assessment", None),
                    (timedelta(hours=1), "plan_drafted", "Thôn Tây"),
                    (timedelta(hours=30), "review", None),
                    (timedelta(days=1, hours=23), "plan_approved", None),
                    (timedelta(days=2), "detailed_assessment", None),
                    (timedelta(days=9), "acknowledge", None)] * 2, start=1)]
    yield alerts.top_digest(waiting[:3], DUE)
    yield alerts.top_digest(waiting, DUE)
    # Period statistics: waits in every unit (minutes, hours and minutes, hours, days and
    # hours, days), none yet, and a period without a case.
    quarter = Period("quarter", 2026, 4)
    for waits in ([(0.5, 60), (45, 1500), (125, 4320)], [(60, None)], [(None, None)], []):
        facts = [stat_fact(DUE, ack, assess) for ack, assess in waits]
        yield chat_table(compute(quarter, facts, ("Thôn Đông", "Thôn Tây")), "Vĩnh Thủy",
                         "vi", DUE)
    # A province's: its table (by setting, not by village) and each commune's count.
    one = [stat_fact(DUE, 45, 1500)]
    yield chat_table(compute(quarter, one), "Thanh Hóa", "vi", DUE, province=True)
    yield from commune_lines([("Vĩnh Thủy", compute(quarter, one)),
                              ("Hạc Thành", compute(quarter, []))], "vi")


def stat_fact(created: datetime, ack: float | None, assess: float | None) -> CaseFacts:
    """A case as period statistics count it, taken and assessed after so many minutes."""
    def after(minutes: float | None) -> datetime | None:
        return None if minutes is None else created + timedelta(minutes=minutes)

    return CaseFacts(code="VT-2026-0042", form="violence", sex="girl", age_band="0-5",
                     village="Thôn Đông", urgency="URGENT", status="acknowledged", outcome=None,
                     created_at=created, acknowledged_at=after(ack), assessed_at=after(assess),
                     escalated=False)
