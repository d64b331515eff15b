"""What a user reads about a reused image and a moved dependency: `pipeline tags` groups the versions on
one digest, hides the tool's own tags and says which version's build made it; the run report says the
same; `explain` names the dependency whose digest moved, from which digest to which."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import git, init_git, run_cli, shop_project
from tests.integration.conftest import RegistryPeek, Services

pytestmark = pytest.mark.engines  # run on each engine of the matrix (tests/integration/conftest.py)

ENV = {"COSIGN_PASSWORD": "reused-labels-test"}
APP = "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nCOPY . /app\nRUN test ! -f /app/broken\n"


def test_a_reused_base_shows_its_build_in_tags_and_the_report(
    tmp_path: Path, services: Services, namespace: str, plain_peek: RegistryPeek
) -> None:
    shop_project(tmp_path, f"{services.plain_registry}/{namespace}", images=("base", "app"), app_dockerfile=APP)
    assert run_cli(["keys", "generate"], tmp_path, env=ENV).code == 0
    first = init_git(tmp_path)
    assert run_cli(["run", "--version", "1.0.0"], tmp_path, env=ENV).code == 0
    (tmp_path / "images/app/app.sh").write_text("echo 2\n")
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-qm", "app 2")
    second = run_cli(["run", "--version", "1.1.0", "--json"], tmp_path, env=ENV)
    assert second.code == 0, second.output
    images = {i["name"]: i for i in json.loads(second.stdout)["images"]}
    assert images["base"]["reused"] and images["base"]["built_from"] == {"version": "1.0.0", "revision": first}
    assert not images["app"]["reused"] and images["app"]["built_from"] is None

    base = f"{services.plain_registry}/{namespace}/base"
    digest = plain_peek.digest(f"{namespace}/base", "1.0.0")
    raw = plain_peek.all_tags(f"{namespace}/base")
    assert any(t.startswith("inputs-") for t in raw) and any(t.endswith(".sig") for t in raw)  # signed: sha256-….sig
    shown = run_cli(["tags", base, "--json"], tmp_path)
    assert shown.code == 0, shown.output
    view = json.loads(shown.stdout)
    (row,) = view["versions"]  # 1.1.0 and 1.0.0 share the digest: one entry
    assert row["versions"] == ["1.1.0", "1.0.0"] and row["version"] == "1.1.0" and row["digest"] == digest
    assert row["built_from"] == {"version": "1.0.0", "revision": first}
    assert not [t for t in row["also"] if t.startswith(("inputs-", "sha256-"))], row["also"]
    assert view["other_tags"] == {}
    assert view["hidden_tags"] == len([t for t in raw if t.startswith(("inputs-", "sha256-"))])
    text = run_cli(["tags", base], tmp_path).stdout.splitlines()
    assert text[0].startswith(
        f"1.1.0, 1.0.0  {digest[:19]}  built as 1.0.0 at {first[:12]}  (1, 1.0, 1.1, latest, sha-"
    )
    assert text[-1].startswith(f"({view['hidden_tags']} internal tags not shown")

    everything = json.loads(run_cli(["tags", base, "--all", "--json"], tmp_path).stdout)
    assert any(t.startswith("inputs-") for t in everything["versions"][0]["also"])
    assert any(t.endswith(".sig") for t in everything["other_tags"]) and everything["hidden_tags"] == 0


def test_explain_names_the_dependency_that_moved(
    tmp_path: Path, services: Services, namespace: str, plain_peek: RegistryPeek
) -> None:
    shop_project(
        tmp_path, f"{services.plain_registry}/{namespace}", sign=False, images=("base", "app"), app_dockerfile=APP
    )
    init_git(tmp_path)
    assert run_cli(["run"], tmp_path).code == 0
    old = plain_peek.digest(f"{namespace}/base", f"sha-{git(tmp_path, 'rev-parse', 'HEAD')[:12]}")
    # base changes and app's build fails: base is pushed, app's last build stays the first one.
    (tmp_path / "images/base/Dockerfile").write_text((tmp_path / "images/base/Dockerfile").read_text() + "RUN true\n")
    (tmp_path / "images/app/broken").write_text("")
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-qm", "base 2, app broken")
    assert run_cli(["run"], tmp_path).code != 0
    new = plain_peek.digest(f"{namespace}/base", f"sha-{git(tmp_path, 'rev-parse', 'HEAD')[:12]}")
    assert new is not None and new != old
    git(tmp_path, "rm", "-q", "images/app/broken")
    git(tmp_path, "commit", "-qm", "app fixed")

    explained = run_cli(["explain", "shop/app", "--json"], tmp_path)
    assert explained.code == 0, explained.output
    data = json.loads(explained.stdout)
    assert "dependencies" in data["changed_inputs"]
    assert data["changed_dependencies"] == [{"image": "shop/base", "old": old, "new": new}]
    text = run_cli(["explain", "shop/app"], tmp_path).stdout.splitlines()
    at = text.index("  changed: dependencies")
    assert text[at + 1] == f"    shop/base: {old[:19]} → {new[:19]}"
