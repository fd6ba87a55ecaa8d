"""The report flow: safety first, then what, where, who, description, contact, confirm.

A child in danger now does not wait for the review: the case opens as soon as what happened
and where are known, and the rest of the questions add to it."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from bot.domain.cases import AGE_BANDS, CASE_TYPES, DANGER_ANSWERS, SEXES
from bot.domain.messages import Choice, Input, Reply, Text
from bot.domain.roles import Role
from bot.flows.effects import AddToCase, OpenCase, ReportAnswers
from bot.flows.engine import Context, Flow, Go, Outcome, Retry, State, Step
from bot.flows.steps import ask_text, choose, meaningful, store

EMERGENCY_NUMBERS = ("113", "115", "111")
MAX_DESCRIPTION = 20_000
MAX_NAME = 100
MAX_PHOTOS = 10
PHONE_RE = re.compile(r"^(?:\+?84|0)\d{9,10}$")


def _opts(prefix: str, values: tuple[str, ...], label_prefix: str) -> tuple[Choice, ...]:
    return tuple(Choice(f"{prefix}:{v}", Text(f"{label_prefix}.{v}")) for v in values)


DANGER = _opts("danger", DANGER_ANSWERS, "report.danger")
AGES = _opts("age", AGE_BANDS, "age")
SEX = _opts("sex", SEXES, "sex")
COUNTS = _opts("count", ("1", "2", "3", "4"), "report.count")
CONTACT = _opts("contact", ("anonymous", "allow"), "report.contact")
SKIP = Choice("skip", Text("button.skip"))
DONE_TYPES = Choice("types:done", Text("button.done"))
DONE_PHOTOS = Choice("photos:done", Text("report.photos.continue"))
CONFIRM = Choice("confirm", Text("report.confirm"))
RESUME = (Choice("resume:yes", Text("report.resume.yes")),
          Choice("resume:no", Text("report.resume.no")))


def emergency_numbers() -> Reply:
    return Reply((Text("report.emergency_numbers"),), phones=EMERGENCY_NUMBERS)


def on_danger(picked: str, state: State, ctx: Context) -> Outcome:
    answer = picked.split(":", 1)[1]
    effects = (emergency_numbers(),) if answer == "yes" else ()
    return Go("types", {"danger": answer}, effects)


def in_danger(data: Any) -> bool:
    return bool(data.get("danger") == "yes")


def type_options(state: State, ctx: Context) -> tuple[Choice, ...]:
    if in_danger(state.data):  # one tap: every answer before the alert counts
        return tuple(Choice(f"type:{t}", Text(f"case_type.{t}")) for t in CASE_TYPES)
    chosen = set(state.data.get("types", ()))
    marks = tuple(
        Choice(f"type:{t}", Text("report.type.chosen" if t in chosen else "report.type.option",
                                 {"label": Text(f"case_type.{t}")}))
        for t in CASE_TYPES
    )
    return (*marks, DONE_TYPES) if chosen else marks


def types_prompt(state: State, ctx: Context) -> str:
    return Text("report.types.prompt_one" if in_danger(state.data)
                else "report.types.prompt").id


def on_type(picked: str, state: State, ctx: Context) -> Outcome:
    chosen = list(state.data.get("types", ()))
    if picked == DONE_TYPES.id:
        return Go(after_types(state.data, ctx))
    kind = picked.split(":", 1)[1]
    if in_danger(state.data):
        if state.data.get("village") and state.data.get("village_prefilled"):
            return placed(state, {"types": [kind]})
        return Go("where", {"types": [kind]})
    if kind in chosen:
        chosen.remove(kind)
    else:
        chosen.append(kind)
    return Go("types", {"types": chosen}, remember=False)


def after_types(data: Any, ctx: Context) -> str:
    return "age" if data.get("village") and data.get("village_prefilled") else "where"


def placed(state: State, data: dict[str, Any]) -> Outcome:
    """What happened and where are known: a child in danger now is alerted at once (and
    nothing before can be changed any more); any other report goes on to the child."""
    merged = {**state.data, **data}
    if in_danger(merged) and not merged.get("case_id"):
        return Go("age", data, (OpenCase(ReportAnswers.of(merged), early=True),), forget=True)
    return Go("age", data)


def village_options(state: State, ctx: Context) -> tuple[Choice, ...]:
    return tuple(Choice(f"village:{key}", Text("raw", {"text": name}))
                 for key, name in ctx.villages)


def on_village(picked: str, state: State, ctx: Context) -> Outcome:
    return placed(state, {"village": picked.split(":", 1)[1], "location_text": None,
                          "latitude": None, "longitude": None})


def where_other(inp: Input, state: State, ctx: Context) -> Outcome | None:
    if inp.kind == "location" and inp.latitude is not None and inp.longitude is not None:
        if not (-90 <= inp.latitude <= 90 and -180 <= inp.longitude <= 180):
            return Retry(Text("error.bad_location"))
        return placed(state, {"latitude": inp.latitude, "longitude": inp.longitude,
                              "village": None, "location_text": None})
    if inp.kind == "text" and meaningful(inp.text, 2):
        return placed(state, {"location_text": inp.text.strip()[:300], "village": None,
                              "latitude": None, "longitude": None})
    return None


def on_name(inp: Input, state: State, ctx: Context) -> Outcome:
    if inp.kind == "choice":
        return Go("count", {"child_name": None})
    if inp.kind != "text" or not meaningful(inp.text, 1):
        return Retry(Text("report.name.invalid"))
    if len(inp.text.strip()) > MAX_NAME:
        return Retry(Text("report.name.too_long", {"max": MAX_NAME}))
    return Go("count", {"child_name": inp.text.strip()})


def count_other(inp: Input, state: State, ctx: Context) -> Outcome | None:
    if inp.kind == "text" and inp.text.strip().isdigit() and 1 <= int(inp.text.strip()) <= 99:
        return Go("description", {"child_count": int(inp.text.strip())})
    return None


def on_description(inp: Input, state: State, ctx: Context) -> Outcome:
    if inp.kind == "voice" and inp.file_ref:
        return Go("photos", {"voice_ref": inp.file_ref, "description": None})
    if inp.kind == "photo" and inp.file_ref:
        photos = [*state.data.get("photos", ()), inp.file_ref][:MAX_PHOTOS]
        return Go("description", {"photos": photos}, (Reply((Text("report.photo_saved"),)),),
                  remember=False)
    if inp.kind != "text":
        return Retry(Text("report.description.need_text"))
    text = inp.text.strip()
    if not meaningful(text):
        return Retry(Text("report.description.too_short"))
    if len(text) > MAX_DESCRIPTION:
        return Retry(Text("report.description.too_long", {"max": MAX_DESCRIPTION}))
    return Go("photos", {"description": text})


def on_photo(inp: Input, state: State, ctx: Context) -> Outcome:
    if inp.kind == "choice":
        return Go("contact")
    if inp.kind in ("photo", "voice") and inp.file_ref:
        key = "photos" if inp.kind == "photo" else "voice_ref"
        if key == "voice_ref":
            return Go("photos", {"voice_ref": inp.file_ref},
                      (Reply((Text("report.voice_saved"),)),), remember=False)
        photos = [*state.data.get("photos", ()), inp.file_ref]
        if len(photos) > MAX_PHOTOS:
            return Retry(Text("report.photos.too_many", {"max": MAX_PHOTOS}))
        return Go("photos", {"photos": photos}, (Reply((Text("report.photo_saved"),)),),
                  remember=False)
    return Retry(Text("report.photos.hint"))


def photos_received(state: State, ctx: Context) -> dict[str, Any]:
    count = len(state.data.get("photos", ()))
    return {"received": Text("report.photos.received", {"count": count}) if count
            else Text("report.photos.none")}


def on_contact(picked: str, state: State, ctx: Context) -> Outcome:
    if picked == "contact:anonymous":
        return reviewed(state, {"anonymous": True, "phone": None})
    return Go("phone", {"anonymous": False})


def normalise_phone(raw: str) -> str | None:
    digits = re.sub(r"[\s.\-()]", "", raw)
    return digits if PHONE_RE.match(digits) else None


def on_phone(inp: Input, state: State, ctx: Context) -> Outcome:
    raw = inp.phone if inp.kind == "contact" else inp.text if inp.kind == "text" else ""
    phone = normalise_phone(raw)
    if phone is None:
        return Retry(Text("report.phone.invalid"))
    return reviewed(state, {"phone": phone})


def reviewed(state: State, data: dict[str, Any]) -> Outcome:
    """The last answer: a report is reviewed before it is sent; an emergency, sent already,
    ends here, and the team gets what was added in one message."""
    case_id = state.data.get("case_id")
    if case_id:
        merged = {**state.data, **data}
        return Go(None, data, (AddToCase(int(case_id), ReportAnswers.of(merged), final=True),))
    return Go("review", data)


def adding(step: Step) -> Step:
    """A question asked after an emergency was opened: each answer goes into the case at
    once, so nothing is lost if the reporter stops answering."""

    def handle(inp: Input, state: State, ctx: Context) -> Outcome:
        outcome = step.handle(inp, state, ctx)
        case_id = state.data.get("case_id")
        if (not case_id or not isinstance(outcome, Go)
                or any(isinstance(e, AddToCase) for e in outcome.effects)):
            return outcome
        answers = ReportAnswers.of({**state.data, **outcome.data})
        return replace(outcome, effects=(*outcome.effects, AddToCase(int(case_id), answers)))

    return replace(step, handle=handle)


def review_params(state: State, ctx: Context) -> dict[str, Any]:
    d = state.data
    names = dict(ctx.villages)
    if d.get("village"):
        place: Any = names.get(d["village"], d["village"])
    elif d.get("latitude") is not None:
        place = Text("report.place.shared_location")
    else:
        place = d.get("location_text") or Text("report.not_given")
    description = d.get("description") or Text("report.voice_note")
    if isinstance(description, str) and len(description) > 500:
        description = description[:500] + "…"
    return {
        "danger": Text(f"report.danger.{d.get('danger', 'unsure')}"),
        "types": [Text(f"case_type.{t}") for t in d.get("types", ())],
        "place": place,
        "commune": ctx.commune_name,
        "age": Text(f"age.{d.get('age_band', 'unknown')}"),
        "sex": Text(f"sex.{d.get('sex', 'unknown')}"),
        "name": d.get("child_name") or Text("report.name.unknown"),
        "count": d.get("child_count", 1),
        "description": description,
        "photos": len(d.get("photos", ())),
        "contact": Text("report.contact.anonymous" if d.get("anonymous", True)
                        else "report.contact.allow"),
    }


def on_review(picked: str, state: State, ctx: Context) -> Outcome:
    return Go(None, effects=(OpenCase(ReportAnswers.of(state.data)),))


def on_resume(picked: str, state: State, ctx: Context) -> Outcome:
    if picked == "resume:yes":
        target = state.data.get("resume_to") or "danger"
        return Go(target, {"resume_to": None}, remember=False)
    fresh = report_start_data(ctx, {})
    # Starting afresh after an emergency was sent: that case keeps what it was told.
    case_id = state.data.get("case_id")
    sent = ((AddToCase(int(case_id), ReportAnswers.of(state.data), final=True),)
            if case_id else ())
    return Go("danger", {k: None for k in state.data} | fresh | {"types": []}, sent,
              remember=False, forget=True)


def resume_params(state: State, ctx: Context) -> dict[str, Any]:
    return {"step": Text(f"report.step.{state.data.get('resume_to') or 'danger'}")}


def report_start_data(ctx: Context, data: Any) -> dict[str, Any]:
    if ctx.role == Role.COLLABORATOR and ctx.own_village:
        return {"village": ctx.own_village, "village_prefilled": True, "types": []}
    return {"types": []}


REPORT = Flow(
    "report",
    first="danger",
    start_data=report_start_data,
    steps={
        s.id: s
        for s in (
            choose("resume", "report.resume.prompt", RESUME, on_resume,
                   frozenset({"danger"}), params=resume_params),
            choose("danger", "report.danger.prompt", DANGER, on_danger, frozenset({"types"})),
            choose("types", types_prompt, type_options, on_type,
                   frozenset({"types", "where", "age"})),
            choose("where", "report.where.prompt", village_options, on_village,
                   frozenset({"age"}), other=where_other, request="location"),
            *map(adding, (
                choose("age", "report.age.prompt", AGES, store("age_band", "sex"),
                       frozenset({"sex"})),
                choose("sex", "report.sex.prompt", SEX, store("sex", "name"),
                       frozenset({"name"})),
                ask_text("name", "report.name.prompt", on_name, frozenset({"count"}),
                         options=(SKIP,)),
                choose("count", "report.count.prompt", COUNTS,
                       store("child_count", "description", int),
                       frozenset({"description"}), other=count_other),
                ask_text("description", "report.description.prompt", on_description,
                         frozenset({"photos", "description"})),
                ask_text("photos", "report.photos.prompt", on_photo,
                         frozenset({"contact", "photos"}), options=(DONE_PHOTOS,),
                         request="photo", params=photos_received),
                choose("contact", "report.contact.prompt", CONTACT, on_contact,
                       frozenset({"review", "phone"})),
                ask_text("phone", "report.phone.prompt", on_phone, frozenset({"review"}),
                         request="contact"),
            )),
            choose("review", "report.review", (CONFIRM,), on_review, params=review_params),
        )
    },
)
