"""SVG images of a member code, for screens that show the code without drawing it themselves.

The app normally draws codes natively (it computes them offline); these renderings serve the web
member page, staff tools and documentation. Both are vector images on a white background, so they
stay scannable in dark mode, and neither carries an XML declaration, so they can be inlined in HTML.
"""

from __future__ import annotations

import io

import segno
from barcode import Code128
from barcode.writer import SVGWriter

# 10 px per module: a version-1 QR code plus its 4-module quiet zone is 290 px, about three
# quarters of a phone screen's width, which phone-screen scanners read at arm's length.
QR_SCALE = 10
QR_BORDER_MODULES = 4

# Millimetres, as python-barcode sizes its SVG. 0.4 mm bars make a 26-digit code about 79 mm
# wide including the 10-module quiet zones Code 128 requires; 20 mm is comfortable for a
# hand-held scanner.
CODE128_MODULE_WIDTH_MM = 0.4
CODE128_HEIGHT_MM = 20.0
CODE128_QUIET_ZONE_MM = 10 * CODE128_MODULE_WIDTH_MM


def qr_svg(payload: str) -> str:
    """A QR code (never Micro QR, which many register scanners cannot read), error level M."""
    _check_numeric(payload)
    # boost_error=False keeps level M as specified; segno would otherwise raise it when it fits.
    qr = segno.make_qr(payload, error="m", mode="numeric", boost_error=False)
    buffer = io.BytesIO()
    # The SVG namespace is kept so the image also works standalone (an <img> source, a file);
    # unit="px" makes segno emit a viewBox as well, so it scales cleanly to any width.
    qr.save(
        buffer,
        kind="svg",
        scale=QR_SCALE,
        border=QR_BORDER_MODULES,
        dark="#000",
        light="#fff",
        unit="px",
        xmldecl=False,
        svgns=True,
        nl=False,
    )
    return buffer.getvalue().decode("utf-8")


def code128_svg(payload: str) -> str:
    """A Code 128 barcode without the digits printed under it.

    The text is omitted: the app shows the card number in its own type, and 26 digits under the
    bars would be unreadable at this width anyway.
    """
    _check_numeric(payload)
    buffer = io.BytesIO()
    Code128(payload, writer=SVGWriter()).write(
        buffer,
        options={
            "module_width": CODE128_MODULE_WIDTH_MM,
            "module_height": CODE128_HEIGHT_MM,
            "quiet_zone": CODE128_QUIET_ZONE_MM,
            "background": "white",
            "foreground": "black",
            "write_text": False,
            "with_doctype": False,
            "compress": True,
        },
    )
    document = buffer.getvalue().decode("utf-8")
    # python-barcode always writes an XML declaration; drop it so the SVG can be inlined.
    return document[document.index("<svg") :]


def _check_numeric(payload: str) -> None:
    if not (payload.isascii() and payload.isdigit()):
        raise ValueError("member code payloads are ASCII digits")
