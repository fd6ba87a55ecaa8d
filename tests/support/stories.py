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
