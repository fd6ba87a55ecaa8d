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

# A child hurt right now in Thôn Đông: an EMERGENCY, alerted as soon as the village is
# known (ALERTED_AT steps in); the later answers add to the case, the last one ends it.
EMERGENCY_REPORT: Steps = [
    ("choice", "menu:report"), ("choice", "danger:yes"), ("choice", "type:injury"),
    ("choice", "village:dong"), ("choice", "age:0-5"),
    ("choice", "sex:boy"), ("choice", "skip"), ("choice", "count:1"),
    ("text", "Cháu bé rơi xuống ao, đang được hàng xóm sơ cứu."),
    ("choice", "photos:done"), ("choice", "contact:anonymous"),
]
ALERTED_AT = EMERGENCY_REPORT.index(("choice", "village:dong")) + 1


def violence_in_thon_tay(description: str, *, confirm: bool = True,
                         danger: str = "no") -> Steps:
    """A report of violence in Thôn Tây, the village typed by name (a reply keyboard's
    button on Telegram), as ("say", text) and ("press", choice id) steps. `danger="yes"`:
    an emergency, alerted at the village, with one type and no review."""
    emergency = danger == "yes"
    return [("say", "/start"),
            *(("press", c) for c in ("menu:report", f"danger:{danger}", "type:violence",
                                     *(() if emergency else ("types:done",)))),
            ("say", "Thôn Tây"), *(("press", c) for c in ("age:6-10", "sex:boy", "skip",
                                                          "count:1")),
            ("say", description),
            *(("press", c) for c in ("photos:done", "contact:anonymous",
                                     *(("confirm",) if confirm and not emergency else ())))]


def report_in(village: str, *, danger: str = "no", case_type: str = "violence") -> Steps:
    """A citizen's anonymous report, from /start, of a boy hurt in the village with this
    key: violence is URGENT; `danger="yes"` makes any report an EMERGENCY."""
    emergency = danger == "yes"  # one type, and no review: it is alerted at the village
    return [("text", "/start"), ("choice", "menu:report"), ("choice", f"danger:{danger}"),
            ("choice", f"type:{case_type}"), *(() if emergency else (("choice", "types:done"),)),
            ("choice", f"village:{village}"), ("choice", "age:6-10"), ("choice", "sex:boy"),
            ("choice", "skip"), ("choice", "count:1"),
            ("text", "Hàng xóm thấy cháu bị đánh nhiều lần."),
            ("choice", "photos:done"), ("choice", "contact:anonymous"),
            *(() if emergency else (("choice", "confirm"),))]


# A report whose words are each found nowhere else in the bot (the raw-database and log
# checks look for them): the child's name, the description, the reporter's phone, a
# photo's reference; and what the case team writes of it (measures, the closing note).
CHILD_NAME = "Hoàng Thị Mơ Tuyết"
DESCRIPTION = "Bé bị nhốt trong kho lúa nhà ông Bảy Xuyến suốt hai đêm liền."
REPORTER_PHONE = "0987654321"
PHOTO_REF = "sim-photo-kho-lua-7731"
MEASURES = "Đã gặp bà nội Tư Lành ở xóm Giữa."
CLOSING_NOTE = "Bé đã về ở với dì ruột tại Đồng Nai."
# A question the case team relays to the reporter, and the answer.
QUESTION = "Nhà ông Bảy có nuôi chó dữ không?"
ANSWER = "Có một con chó vện rất dữ."
PRIVATE_WORDS = (CHILD_NAME, DESCRIPTION, REPORTER_PHONE, PHOTO_REF, MEASURES, CLOSING_NOTE,
                 QUESTION, ANSWER, "Tuyết", "Bảy Xuyến", "Tư Lành", "dì ruột", "chó vện",
                 "0987 654 321", "987654321")
# The report, from /start to confirm, with the name, a photo and the phone given (("photo",
# ref) sends a photo).
PRIVATE_REPORT: Steps = [
    ("text", "/start"), ("choice", "menu:report"), ("choice", "danger:no"),
    ("choice", "type:sexual_abuse"), ("choice", "types:done"), ("choice", "village:tay"),
    ("choice", "age:11-15"), ("choice", "sex:girl"), ("text", CHILD_NAME),
    ("choice", "count:1"), ("text", DESCRIPTION), ("photo", PHOTO_REF),
    ("choice", "photos:done"), ("choice", "contact:allow"), ("text", REPORTER_PHONE),
    ("choice", "confirm"),
]
