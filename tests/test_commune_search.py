"""A citizen finds their commune by typing its name however they type it, or by sharing
where they are (bot/domain/commune_search.py)."""

from __future__ import annotations

import math
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.domain.commune_search import CommuneIndex, Place, distance_km, find, nearest
from bot.domain.folding import without_marks

# Real names of the official 2025 list, chosen for what makes them hard: names that differ
# only by their marks, old and new tone placement, "Xa" as part of a name, apostrophes,
# hyphens, a three-letter name, a special zone.
REAL = [
    ("19189", "Xã Vĩnh Thủy"), ("19000", "Xã Vị Thủy"), ("00100", "Phường Vĩnh Tuy"),
    ("19110", "Xã Lệ Thủy"), ("08000", "Xã Đàm Thuỷ"), ("14000", "Xã Dân Hòa"),
    ("14001", "Xã Dân Hóa"), ("20000", "Xã Vĩnh Thạnh"), ("20001", "Xã Vĩnh Thành"),
    ("20002", "Xã Vĩnh Thanh"), ("00070", "Phường Hoàn Kiếm"), ("01000", "Xã Xa Dung"),
    ("01001", "Xã Dung"), ("00200", "Phường Phương Liệt"), ("24000", "Xã Ea H’leo"),
    ("24001", "Xã Cư M’gar"), ("24500", "Phường Xuân Hương - Đà Lạt"),
    ("24501", "Phường Xuân Phương"), ("02000", "Xã Gào"), ("06000", "Đặc khu Cồn Cỏ"),
    ("06001", "Phường Quảng Trị"), ("09000", "Xã Tân Tiến"), ("09001", "Xã Tân Tiến"),
    ("10000", "Xã Hòa An"), ("10001", "Xã Bình Minh"), ("10002", "Phường Thủy Xuân"),
]
COMMUNES = [Place(code, name) for code, name in REAL]
INDEX = CommuneIndex(COMMUNES)


def names(typed: str, limit: int = 5) -> list[str]:
    return [p.name for p in find(typed, INDEX, limit=limit)]


@pytest.mark.parametrize("typed", [
    "vinh thuy", "VINH THUY", "Vĩnh Thủy", "vĩnh thuỷ", "Vĩnh Thuỷ", "xa vinh thuy",
    "Xã Vĩnh Thủy", "phường Vĩnh Thủy", "thị trấn vinh thuy", "  vinh   thuy  ", "vinhthuy",
    "vinh thuyy", "vinh thuu", "vinh htuy", "vĩnh thủy!", "xã vĩnh thủy, quảng trị",
])
def test_vinh_thuy_is_found_first(typed: str) -> None:
    assert names(typed)[0] == "Xã Vĩnh Thủy"


def test_the_name_as_typed_wins_outright() -> None:
    assert names("vinh thuy") == ["Xã Vĩnh Thủy"]
    assert names("Vĩnh Thuỷ") == ["Xã Vĩnh Thủy"]
    assert names("Hoàn Kiếm") == ["Phường Hoàn Kiếm"]


def test_names_that_differ_only_by_marks_are_all_offered_without_marks() -> None:
    assert set(names("dan hoa")) == {"Xã Dân Hóa", "Xã Dân Hòa"}
    assert len(names("vinh thanh")) == 3
    assert set(names("vinh thanh")) == {"Xã Vĩnh Thanh", "Xã Vĩnh Thành", "Xã Vĩnh Thạnh"}
    # With its marks, the one that was meant, in either tone placement.
    assert names("Dân Hòa") == ["Xã Dân Hòa"]
    assert names("Dân Hoà") == ["Xã Dân Hòa"]
    assert names("dân hóa") == ["Xã Dân Hóa"]
    # Half the marks: both, the one whose marks agree first.
    assert names("Vĩnh Thanh") == ["Xã Vĩnh Thanh"]
    assert set(names("Dân Hoa")) == {"Xã Dân Hòa", "Xã Dân Hóa"}
    assert names("Vinh Thành")[0] == "Xã Vĩnh Thành"


def test_one_letter_off_still_finds_the_commune() -> None:
    for name, plain in (("Phường Hoàn Kiếm", "hoan kiem"), ("Xã Vĩnh Thủy", "vinh thuy"),
                        ("Xã Đàm Thuỷ", "dam thuy"), ("Đặc khu Cồn Cỏ", "con co"),
                        ("Xã Bình Minh", "binh minh"), ("Xã Ea H’leo", "ea hleo")):
        for typo in (plain[:-1], plain + "h", plain[:2] + "x" + plain[3:],
                     plain[:1] + plain[2] + plain[1] + plain[3:]):
            assert name in names(typo), (typo, names(typo))


def test_administrative_words_and_punctuation() -> None:
    # "xa dung" is "Xã Dung" or "Xa Dung"; "xã xa dung" can only be "Xã Xa Dung".
    assert set(names("xa dung")) == {"Xã Dung", "Xã Xa Dung"}
    assert names("xã xa dung") == ["Xã Xa Dung"]
    assert names("xa xa dung") == ["Xã Xa Dung"]
    assert names("dung") == ["Xã Dung"]
    assert names("phuong liet") == ["Phường Phương Liệt"]
    assert names("ea hleo") == ["Xã Ea H’leo"]
    assert names("Ea H'leo") == ["Xã Ea H’leo"]
    assert names("cu mgar") == ["Xã Cư M’gar"]
    assert names("dac khu con co") == ["Đặc khu Cồn Cỏ"]
    assert names("con co") == ["Đặc khu Cồn Cỏ"]
    assert names("gao") == ["Xã Gào"]


def test_part_of_a_name_or_a_name_and_more() -> None:
    assert names("xuan huong")[0] == "Phường Xuân Hương - Đà Lạt"
    assert names("Xuân Hương Đà Lạt") == ["Phường Xuân Hương - Đà Lạt"]
    # The commune first, the province after it.
    assert names("vinh thuy quang tri")[:2] == ["Xã Vĩnh Thủy", "Phường Quảng Trị"]
    assert set(names("thuy", limit=10)) >= {"Xã Vĩnh Thủy", "Xã Vị Thủy", "Xã Lệ Thủy",
                                            "Xã Đàm Thuỷ", "Phường Thủy Xuân"}


def test_several_communes_of_one_name_are_all_offered() -> None:
    assert [p.code for p in find("tan tien", INDEX)] == ["09000", "09001"]
    # Old and new tone placement are one name.
    assert names("Hoà An") == ["Xã Hòa An"]


@pytest.mark.parametrize("typed", ["", "   ", "xã", "?!", "qwzj kfjq", "x", "111", "🙂" * 50,
                                   "a" * 10_000, "Hà Nội ơi", "\x00\u0301\u0300"])
def test_garbage_finds_nothing(typed: str) -> None:
    assert names(typed) == []


def test_limit_and_an_empty_list() -> None:
    assert len(find("thuy", INDEX, limit=2)) == 2
    assert find("vinh thuy", INDEX, limit=0) == []
    assert find("vinh thuy", []) == []
    # A plain list works as well as an index (it is built on the way).
    assert find("vinh thuy", COMMUNES) == find("vinh thuy", INDEX)


# ---- properties ---------------------------------------------------------------------------

VOWELS = "aăâeêioôơuưy"
TONED = [unicodedata.normalize("NFC", v + tone) for v in VOWELS
         for tone in ("", "\u0300", "\u0301", "\u0303", "\u0309", "\u0323")]
ONSETS = ("", "b", "c", "ch", "d", "đ", "g", "gh", "h", "k", "kh", "l", "m", "n", "ng", "nh",
          "p", "ph", "qu", "r", "s", "t", "th", "tr", "v", "x")
CODAS = ("", "c", "ch", "m", "n", "ng", "nh", "p", "t", "i", "o", "u", "y")
syllable = st.builds(lambda o, v, c: (o + v + c).capitalize(),
                     st.sampled_from(ONSETS), st.sampled_from(TONED), st.sampled_from(CODAS))
commune_name = st.lists(syllable, min_size=1, max_size=4).map(" ".join)


@st.composite
def communes_and_one(draw: st.DrawFn) -> tuple[list[Place], Place]:
    bare = draw(st.lists(commune_name, min_size=1, max_size=40,
                         unique_by=lambda n: without_marks(n)))
    kinds = draw(st.lists(st.sampled_from(("Xã ", "Phường ", "Đặc khu ", "")),
                          min_size=len(bare), max_size=len(bare)))
    places = [Place(f"{i:05d}", kind + name)
              for i, (kind, name) in enumerate(zip(kinds, bare, strict=True))]
    return places, draw(st.sampled_from(places))


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200), st.integers(min_value=-1, max_value=20))
def test_any_text_is_answered(typed: str, limit: int) -> None:
    found = find(typed, INDEX, limit=limit)
    assert len(found) <= max(limit, 0)
    assert all(p in COMMUNES for p in found)


@settings(max_examples=200, deadline=None)
@given(communes_and_one(), st.data())
def test_a_name_typed_without_marks_in_any_case_finds_it_first(
        sample: tuple[list[Place], Place], data: st.DataObject) -> None:
    places, place = sample
    plain = without_marks(place.name)
    upper = data.draw(st.lists(st.booleans(), min_size=len(plain), max_size=len(plain)))
    typed = "".join(c.upper() if up else c for c, up in zip(plain, upper, strict=True))
    assert find(typed, CommuneIndex(places))[0] == place, typed


@settings(max_examples=200, deadline=None)
@given(communes_and_one())
def test_a_name_as_written_finds_it_first(sample: tuple[list[Place], Place]) -> None:
    places, place = sample
    assert find(place.name, CommuneIndex(places))[0] == place
    assert find(place.name.upper(), CommuneIndex(places))[0] == place


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60), st.floats(), st.floats(), st.floats())
def test_any_location_is_answered(name: str, lat: float, lon: float, km: float) -> None:
    place = Place("1", name, ((lat, lon),))
    found = nearest(lat, lon, [place], max_km=km)
    assert found in (None, place)


def test_every_official_commune_is_found_by_its_name_without_marks() -> None:
    provinces = pytest.importorskip("vietnam_provinces")
    places = [Place(str(int(w.code)), w.name) for w in provinces.Ward.iter_all()]
    assert len(places) > 3000
    everything = CommuneIndex(places)
    plain_of = dict(zip(places, everything.plains, strict=True))
    marked_of = dict(zip(places, everything.marked, strict=True))
    lost = []
    for place in places:
        found = find(without_marks(place.name).upper(), everything, limit=len(places))
        ahead = found[:found.index(place)] if place in found else None
        # Only communes of the same name without marks ("Phường Ba Đình", "Xã Ba Đình",
        # "Xã Ba Dinh") may come before it.
        if ahead is None or any(plain_of[p] != plain_of[place] for p in ahead):
            lost.append(place.name)
        if marked_of[find(place.name, everything)[0]] != marked_of[place]:
            lost.append(place.name)
    assert lost == []


# ---- by location ---------------------------------------------------------------------------

VILLAGES = [
    Place("19189", "Xã Vĩnh Thủy", ((17.0245, 107.0480), (17.0401, 107.0612))),
    Place("19110", "Xã Lệ Thủy", ((17.2140, 106.7860),)),
    Place("00070", "Phường Hoàn Kiếm", ((21.0285, 105.8542),)),
    Place("99999", "Xã chưa có tọa độ"),
]


def test_the_nearest_village_decides() -> None:
    assert nearest(17.03, 107.05, VILLAGES) == VILLAGES[0]
    assert nearest(17.20, 106.79, VILLAGES) == VILLAGES[1]
    assert nearest(21.03, 105.85, CommuneIndex(VILLAGES)) == VILLAGES[2]
    # 5 km from Vĩnh Thủy's second village, more than 20 km from Lệ Thủy's.
    assert nearest(17.08, 107.07, VILLAGES) == VILLAGES[0]


def test_nothing_near_is_none() -> None:
    assert nearest(10.7769, 106.7009, VILLAGES) is None  # Hồ Chí Minh City
    assert nearest(17.03, 107.05, VILLAGES, max_km=0.1) is None
    assert nearest(17.0245, 107.0480, VILLAGES, max_km=0) == VILLAGES[0]
    assert nearest(17.03, 107.05, []) is None
    for lat, lon in ((math.nan, 107.0), (17.0, math.inf), (91.0, 0.0), (0.0, 181.0)):
        assert nearest(lat, lon, VILLAGES) is None


def test_distance_km() -> None:
    # Hà Nội to Hồ Chí Minh City, as the crow flies: about 1,140 km.
    assert 1130 < distance_km(21.0285, 105.8542, 10.7769, 106.7009) < 1145
    assert distance_km(17.0, 107.0, 17.0, 107.0) == 0
    assert distance_km(0, 0, 0, 180) == pytest.approx(math.pi * 6371.0088)
