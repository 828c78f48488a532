"""Hostile XMP: a megabyte of crafted packet costs well under a second of CPU and gives partial
fields or none, never a crash, an expanded entity or a read file. The first shape is the one
that made the old regular expression backtrack (an unclosed `<prefix:Name>` start tag made it
try up to 20,000 characters for the closing tag, at every one of 200,000 start tags: 44 s for
a 400 KB PNG)."""

from __future__ import annotations

import time

import pytest
from guards import time_limit
from provenance_samples import IPTC, png_with_xmp

from dgs_desktop.provenance.fingerprints import DECLARED_AI
from dgs_desktop.provenance.metadata import (
    MAX_VALUE_CHARS,
    MAX_XMP_BYTES,
    MAX_XMP_PROPERTIES,
    parse_xmp,
    read_metadata,
)
from dgs_desktop.provenance.summary import analyze

MiB = 1 << 20
CPU_SECONDS = 1.0  # generous: each shape takes about 0.2 s or less on one slow core
LEAD = '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF><rdf:Description xmp:CreatorTool="Lead">'


def filled(unit: str, head: str = LEAD, tail: str = "", size: int = MiB) -> str:
    """`head`, then `unit` repeated up to `size` characters in all, then `tail`."""
    return head + unit * ((size - len(head) - len(tail)) // len(unit)) + tail


SHAPES = {
    "unclosed start tags (the old regex's backtracking shape)": filled("<p:q>"),
    "unclosed list items": filled("<p:q><rdf:li>"),
    "deep nesting, closed": LEAD + "<p:q>" * 95_000 + "deep" + "</p:q>" * 95_000,
    "many distinct attributes": LEAD[:-1] + "".join(f' stRef:a{i}="x"' for i in range(62_000)) + ">",
    "many distinct properties": LEAD + "".join(f"<p:k{i}>v</p:k{i}>" for i in range(50_000)),
    "many empty elements": filled("<p:q/>"),
    "one megabyte value": filled("a", head=LEAD + "<p:q>", tail="</p:q></rdf:Description></rdf:RDF></x:xmpmeta>"),
    "a megabyte list": filled("<rdf:li>ancestor</rdf:li>", head=LEAD + "<photoshop:DocumentAncestors><rdf:Bag>",
                              tail="</rdf:Bag></photoshop:DocumentAncestors></rdf:Description></rdf:RDF></x:xmpmeta>"),
    "unterminated attribute": LEAD + '<p:q a:b="' + "x" * (MiB - 200),
    "over the size bound": filled("<p:q>v</p:q>", size=3 * MiB),
}


def timed_parse(packet):
    problems: list[str] = []
    with time_limit(60, "parsing a hostile XMP packet"):
        started = time.process_time()
        properties = parse_xmp(packet, problems)
        spent = time.process_time() - started
    return properties, problems, spent


@pytest.mark.parametrize("shape", SHAPES)
def test_a_megabyte_of_crafted_xmp_is_cheap_and_partial(shape):
    packet = SHAPES[shape]
    assert len(packet) >= 0.99 * MiB
    properties, problems, spent = timed_parse(packet.encode())
    assert spent < CPU_SECONDS, (shape, spent)
    assert properties["xmp:CreatorTool"] == "Lead"  # what came before the hostile part is kept
    assert len(properties) <= MAX_XMP_PROPERTIES
    assert all(len(value) <= MAX_VALUE_CHARS + 2 for value in properties.values())  # clip_text's " …"
    assert len(problems) <= 1 and all(p.startswith("XMP ") for p in problems), problems  # one line, never raised


def test_what_each_shape_yields():
    assert timed_parse(SHAPES["deep nesting, closed"])[0] == {"xmp:CreatorTool": "Lead"}  # p:q holds a struct
    many, problems, _ = timed_parse(SHAPES["many distinct properties"])
    assert len(many) == MAX_XMP_PROPERTIES and many["p:k998"] == "v"
    assert problems == [f"XMP partly read: over {MAX_XMP_PROPERTIES:,} properties; the rest are not listed"]
    value = timed_parse(SHAPES["one megabyte value"])[0]["p:q"]
    assert value == "a" * MAX_VALUE_CHARS + " …"
    listed = timed_parse(SHAPES["a megabyte list"])[0]["photoshop:DocumentAncestors"]
    assert listed.startswith("ancestor; ancestor; ") and listed.endswith(" …")
    assert timed_parse(SHAPES["over the size bound"])[1] == [f"XMP cut at {MAX_XMP_BYTES >> 20} MiB"]


BILLION_LAUGHS = ('<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol0 "lol">'
                  + "".join(f'<!ENTITY lol{i + 1} "{f"&lol{i};" * 10}">' for i in range(9))
                  + ']><x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF><rdf:Description xmp:CreatorTool="&lol9;">'
                  "<p:q>&lol9;</p:q></rdf:Description></rdf:RDF></x:xmpmeta>")


def test_entity_bombs_and_external_entities_are_refused_unread(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("the analyst's private notes")
    external = (f'<!DOCTYPE x:xmpmeta [<!ENTITY leak SYSTEM "{secret.as_uri()}">]>'
                '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF><rdf:Description xmp:CreatorTool="&leak;">'
                "<p:q>&leak;</p:q></rdf:Description></rdf:RDF></x:xmpmeta>")
    external_dtd = f'<!DOCTYPE x:xmpmeta SYSTEM "{secret.as_uri()}"><x:xmpmeta xmlns:x="adobe:ns:meta/"/>'
    for packet in (BILLION_LAUGHS, external, external_dtd):
        properties, problems, spent = timed_parse(packet)
        assert properties == {} and spent < CPU_SECONDS
        assert problems == ["XMP not read: it declares a DOCTYPE (refused: entities are never expanded)"]


def test_an_undeclared_entity_stops_reading_there():
    properties, problems, _ = timed_parse(LEAD + '<p:q>&lol;</p:q><p:r>after</p:r>')
    assert properties == {"xmp:CreatorTool": "Lead"}
    assert problems[0].startswith("XMP partly read: undefined entity")


def test_the_crafted_png_is_scanned_in_well_under_a_second():
    data = png_with_xmp(filled("<p:q>", head=LEAD + '</rdf:Description><rdf:Description '
                               f'Iptc4xmpExt:DigitalSourceType="{IPTC}trainedAlgorithmicMedia">', size=MiB - 4096))
    with time_limit(60, "reading the crafted PNG's metadata"):
        started = time.process_time()
        report = analyze(data)
        spent = time.process_time() - started
    assert spent < CPU_SECONDS, spent
    assert report.metadata.xmp["xmp:CreatorTool"] == "Lead"
    assert (DECLARED_AI, "IPTC DigitalSourceType trainedAlgorithmicMedia") in [(s.kind, s.name) for s in report.signals]
    assert [p for p in report.metadata.problems if p.startswith("XMP partly read")]


def test_digital_source_type_as_a_resource_is_read():
    packet = (LEAD + f'<Iptc4xmpExt:DigitalSourceType rdf:resource="{IPTC}trainedAlgorithmicMedia"/>'
              "</rdf:Description></rdf:RDF></x:xmpmeta>")
    meta = read_metadata(png_with_xmp(packet))
    assert meta.xmp["Iptc4xmpExt:DigitalSourceType"] == IPTC + "trainedAlgorithmicMedia"
    assert meta.problems == []
