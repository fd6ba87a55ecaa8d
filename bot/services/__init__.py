"""Domain services: routing, cases, deadlines and escalation, outbox, conversations."""
