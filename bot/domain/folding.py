"""Vietnamese text without its marks (domain layer, pure): how people type it on a phone
without a Vietnamese keyboard, and how it sorts and matches ("Đông" ~ "dong")."""

from __future__ import annotations

import unicodedata


def without_marks(text: str) -> str:
    """Lower case, đ as d, no tone or vowel marks: "Cứu Đứa Bé" -> "cuu dua be"."""
    folded = unicodedata.normalize("NFD", text.replace("đ", "d").replace("Đ", "D"))
    return "".join(ch for ch in folded if not unicodedata.combining(ch)).casefold()
