"""Finding a commune by what a citizen types or by where they are (domain layer, pure).

Someone who arrives without a commune types its name as they would on a phone: without
marks or with half of them, with the old tone placement ("Thuỷ") or the new ("Thủy"), with
"xã" or "phường" in front, with a typo. `find` turns that into the few communes they most
likely meant, best first, for the caller to offer as buttons; `nearest` does the same for a
shared location, by the coordinates of the communes' villages.

Matching, in tiers (the first tier that finds anything decides):
1. the name as typed with its marks (tone placement and case aside): that commune alone;
2. the name without marks: every commune that has it ("Hoa" is both "Hòa" and "Hóa");
3. whole words: the typed words are a run of the name's, or the other way round ("xuan
   huong" finds "Xuân Hương - Đà Lạt", "vinh thuy quang tri" finds "Vĩnh Thủy"); then a few
   letters off (a typo, a letter missing or doubled, two letters swapped), closest first.
Edit distances come from rapidfuzz (C++): difflib takes about 6 ms for one pass over the
3,321 official communes and wards, rapidfuzz 0.2 ms (bench/commune_search.py).
"""

from __future__ import annotations

import bisect
import itertools
import math
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from rapidfuzz import fuzz, process
from rapidfuzz.distance import OSA

from bot.domain.folding import without_marks

# (latitude, longitude) in degrees.
Point = tuple[float, float]

# What people put in front of a name: today's kinds of commune (xã, phường, đặc khu) and
# those that ended in July 2025 but are still said (thị trấn, thị xã), with common shorthands.
ADMIN_WORDS: frozenset[tuple[str, ...]] = frozenset(
    tuple(words.split()) for words in ("xa", "phuong", "dac khu", "thi tran", "thi xa", "tt",
                                       "p", "x"))
# Tone marks only: circumflex, breve and horn make other letters (â, ă, ơ) and stay.
TONES = frozenset("\u0300\u0301\u0303\u0309\u0323")
_APOSTROPHES = re.compile(r"['’ʼ`´]")
# Longer input is not a commune's name; cut it so any paste costs the same.
MAX_TYPED = 120
EARTH_KM = 6371.0088
DEFAULT_LIMIT = 5


@dataclass(frozen=True)
class Place:
    """A commune as search sees it: its code, its name as the official list writes it, and
    the coordinates of those of its villages that have them (may be none)."""

    code: str
    name: str
    points: tuple[Point, ...] = ()


class CommuneIndex:
    """The communes of a province (or of the country) with their names folded once: build
    it when the configuration loads and search it for every citizen. Searching a plain
    sequence of places builds one each time, which is fine for a handful."""

    def __init__(self, communes: Sequence[Place]) -> None:
        self.places: tuple[Place, ...] = tuple(communes)
        self.plains: list[str] = []
        self.marked: list[str] = []
        self.by_plain: dict[str, list[int]] = {}
        self.by_marked: dict[str, list[int]] = {}
        for i, place in enumerate(self.places):
            plain, marked = (" ".join(w) for w in _without_admin(*_fold(place.name)))
            self.plains.append(plain)
            self.marked.append(marked)
            self.by_plain.setdefault(plain, []).append(i)
            self.by_marked.setdefault(marked, []).append(i)
        # Every name padded with spaces, one a line: a run of whole words is found in all
        # of them by one str.find, and its offset tells whose name it is (bisect).
        self.haystack = "\n".join(f" {plain} " for plain in self.plains)
        self.starts = list(itertools.accumulate((len(p) + 3 for p in self.plains[:-1]),
                                                initial=0))
        villages = sorted((lat, lon, i) for i, place in enumerate(self.places)
                          for lat, lon in place.points if _on_earth(lat, lon))
        self.latitudes = [lat for lat, _, _ in villages]
        self.villages = villages

    def __len__(self) -> int:
        return len(self.places)


def index(communes: CommuneIndex | Sequence[Place]) -> CommuneIndex:
    return communes if isinstance(communes, CommuneIndex) else CommuneIndex(communes)


def find(typed: str, communes: CommuneIndex | Sequence[Place],
         limit: int = DEFAULT_LIMIT) -> list[Place]:
    """The communes `typed` most likely names, best first, at most `limit`; [] when nothing
    is close (never raises, whatever the text)."""
    found = index(communes)
    if limit <= 0 or not found.places:
        return []
    full_plain, full_marked = _fold(typed[:MAX_TYPED])
    if not full_plain or tuple(full_plain) in ADMIN_WORDS:
        return []
    plain, marked = (" ".join(words) for words in _without_admin(full_plain, full_marked))
    # "xa dung" may be "Xã Dung" or "Xa Dung": both readings are tried.
    queries = tuple(dict.fromkeys((plain, " ".join(full_plain))))
    # Typed without any mark, a name is not told apart from one that has marks: "hoa" is
    # as much "Hòa" as "Hoa", so tier 1 needs at least one mark.
    if full_marked != full_plain:
        exact = _union(found.by_marked.get(m, ()) for m in (marked, " ".join(full_marked)))
        if exact:
            return [found.places[i] for i in exact[:limit]]
    same = _union(found.by_plain.get(q, ()) for q in queries)
    if same:
        # Half-marked input ("Dân Hoa") puts the closest marks first.
        same.sort(key=lambda i: (-fuzz.ratio(marked, found.marked[i]), found.places[i].name))
        return [found.places[i] for i in same[:limit]]
    return [found.places[i] for i in _near(queries, found)[:limit]]


def _union(groups: Iterable[Iterable[int]]) -> list[int]:
    return list(dict.fromkeys(i for group in groups for i in group))


def _near(queries: tuple[str, ...], found: CommuneIndex) -> list[int]:
    """Whole words first (the typed words are a run of the name's, or the name's words a
    run of the typed ones), then typos: fewest edits, the closest length, the most alike."""
    ranked: dict[int, tuple[float, ...]] = {}

    def rank(i: int, key: tuple[float, ...]) -> None:
        ranked[i] = min(ranked.get(i, key), key)

    for query in queries:
        if len(query) < 2:
            continue
        padded = f" {query} "
        at = found.haystack.find(padded)
        while at >= 0:
            i = bisect.bisect_right(found.starts, at) - 1
            rank(i, (0.0, -fuzz.ratio(query, found.plains[i]), 0.0))
            # On to the next name: one name holds the run once for what matters here.
            at = found.haystack.find(padded, found.starts[i] + len(found.plains[i]) + 2)
        words = query.split()
        for first in range(len(words)):
            for last in range(first + 1, len(words) + 1):
                run = " ".join(words[first:last])
                for i in found.by_plain.get(run, ()):
                    # Of two names typed ("Vĩnh Thủy, Quảng Trị"), the first is the commune's.
                    rank(i, (0.0, -fuzz.ratio(query, run), float(first)))
    for query in queries:
        allowed = _allowed_edits(query)
        if allowed == 0:
            continue
        close = process.extract(query, found.plains, scorer=OSA.distance,
                                score_cutoff=allowed, limit=None)
        best = min((distance for _, distance, _ in close), default=0)
        for plain, distance, i in close:
            if distance <= best + 1:
                rank(i, (1.0, float(distance), float(abs(len(query) - len(plain))),
                         -fuzz.ratio(query, plain)))
    return sorted(ranked, key=lambda i: (ranked[i], found.plains[i], found.places[i].name))


def _allowed_edits(query: str) -> int:
    """How many letters may be off: none in two letters, one up to eight, then two."""
    size = len(query)
    return 0 if size < 3 else 1 if size < 9 else 2


def nearest(latitude: float, longitude: float, communes: CommuneIndex | Sequence[Place],
            max_km: float = 20.0) -> Place | None:
    """The commune with the village nearest to the point, or None when no village of any
    commune is within `max_km` (or the point is not on Earth). 20 km by default: a merged
    commune in the mountains is some 15 km across and few of its villages may have
    coordinates."""
    if not (_on_earth(latitude, longitude) and 0 <= max_km < math.inf):
        return None
    found = index(communes)
    # One degree of latitude is 111.2 km: only villages in the band around it can be near.
    span = max_km / 111.0
    low = bisect.bisect_left(found.latitudes, latitude - span)
    high = bisect.bisect_right(found.latitudes, latitude + span)
    best: tuple[float, int] | None = None
    for lat, lon, i in found.villages[low:high]:
        km = distance_km(latitude, longitude, lat, lon)
        if km <= max_km and (best is None or km < best[0]):
            best = (km, i)
    return found.places[best[1]] if best else None


def distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance (haversine) between two points, in kilometres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_KM * math.asin(min(1.0, math.sqrt(h)))


def _on_earth(latitude: float, longitude: float) -> bool:
    return (math.isfinite(latitude) and math.isfinite(longitude)
            and -90 <= latitude <= 90 and -180 <= longitude <= 180)


def _fold(text: str) -> tuple[list[str], list[str]]:
    """The words of `text` twice: without marks ("Phường Văn Miếu - Quốc Tử Giám" ->
    phuong van mieu quoc tu giam) and with their marks in one spelling (`_marked`).
    Apostrophes go ("H’leo" ~ "Hleo"), other punctuation separates words; both lists have
    the same words in the same order."""
    text = unicodedata.normalize("NFC", _APOSTROPHES.sub("", text))
    spaced = "".join(ch if ch != "_" and (ch.isalnum() or unicodedata.category(ch)[0] == "M")
                     else " " for ch in text)
    plain: list[str] = []
    marked: list[str] = []
    for word in spaced.split():
        # Upper-cased first, so that a name and its upper-case spelling fold alike.
        bare = without_marks(word.upper())
        if bare:
            plain.append(bare)
            marked.append(_marked(word))
    return plain, marked


def _marked(word: str) -> str:
    """Marks kept, case and tone placement not: "Thuỷ", "Thủy" and "THỦY" -> "thuy" with the
    hook after it (as Telex types it), so the old and the new spelling are one."""
    letters = unicodedata.normalize("NFD", word.upper().casefold())
    tones = "".join(ch for ch in letters if ch in TONES)
    shape = "".join(ch for ch in letters if ch not in TONES)
    return unicodedata.normalize("NFC", shape) + tones


def _without_admin(plain: list[str], marked: list[str]) -> tuple[list[str], list[str]]:
    """The words without the administrative word(s) in front, if something is left."""
    for size in (2, 1):
        if len(plain) > size and tuple(plain[:size]) in ADMIN_WORDS:
            return plain[size:], marked[size:]
    return plain, marked
