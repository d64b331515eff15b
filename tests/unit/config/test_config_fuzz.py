"""Fuzzing the loader: whatever pipelines.yaml holds, load_config succeeds or raises a ConfigError of
one line per mistake, each starting `<file>:<line>:<col>:` — never another exception.

Three generators: random documents built from the schema's own keys plus junk, near-valid configs
whose values are drawn from good and hostile pools, and text/byte mutations of a valid config.
Derandomized, so CI runs the same examples every time.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from pipeline.config import load_config
from pipeline.config.schema import ConfigSpec
from pipeline.errors import ConfigError

FUZZ = settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)


def schema_keys(model: type[BaseModel], seen: set[type[BaseModel]] | None = None) -> set[str]:
    """Every field name in the schema, nested models included."""
    seen = seen if seen is not None else set()
    seen.add(model)
    keys = set(model.model_fields)
    for field in model.model_fields.values():
        for candidate in _models_in(field.annotation):
            if candidate not in seen:
                keys |= schema_keys(candidate, seen)
    return keys


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in getattr(annotation, "__args__", ()) for m in _models_in(arg)]


KEYS = sorted(schema_keys(ConfigSpec))
NAMES = ["base", "app", "shop", "web", "Base", "a..b", "-x", ""]
STRINGS = [
    "images/base",
    "images/app",
    "images/nope",
    "../outside",
    "/etc",
    "/",
    "images/base/../../..",
    "Dockerfile",
    "127.0.0.1:5000/t",
    "127.0.0.1:99999/t",
    "r.example//x",
    "R.example/Up",
    "https://r.example/x",
    "r.example/x:tag",
    "r.example/x@sha256:" + "0" * 64,
    "a" * 300,
    "{{ version }}",
    "{{ images.base }}",
    "{{ images.app }}",
    "{{ version",
    "{{ nope }}",
    "git-{{ git.short_sha }}",
    "latest",
    "(?P<version>.*)",
    "(",
    "a{99999999999}",
    "docker",
    "acr",
    "windows/amd64",
    "minor",
    "-win",
    "legacy",
    "**/*.py",
    "../**",
]
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=10**30, max_value=10**40),
    st.floats(),
    st.text(max_size=20),
    st.sampled_from(STRINGS),
    st.sampled_from(NAMES),
)
keys = st.one_of(st.sampled_from(KEYS), st.sampled_from(NAMES), st.text(max_size=12), st.integers(0, 3))
documents = st.recursive(
    scalars,
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(keys, children, max_size=5)),
    max_leaves=40,
)
top_levels = st.dictionaries(st.sampled_from(KEYS), documents, max_size=6)


def near(good: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly a plausible value, now and then anything (so most examples get past the schema)."""
    return st.sampled_from([False] * 15 + [True]).flatmap(lambda wild: documents if wild else good)


image_names = st.sampled_from(["base", "app", "web"])
tag_policies = st.fixed_dictionaries(
    {},
    optional={
        "floating": near(st.lists(st.sampled_from(["minor", "major", "latest", "patch"]), max_size=3)),
        "extra": near(st.lists(st.sampled_from(STRINGS), max_size=2)),
        "suffix": near(st.sampled_from(["-win", "", "/x", "-" + "w" * 70])),
    },
)
images = st.fixed_dictionaries(
    {"context": near(st.sampled_from(["images/base", "images/app", "../outside", "/etc", "images/link-out"]))},
    optional={
        "dockerfile": near(st.sampled_from(["Dockerfile", "../../x", "/etc/passwd", "nope"])),
        "depends_on": near(st.lists(image_names, max_size=2)),
        "build_args": near(st.dictionaries(st.sampled_from(["A", "B"]), st.sampled_from(STRINGS), max_size=2)),
        "repository": near(st.sampled_from(STRINGS)),
        "platform": near(st.sampled_from(["linux/amd64", "windows/amd64"])),
        "tags": near(tag_policies),
        "paths": near(st.lists(st.sampled_from(["src/**", "/etc/*", "../x", "a/../b"]), max_size=2)),
        "builder": near(st.sampled_from(["docker", "acr", "kaniko"])),
    },
)
triggers = st.fixed_dictionaries(
    {},
    optional={
        "branch": near(st.sampled_from(STRINGS)),
        "tag": near(st.sampled_from(STRINGS)),
        "tags": near(st.lists(st.sampled_from(STRINGS), max_size=2)),
        "release": near(st.booleans()),
    },
)
pipelines = st.fixed_dictionaries(
    {"images": near(st.dictionaries(image_names, images, min_size=1, max_size=3))},
    optional={
        "registry": near(st.sampled_from(STRINGS)),
        "tags": near(tag_policies),
        "triggers": near(st.lists(triggers, max_size=2)),
        "sign": near(st.fixed_dictionaries({}, optional={"key": st.just("k.key"), "keyless": st.booleans()})),
    },
)
configs = st.fixed_dictionaries(
    {
        "pipelines": near(st.dictionaries(st.sampled_from(["shop", "other"]), pipelines, min_size=1, max_size=2)),
        "registry": near(st.sampled_from(["127.0.0.1:5000/t", "127.0.0.1:5000", "r.example/x", *STRINGS])),
    },
    optional={
        "insecure_registries": near(st.lists(st.sampled_from(STRINGS), max_size=2)),
        "tags": near(tag_policies),
        "builder": near(st.sampled_from(["docker", "acr"])),
        "registries": near(st.dictionaries(st.sampled_from(STRINGS), st.just({"signature_storage": "both"}))),
        "trust": near(st.lists(st.fixed_dictionaries({"repositories": st.just(["*"])}), max_size=1)),
    },
)

VALID = """\
registry: 127.0.0.1:5000/t
insecure_registries: [build.lan:5000]
tags: {floating: [minor, latest], extra: ["git-{{ git.short_sha }}"]}
pipelines:
  shop:
    triggers:
      - {branch: "main", tags: ["latest-main"]}
      - {tag: "^v(?P<version>\\\\d+\\\\.\\\\d+\\\\.\\\\d+)$", release: true}
    images:
      base:
        context: images/base
        labels: {team: shop}
      app:
        context: images/app
        depends_on: [base]
        build_args:
          BASE: "{{ images.base }}"
          VERSION: "{{ version }}"
        paths: ["src/**"]
        tags: {suffix: -linux}
"""
YAML_BITS = list(":{}[],&*!|>'\"%@`#-? \t\n\r\\") + ["\x00", "\ufeff", "\u2028", "<<: ", "&a ", "*a", "---\n", "..."]


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("fuzz")
    repo = root / "repo"
    for name in ("base", "app"):
        (repo / "images" / name).mkdir(parents=True)
        (repo / "images" / name / "Dockerfile").write_text("FROM scratch\n")
    (root / "outside").mkdir()
    (repo / "images" / "link-out").symlink_to(root / "outside")
    return repo


def assert_loads_or_config_error(file: Path) -> None:
    try:
        load_config(file)
    except ConfigError as exc:
        # One line per mistake, each naming its position; one mistake a line (no line breaks inside one).
        lines = str(exc).splitlines()
        assert len(lines) == max(1, len(exc.problems)), str(exc)
        for line in lines:
            assert re.match(rf"{re.escape(str(file))}:\d+:\d+: ", line), line


def test_the_valid_seed_loads(project: Path) -> None:
    file = project / "pipelines.yaml"
    file.write_text(VALID)
    load_config(file)


@FUZZ
@given(document=st.one_of(top_levels, documents))
def test_random_documents(project: Path, document: Any) -> None:
    file = project / "pipelines.yaml"
    file.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    assert_loads_or_config_error(file)


@FUZZ
@given(config=configs, flow=st.booleans())
def test_near_valid_configs(project: Path, config: dict[str, Any], flow: bool) -> None:
    file = project / "pipelines.yaml"
    file.write_text(yaml.safe_dump(config, default_flow_style=flow, allow_unicode=True), encoding="utf-8")
    assert_loads_or_config_error(file)


mutations = st.lists(
    st.tuples(
        st.sampled_from(["insert", "delete", "replace", "duplicate-line", "bytes"]),
        st.floats(0, 1),
        st.one_of(st.sampled_from(YAML_BITS), st.text(max_size=4)),
        st.binary(min_size=1, max_size=3),
    ),
    min_size=1,
    max_size=4,
)


@FUZZ
@given(steps=mutations)
def test_mutations_of_a_valid_config(project: Path, steps: list[tuple[str, float, str, bytes]]) -> None:
    data = VALID.encode()
    for kind, where, text, raw in steps:
        at = int(where * len(data))
        if kind == "insert":
            data = data[:at] + text.encode("utf-8", "surrogatepass") + data[at:]
        elif kind == "delete":
            data = data[:at] + data[at + 1 + len(text) :]
        elif kind == "replace":
            data = data[:at] + text.encode("utf-8", "surrogatepass") + data[at + len(text) :]
        elif kind == "duplicate-line":
            lines = data.split(b"\n")
            i = int(where * (len(lines) - 1))
            data = b"\n".join([*lines[: i + 1], lines[i], *lines[i + 1 :]])
        else:
            data = data[:at] + raw + data[at:]
    file = project / "pipelines.yaml"
    file.write_bytes(data)
    assert_loads_or_config_error(file)
