"""The DAG drawing read back as a viewer would: the SVG parsed with xml.etree, its boxes and arrows checked
against the graph (every node, every edge from dependency to dependant), the geometry (no box overlaps
another, arrows run left to right and around boxes), escaping, status colours, links and determinism."""

from __future__ import annotations

import random
import re
import xml.etree.ElementTree as ET
from itertools import combinations

import pytest

from pipeline.pictures import STATUS_COLOURS, layout, render_svg
from pipeline.pictures.layout import CHAR_WIDTH

NS = {"svg": "http://www.w3.org/2000/svg"}
SHOP = {
    "shop/base": (),
    "shop/app": ("shop/base",),
    "shop/worker": ("shop/base",),
    "shop/cli": ("shop/app", "shop/base"),  # base -> cli spans a column: routed around it
    "tools/lint": (),
    "tools/report": ("tools/lint", "shop/cli"),
}

Rect = tuple[float, float, float, float]


def parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)  # raises on anything that is not well-formed XML
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    return root


def nodes(root: ET.Element) -> dict[str, ET.Element]:
    return {g.attrib["data-image"]: g for g in root.iterfind(".//svg:g[@class='node']", NS)}


def rect_of(node: ET.Element) -> Rect:
    rect = node.find(".//svg:rect", NS)
    assert rect is not None
    return tuple(float(rect.attrib[k]) for k in ("x", "y", "width", "height"))  # type: ignore[return-value]


def edges(root: ET.Element) -> list[tuple[str, str, list[tuple[float, float]]]]:
    found = []
    for path in root.iterfind(".//svg:path[@class='edge']", NS):
        points = []  # where each command ends (M, L, or a C curve's last pair after its control points)
        for _, args in re.findall(r"([MLC])([^MLC]*)", path.attrib["d"]):
            numbers = [float(n) for n in re.findall(r"-?\d+(?:\.\d+)?", args)]
            points.append((numbers[-2], numbers[-1]))
        found.append((path.attrib["data-from"], path.attrib["data-to"], points))
    return found


def expected_edges(graph: dict[str, tuple[str, ...]]) -> set[tuple[str, str]]:
    return {(dep, key) for key, deps in graph.items() for dep in deps}


def overlap(a: Rect, b: Rect) -> bool:
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


def random_dag(seed: int, size: int) -> dict[str, tuple[str, ...]]:
    rng = random.Random(seed)
    keys = [f"p{rng.randint(1, 3)}/image-{i}{'x' * rng.randint(0, 20)}" for i in range(size)]
    return {key: tuple(rng.sample(keys[:i], k=min(i, rng.randint(0, 3)))) for i, key in enumerate(keys)}


def test_every_image_is_a_box_and_every_dependency_an_arrow_into_its_dependant() -> None:
    root = parse(render_svg(layout(SHOP)))
    boxes = nodes(root)
    assert set(boxes) == set(SHOP)
    for key, node in boxes.items():
        assert "".join(node.itertext()).endswith(key)  # the <title> tooltip, then the label
    drawn = edges(root)
    assert {(source, target) for source, target, _ in drawn} == expected_edges(SHOP)
    assert len(drawn) == len(expected_edges(SHOP))
    for source, target, points in drawn:
        sx, sy, sw, sh = rect_of(boxes[source])
        tx, ty, tw, th = rect_of(boxes[target])
        # Starts on the dependency's right side, ends (where the arrow head is) on the dependant's left.
        assert points[0] == (pytest.approx(sx + sw), pytest.approx(sy + sh / 2))
        assert points[-1] == (pytest.approx(tx), pytest.approx(ty + th / 2))
        assert all(a[0] <= b[0] for a, b in zip(points, points[1:], strict=False)), (source, target, points)
    marker = root.find(".//svg:marker", NS)
    assert marker is not None
    heads = {p.attrib["marker-end"] for p in root.iterfind(".//svg:path[@class='edge']", NS)}
    assert heads == {f"url(#{marker.attrib['id']})"}  # every arrow ends in the arrow head


def test_layers_follow_the_longest_path_from_a_root() -> None:
    drawing = layout(SHOP)
    column = {key: i for i, layer in enumerate(drawing.layers) for key in layer}
    assert column == {
        "shop/base": 0,
        "tools/lint": 0,
        "shop/app": 1,
        "shop/worker": 1,
        "shop/cli": 2,
        "tools/report": 3,
    }


@pytest.mark.parametrize("seed", range(12))
def test_no_box_overlaps_another_and_long_arrows_go_around_boxes(seed: int) -> None:
    graph = random_dag(seed, 4 + seed * 2)
    root = parse(render_svg(layout(graph)))
    boxes = {key: rect_of(node) for key, node in nodes(root).items()}
    assert set(boxes) == set(graph)
    width, height = float(root.attrib["width"]), float(root.attrib["height"])
    for key, (x, y, w, h) in boxes.items():
        assert 0 <= x and x + w <= width and 0 <= y and y + h <= height, key
        assert w >= len(key) * CHAR_WIDTH, key  # the label fits its box
    for (a, ra), (b, rb) in combinations(boxes.items(), 2):
        assert not overlap(ra, rb), (a, ra, b, rb)
    drawn = edges(root)
    assert {(s, t) for s, t, _ in drawn} == expected_edges(graph)
    column = {key: i for i, layer in enumerate(layout(graph).layers) for key in layer}
    for source, target, points in drawn:
        assert len(points) == 2 + 2 * (column[target] - column[source] - 1), (source, target, points)
        # Where a long edge passes a column it runs straight across a slot of its own, touching no box.
        for (x1, y1), (x2, y2) in zip(points, points[1:], strict=False):
            if y1 == y2 and (x1, y1) != points[0]:
                for key, (x, y, w, h) in boxes.items():
                    assert not (x < x2 and x1 < x + w and y <= y1 <= y + h), (source, target, key)


def test_crossings_are_reduced_by_the_barycenter_sweeps() -> None:
    # Declared so that the first column reads a, b and the second x (after b), y (after a): one
    # crossing; ordering the second column by its dependencies' positions removes it.
    drawing = layout({"a": (), "b": (), "x": ("b",), "y": ("a",)})
    assert drawing.layers == (("a", "b"), ("y", "x"))
    boxes = drawing.boxes
    assert boxes["y"].y < boxes["x"].y


def test_the_same_graph_gives_the_same_bytes() -> None:
    graph = random_dag(7, 25)
    first = render_svg(layout(graph), statuses={k: "failed" for k in graph}, title="t")
    again = render_svg(layout(dict(graph)), statuses={k: "failed" for k in graph}, title="t")
    assert first == again


def test_text_is_escaped_and_characters_xml_cannot_hold_are_replaced() -> None:
    hostile = 'shop/<script>alert("x")</script>&\x1b[31m'
    graph = {hostile: (), "shop/app": (hostile,)}
    labels = {hostile: [hostile, "v1.0 <main> & 'dev'"]}
    svg = render_svg(
        layout(graph, labels),
        statuses={hostile: 'failed"><script>', "shop/app": "succeeded"},
        links={hostile: '/runs/1/images/x?a=1&b="2"'},
        title="<b>title</b>",
        ident='run 1"><x',
    )
    root = parse(svg)
    assert "<script" not in svg and "\x1b" not in svg
    assert root.find(".//svg:script", NS) is None
    drawn = nodes(root)
    shown = hostile.replace("\x1b", "\ufffd")
    assert set(drawn) == {shown, "shop/app"}
    assert drawn[shown].attrib["data-status"] == 'failed"><script>'
    assert "v1.0 <main> & 'dev'" in "".join(drawn[shown].itertext())
    link = drawn[shown].find("svg:a", NS)
    assert link is not None and link.attrib["href"] == '/runs/1/images/x?a=1&b="2"'
    assert [(s, t) for s, t, _ in edges(root)] == [(shown, "shop/app")]


def test_statuses_colour_the_boxes_and_links_wrap_them() -> None:
    graph = {f"p/{status}": () for status in STATUS_COLOURS} | {"p/plain": ()}
    statuses = {f"p/{status}": status for status in STATUS_COLOURS}
    links = {key: f"/runs/3/images/{key}" for key in statuses}
    drawn = nodes(parse(render_svg(layout(graph), statuses, links)))
    for status, (fill, stroke) in STATUS_COLOURS.items():
        node = drawn[f"p/{status}"]
        rect = node.find("svg:a/svg:rect", NS)
        assert rect is not None, status
        assert (rect.attrib["fill"], rect.attrib["stroke"], node.attrib["data-status"]) == (fill, stroke, status)
        assert node.find("svg:a", NS).attrib["href"] == f"/runs/3/images/p/{status}"  # type: ignore[union-attr]
    assert len({fill for fill, _ in STATUS_COLOURS.values()}) == len(STATUS_COLOURS)  # each one tells apart
    plain = drawn["p/plain"]
    assert plain.find("svg:a", NS) is None and "data-status" not in plain.attrib


def test_a_cycle_or_an_unknown_dependency_still_draws_every_box() -> None:
    drawing = layout({"a": ("c",), "b": ("a",), "c": ("b", "elsewhere/x"), "d": ()})
    assert set(drawing.boxes) == {"a", "b", "c", "d"}
    assert len(drawing.edges) == 2  # the edge closing the cycle and the unknown one are left out
    assert parse(render_svg(drawing)) is not None
    empty = parse(render_svg(layout({})))
    assert nodes(empty) == {}
