"""Config values that reach a command line: what `validate` refuses (exit 2, file:line:col) so that a run
never hands docker a flag it did not mean or an argument list too long (the grammar rules have their bad
configs in bad_configs/arg-*.yaml and engine-host-*.yaml)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.config.arguments import MAX_IMAGE_BYTES, MAX_VALUE_BYTES, host_problem
from tests.helpers import write_project
from tests.unit.config.test_config_errors import run_main

HEAD = """\
registry: 127.0.0.1:5000/t
pipelines:
  shop:
    images:
      base:
        context: images/base
"""


def validate(
    tmp_path: Path, config: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> tuple[int, list[str]]:
    write_project(tmp_path, config, {"base": "FROM scratch\n"})
    code, output = run_main(["validate"], capsys, monkeypatch, tmp_path)
    assert "Traceback" not in output
    return code, output.strip().splitlines()


@pytest.mark.parametrize(
    "host",
    [
        "unix:///var/run/docker.sock",
        "unix:///run/user/1000/docker.sock",
        "npipe:////./pipe/docker_engine",
        "tcp://10.0.0.5:2376",
        "tcp://build-box.lan:2375",
        "tcp://[::1]:2375",
        "ssh://builder@arm-box.lan",
        "ssh://arm-box.lan:2222",
        "ssh://ci_user@10.0.0.7",
    ],
)
def test_docker_host_urls_are_accepted(host: str) -> None:
    assert host_problem(host) is None


@pytest.mark.parametrize(
    ("host", "why"),
    [
        ("tcp://box:2376 --tlsverify=false", "it has a space or a control character"),
        ("tcp://box:2376\t-H", "it has a space or a control character"),
        ("ssh://-oProxyCommand=id", "ssh:// needs a host name or address"),
        ("ssh://-oProxyCommand=id@box", "'-oProxyCommand=id' is not a user name"),
        ("ssh://user:secret@box", "no password in a host URL"),
        ("ssh://box/path", "ssh:// takes [USER@]HOST[:PORT], no path"),
        ("tcp://user@box:2376", "tcp:// takes no user"),
        ("tcp://box:99999", "Port out of range"),
        ("tcp://box:0", "a port from 1 to 65535"),
        ("tcp://box:2376#x", "no query or fragment"),
        ("tcp://", "tcp:// needs a host name or address"),
        ("unix://", "unix:// needs the socket's path"),
        ("unix://-x", "unix:// needs the socket's path"),
        ("http://box:2375", ""),
        ("-H tcp://box", "it has a space"),
        ("/var/run/docker.sock", ""),
    ],
)
def test_docker_host_urls_are_refused(host: str, why: str) -> None:
    problem = host_problem(host)
    assert problem is not None and problem.startswith(f"'{host}' is not a Docker host URL"), problem
    assert why in problem, problem


def test_engine_host_with_spaces_and_flags_is_exit_2_at_its_value(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = 'engines:\n  remote: {host: "tcp://box:2376 --tlsverify=false -H tcp://evil:2375"}\n' + HEAD
    code, lines = validate(tmp_path, config, capsys, monkeypatch)
    assert code == 2
    assert lines == [
        "error: pipelines.yaml:2:18: engines.remote.host: 'tcp://box:2376 --tlsverify=false -H tcp://evil:2375' "
        "is not a Docker host URL (unix://, tcp://, ssh://, npipe://): it has a space or a control character"
    ]


def test_a_10_mib_label_value_is_exit_2_at_its_value(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before: accepted, and the run failed with `Argument list too long` (exit 1). A 10 MiB value makes
    the file itself too big to read (4 MiB); a 3 MiB one is refused at its value."""
    code, lines = validate(
        tmp_path, HEAD + "        labels: {notes: " + "x" * (10 * 1024 * 1024) + "}\n", capsys, monkeypatch
    )
    assert code == 2
    assert len(lines) == 1 and lines[0].startswith("error: pipelines.yaml: the pipelines file is "), lines
    assert lines[0].endswith("bytes, over the 4 MiB limit; refusing to read it"), lines
    code, lines = validate(
        tmp_path, HEAD + "        labels: {notes: " + "x" * (3 * 1024 * 1024) + "}\n", capsys, monkeypatch
    )
    assert code == 2
    assert lines == [
        "error: pipelines.yaml:7:25: pipelines.shop.images.base.labels.notes: this label value is 3.0 MiB; a value "
        "is at most 64 KiB, as it is passed as one command-line argument (put larger data in a file of the build "
        "context)"
    ]


def test_value_limits_are_exact_and_count_bytes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    at_limit = "x" * MAX_VALUE_BYTES
    code, lines = validate(tmp_path, HEAD + f"        build_args: {{NOTES: {at_limit}}}\n", capsys, monkeypatch)
    assert code == 0, lines
    # One byte more, as UTF-8 counts it: 'é' is two bytes.
    over = "x" * (MAX_VALUE_BYTES - 1) + "é"
    code, lines = validate(tmp_path, HEAD + f"        build_args: {{NOTES: {over}}}\n", capsys, monkeypatch)
    assert code == 2
    assert len(lines) == 1 and lines[0].startswith(
        "error: pipelines.yaml:7:29: pipelines.shop.images.base.build_args.NOTES: this build arg value is 64.0 KiB; "
    ), lines


def test_variant_build_arg_value_too_large(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = HEAD + "        variants:\n          arm: {platform: linux/arm64, build_args: {X: " + "y" * 70_000 + "}}\n"
    code, lines = validate(tmp_path, config, capsys, monkeypatch)
    assert code == 2
    assert len(lines) == 1 and lines[0].startswith(
        "error: pipelines.yaml:8:56: pipelines.shop.images.base.variants.arm.build_args.X: this build arg value is "
        "68.4 KiB; "
    ), lines


def test_an_images_args_and_labels_together_are_bounded(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each value under its limit, the image's whole command line over the total: named at the image."""
    count = MAX_IMAGE_BYTES // (60 * 1024) + 1
    labels = "".join(f"          l{i}: {'z' * 60 * 1024}\n" for i in range(count))
    code, lines = validate(tmp_path, HEAD + "        labels:\n" + labels, capsys, monkeypatch)
    assert code == 2
    assert lines == [
        "error: pipelines.yaml:5:7: pipelines.shop.images.base: its build args and labels together are 300.1 KiB on "
        "the command line; at most 256 KiB (put larger data in a file of the build context)"
    ]
    code, lines = validate(tmp_path, HEAD + "        labels:\n" + labels.split("\n", 1)[1], capsys, monkeypatch)
    assert code == 0, lines


def test_names_that_reach_argv_accept_what_users_write(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = """\
    engines:
      local: {context: desktop-linux}
      kit: {buildx: {builder: arm_builder.2}}
    registry: 127.0.0.1:5000/t
    pipelines:
      shop:
        images:
          base:
            context: images/base
            engine: local
            target: Runtime-2.x
            build_args: {_PROXY: x, http_proxy: y, PYTHON_VERSION: "3.12"}
            labels: {org.opencontainers.image.source: "https://x", com.example/team: shop, "1": one}
            secrets:
              npm: {env: NPM_TOKEN}
              pip: {file: "~/.config/pip/pip.conf"}
    """
    code, lines = validate(tmp_path, config, capsys, monkeypatch)
    assert code == 0, lines


@pytest.mark.parametrize("length", [4097, 5000])
def test_a_secret_file_path_over_4096_characters_is_the_grammar_error_at_its_value(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, length: int
) -> None:
    """The length is a max_length beside the pattern (schema.py: a `{1,4096}` in the pattern cost ~20 ms of
    every config load): too long reads as the same one line as a `,` in the path does."""
    path = "d/" * ((length - 1) // 2) + "x" * (1 + (length - 1) % 2)
    assert len(path) == length
    code, lines = validate(tmp_path, HEAD + f"        secrets: {{npm: {{file: {path}}}}}\n", capsys, monkeypatch)
    assert code == 2
    assert lines == [
        f"error: pipelines.yaml:7:31: pipelines.shop.images.base.secrets.npm.file: '{path[:77]}...' is not a "
        "secret file path for buildx: no ',', '\"' or control characters, at most 4096 characters"
    ]


def test_a_secret_file_path_of_4096_characters_passes_the_grammar(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = "d/" * 2047 + "xy"
    code, lines = validate(tmp_path, HEAD + f"        secrets: {{npm: {{file: {path}}}}}\n", capsys, monkeypatch)
    assert not any("is not a secret file path" in line for line in lines), lines


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        # EnvName's max_length: pydantic's own words, as before the secret file's length moved out of its pattern.
        ("secrets: {npm: {env: %s}}", "A" * 129, "secrets.npm.env: String should have at most 128 characters"),
        (
            "target: %s",
            "a" * 129,
            f"target: '{'a' * 77}...' is not a build target: name a stage of the Dockerfile (ASCII letters, "
            "digits and _ . -, starting with a letter; at most 128)",
        ),
    ],
)
def test_only_a_secret_file_reads_its_length_as_its_grammar(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    field: str,
    value: str,
    message: str,
) -> None:
    """An over-long environment variable name is told it is too long, not that it is no name (cee1e09's
    message, which a `string_too_long` read as the grammar for every field had replaced)."""
    code, lines = validate(tmp_path, HEAD + "        " + field % value + "\n", capsys, monkeypatch)
    assert code == 2
    assert len(lines) == 1 and lines[0].startswith("error: pipelines.yaml:7:")
    assert lines[0].split(": ", 2)[2] == "pipelines.shop.images.base." + message
