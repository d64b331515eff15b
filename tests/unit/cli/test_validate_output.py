"""`validate` lists every mistake of a pipelines file: one `error:` line each, the same list as JSON with
--json (stdout holds the JSON alone), and one CI annotation each; an unknown command names the closest."""

from __future__ import annotations

import json
from pathlib import Path

from tests.helpers import CliResult, run_cli, write_project

NOT_IN_CI = {"GITHUB_ACTIONS": "", "GITLAB_CI": "", "TF_BUILD": ""}

# Three mistakes the schema finds (a target that is a flag, a build arg key with `=`, a label key that
# is a flag), each on its own line.
SCHEMA_MISTAKES = """\
registry: 127.0.0.1:5000/t
pipelines:
  shop:
    images:
      base:
        context: images/base
        target: "--output=type=local,dest=out"
        build_args: {"A=B": x}
        labels: {--label: x}
"""
SCHEMA_ERRORS = [
    {
        "file": "pipelines.yaml",
        "line": 7,
        "column": 17,
        "key": "pipelines.shop.images.base.target",
        "message": "'--output=type=local,dest=out' is not a build target: name a stage of the Dockerfile "
        "(ASCII letters, digits and _ . -, starting with a letter; at most 128)",
    },
    {
        "file": "pipelines.yaml",
        "line": 8,
        "column": 22,
        "key": "pipelines.shop.images.base.build_args.A=B",
        "message": "'A=B' is not a build arg name (ASCII letters, digits and _, not starting with a digit; "
        "at most 128)",
    },
    {
        "file": "pipelines.yaml",
        "line": 9,
        "column": 18,
        "key": "pipelines.shop.images.base.labels.--label",
        "message": "'--label' is not a label key (ASCII letters, digits and . _ / -, starting with a letter or digit; "
        "at most 256)",
    },
]

# Three mistakes the cross-field checks find, in three places: an engine, one image, another image.
CHECK_MISTAKES = """\
registry: 127.0.0.1:5000/t
engines:
  remote: {host: "tcp://box:2376 -H tcp://evil:2375"}
pipelines:
  shop:
    images:
      base:
        context: images/nope
      app:
        context: images/app
        depends_on: [bsae]
"""
CHECK_LINES = [
    "pipelines.yaml:3:18: engines.remote.host: 'tcp://box:2376 -H tcp://evil:2375' is not a Docker host URL "
    "(unix://, tcp://, ssh://, npipe://): it has a space or a control character",
    "pipelines.yaml:8:18: pipelines.shop.images.base.context: context directory 'images/nope' does not exist",
    "pipelines.yaml:11:22: pipelines.shop.images.app.depends_on[0]: unknown image 'bsae' in pipeline 'shop' "
    "(did you mean 'base'?)",
]


def project(tmp_path: Path, config: str) -> Path:
    write_project(tmp_path, config, {"base": "FROM scratch\n", "app": "FROM scratch\n"})
    (tmp_path / ".git").mkdir()  # the repository's root, so that the contexts are inside it
    return tmp_path


def line_of(error: dict[str, object]) -> str:
    return f"{error['file']}:{error['line']}:{error['column']}: {error['key']}: {error['message']}"


def errors_of(result: CliResult) -> list[str]:
    assert all(line.startswith("error: ") for line in result.stderr.splitlines()), result.stderr
    return [line.removeprefix("error: ") for line in result.stderr.splitlines()]


def test_every_schema_mistake_is_listed_in_text_and_json(tmp_path: Path) -> None:
    root = project(tmp_path, SCHEMA_MISTAKES)
    text = run_cli(["validate"], root, env=NOT_IN_CI)
    assert (text.code, text.stdout) == (2, "")
    assert errors_of(text) == [line_of(error) for error in SCHEMA_ERRORS]
    assert "more)" not in text.stderr
    as_json = run_cli(["validate", "--json"], root, env=NOT_IN_CI)
    assert as_json.code == 2
    assert json.loads(as_json.stdout) == {"valid": False, "file": "pipelines.yaml", "errors": SCHEMA_ERRORS}
    assert as_json.stdout.count("\n") == 1  # one JSON line
    assert errors_of(as_json) == errors_of(text)  # and the same lines for people, on stderr


def test_every_cross_field_mistake_is_listed_in_text_and_json(tmp_path: Path) -> None:
    root = project(tmp_path, CHECK_MISTAKES)
    expected = CHECK_LINES
    text = run_cli(["validate"], root, env=NOT_IN_CI)
    assert (text.code, text.stdout) == (2, "")
    assert errors_of(text) == expected
    as_json = run_cli(["validate", "--json"], root, env=NOT_IN_CI)
    assert as_json.code == 2
    found = json.loads(as_json.stdout)
    assert found["valid"] is False and [line_of(e) for e in found["errors"]] == expected
    # Any command that reads the file lists them alike.
    plan = run_cli(["plan"], root, env=NOT_IN_CI)
    assert (plan.code, errors_of(plan)) == (2, expected)


def test_validate_json_of_a_valid_file_and_of_an_unreadable_one(tmp_path: Path) -> None:
    root = project(
        tmp_path, "registry: 127.0.0.1:5000/t\npipelines:\n  shop:\n    images:\n      base: {context: images/base}\n"
    )
    valid = run_cli(["validate", "--json"], root, env=NOT_IN_CI)
    assert (valid.code, valid.stderr) == (0, "")
    assert json.loads(valid.stdout) == {"valid": True, "file": "pipelines.yaml", "errors": [], "pipelines": {"shop": 1}}
    missing = run_cli(["validate", "--json", "-f", "other.yaml"], root, env=NOT_IN_CI)
    assert missing.code == 2
    assert json.loads(missing.stdout) == {
        "valid": False,
        "file": "other.yaml",
        "errors": [
            {
                "file": "other.yaml",
                "line": None,
                "column": None,
                "key": None,
                "message": "other.yaml: no such file (pass the config with -f FILE)",
            }
        ],
    }


def validated_in_ci(root: Path, ci: dict[str, str]) -> tuple[dict[str, str], CliResult]:
    """`validate` of SCHEMA_MISTAKES in `root` on the CI service that `ci` (its environment) names, which
    fails (exit code 2): the environment and the result."""
    env = {**NOT_IN_CI, **ci}
    result = run_cli(["validate"], project(root, SCHEMA_MISTAKES), env=env)
    assert result.code == 2
    return env, result


def test_github_actions_gets_one_annotation_per_mistake(tmp_path: Path) -> None:
    root = tmp_path
    env, result = validated_in_ci(root, {"GITHUB_ACTIONS": "true", "GITHUB_WORKSPACE": str(root)})
    assert result.stdout.splitlines() == [
        f"::error file=pipelines.yaml,line={e['line']},col={e['column']}::{e['key']}: {e['message']}"
        for e in SCHEMA_ERRORS
    ]
    assert len(errors_of(result)) == 3
    # With --json, stdout is the JSON alone; the annotations go to stderr (the runner reads both).
    as_json = run_cli(["validate", "--json"], root, env=env)
    assert as_json.code == 2
    assert json.loads(as_json.stdout)["errors"] == SCHEMA_ERRORS
    annotations = [line for line in as_json.stderr.splitlines() if line.startswith("::error ")]
    assert annotations == result.stdout.splitlines()


def test_azure_pipelines_gets_one_issue_per_mistake(tmp_path: Path) -> None:
    _env, result = validated_in_ci(tmp_path, {"TF_BUILD": "True", "BUILD_SOURCESDIRECTORY": str(tmp_path)})
    assert result.stdout.splitlines() == [
        f"##vso[task.logissue type=error;sourcepath=pipelines.yaml;linenumber={e['line']};"
        f"columnnumber={e['column']}]{e['key']}: {e['message']}"
        for e in SCHEMA_ERRORS
    ]


def test_a_mistyped_command_names_the_closest_one(tmp_path: Path) -> None:
    typo = run_cli(["relase"], tmp_path, env=NOT_IN_CI)
    assert (typo.code, typo.stdout, typo.stderr) == (
        2,
        "",
        "Error: no such command 'relase' (did you mean 'release'?)\n",
    )
    typo = run_cli(["valdate", "--json"], tmp_path, env=NOT_IN_CI)
    assert (typo.code, typo.stderr) == (2, "Error: no such command 'valdate' (did you mean 'validate'?)\n")
    unknown = run_cli(["xyzzy"], tmp_path, env=NOT_IN_CI)
    assert unknown.code == 2 and unknown.stderr.count("\n") == 1
    assert unknown.stderr.startswith("Error: no such command 'xyzzy' (see '"), unknown.stderr
    assert unknown.stderr.endswith(" --help' for the commands)\n"), unknown.stderr
