"""The reports people walk through in the tests, as (kind, value) steps a driver sends."""

from __future__ import annotations

Steps = list[tuple[str, str]]

# A citizen's anonymous report of abuse in Thôn Tây (STANDARD-free: officer and police).
REPORT_STEPS: Steps = [
    ("text", "/start"), ("choice", "menu:report"), ("choice", "danger:no"),
    ("choice", "type:sexual_abuse"), ("choice", "types:done"), ("choice", "village:tay"),
    ("choice", "age:11-15"), ("choice", "sex:girl"), ("choice", "skip"), ("choice", "count:1"),
    ("text", "Một người đàn ông trong xóm nhiều lần dụ bé vào nhà."),
    ("choice", "photos:done"), ("choice", "contact:anonymous"), ("choice", "confirm"),
]

# A child hurt right now in Thôn Đông: an EMERGENCY.
EMERGENCY_REPORT: Steps = [
    ("choice", "menu:report"), ("choice", "danger:yes"), ("choice", "type:injury"),
    ("choice", "types:done"), ("choice", "village:dong"), ("choice", "age:0-5"),
    ("choice", "sex:boy"), ("choice", "skip"), ("choice", "count:1"),
    ("text", "Cháu bé rơi xuống ao, đang được hàng xóm sơ cứu."),
    ("choice", "photos:done"), ("choice", "contact:anonymous"), ("choice", "confirm"),
]


def violence_in_thon_tay(description: str, *, confirm: bool = True) -> Steps:
    """A report of violence in Thôn Tây, the village typed by name (a reply keyboard's
    button on Telegram), as ("say", text) and ("press", choice id) steps."""
    return [("say", "/start"), *(("press", c) for c in ("menu:report", "danger:no",
                                                          "type:violence", "types:done")),
            ("say", "Thôn Tây"), *(("press", c) for c in ("age:6-10", "sex:boy", "skip",
                                                          "count:1")),
            ("say", description),
            *(("press", c) for c in ("photos:done", "contact:anonymous",
                                     *(("confirm",) if confirm else ())))]


def report_in(village: str, *, danger: str = "no", case_type: str = "violence") -> Steps:
    """A citizen's anonymous report, from /start, of a boy hurt in the village with this
    key: violence is URGENT; `danger="yes"` makes any report an EMERGENCY."""
    return [("text", "/start"), ("choice", "menu:report"), ("choice", f"danger:{danger}"),
            ("choice", f"type:{case_type}"), ("choice", "types:done"),
            ("choice", f"village:{village}"), ("choice", "age:6-10"), ("choice", "sex:boy"),
            ("choice", "skip"), ("choice", "count:1"),
            ("text", "Hàng xóm thấy cháu bị đánh nhiều lần."),
            ("choice", "photos:done"), ("choice", "contact:anonymous"), ("choice", "confirm")]
