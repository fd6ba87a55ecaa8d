"""Who a person is to the bot: their role, and the groups of roles the rules speak of.

What each role may do is decided in bot/domain/permissions.py, nowhere else.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final


class Role(StrEnum):
    CITIZEN = "citizen"
    COLLABORATOR = "collaborator"
    OFFICER = "officer"
    POLICE = "police"
    LEADER = "leader"
    ADMIN = "admin"
    # The commune's Telegram alert group, as a pseudo-person so its alerts use the outbox.
    GROUP = "group"


# Roles a commune file may give a person.
CONFIGURED: Final[tuple[Role, ...]] = (Role.CITIZEN, Role.COLLABORATOR, Role.OFFICER,
                                       Role.POLICE, Role.LEADER, Role.ADMIN)
# People who work cases: they may be routed a case and act on it.
STAFF: Final[frozenset[Role]] = frozenset({Role.OFFICER, Role.POLICE, Role.LEADER,
                                           Role.ADMIN})
# The commune office (the police answer cases but do not speak for the commune): who may
# broadcast to the collaborators, read the statistics and the calendar.
OFFICE: Final[frozenset[Role]] = frozenset({Role.OFFICER, Role.LEADER, Role.ADMIN})
# Who handles cases in the field: they may take a case from the alert group (the group's
# copy has only the take button), and a case is handed over to one of them.
CASE_HANDLERS: Final[frozenset[Role]] = frozenset({Role.OFFICER, Role.POLICE})
# Roles an admin can hand out through an invitation link.
INVITABLE: Final[tuple[Role, ...]] = (Role.COLLABORATOR, Role.OFFICER, Role.POLICE,
                                      Role.LEADER)
# Roles a calendar event can remind.
REMINDED: Final[tuple[Role, ...]] = (Role.COLLABORATOR, Role.OFFICER, Role.POLICE,
                                     Role.LEADER, Role.ADMIN)
# Report-deadline reminders carry the period's numbers to the officers who write the report.
STATISTICS_WITH_REMINDERS: Final[frozenset[Role]] = frozenset({Role.OFFICER})
# A province's report is drawn up by its child-protection unit, commonly configured as a
# leader, with the social-work centre: its officers and leaders get the province's numbers.
PROVINCE_STATISTICS_WITH_REMINDERS: Final[frozenset[Role]] = frozenset({Role.OFFICER,
                                                                        Role.LEADER})
# Who a case handed over may go to: someone who works cases.
HANDOVER_TARGETS: Final[frozenset[Role]] = STAFF
