"""What the retention job purged, recorded (service layer): one place, so the audit trail
gets the counts once it can hold an entry that is not about one case.

Today's audit table (case_events) needs a case for every row, so the counts are logged
(kinds and numbers only, never what was purged).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from storage.db import Tx

log = logging.getLogger(__name__)


async def record_purge(tx: Tx, commune_id: int | None, counts: Mapping[str, int]) -> None:
    """Record how many rows of each kind one run of the retention job purged, for one
    commune (None: what belongs to no commune, such as delivered messages). Kinds with
    nothing purged are left out; nothing at all is not recorded."""
    done = {kind: n for kind, n in counts.items() if n}
    if not done:
        return
    log.info("purged commune=%s %s", "-" if commune_id is None else commune_id,
             " ".join(f"{kind}={n}" for kind, n in sorted(done.items())))
