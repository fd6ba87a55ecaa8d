"""Background loops (workers layer): each behind one small protocol (bot/workers/worker.py),
all woken by one scheduler (bot/workers/scheduler.py). Their work is rows in the database
claimed with a lease, never state held in memory."""
