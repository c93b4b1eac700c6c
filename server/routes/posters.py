"""QR posters (A1): a printable A4 page per place whose QR code opens that place's suggestion box."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass

import qrcode
from litestar import Request, get
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.response import Template
from markupsafe import Markup
from qrcode.constants import ERROR_CORRECT_M
from qrcode.image.svg import SvgPathFillImage
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server.i18n import gettext as _
from server.models import LEAF_KINDS, Place, Role
from server.security import STAFF_SIDE, roles
from server.services import places
from server.web import public_url, render

# Medium error correction survives a poster that is scuffed, taped over or photographed at an angle.
QR_ERROR_CORRECTION = ERROR_CORRECT_M
QR_BORDER = 4  # the quiet zone the QR standard asks for, in modules


@dataclass(frozen=True)
class Poster:
    place: Place
    url: str
    svg: Markup


def suggest_url(request: Request, place: Place) -> str:
    return public_url(request, f"/suggest/{place.code}")


def qr_svg(data: str, label: str) -> Markup:
    """The QR code as inline SVG markup (no style attributes, so the CSP allows it), sized by CSS."""
    code = qrcode.QRCode(error_correction=QR_ERROR_CORRECTION, border=QR_BORDER, image_factory=SvgPathFillImage)
    code.add_data(data)
    code.make(fit=True)
    root = code.make_image().get_image()
    for attribute in ("width", "height"):
        root.attrib.pop(attribute, None)
    root.set("class", "qr-code")
    root.set("role", "img")
    root.set("aria-label", label)
    # ElementTree escapes every attribute value and text node: the markup is safe to inline.
    return Markup(ET.tostring(root, encoding="unicode"))  # noqa: S704


def poster_for(request: Request, place: Place) -> Poster:
    url = suggest_url(request, place)
    return Poster(place, url, qr_svg(url, _("QR code for the suggestion box of %(name)s") % {"name": place.name}))


@get("/places/{code:str}/poster", opt=roles(*STAFF_SIDE, Role.GRID_WORKER))
async def place_poster(request: Request, code: FromPath[str], db_session: NamedDependency[AsyncSession]) -> Template:
    place = await places.get_place_by_code(db_session, code)
    if place is None:
        raise NotFoundException
    return render(request, "posters/posters.html", posters=[poster_for(request, place)], single=True)


@get("/places/posters", opt=roles(*STAFF_SIDE))
async def all_posters(request: Request, db_session: NamedDependency[AsyncSession]) -> Template:
    leaves = await db_session.scalars(select(Place).where(Place.kind.in_(LEAF_KINDS)).order_by(Place.name))
    return render(request, "posters/posters.html", posters=[poster_for(request, place) for place in leaves], single=False)


route_handlers = [place_poster, all_posters]
