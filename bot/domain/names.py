"""Nearest names: what a misspelt name in the commune file was most likely meant to be
(domain layer, pure). A name is refused with the nearest valid one, never taken for it, so
a typo cannot route a case to nobody without anyone noticing."""

from __future__ import annotations

import difflib
import unicodedata
from collections.abc import Iterable

# difflib's own default: "ofice" finds "officer", "mayor" finds nothing among the roles.
CUTOFF = 0.6


def nearest(name: str, valid: Iterable[str]) -> str | None:
    """The valid name closest to `name` (another case, a look-alike character such as the
    ligature "ﬁ", a typo), or None when none is close."""
    options = list(dict.fromkeys(valid))
    folded = unicodedata.normalize("NFKC", name).casefold()
    by_folded = {option.casefold(): option for option in options}
    if folded in by_folded:
        return by_folded[folded]
    close = difflib.get_close_matches(folded, list(by_folded), n=1, cutoff=CUTOFF)
    return by_folded[close[0]] if close else None


def lookalikes(name: str) -> str:
    """The characters of `name` that only look like plain ones ("'ﬁ' is U+FB01"), if any."""
    odd = dict.fromkeys(c for c in name if unicodedata.normalize("NFKC", c) != c)
    return ", ".join(f"{c!r} is U+{ord(c):04X}" for c in odd)


def unknown(what: str, name: object, valid: Iterable[str]) -> str:
    """"unknown role 'ofice'; did you mean 'officer'?", or the valid names when none is
    close: one line for an error message."""
    options = list(dict.fromkeys(valid))
    text = f"unknown {what} {name!r}"
    guess = nearest(name, options) if isinstance(name, str) else None
    if guess is None:
        return f"{text}; known: {', '.join(options)}" if options else text
    odd = lookalikes(name) if isinstance(name, str) else ""
    if odd:
        return f"{text}; did you mean {guess!r}? ({odd}: type it with plain letters)"
    return f"{text}; did you mean {guess!r}?"


def unknown_fields(names: Iterable[str], valid: Iterable[str]) -> str:
    """"unknown field(s) quiet_hour; did you mean quiet_hours?" (or the known fields)."""
    options = sorted(valid)
    wrong = sorted(names)
    text = f"unknown field(s) {', '.join(wrong)}"
    guesses = [g for g in (nearest(n, options) for n in wrong) if g is not None]
    if guesses:
        return f"{text}; did you mean {', '.join(dict.fromkeys(guesses))}?"
    return f"{text}; known: {', '.join(options)}"
