"""A commune's deep link and its printed poster (bot/domain/commune_links.py,
bot/services/posters.py): the link carries exactly the commune, the poster's QR code
carries exactly the link, and no forged payload is taken for a commune."""

from __future__ import annotations

import io
import string

import pytest
import segno
import zxingcpp
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from bot import i18n
from bot.domain.commune_links import MAX_PAYLOAD, commune_code_of, deep_link, start_payload
from bot.services import posters

SAFE = string.ascii_letters + string.digits + "_-"


def test_the_link_of_a_commune() -> None:
    assert deep_link("SafeChildBot", "19189") == "https://t.me/SafeChildBot?start=c-19189"
    assert deep_link("@quangtri_safechild_bot", "QT-19189") == (
        "https://t.me/quangtri_safechild_bot?start=c-QT-19189")
    assert start_payload("19189") == "c-19189"
    assert commune_code_of("c-19189") == "19189"


@given(st.text(SAFE, min_size=1, max_size=MAX_PAYLOAD - 2))
def test_every_code_that_fits_round_trips(code: str) -> None:
    payload = start_payload(code)
    assert len(payload) <= MAX_PAYLOAD
    assert commune_code_of(payload) == code
    assert deep_link("SafeChildBot", code).endswith(f"?start={payload}")


@pytest.mark.parametrize("code", ["", "1" * 63, "xã", "19 189", "19189\n", "../1", "a/b",
                                  "c=1", "１２３"])
def test_a_code_no_payload_can_carry_is_refused(code: str) -> None:
    with pytest.raises(ValueError):
        start_payload(code)
    with pytest.raises(ValueError):
        deep_link("SafeChildBot", code)


@pytest.mark.parametrize("username", ["", "@", "Safe", "SafeChild", "1SafeChildBot",
                                      "safe child bot", "a" * 30 + "bot", "Safe-ChildBot",
                                      "t.me/SafeChildBot"])
def test_a_username_no_bot_can_have_is_refused(username: str) -> None:
    with pytest.raises(ValueError):
        deep_link(username, "19189")


@pytest.mark.parametrize("payload", [
    None, "", "c-", "c", "C-19189", "x-19189", "inv-abc123", "19189", " c-19189", "c-19189 ",
    "c-19189\n", "c-1918/9", "c-19189?x=1", "c-xã", "c-" + "1" * 63, "c-１９", "c-19189\x00",
])
def test_forged_or_foreign_payloads_name_no_commune(payload: str | None) -> None:
    assert commune_code_of(payload) is None


@given(st.text(max_size=100))
def test_any_payload_is_read_or_refused(payload: str) -> None:
    code = commune_code_of(payload)
    if code is not None:
        assert payload == start_payload(code) and len(payload) <= MAX_PAYLOAD


# ---- the poster -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def poster() -> posters.Poster:
    return posters.commune_poster("SafeChildBot", "19189", "Xã Vĩnh Thủy")


def test_the_poster_is_a_printable_png(poster: posters.Poster) -> None:
    assert poster.png.startswith(b"\x89PNG\r\n\x1a\n")
    image = Image.open(io.BytesIO(poster.png))
    image.verify()
    image = Image.open(io.BytesIO(poster.png))
    assert image.format == "PNG" and image.size == (posters.WIDTH, posters.HEIGHT)
    assert image.info["dpi"] == pytest.approx((300, 300), abs=0.5)
    assert len(poster.png) < 200_000


def test_the_printed_modules_are_the_code_of_the_link(poster: posters.Poster) -> None:
    """Read every module back at its centre and compare with the code of the link,
    encoded again here with segno."""
    assert poster.link == "https://t.me/SafeChildBot?start=c-19189"
    matrix = segno.make(poster.link, error="q", micro=False).matrix
    image = Image.open(io.BytesIO(poster.png)).convert("L")
    half = poster.module_px // 2
    read = [[image.getpixel((poster.qr_left + x * poster.module_px + half,
                             poster.qr_top + y * poster.module_px + half)) < 128
             for x in range(len(matrix))] for y in range(len(matrix))]
    assert read == [[bool(m) for m in row] for row in matrix]
    # The quiet zone is white all round.
    for x in range(-posters.QUIET_ZONE, len(matrix) + posters.QUIET_ZONE):
        for y in (-1, len(matrix)):
            assert image.getpixel((poster.qr_left + x * poster.module_px + half,
                                   poster.qr_top + y * poster.module_px + half)) > 128


def test_a_phone_reads_the_link_off_the_poster(poster: posters.Poster) -> None:
    image = Image.open(io.BytesIO(poster.png))
    found = zxingcpp.read_barcodes(image)
    assert [(b.format, b.text) for b in found] == [(zxingcpp.BarcodeFormat.QRCode, poster.link)]
    # Printed small and photographed: a quarter of the size still reads.
    small = image.resize((image.width // 4, image.height // 4))
    assert [b.text for b in zxingcpp.read_barcodes(small)] == [poster.link]


@pytest.mark.parametrize("locale", ["vi", "en"])
def test_the_poster_texts_come_from_the_catalogs(locale: str) -> None:
    for msgid in ("poster.heading", "poster.call", "poster.scan"):
        assert i18n.t(msgid, locale) != msgid
    assert "111" in i18n.t("poster.call", locale)
    made = posters.commune_poster("SafeChildBot", "00070", "Phường Văn Miếu - Quốc Tử Giám",
                                  locale)
    assert [b.text for b in zxingcpp.read_barcodes(Image.open(io.BytesIO(made.png)))] == [
        "https://t.me/SafeChildBot?start=c-00070"]


def test_the_vietnamese_poster_says_goi_111() -> None:
    assert i18n.t("poster.call", "vi").startswith("Gọi 111")
