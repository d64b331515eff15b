"""`sync_tasks` before it talks to Azure: the checkout it needs (git repository, origin, branch) and a
plan with no `acr:` settings, which syncs nothing and contacts no registry."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.acr.sync import TaskSync, sync_tasks
from pipeline.config import load_config
from pipeline.errors import UsageError
from pipeline.plan import Plan, RunContext, make_plan
from tests.helpers import init_git, write_project

ORIGIN = "git@github.com:org/shop.git"
NEEDS = "ACR tasks need an 'origin' remote and a branch (check out one, or pass --branch)"


def shop(root: Path, context: RunContext) -> tuple[Plan, Path, Path]:
    config_file = write_project(
        root,
        """\
        registry: 127.0.0.1:5000/local
        pipelines:
          shop:
            images:
              base: {context: images/base}
        """,
        {"base": "FROM scratch\n"},
    )
    config = load_config(config_file)
    return make_plan(config.spec, config.base_dir, [], context), config.file, config.base_dir


def test_sync_tasks_needs_a_git_checkout_with_origin_and_a_branch(tmp_path: Path) -> None:
    plan, config_file, base_dir = shop(tmp_path, RunContext(git_branch="main", source_url=ORIGIN))
    with pytest.raises(UsageError) as outside:
        sync_tasks(plan, config_file, base_dir, None, prune=False, dry_run=True, environ={})
    assert str(outside.value) == f"{config_file}: not in a git repository; ACR tasks build from a git remote"

    init_git(tmp_path)
    for context, branch in [(RunContext(git_branch="main"), None), (RunContext(source_url=ORIGIN), None)]:
        plan, config_file, base_dir = shop(tmp_path, context)
        with pytest.raises(UsageError) as missing:
            sync_tasks(plan, config_file, base_dir, branch, prune=False, dry_run=True, environ={})
        assert str(missing.value) == NEEDS


def test_without_acr_settings_nothing_is_synced(tmp_path: Path) -> None:
    # No branch checked out (a detached HEAD): --branch supplies it.
    plan, config_file, base_dir = shop(tmp_path, RunContext(source_url=ORIGIN))
    init_git(tmp_path)
    # No Azure credential in `environ`: reaching Azure would fail, so this also shows it is not contacted.
    result = sync_tasks(plan, config_file, base_dir / "images", "release", prune=True, dry_run=False, environ={})
    assert result == TaskSync([], {"shop/base": "no 'acr:' settings for its pipeline"}, [])
