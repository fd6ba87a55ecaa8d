"""What the retention job purged, recorded (service layer): a commune's counts go to its
audit trail (an entry about no one case), what belongs to no commune (delivered messages,
drafts, the simulator's log) to the log; kinds and numbers only, never what was purged.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime

from storage import audit
from storage.db import Tx

log = logging.getLogger(__name__)


async def record_purge(tx: Tx, commune_id: int | None, counts: Mapping[str, int],
                       at: datetime) -> None:
    """Record how many rows of each kind one run of the retention job purged, for one
    commune (None: what belongs to no commune, such as delivered messages). Kinds with
    nothing purged are left out; nothing at all is not recorded."""
    done = {kind: n for kind, n in counts.items() if n}
    if not done:
        return
    log.info("purged commune=%s %s", "-" if commune_id is None else commune_id,
             " ".join(f"{kind}={n}" for kind, n in sorted(done.items())))
    if commune_id is not None:
        await audit.record(tx, commune_id=commune_id, actor_id=None, action="purged", at=at,
                           detail=done)
