"""`plan`, `graph` and `changed` show an image's variants, in text and in their machine output."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.helpers import git, init_git, write_project
from tests.unit.config.test_config_errors import run_main

CONFIG = """\
registry: 127.0.0.1:5000/show
acr: {registry: example, resource_group: rg, subscription: sub}
pipelines:
  shop:
    tags: {variants: true}
    variants:
      linux-amd64: {platform: linux/amd64}
      linux-arm64: {platform: linux/arm64}
      ltsc2019:
        platform: windows/amd64
        os_version: 10.0.17763
        build_args: {SERVERCORE: "mcr.microsoft.com/windows/servercore:ltsc2019"}
      ltsc2022:
        platform: windows/amd64
        os_version: 10.0.20348
        build_args: {SERVERCORE: "mcr.microsoft.com/windows/servercore:ltsc2022"}
    images:
      base: {context: images/base}
      app: {context: images/app, build_args: {BASE: "{{ images.base }}", MODE: prod}}
      worker: {context: images/worker, depends_on: [base], platform: linux/amd64}
"""
IMAGES = {name: "FROM scratch\nCOPY . /\n" for name in ("base", "app", "worker")}
NAMES = "[linux-amd64, linux-arm64, ltsc2019, ltsc2022]"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    write_project(tmp_path, CONFIG, IMAGES)
    return tmp_path


def test_plan_json_lists_each_variant_with_its_build_args_and_tags(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, output = run_main(["plan", "--offline", "--json", "--version", "2.1.5"], capsys, monkeypatch, project)
    assert code == 0, output
    images = {row["image"]: row for row in json.loads(output)["images"]}
    app = images["shop/app"]
    assert [(v["name"], v["platform"], v["os_version"], v["builder"], v["engine"]) for v in app["variants"]] == [
        ("linux-amd64", "linux/amd64", None, "docker", None),
        ("linux-arm64", "linux/arm64", None, "docker", None),
        ("ltsc2019", "windows/amd64", "10.0.17763", "acr", None),
        ("ltsc2022", "windows/amd64", "10.0.20348", "acr", None),
    ]
    ltsc2019 = app["variants"][2]
    # {{ images.base }} of a variant is the base's matching variant.
    assert ltsc2019["build_args"] == {
        "BASE": "127.0.0.1:5000/show/base@<digest of shop/base[ltsc2019] from this run>",
        "MODE": "prod",
        "SERVERCORE": "mcr.microsoft.com/windows/servercore:ltsc2019",
    }
    assert "2.1.5-ltsc2019" in ltsc2019["tags"]
    assert images["shop/worker"]["variants"] == []
    assert images["shop/worker"]["platform"] == "linux/amd64"


def test_plan_text_shows_shared_build_args_once_and_each_variants_own(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, output = run_main(["plan", "--offline"], capsys, monkeypatch, project)
    assert code == 0, output
    app = output.split("2. shop/app", 1)[1].split("3. shop/worker", 1)[0]
    assert app.count("build arg MODE=prod") == 1
    assert "variants: 4, published as one image index" in app
    assert "ltsc2019     windows/amd64 10.0.17763  acr\n" in app
    assert "build arg BASE=127.0.0.1:5000/show/base@<digest of shop/base[ltsc2022] from this run>" in app
    assert "builder: docker" not in app  # the builder is each variant's
    worker = output.split("3. shop/worker", 1)[1]
    assert "builder: docker" in worker and "variants" not in worker


def test_graph_lists_the_variants_under_the_image(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, mermaid = run_main(["graph"], capsys, monkeypatch, project)
    assert code == 0, mermaid
    assert f'  n_shop_app["shop/app<br/>{NAMES}"]\n' in mermaid
    assert '  n_shop_worker["shop/worker"]\n' in mermaid
    code, dot = run_main(["graph", "--format", "dot"], capsys, monkeypatch, project)
    assert code == 0, dot
    assert f'  "shop/base" [label="shop/base\\n{NAMES}"];\n' in dot
    assert '  "shop/worker";\n' in dot
    assert '  "shop/base" -> "shop/app";\n' in dot


def test_graph_draws_svg_without_graphviz(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", "")  # no `dot` to fall back on
    code, svg = run_main(["graph", "--format", "svg"], capsys, monkeypatch, project)
    assert code == 0, svg
    root = ET.fromstring(svg)
    ns = {"svg": "http://www.w3.org/2000/svg"}
    boxes = {g.attrib["data-image"]: g for g in root.iterfind(".//svg:g[@class='node']", ns)}
    assert set(boxes) == {"shop/base", "shop/app", "shop/worker"}
    label = [t.text for t in boxes["shop/app"].iterfind(".//svg:text", ns)]
    assert label == ["shop/app", NAMES]  # variants on a second line, as in mermaid and dot
    arrows = {(p.attrib["data-from"], p.attrib["data-to"]) for p in root.iterfind(".//svg:path[@class='edge']", ns)}
    assert arrows == {("shop/base", "shop/app"), ("shop/base", "shop/worker")}


def test_changed_names_the_variants_a_change_rebuilds(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    init_git(project)
    (project / "images/app/new.txt").write_text("new\n")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "app: new file")
    code, output = run_main(["changed", "--since", "HEAD~1", "--json"], capsys, monkeypatch, project)
    assert code == 0, output
    [app] = json.loads(output)["images"]
    assert app["image"] == "shop/app"
    assert [v["name"] for v in app["variants"]] == ["linux-amd64", "linux-arm64", "ltsc2019", "ltsc2022"]
    assert app["variants"][3]["os_version"] == "10.0.20348"
    code, text = run_main(["changed", "--since", "HEAD~1"], capsys, monkeypatch, project)
    assert code == 0, text
    assert text.rstrip().endswith(f"images/app/new.txt changed {NAMES}")
