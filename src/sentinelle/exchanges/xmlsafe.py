"""Safe, fast XML parsing for exchange pages (lxml with every dangerous feature off).

No DTDs, no entities, no network, no huge-tree mode: a page with a ``DOCTYPE``
(the start of every XXE or billion-laughs attack) is refused outright. Tag
names are returned without their namespace, as NCMEC's v2 namespace carries no
information a client needs.
"""

from __future__ import annotations

from lxml import etree

from .api import MalformedPage

_PARSER = etree.XMLParser(
    resolve_entities=False,
    no_network=True,
    load_dtd=False,
    dtd_validation=False,
    huge_tree=False,
    remove_comments=True,
    remove_pis=True,
)


def parse(body: bytes, where: str) -> etree._Element:
    """Parse a whole page; :class:`MalformedPage` on any syntax problem or DOCTYPE."""
    head = body[:2048].lstrip()
    if b"<!DOCTYPE" in head.upper() or b"<!ENTITY" in head.upper():
        raise MalformedPage(f"{where}: XML with a DOCTYPE is refused", body, "hostile_xml")
    try:
        root = etree.fromstring(body, _PARSER)
    except etree.XMLSyntaxError as e:
        raise MalformedPage(f"{where}: invalid XML ({e.msg})", body, "bad_xml") from None
    if root is None:
        raise MalformedPage(f"{where}: empty XML document", body, "bad_xml")
    if root.getroottree().docinfo.doctype:
        raise MalformedPage(f"{where}: XML with a DOCTYPE is refused", body, "hostile_xml")
    return root


#: Qualified tag -> local name, filled by :func:`local` (bounded); hot loops read it
#: directly and call :func:`local` only on a miss.
LOCAL_NAMES: dict[object, str] = {}
_LOCAL = LOCAL_NAMES


def local(tag: object) -> str:
    """Tag name without namespace (``{ns}image`` -> ``image``); '' for comments/PIs."""
    if not isinstance(tag, str):
        return ""
    name = _LOCAL.get(tag)
    if name is None:
        name = tag.rsplit("}", 1)[-1]
        if len(_LOCAL) < 10_000:  # tag names are few; never grow without bound
            _LOCAL[tag] = name
    return name


def child(el: etree._Element, name: str) -> etree._Element | None:
    for c in el:
        if local(c.tag) == name:
            return c
    return None


def text(el: etree._Element, name: str) -> str | None:
    c = child(el, name)
    if c is None or c.text is None:
        return None
    return c.text.strip()
