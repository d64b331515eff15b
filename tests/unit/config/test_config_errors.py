"""Bad pipelines.yaml files: each gives one line naming file:line:col and key path, and exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.cli import main
from tests.helpers import write_project

GOOD_IMAGES = {"base": "FROM scratch\n", "app": "FROM scratch\n"}


def run_main(
    args: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, cwd: Path
) -> tuple[int, str]:
    monkeypatch.chdir(cwd)
    monkeypatch.setattr("sys.argv", ["pipeline", *args])
    with pytest.raises(SystemExit) as exited:
        main()
    captured = capsys.readouterr()
    return int(exited.value.code or 0), captured.out + captured.err


CASES = {
    "cycle": (
        """\
        registry: 127.0.0.1:5000/t
        pipelines:
          shop:
            images:
              base:
                context: images/base
                depends_on: [app]
              app:
                context: images/app
                depends_on: [base]
        """,
        r"pipelines\.yaml:5:7: pipelines\.shop\.images\.base: dependency cycle: base -> app -> base",
    ),
    "cycle through a template reference": (
        """\
        registry: 127.0.0.1:5000/t
        pipelines:
          shop:
            images:
              base:
                context: images/base
                build_args: {X: "{{ images.app }}"}
              app:
                context: images/app
                build_args: {X: "{{ images.base }}"}
        """,
        r"dependency cycle: (base -> app -> base|app -> base -> app)",
    ),
    "broken yaml": (
        """\
        registry: 127.0.0.1:5000/t
        pipelines:
          shop:
            images: [unclosed
        """,
        r"pipelines\.yaml:5:1: invalid YAML: ",
    ),
    "unknown key with suggestion": (
        """\
        registry: 127.0.0.1:5000/t
        pipelines:
          shop:
            images:
              base:
                context: images/base
              app:
                context: images/app
                dependson: [base]
        """,
        r"pipelines\.yaml:9:9: pipelines\.shop\.images\.app\.dependson: unknown key 'dependson' "
        r"\(did you mean 'depends_on'\?\)",
    ),
    "unknown top-level key": (
        """\
        registy: 127.0.0.1:5000/t
        pipelines: {shop: {images: {base: {context: images/base}}}}
        """,
        r"pipelines\.yaml:1:1: registy: unknown key 'registy' \(did you mean 'registry'\?\)",
    ),
    "missing context directory": (
        """\
        registry: 127.0.0.1:5000/t
        pipelines:
          shop:
            images:
              base:
                context: images/nope
        """,
        r"pipelines\.yaml:6:18: pipelines\.shop\.images\.base\.context: context directory '.*images/nope' "
        r"does not exist",
    ),
    "missing dockerfile": (
        """\
        registry: 127.0.0.1:5000/t
        pipelines:
          shop:
            images:
              base:
                context: images/base
                dockerfile: Dockerfile.prod
        """,
        r"pipelines\.yaml:7:21: pipelines\.shop\.images\.base\.dockerfile: Dockerfile '.*Dockerfile\.prod' "
        r"does not exist",
    ),
    "unknown dependency": (
        """\
        registry: 127.0.0.1:5000/t
        pipelines:
          shop:
            images:
              base:
                context: images/base
              app:
                context: images/app
                depends_on: [bsae]
        """,
        r"pipelines\.yaml:9:22: pipelines\.shop\.images\.app\.depends_on\[0\]: unknown image 'bsae' in pipeline "
        r"'shop' \(did you mean 'base'\?\)",
    ),
    "unknown image in a template": (
        """\
        registry: 127.0.0.1:5000/t
        pipelines:
          shop:
            images:
              base: {context: images/base}
              app:
                context: images/app
                build_args:
                  BASE: "{{ images.bas }}"
        """,
        r"pipelines\.yaml:9:17: pipelines\.shop\.images\.app\.build_args\.BASE: '\{\{ images\.bas \}\}' names no "
        r"image of pipeline 'shop' \(did you mean 'base'\?\)",
    ),
    "invalid repository characters": (
        """\
        registry: 127.0.0.1:5000/t
        pipelines:
          shop:
            images:
              base:
                context: images/base
                repository: 127.0.0.1:5000/Shop/Base
        """,
        r"pipelines\.yaml:7:21: pipelines\.shop\.images\.base\.repository: 'Shop/Base' is not a valid repository",
    ),
    "tag in registry prefix": (
        """\
        registry: 127.0.0.1:5000/t:latest
        pipelines:
          shop:
            images:
              base: {context: images/base}
        """,
        r"pipelines\.yaml:1:11: registry: '127\.0\.0\.1:5000/t:latest' is a repository name and may not carry",
    ),
    "invalid image name": (
        """\
        registry: 127.0.0.1:5000/t
        pipelines:
          shop:
            images:
              Base_Image!: {context: images/base}
        """,
        r"pipelines\.yaml:5:7: pipelines\.shop\.images\.Base_Image!: 'Base_Image!' is not a valid name",
    ),
    "missing required key": (
        """\
        registry: 127.0.0.1:5000/t
        pipelines:
          shop:
            images:
              base:
                dockerfile: Dockerfile
        """,
        r"pipelines\.yaml:6:9: pipelines\.shop\.images\.base\.context: missing required key 'context'",
    ),
    "wrong type": (
        """\
        registry: 127.0.0.1:5000/t
        pipelines:
          shop:
            images:
              base:
                context: images/base
                depends_on: base
        """,
        r"pipelines\.yaml:7:21: pipelines\.shop\.images\.base\.depends_on: Input should be a valid list",
    ),
    "duplicate key": (
        """\
        registry: 127.0.0.1:5000/t
        pipelines:
          shop:
            images:
              base: {context: images/base}
              base: {context: images/app}
        """,
        r"pipelines\.yaml:6:7: pipelines\.shop\.images\.base: duplicate key 'base'",
    ),
    "no registry": (
        """\
        pipelines:
          shop:
            images:
              base: {context: images/base}
        """,
        r"pipelines\.yaml:4:7: pipelines\.shop\.images\.base: no repository: set 'repository' here or a top-level",
    ),
    "unknown placeholder": (
        """\
        registry: 127.0.0.1:5000/t
        pipelines:
          shop:
            images:
              base:
                context: images/base
                build_args: {V: "{{ verison }}"}
        """,
        r"build_args\.V: unknown placeholder '\{\{ verison \}\}'",
    ),
    "two images push to one repository": (
        """\
        registry: 127.0.0.1:5000/t
        pipelines:
          shop:
            images:
              base: {context: images/base}
          other:
            images:
              base: {context: images/app}
        """,
        r"pipelines\.yaml:8:7: pipelines\.other\.images\.base: pushes to 127\.0\.0\.1:5000/t/base like "
        r"pipelines\.shop\.images\.base",
    ),
    "extra tag that would be a floating tag": (
        """\
        registry: 127.0.0.1:5000/t
        tags: {extra: ["{{ major }}.{{ minor }}"]}
        pipelines:
          shop:
            images:
              base: {context: images/base}
        """,
        r"pipelines\.yaml:2:16: tags\.extra\[0\]: '\{\{ major \}\}\.\{\{ minor \}\}' would name a release or "
        r"floating tag",
    ),
    "extra tag that cannot be a tag": (
        """\
        registry: 127.0.0.1:5000/t
        pipelines:
          shop:
            tags: {extra: ["-{{ version }}"]}
            images:
              base: {context: images/base}
        """,
        r"pipelines\.shop\.tags\.extra\[0\]: '-\{\{ version \}\}' does not make a valid tag",
    ),
    "unknown key under tags": (
        """\
        registry: 127.0.0.1:5000/t
        pipelines:
          shop:
            tags: {floatin: [latest]}
            images:
              base: {context: images/base}
        """,
        r"pipelines\.shop\.tags\.floatin: unknown key 'floatin' \(did you mean 'floating'\?\)",
    ),
    "non-ascii suffix": (
        """\
        registry: 127.0.0.1:5000/t
        pipelines:
          shop:
            images:
              base:
                context: images/base
                tags: {suffix: "-wïn"}
        """,
        r"pipelines\.shop\.images\.base\.tags\.suffix: '-wïn' is not a valid tag suffix",
    ),
    "alias that refers to itself": ("a: &x [*x]\n", r"pipelines\.yaml:1:4: a\[0\]: a YAML alias refers to itself"),
    "numeric key": (
        "registry: r.example/x\npipelines:\n  shop:\n    images:\n      base: {context: images/base, 1: 2}\n",
        r"pipelines\.yaml:5:\d+: pipelines\.shop\.images\.base\[1\]: Keys should be strings",
    ),
    "empty file": ("", r"pipelines\.yaml:1:1: the file is empty"),
    "top level is a list": ("- a\n- b\n", r"pipelines\.yaml:1:1: the top level must be a mapping"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_bad_config_gives_one_line_and_exit_2(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    config, expected = CASES[name]
    write_project(tmp_path, config, GOOD_IMAGES)
    code, output = run_main(["validate"], capsys, monkeypatch, tmp_path)
    assert code == 2, output
    lines = output.strip().splitlines()
    assert len(lines) == 1, output
    assert "Traceback" not in output
    import re

    assert re.search(expected, lines[0]), lines[0]


def test_bad_config_stops_run_before_anything_is_built(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    config, _ = CASES["unknown dependency"]
    write_project(tmp_path, config, GOOD_IMAGES)
    # DOCKER_HOST points nowhere: if run got past validation it would fail with exit 3, not 2.
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:9")
    code, output = run_main(["run", "--report", "r.json"], capsys, monkeypatch, tmp_path)
    assert code == 2
    assert "unknown image 'bsae'" in output
    assert not (tmp_path / "r.json").exists()


def test_missing_config_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, output = run_main(["plan", "-f", "nope.yaml"], capsys, monkeypatch, tmp_path)
    assert code == 2
    assert output.strip() == "error: nope.yaml: no such file (pass the config with -f FILE)"


def test_unknown_pipeline_name_suggests(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    write_project(
        tmp_path,
        "registry: r.example/x\npipelines:\n  shop:\n    images:\n      base: {context: images/base}\n",
        GOOD_IMAGES,
    )
    code, output = run_main(["plan", "shpo"], capsys, monkeypatch, tmp_path)
    assert code == 2
    assert "no pipeline named 'shpo' (did you mean 'shop'?)" in output


def test_invalid_version_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    write_project(
        tmp_path,
        "registry: r.example/x\npipelines:\n  shop:\n    images:\n      base: {context: images/base}\n",
        GOOD_IMAGES,
    )
    code, output = run_main(["plan", "--version", "1.2"], capsys, monkeypatch, tmp_path)
    assert code == 2
    assert "version '1.2' is not a semantic version" in output
