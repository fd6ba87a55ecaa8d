"""Words of danger in what someone types outside any question (domain layer, pure).

A frightened person does not look for the menu: "cứu con tôi với", "thang be bi danh",
"help, my child is hurt". Typed with or without Vietnamese marks, such a sentence goes
straight to the report's first question (is the child in danger now?). A false alarm costs
one tap ("no"); a missed one left a frightened person with "I didn't understand", so the
list leans towards catching.

Vietnamese typed without marks is ambiguous ("danh" is "đánh", to beat, and "danh" in
"danh sách", a list), so most entries are two words that only mean harm together.
"""

from __future__ import annotations

import re
from typing import Final

from bot.domain.folding import without_marks

# Matched as whole words on the text folded by `fold` (no marks, đ -> d, lower case).
PHRASES: Final = (
    # Calls for help.
    "cuu", "giup voi", "giup toi", "giup em",
    "giup con", "khan cap", "nguy hiem", "nguy kich", "sos",
    # Harm done to a child.
    "bi danh", "danh dap", "danh con", "danh tre", "danh chau", "danh em",
    "dap con", "bao hanh", "bao luc", "xam hai", "hiep dam", "au dam", "sam so",
    "dam o", "ngoc dam", "bat coc", "bi bat", "bo roi", "bi bo", "bi lac",
    "mat tich", "bo nha", "bi nhot", "bi xich", "bi troi", "bi thuong", "chay mau",
    "gay xuong", "duoi nuoc", "bi duoi", "chet duoi", "tu tu", "muon chet", "tu sat",
    "bi ep", "ep buoc", "bi doa", "de doa", "ban tre", "lao dong tre em",
    # English.
    # ("help" alone is someone looking for the help menu, not a cry: "help me" is.)
    "help me", "please help", "danger", "emergency", "abuse", "abused", "hurt", "hurting",
    "beaten", "beating", "beat", "hit", "rape", "raped", "molested", "kidnapped",
    "missing", "abandoned", "drowning", "bleeding", "suicide", "kill", "killed",
    "threatened",
)


def fold(text: str) -> str:
    """The words of `text` without marks, one space apart: "Cứu  Đứa Bé!" -> "cuu dua be"."""
    return " ".join(re.findall(r"[a-z0-9]+", without_marks(text)))


_PATTERN: Final = re.compile(
    r"\b(?:" + "|".join(sorted({re.escape(fold(p)) for p in PHRASES}, key=len, reverse=True))
    + r")\b")


def sounds_like_danger(text: str) -> bool:
    """Whether typed text speaks of a child in danger or harmed."""
    return _PATTERN.search(fold(text[:2000])) is not None
