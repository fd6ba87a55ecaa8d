"""Vietnam's time zone: communes live by local days and office hours, timestamps are UTC."""

from __future__ import annotations

from zoneinfo import ZoneInfo

LOCAL_TZ = ZoneInfo("Asia/Ho_Chi_Minh")
