"""Every file the CLI writes (report, JUnit, dotenv, schema, key pair) gets its missing parent directories,
as pytest does for --junitxml; a device or pipe named as the file is written to, never replaced."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest

from pipeline.errors import PipelineError
from pipeline.files import write_text
from tests.helpers import run_cli


def test_the_one_writer_makes_missing_directories_and_replaces_the_file_whole(tmp_path: Path) -> None:
    target = tmp_path / "reports" / "nested" / "run.json"
    write_text(target, "first\n", "report")
    write_text(target, "second\n", "report")
    assert target.read_text() == "second\n"
    assert sorted(p.name for p in target.parent.iterdir()) == ["run.json"]  # no temporary file left
    (tmp_path / "blocked").write_text("a file\n")
    in_the_way = r"blocked/run.json: cannot write the report: a file is in the place of a directory$"
    with pytest.raises(PipelineError, match=in_the_way):
        write_text(tmp_path / "blocked" / "run.json", "x", "report")


def test_a_pipe_is_written_to_not_replaced(tmp_path: Path) -> None:
    # A FIFO stands for /dev/stdout and the like (never a real device here: an old writer, as root, would
    # replace it with a file).
    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    read: list[str] = []
    reader = threading.Thread(target=lambda: read.append(pipe.read_text()), daemon=True)
    reader.start()
    try:
        write_text(pipe, "report\n", "report")
    finally:
        if reader.is_alive():  # the writer did not open the pipe: let the reader go
            with pipe.open("w"):
                pass
        reader.join(timeout=10)
    assert read == ["report\n"]
    assert stat.S_ISFIFO(pipe.stat().st_mode) and not (tmp_path / "pipe.tmp").exists()


def test_schema_and_key_pair_go_into_directories_not_made_yet(tmp_path: Path) -> None:
    done = run_cli(["schema", "--output", "schema/v1/pipelines.schema.json"], tmp_path)
    assert done.code == 0, done.stderr
    assert (tmp_path / "schema" / "v1" / "pipelines.schema.json").read_text().startswith("{")

    done = run_cli(["keys", "generate", "--output-prefix", "keys/ci/release"], tmp_path, {"COSIGN_PASSWORD": "pw"})
    assert done.code == 0, done.stderr
    assert (tmp_path / "keys" / "ci" / "release.pub").read_text().startswith("-----BEGIN PUBLIC KEY-----")
    assert stat.S_IMODE((tmp_path / "keys" / "ci" / "release.key").stat().st_mode) == 0o600
