"""Use cases (services layer): each runs in one transaction its caller opens (one per
inbound event or timer run) and queues what must be sent in the outbox: conversations,
cases, escalation, broadcasts, calendar reminders and commands, period reports,
invitations, and what the channels ask of the database."""
