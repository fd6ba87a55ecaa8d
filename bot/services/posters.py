"""Commune posters: a printable PNG with the QR code of the commune's deep link, its name
and "Gọi 111" under it, for administrators to print and put up (services layer; no I/O
and no Telegram call: the caller sends the bytes as a document or a photo).

The QR code comes from segno (pure Python, no dependencies, ISO/IEC 18004, gives its module
matrix); the page is drawn with Pillow in DejaVu Sans, the font matplotlib ships, which has
every Vietnamese letter. Drawing takes some tens of milliseconds: an async caller runs it in
a thread (`asyncio.to_thread(commune_poster, ...)`).
"""

from __future__ import annotations

import io
import unicodedata
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import matplotlib
import segno
from PIL import Image, ImageDraw, ImageFont

from bot import i18n
from bot.domain.commune_links import deep_link

# A6 at 300 dpi, portrait: the size of a notice on a commune board, or four to an A4 sheet.
WIDTH, HEIGHT = 1240, 1748
MARGIN = 70
# Quartile error correction: a poster outdoors gets dirty, folded and rained on.
ERROR = "q"
QUIET_ZONE = 4  # modules of white around the code, as the standard asks
INK = (0, 0, 0)
HOTLINE_INK = (190, 20, 30)
FONTS = Path(matplotlib.get_data_path()) / "fonts" / "ttf"


@dataclass(frozen=True)
class Poster:
    """The link the code holds, the PNG, and where the code sits in it (left and top of
    its first module, pixels per module), so a check can read the modules back."""

    link: str
    png: bytes = field(repr=False)
    qr_left: int
    qr_top: int
    module_px: int


def qr_code(link: str) -> segno.QRCode:
    """The QR code of `link`, as the poster prints it."""
    return segno.make(link, error=ERROR, micro=False)


def commune_poster(bot_username: str, commune_code: str, commune_name: str,
                   locale: str = i18n.DEFAULT_LOCALE) -> Poster:
    """The poster of one commune; ValueError for a username or code no link can carry."""
    return poster(deep_link(bot_username, commune_code), commune_name, locale)


def poster(link: str, commune_name: str, locale: str = i18n.DEFAULT_LOCALE) -> Poster:
    """A poster for any link (a Zalo one too, once the OA has one per commune)."""
    page = Image.new("RGB", (WIDTH, HEIGHT), "white")
    draw = ImageDraw.Draw(page)
    width = WIDTH - 2 * MARGIN
    top = MARGIN
    top = _lines(draw, i18n.t("poster.heading", locale), font(54), top, width, INK) + 20

    code = qr_code(link)
    modules = len(code.matrix) + 2 * QUIET_ZONE
    module_px = max(1, min(width, 1000) // modules)
    side = modules * module_px
    left = (WIDTH - side) // 2
    page.paste(_qr_image(code).resize((side, side), Image.Resampling.NEAREST), (left, top))
    qr_left, qr_top = left + QUIET_ZONE * module_px, top + QUIET_ZONE * module_px
    top += side + 10

    top = _lines(draw, unicodedata.normalize("NFC", commune_name.strip()), font(84), top,
                 width, INK) + 14
    top = _lines(draw, i18n.t("poster.call", locale), font(72), top, width, HOTLINE_INK) + 24
    top = _lines(draw, i18n.t("poster.scan", locale), font(38, bold=False), top, width,
                 INK) + 8
    _lines(draw, link.removeprefix("https://"), font(30, bold=False), top, width, INK)

    out = io.BytesIO()
    page.save(out, format="PNG", optimize=True, dpi=(300, 300))
    return Poster(link=link, png=out.getvalue(), qr_left=qr_left, qr_top=qr_top,
                  module_px=module_px)


@cache
def font(size: int, bold: bool = True) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(FONTS / ("DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf")),
                              size)


def _qr_image(code: segno.QRCode) -> Image.Image:
    """One pixel a module, with the quiet zone."""
    size = len(code.matrix) + 2 * QUIET_ZONE
    image = Image.new("L", (size, size), 255)
    for y, row in enumerate(code.matrix):
        for x, dark in enumerate(row):
            if dark:
                image.putpixel((x + QUIET_ZONE, y + QUIET_ZONE), 0)
    return image


def _lines(draw: ImageDraw.ImageDraw, text: str, face: ImageFont.FreeTypeFont, top: int,
           width: int, ink: tuple[int, int, int]) -> int:
    """`text` centred, wrapped at words to `width`; the top of what comes next."""
    for line in _wrap(draw, text, face, width):
        left, _, right, _ = draw.textbbox((0, 0), line, font=face)
        draw.text(((WIDTH - (right - left)) // 2 - left, top), line, font=face, fill=ink)
        top += int(face.size * 1.25)
    return top


def _wrap(draw: ImageDraw.ImageDraw, text: str, face: ImageFont.FreeTypeFont,
          width: int) -> list[str]:
    lines: list[str] = []
    for word in text.split():
        if lines and draw.textlength(f"{lines[-1]} {word}", font=face) <= width:
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(word)
    return lines
