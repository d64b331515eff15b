"""README: on BuildKit, `<Dockerfile>.dockerignore` beside a Dockerfile is read before the context's
.dockerignore, and the input digest follows the same rule: a change to a file the build does not
send rebuilds nothing, a change to one it sends rebuilds."""

from __future__ import annotations

import json
from pathlib import Path

from tests.helpers import git, image_entry, init_git, run_cli, shop_config, write_project
from tests.integration.conftest import RegistryPeek, Services


def _status(stdout: str) -> dict[str, object]:
    image = json.loads(stdout)["images"][0]
    assert isinstance(image, dict)
    return image


def test_a_dockerfiles_own_ignore_file_decides_what_is_sent_and_what_rebuilds(
    tmp_path: Path, services: Services, namespace: str, plain_peek: RegistryPeek
) -> None:
    write_project(
        tmp_path,
        shop_config(
            f"{services.plain_registry}/{namespace}",
            {"app": image_entry("app", "dockerfile: docker/app.Dockerfile")},
            pipeline="p",
        ),
        {},
    )
    context = tmp_path / "images" / "app"
    (context / "docker").mkdir(parents=True)
    (context / "docker" / "app.Dockerfile").write_text("FROM scratch\nCOPY . /files/\n")
    (context / "docker" / "app.Dockerfile.dockerignore").write_text("private.txt\n")
    (context / ".dockerignore").write_text("notes.md\n")  # not read: the Dockerfile has its own
    (context / "private.txt").write_text("not for the image\n")
    (context / "notes.md").write_text("v1\n")
    init_git(tmp_path)

    first = run_cli(["run", "--json"], tmp_path)
    assert first.code == 0, first.output
    built = _status(first.stdout)
    files = plain_peek.files(f"{namespace}/app", str(built["digest"]))
    assert files.get("files/notes.md") == b"v1\n"
    assert "files/private.txt" not in files

    (context / "private.txt").write_text("changed, still not sent\n")
    git(tmp_path, "commit", "-qam", "a file the build does not send")
    second = run_cli(["run", "--json"], tmp_path)
    assert second.code == 0, second.output
    assert _status(second.stdout)["reused"] is True, second.output
    assert _status(second.stdout)["digest"] == built["digest"]

    (context / "notes.md").write_text("v2\n")
    git(tmp_path, "commit", "-qam", "a file the build sends")
    third = run_cli(["run", "--json"], tmp_path)
    assert third.code == 0, third.output
    rebuilt = _status(third.stdout)
    assert rebuilt["reused"] is False and rebuilt["digest"] != built["digest"]
    assert plain_peek.files(f"{namespace}/app", str(rebuilt["digest"])).get("files/notes.md") == b"v2\n"
