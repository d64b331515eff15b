"""The JSON Schema of pipelines.yaml (`pipeline schema`) says what the loader's schema step says.

Every valid config in the repository (the bundled pipelines.yaml, the configs the tests write, README's and the docs'
examples) passes it; each bad config of tests/unit/config/bad_configs/ either fails it or is one that only
the loader's cross-field checks (checks.py) can catch, and which is which is written down here. Mutations
of a config that sets every key are judged alike by the schema and the models (the few places a JSON
Schema is looser are named). Documents are read as the loader reads them (positions.parse_yaml).
"""

from __future__ import annotations

import ast
import builtins
import copy
import importlib
import json
import math
import re
import tempfile
import textwrap
from collections.abc import Iterator
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match
from pydantic import ValidationError

from pipeline.config.json_schema import DIALECT, SCHEMA_FILE, SCHEMA_ID, pipelines_json_schema, schema_text
from pipeline.config.positions import parse_yaml
from pipeline.config.schema import ConfigSpec
from pipeline.errors import ConfigError
from tests.helpers import docs_pages, docs_text, run_cli
from tests.unit.config.test_config_errors import run_main
from tests.unit.config.test_config_fuzz import schema_keys

ROOT = Path(__file__).resolve().parents[3]
BAD_CONFIGS = Path(__file__).parent / "bad_configs"
SCHEMA = pipelines_json_schema()
VALIDATOR = Draft202012Validator(SCHEMA, format_checker=Draft202012Validator.FORMAT_CHECKER)

# Sets every key of every model at least once (test_full_config_sets_every_key keeps it so), with YAML
# numbers where strings are meant (build_args, labels), as users write them.
FULL = """\
registry: 127.0.0.1:5000/demo
insecure_registries: [build.lan:5000]
tags: {floating: [minor, latest], extra: ["git-{{ git.short_sha }}"], suffix: -linux, variants: true}
sign: {key: .keys/cosign.key, keyless: false, attest: [provenance, sbom]}
reuse: trusted
registries:
  127.0.0.1:5000: {signature_storage: both, ca_file: certs/ca.pem}
trust:
  - repositories: ["127.0.0.1:5000/base/*"]
    keys: [keys/base.pub]
    identities:
      - {issuer: "https://token.actions.githubusercontent.com",
         subject: "https://github.com/org/base/.github/workflows/release.yml@refs/heads/main"}
    provenance: {builder_ids: ["https://github.com/pipeline-build/pipeline/builders/*"],
                 sources: ["https://git.example.com/*"]}
    sbom: true
sigstore: {trust_config: sigstore/trust.json}
builder: docker
network: none
engines:
  local: {host: "unix:///var/run/docker.sock", jobs: 2, os: linux}
  win: {context: win-box, os: windows, os_version: 10.0.17763, cert_path: certs/win}
  bx: {buildx: {builder: arm-builder}}
acr: {registry: shopacr, resource_group: builds, subscription: sub, arm_endpoint: "https://management.azure.com",
      login_server: shopacr.azurecr.io, timeout: 3600}
windows_engine: false
platforms: [linux/amd64]
variants:
  linux: {platform: linux/amd64}
notify:
  events: [failure, release]
  timeout: 20
  targets:
    - {url: "https://hooks.example.com/pipeline", secret_env: PIPELINE_NOTIFY_SECRET, kind: generic}
    - {url_env: SLACK_WEBHOOK_URL, kind: slack, events: [failure]}
pipelines:
  shop:
    registry: 127.0.0.1:5000/shop
    tags: {floating: [major]}
    sign: {keyless: true}
    reuse: trusted
    on_base_update: {release: patch}
    triggers:
      - {branch: "^main$", tags: [latest-main]}
      - {tag: "^v(?P<version>.*)$", release: true}
    builder: classic
    acr: {registry: shopacr, resource_group: builds, subscription: sub}
    network: host
    secrets: {npm: {env: NPM_TOKEN}}
    engine: local
    images:
      base:
        context: images/base
        dockerfile: Dockerfile
        labels: {team: shop, tier: 1}
        build_args: {PYTHON: 3.12}
        repository: 127.0.0.1:5000/other/base
        target: runtime
        platform: linux/amd64
        paths: ["src/**"]
        builder: docker
        network: none
        secrets: {pip: {file: ~/.pip.conf}}
        engine: local
        tags: {suffix: -x}
      app:
        context: images/app
        depends_on: [base]
        platforms: [linux/amd64, linux/arm64]
  win:
    platforms: [linux/amd64]
    notify: {targets: [{url: "https://hooks.example.com/win"}]}
    images:
      app:
        context: images/app
        variants:
          ltsc2019: {platform: windows/amd64, os_version: 10.0.17763, build_args: {T: ltsc2019}, builder: acr,
                     engine: win}
"""

# The bad configs a JSON Schema rejects (unknown keys, types, enums, names, required keys...): whole
# prefixes, then single files of the prefixes shared with cross-field mistakes. Every other bad config
# that parses as YAML is valid to the schema: paths, references, templates, cycles and combinations of
# keys are checks.py's (the loader still refuses them all: test_hostile_configs).
SCHEMA_LEVEL = """
    arg-* key-* name-* network-* type-* top-list top-number top-scalar
    missing-acr-resource-group missing-context missing-identity-subject missing-images missing-pipelines
    missing-trust-repositories
    bytes-bom-then-error bytes-line-separator-in-key bytes-newline-in-image-name
    engine-buildx-typo engine-jobs-zero engine-name-uppercase
    ref-suffix-colon ref-suffix-slash ref-suffix-too-long
    secret-bad-id secret-env-empty secret-source-string secret-source-typo
    sign-attest-unknown sign-key-empty
    trust-identity-empty-issuer trust-provenance-unknown-key
    variants-engine-os-typo variants-engine-os-version-text variants-name-invalid variants-no-platform
    variants-os-version-number variants-os-version-text variants-platforms-not-a-list
    notify-event-unknown notify-kind-unknown notify-on-key notify-secret-key notify-secret-value
    notify-targets-empty notify-timeout-zero
    variants-tags-variants-not-bool variants-unknown-key
    yaml-merge-unknown-key
""".split()


def read(file: Path) -> Any:
    data, _ = parse_yaml(file)
    return data


def errors(data: Any) -> list[str]:
    return [f"{e.json_path}: {e.message}" for e in VALIDATOR.iter_errors(data)]


def model_accepts(data: Any) -> bool:
    try:
        ConfigSpec.model_validate(data)
    except ValidationError:
        return False
    return True


# --- the schema and the command -------------------------------------------------------------------------


def test_schema_is_draft_2020_12_with_a_stable_id() -> None:
    Draft202012Validator.check_schema(SCHEMA)
    assert SCHEMA["$schema"] == DIALECT == "https://json-schema.org/draft/2020-12/schema"
    assert SCHEMA["$id"] == SCHEMA_ID
    assert SCHEMA_ID.endswith("/" + SCHEMA_FILE)
    assert SCHEMA["additionalProperties"] is False
    assert SCHEMA["required"] == ["pipelines"]


def test_committed_schema_is_what_pipeline_schema_prints() -> None:
    committed = (ROOT / SCHEMA_FILE).read_text(encoding="utf-8")
    assert committed == schema_text(), f"{SCHEMA_FILE} is stale: pipeline schema --output {SCHEMA_FILE}"


def test_bundled_pipelines_yaml_names_the_committed_schema() -> None:
    bundled = ROOT / "pipelines.yaml"
    first = bundled.read_text(encoding="utf-8").splitlines()[0]
    match = re.fullmatch(r"# yaml-language-server: \$schema=(\S+)", first)
    assert match, first
    # yaml-language-server resolves a relative path against the YAML file's directory.
    named = bundled.parent / match.group(1)
    assert json.loads(named.read_text(encoding="utf-8"))["$id"] == SCHEMA_ID


def test_pipeline_schema_prints_json_and_writes_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.argv", ["pipeline", "schema"])
    with pytest.raises(SystemExit) as exited:
        from pipeline.cli import main

        main()
    printed = capsys.readouterr().out
    assert exited.value.code == 0
    assert json.loads(printed) == SCHEMA
    code, output = run_main(["schema", "--output", "out/schema.json"], capsys, monkeypatch, tmp_path)
    assert code == 0, output
    assert (tmp_path / "out" / "schema.json").read_text(encoding="utf-8") == printed
    code, output = run_main(["schema", "--help"], capsys, monkeypatch, tmp_path)
    assert code == 0 and "Example:" in output and "pipeline schema --output" in output
    # A place it cannot write is one line and exit 1, not a traceback.
    (tmp_path / "file").write_text("", encoding="utf-8")
    for unwritable in ("file/schema.json", "/dev/full"):
        code, output = run_main(["schema", "--output", unwritable], capsys, monkeypatch, tmp_path)
        assert code == 1 and output.count("\n") == 1, output
        assert output.startswith(f"error: {unwritable}: cannot write the schema: "), output


def test_schema_is_deterministic(tmp_path: Path) -> None:
    """The same bytes in fresh interpreters with other hash seeds (set order) as in this one."""
    outputs = {run_cli(["schema"], tmp_path, env={"PYTHONHASHSEED": seed}).stdout for seed in ("0", "4242")}
    assert outputs == {schema_text()}


# --- descriptions and examples ------------------------------------------------------------------------


def objects_with_properties(schema: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """The top level and every model under $defs (pydantic puts each model there once)."""
    yield "(top level)", schema
    for name, definition in schema["$defs"].items():
        if "properties" in definition:
            yield name, definition


def test_every_object_and_property_has_a_description_and_examples() -> None:
    missing = []
    for name, obj in objects_with_properties(SCHEMA):
        if not obj.get("description"):
            missing.append(f"{name}: no description (the model's docstring)")
        for key, prop in obj["properties"].items():
            if not prop.get("description"):
                missing.append(f"{name}.{key}: no description")
            if not prop.get("examples"):
                missing.append(f"{name}.{key}: no examples")
    assert missing == []
    assert len(list(objects_with_properties(SCHEMA))) >= 15


def test_every_example_is_valid_for_its_key() -> None:
    wrong = []
    for name, obj in objects_with_properties(SCHEMA):
        for key, prop in obj["properties"].items():
            # The property's schema, with the models it refers to.
            validator = Draft202012Validator({**prop, "$defs": SCHEMA["$defs"]})
            wrong += [
                f"{name}.{key}: {example!r}: {e.message}"
                for example in prop["examples"]
                for e in validator.iter_errors(example)
            ]
    assert wrong == []


def test_enums_defaults_and_closed_objects_come_from_the_models() -> None:
    image = SCHEMA["$defs"]["ImageSpec"]
    assert image["additionalProperties"] is False
    assert image["required"] == ["context"]
    assert image["properties"]["dockerfile"]["default"] == "Dockerfile"
    assert image["properties"]["tags"]["default"] == {}
    assert image["properties"]["depends_on"]["default"] == []
    assert image["properties"]["builder"]["anyOf"][0]["enum"] == ["docker", "classic", "acr"]
    assert image["properties"]["engine"]["anyOf"][0]["pattern"] == r"^[a-z0-9]+(?:[._-][a-z0-9]+)*$"
    # A YAML number where a string is meant is its text to the loader; a platform is never a number.
    assert image["properties"]["context"]["type"] == ["string", "number"]
    assert image["properties"]["platform"]["anyOf"][0]["type"] == "string"
    assert SCHEMA["$defs"]["SignSpec"]["properties"]["keyless"]["type"] == "boolean"
    images = SCHEMA["$defs"]["PipelineSpec"]["properties"]["images"]
    assert images["propertyNames"]["pattern"] == r"^[a-z0-9]+(?:[._-][a-z0-9]+)*$"
    assert images["minProperties"] == 1


# --- valid configs pass ---------------------------------------------------------------------------------


def test_full_config_sets_every_key(tmp_path: Path) -> None:
    def keys(node: Any) -> set[str]:
        if isinstance(node, dict):
            return {str(k) for k in node} | {k for v in node.values() for k in keys(v)}
        return {k for v in node for k in keys(v)} if isinstance(node, list) else set()

    data = yaml.safe_load(FULL)
    assert schema_keys(ConfigSpec) - keys(data) == set()
    assert model_accepts(data)


def test_full_config_passes_the_schema(tmp_path: Path) -> None:
    file = tmp_path / "pipelines.yaml"
    file.write_text(FULL)
    data = read(file)
    assert data["pipelines"]["shop"]["images"]["base"]["build_args"] == {"PYTHON": 3.12}
    assert errors(data) == []


def test_bundled_pipelines_yaml_passes_the_schema() -> None:
    data = read(ROOT / "pipelines.yaml")
    assert model_accepts(data)
    assert errors(data) == []


HELPERS = ROOT / "tests" / "helpers.py"


class _RunTimeValue(str):
    """What a name a test binds only when it runs (its fixtures, locals) stands for in a config: `x`."""

    def __getattr__(self, name: str) -> _RunTimeValue:
        return _RunTimeValue("x")

    def __call__(self, *args: object) -> _RunTimeValue:
        return self


class _NamesOf(dict[str, Any]):
    """A test module's names for evaluating a `shop_config(...)` call of it; any other name: `x`."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.module = importlib.import_module(".".join(path.relative_to(ROOT).with_suffix("").parts))

    def __missing__(self, name: str) -> Any:
        return getattr(self.module, name, getattr(builtins, name, _RunTimeValue("x")))


def config_texts(path: Path) -> Iterator[tuple[int, str]]:
    """The configs a test file writes: its string literals with a pipelines key, and the text of each
    `shop_config(...)` call (tests/helpers.py), its run-time values standing in as `x`."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and "pipelines:" in node.value:
            yield node.lineno, node.value
        elif isinstance(node, ast.Call) and getattr(node.func, "id", None) == "shop_config" and path != HELPERS:
            yield node.lineno, eval(compile(ast.Expression(node), str(path), "eval"), {}, _NamesOf(path))


def inline_configs() -> list[tuple[str, str]]:
    """Every whole config written in the tests (`config_texts`) that the loader reads as a YAML mapping
    (not the str.format templates with {placeholders}, nor those with duplicate keys)."""
    found = []
    with tempfile.TemporaryDirectory() as scratch:
        file = Path(scratch) / "pipelines.yaml"
        for path in sorted((ROOT / "tests").rglob("*.py")):
            for lineno, text in config_texts(path):
                file.write_text(textwrap.dedent(text), encoding="utf-8")
                try:
                    mapping = isinstance(read(file), dict)
                except ConfigError:
                    mapping = False
                if mapping:
                    found.append((f"{path.relative_to(ROOT)}:{lineno}", textwrap.dedent(text)))
    return found


INLINE = inline_configs()


@pytest.mark.parametrize("text", [text for _, text in INLINE], ids=[where for where, _ in INLINE])
def test_configs_in_the_tests_are_judged_as_the_models_judge_them(text: str, tmp_path: Path) -> None:
    file = tmp_path / "pipelines.yaml"
    file.write_text(text, encoding="utf-8")
    data = read(file)
    if model_accepts(data):
        assert errors(data) == []
    else:
        assert errors(data) != []


def test_the_tests_hold_enough_valid_configs(tmp_path: Path) -> None:
    file = tmp_path / "pipelines.yaml"
    valid = 0
    for _, text in INLINE:
        file.write_text(text, encoding="utf-8")
        valid += model_accepts(read(file))
    assert valid >= 40


def _readme_config_text() -> str:
    """README and the docs pages, without the paste-able CI jobs (GitHub, GitLab and Azure files, not
    pipelines.yaml) of docs/ci.md."""
    pages = []
    for page in docs_pages():
        text = docs_text(page)
        if page == "ci.md":
            start = text.index("## Paste-able jobs")
            end = text.find("\n## ", start + 1)
            text = text[:start] + (text[end:] if end != -1 else "")
        pages.append(text)
    return "\n\n".join(pages)


# A YAML block of another file (a registry's config.yml, pipelines.lock) is marked so on the line before it.
OTHER_FILE = "<!-- not pipelines.yaml -->"
README_BLOCKS = [
    m.group(1)
    for m in re.finditer(r"```yaml\n(.*?)```", _readme_config_text(), re.S)
    if OTHER_FILE not in _readme_config_text()[max(0, m.start() - 80) : m.start()]
]


def without_required(node: Any) -> Any:
    """The schema for parts of a config: every key optional, every mapping possibly empty."""
    if isinstance(node, dict):
        return {k: without_required(v) for k, v in node.items() if k not in ("required", "minProperties")}
    return [without_required(v) for v in node] if isinstance(node, list) else node


@pytest.mark.parametrize("block", README_BLOCKS, ids=[f"block{i}" for i in range(len(README_BLOCKS))])
def test_readme_examples_pass_the_schema(block: str, tmp_path: Path) -> None:
    """README's examples are parts of a config (a pipeline without images, say): what they set is valid."""
    file = tmp_path / "pipelines.yaml"
    file.write_text(textwrap.dedent(block), encoding="utf-8")
    data = read(file)
    assert isinstance(data, dict) and data
    partial = Draft202012Validator(without_required(SCHEMA))
    assert [f"{e.json_path}: {e.message}" for e in partial.iter_errors(data)] == []
    assert len(README_BLOCKS) >= 9


# --- bad configs fail, or are named as the loader's ------------------------------------------------------


def bad_config_verdicts() -> dict[str, bool]:
    """Each parseable bad config's name: True when the schema rejects it."""
    verdicts = {}
    for file in sorted(BAD_CONFIGS.glob("*.yaml")):
        try:
            data = read(file)
        except ConfigError:
            continue  # not YAML the loader reads (bombs, bad bytes, duplicate keys): no schema sees it
        if data is not None:
            verdicts[file.stem] = not VALIDATOR.is_valid(data)
    return verdicts


def test_schema_level_bad_configs_fail_it_and_cross_field_ones_pass() -> None:
    verdicts = bad_config_verdicts()
    expected = {name for name in verdicts if any(fnmatchcase(name, pattern) for pattern in SCHEMA_LEVEL)}
    rejected = {name for name, bad in verdicts.items() if bad}
    assert sorted(expected - rejected) == [], "bad configs the schema should reject but accepts"
    assert sorted(rejected - expected) == [], "rejected by the schema: add them to SCHEMA_LEVEL"
    assert len(rejected) >= 100 and len(verdicts) - len(rejected) >= 140
    for name, bad in verdicts.items():
        # The split is the models' split too: what the schema lets through, only checks.py can catch.
        assert model_accepts(read(BAD_CONFIGS / f"{name}.yaml")) is not bad, name


@pytest.mark.parametrize(
    ("name", "keyword"),
    [
        ("key-top-level-typo", "additionalProperties"),  # unknown key
        ("type-context-list", "type"),  # wrong type
        ("type-builder-unknown", "enum"),  # a value not among the choices
        ("name-pipeline-uppercase", "pattern"),  # a name against its pattern
        ("missing-context", "required"),  # a required key left out
        ("type-images-empty", "minProperties"),
        ("engine-jobs-zero", "exclusiveMinimum"),
    ],
)
def test_bad_config_fails_for_the_reason_it_is_bad(name: str, keyword: str) -> None:
    found = list(VALIDATOR.iter_errors(read(BAD_CONFIGS / f"{name}.yaml")))
    assert len(found) == 1
    assert best_match(found).validator == keyword  # inside an anyOf (`X | None`): the branch that fits


# --- mutations: the schema and the models agree ----------------------------------------------------------


def paths_in(node: Any, at: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if at:
        yield at
    if isinstance(node, dict):
        for key, value in node.items():
            yield from paths_in(value, (*at, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from paths_in(value, (*at, i))


FULL_DATA = yaml.safe_load(FULL)
PATHS = list(paths_in(FULL_DATA))
SCALARS = [
    None,
    True,
    False,
    0,
    1,
    -1,
    3600,
    2.0,
    1.5,
    -2.5,
    1e20,
    math.inf,
    10**30,
    "",
    "x",
    "Base",
    "a..b",
    "-x",
    "yes",
    "true",
    "3600",
    "10.0.17763",
    "linux/amd64",
    "docker",
    "none",
    "minor",
    "both",
    "a" * 200,
]
VALUES = [*SCALARS, [], {}, ["x"], [1], {"a": "b"}, {"context": "images/base"}]


def known_looseness(error: Any) -> bool:
    """Where a JSON Schema is looser than the models: a number where a patterned string is meant passes
    the schema (a pattern applies to strings only; the loader matches the number's text), and JSON has
    one kind of number (2.0 is an integer to a JSON Schema, not to a strict int)."""
    value = error["input"]
    if error["type"] == "string_pattern_mismatch":
        return (
            isinstance(value, int | float) or re.fullmatch(r"[-+]?[\d.]+(e[-+]?\d+)?|[-+]?inf|nan", value) is not None
        )
    return error["type"] == "int_type" and isinstance(value, float) and value.is_integer()


DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # libyaml's: ten times faster


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("mutations") / "pipelines.yaml"


@settings(
    max_examples=250,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(path=st.sampled_from(PATHS), value=st.sampled_from(VALUES), as_key=st.booleans())
def test_mutations_are_judged_alike(scratch: Path, path: tuple[Any, ...], value: Any, as_key: bool) -> None:
    """One key or value of FULL replaced; through YAML and back as the loader reads it."""
    document = copy.deepcopy(FULL_DATA)
    parent = document
    for part in path[:-1]:
        parent = parent[part]
    if as_key and isinstance(parent, dict) and value in SCALARS and value is not None:
        parent[value] = parent.pop(path[-1])
    else:
        parent[path[-1]] = value
    scratch.write_text(yaml.dump(document, Dumper=DUMPER, allow_unicode=True), encoding="utf-8")
    data = read(scratch)
    try:
        ConfigSpec.model_validate(data)
    except ValidationError as exc:
        if VALIDATOR.is_valid(data):
            assert all(known_looseness(e) for e in exc.errors()), exc.errors()
    else:
        assert errors(data) == [], "valid to the models, refused by the schema"


def test_yaml_booleans_as_readme_says(tmp_path: Path) -> None:
    """The loader reads YAML 1.1 (unquoted yes is true); a quoted "true" is text, refused by both."""
    file = tmp_path / "pipelines.yaml"
    file.write_text("sign: {keyless: yes}\npipelines: {shop: {images: {base: {context: images/base}}}}\n")
    data = read(file)
    assert data["sign"]["keyless"] is True and model_accepts(data) and errors(data) == []
    data["sign"]["keyless"] = "true"
    assert not model_accepts(data)
    refused = best_match(VALIDATOR.iter_errors(data))
    assert refused is not None and (refused.json_path, refused.message) == (
        "$.sign.keyless",
        "'true' is not of type 'boolean'",
    )


def test_readme_names_the_modeline_the_id_and_how_to_regenerate() -> None:
    page = docs_text("configuration.md")
    section = page[page.index("## Editor support: JSON Schema") :]
    first_line = (ROOT / "pipelines.yaml").read_text(encoding="utf-8").splitlines()[0]
    assert first_line in section and SCHEMA_ID in section
    assert f"pipeline schema --output {SCHEMA_FILE}" in section
