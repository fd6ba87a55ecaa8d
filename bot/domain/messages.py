"""The words flows, services and channels share: what a person sent (Input) and what the bot
says (Reply: translatable Texts, Choices with stable ids, Media), channel-free."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

InputKind = Literal["text", "choice", "location", "contact", "photo", "voice", "command", "other"]
RequestKind = Literal["location", "contact", "photo"]


@dataclass(frozen=True)
class Text:
    """A translatable message: a catalog id plus parameters (which may be Texts themselves)."""

    id: str
    params: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "params": {k: _param_to_json(v) for k, v in self.params.items()}}

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Text:
        return cls(raw["id"], {k: _param_from_json(v) for k, v in raw.get("params", {}).items()})


def _param_to_json(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"$dt": value.isoformat()}
    if isinstance(value, Text):
        return {"$text": value.to_json()}
    if isinstance(value, list | tuple):
        return [_param_to_json(v) for v in value]
    return value


def _param_from_json(value: Any) -> Any:
    if isinstance(value, dict) and "$dt" in value:
        return datetime.fromisoformat(value["$dt"])
    if isinstance(value, dict) and "$text" in value:
        return Text.from_json(value["$text"])
    if isinstance(value, list):
        return [_param_from_json(v) for v in value]
    return value


@dataclass(frozen=True)
class Choice:
    """A button: a stable id (callback data, Zalo payload) and a translatable label."""

    id: str
    label: Text


@dataclass(frozen=True)
class Media:
    """A file a message carries: a channel's own reference (a Telegram file_id, a Zalo
    URL) is only good on that channel, so `channel` says where it came from."""

    kind: str  # "photo" | "voice" | "document"
    channel: str
    ref: str
    name: str = ""

    def to_json(self) -> dict[str, str]:
        return {"kind": self.kind, "channel": self.channel, "ref": self.ref, "name": self.name}


@dataclass(frozen=True)
class Reply:
    """One outbound message: texts joined as paragraphs, optional buttons and a request."""

    texts: tuple[Text, ...]
    choices: tuple[Choice, ...] = ()
    request: RequestKind | None = None
    # Numbers a channel may render as call buttons (Zalo oa.open.phone); text elsewhere.
    phones: tuple[str, ...] = ()
    # A file sent with the texts as its caption (one per message: channels send one).
    media: Media | None = None
    # Not to be forwarded or saved (Telegram's protect_content): alerts and case cards,
    # where the commune file's [privacy] says so.
    protect: bool = False

    def to_json(self) -> dict[str, Any]:
        raw: dict[str, Any] = {
            "texts": [t.to_json() for t in self.texts],
            "choices": [{"id": c.id, "label": c.label.to_json()} for c in self.choices],
            "request": self.request,
            "phones": list(self.phones),
        }
        if self.media is not None:
            raw["media"] = self.media.to_json()
        if self.protect:
            raw["protect"] = True
        return raw

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Reply:
        return cls(
            texts=tuple(Text.from_json(t) for t in raw["texts"]),
            choices=tuple(
                Choice(c["id"], Text.from_json(c["label"])) for c in raw.get("choices", ())
            ),
            request=raw.get("request"),
            phones=tuple(raw.get("phones", ())),
            media=Media(**raw["media"]) if raw.get("media") else None,
            protect=bool(raw.get("protect", False)),
        )


def say(msgid: str, *, choices: tuple[Choice, ...] = (), request: RequestKind | None = None,
        phones: tuple[str, ...] = (), **params: Any) -> Reply:
    return Reply((Text(msgid, params),), choices, request, phones)


@dataclass(frozen=True)
class Input:
    """What a person sent, already stripped of everything channel-specific."""

    kind: InputKind
    text: str = ""
    choice: str = ""
    command: str = ""
    args: str = ""
    latitude: float | None = None
    longitude: float | None = None
    phone: str = ""
    file_ref: str = ""


_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def storable(value: Any) -> Any:
    """What a person sent, as any database can keep it: a lone surrogate becomes U+FFFD
    and NUL characters are dropped (SQLite and PostgreSQL refuse the first, PostgreSQL the
    second), in strings and inside lists and tables; everything else stays as it was."""
    if isinstance(value, str):
        if _UNSTORABLE.search(value) is None:
            return value
        return _UNSTORABLE.sub(lambda m: "" if m.group() == "\x00" else "\ufffd", value)
    if isinstance(value, dict):
        return {storable(k): storable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(storable(v) for v in value)
    return value


def storable_input(inp: Input) -> Input:
    """The input with every text field storable."""
    return Input(kind=inp.kind, text=storable(inp.text), choice=storable(inp.choice),
                 command=storable(inp.command), args=storable(inp.args),
                 latitude=inp.latitude, longitude=inp.longitude, phone=storable(inp.phone),
                 file_ref=storable(inp.file_ref))
