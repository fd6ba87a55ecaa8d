"""Every flow of the bot, validated once at import."""

from __future__ import annotations

from bot.flows.broadcast import BROADCAST
from bot.flows.calendar_admin import CALENDAR_ADD
from bot.flows.case_team import ANSWER, ASK, ASSESS, CLOSE, HANDOVER, PROGRESS
from bot.flows.commune import COMMUNE
from bot.flows.engine import FlowBook
from bot.flows.help import HELP
from bot.flows.place import PLACE
from bot.flows.report import REPORT
from bot.flows.status import LANGUAGE, STATUS

FLOWS = FlowBook([REPORT, HELP, STATUS, LANGUAGE, ASSESS, CLOSE, ASK, ANSWER, HANDOVER,
                  PROGRESS, CALENDAR_ADD, BROADCAST, COMMUNE, PLACE])
