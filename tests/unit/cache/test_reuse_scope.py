"""The reuse decision's pure parts: `reuse:` resolved once (defaults, inheritance), the config error for
`reuse: trusted` without signing, the unsafe-choice warning, pull request scoping of input and build
tags, and the provenance condition on input digests."""

from __future__ import annotations

from pathlib import Path
from typing import cast

import pytest

from pipeline.cache.inputs import InputDigest
from pipeline.cache.lastbuild import narrow_plan
from pipeline.cache.scope import reuse_warnings, scope_of
from pipeline.common.reporting import Forward
from pipeline.config import load_config
from pipeline.errors import ConfigError, RegistryError
from pipeline.plan import Plan, RunContext, make_plan
from pipeline.registry.client import RegistryClient
from pipeline.registry.protocol import Registry
from pipeline.run.build_parts import cache_sources
from pipeline.signing.reuse import names_inputs
from tests.helpers import write_project

INPUTS = InputDigest("sha256:" + "ab" * 32, {})


def plan_of(tmp_path: Path, config: str, context: RunContext | None = None) -> Plan:
    (tmp_path / "cosign.key").write_text("not read by planning\n", encoding="utf-8")
    file = write_project(tmp_path, config, {"b": "FROM scratch\n"})
    loaded = load_config(file)
    return make_plan(loaded.spec, loaded.base_dir, [], context or RunContext(git_sha="c" * 40))


def two_pipelines(top: str = "", signed: str = "", unsigned: str = "") -> str:
    return (
        f"registry: 127.0.0.1:5000/t\n{top}"
        "pipelines:\n"
        f"  signed:\n    sign: {{key: cosign.key}}\n{signed}    images:\n      a: {{context: images/b}}\n"
        f"  plain:\n{unsigned}    images:\n      p: {{context: images/b}}\n"
    )


def test_default_is_trusted_where_the_pipeline_signs_and_any_where_it_does_not(tmp_path: Path) -> None:
    plan = plan_of(tmp_path, two_pipelines())
    assert plan.images["signed/a"].reuse == "trusted" and plan.images["plain/p"].reuse == "any"
    assert reuse_warnings(plan) == []


def test_a_pipeline_setting_wins_over_the_top_level(tmp_path: Path) -> None:
    plan = plan_of(tmp_path, two_pipelines(top="reuse: never\n", unsigned="    reuse: any\n"))
    assert plan.images["signed/a"].reuse == "never" and plan.images["plain/p"].reuse == "any"


def test_reuse_any_on_a_signing_pipeline_is_warned_about_once(tmp_path: Path) -> None:
    plan = plan_of(tmp_path, two_pipelines(signed="    reuse: any\n"))
    assert reuse_warnings(plan) == [
        "pipeline signed: `reuse: any` on a pipeline that signs reuses images anyone with push rights can plant "
        "under an inputs- tag, then signs them (use `reuse: trusted`)"
    ]


@pytest.mark.parametrize(
    ("top", "unsigned", "where"),
    [
        ("reuse: trusted\n", "", "pipelines.yaml:2:8: reuse"),
        ("", "    reuse: trusted\n", ":8:12: pipelines.plain.reuse"),
    ],
)
def test_reuse_trusted_without_signing_is_a_config_error(tmp_path: Path, top: str, unsigned: str, where: str) -> None:
    with pytest.raises(ConfigError) as raised:
        plan_of(tmp_path, two_pipelines(top=top, unsigned=unsigned))
    assert where in str(raised.value)
    assert "`reuse: trusted` needs signing, but pipeline plain does not sign" in str(raised.value)


def test_a_pull_request_writes_only_scoped_tags_and_reads_both(tmp_path: Path) -> None:
    branch = scope_of(RunContext(git_sha="c" * 40, git_branch="main"))
    assert branch.write_tag(INPUTS) == INPUTS.tag == "inputs-" + "ab" * 12
    assert branch.read_tags(INPUTS) == (INPUTS.tag,)
    pr = scope_of(RunContext(git_sha="c" * 40, git_pr="9"))
    assert pr.untrusted and pr.write_tag(INPUTS) == "inputs-pr-" + "ab" * 12
    assert pr.read_tags(INPUTS) == (INPUTS.tag, "inputs-pr-" + "ab" * 12)
    planned = plan_of(tmp_path, two_pipelines(), RunContext(git_sha="c" * 40, git_pr="9"))
    assert planned.images["plain/p"].tags.build == ("pr-sha-" + "c" * 12,)
    branch_plan = plan_of(tmp_path, two_pipelines(), RunContext(git_sha="c" * 40, git_branch="main"))
    assert branch_plan.images["plain/p"].tags.build == ("sha-" + "c" * 12,)


def test_provenance_must_name_the_input_digest() -> None:
    def predicate(digest: object) -> object:
        return {"buildDefinition": {"internalParameters": {"inputDigest": digest}}}

    accept = names_inputs({INPUTS.digest})
    assert accept(predicate(INPUTS.digest)) is None
    assert accept(predicate("sha256:" + "00" * 32)) == f"names input digest sha256:{'00' * 32}, not {INPUTS.digest}"
    assert accept({"buildDefinition": "no"}) is not None and accept(None) is not None
    assert names_inputs(None)(predicate(None)) is None  # an index's own provenance: any inputs


def test_reuse_never_pins_no_dependency_it_builds_them(tmp_path: Path) -> None:
    """`run --since`/triggers: an unchanged dependency of a `reuse: never` pipeline is built, not pinned
    to whatever its sha- tag names (no registry is asked)."""
    config = (
        "registry: 127.0.0.1:9/t\nreuse: never\nsign: {key: cosign.key}\npipelines:\n  shop:\n    images:\n"
        "      base: {context: images/b}\n"
        '      app: {context: images/b, build_args: {BASE_IMAGE: "{{ images.base }}"}}\n'
    )
    plan = plan_of(tmp_path, config)
    said: list[str] = []
    with RegistryClient(lambda _: None) as registry:
        narrowed = narrow_plan(plan, {"shop/app"}, registry, ["c" * 40], "main", None, Forward(said.append))
    assert set(narrowed.images) == {"shop/base", "shop/app"} and narrowed.pinned == {}
    assert said == ["shop/base: not pinned: pipeline shop has reuse: never; building shop/base"]


def test_an_extra_tag_rendered_from_a_branch_name_cannot_be_a_build_or_input_tag(tmp_path: Path) -> None:
    """`{{ git.branch }}` passes the config check (it renders `main` there); a branch named like a build tag
    must not make the run write one."""
    config = two_pipelines(unsigned='    tags: {extra: ["{{ git.branch }}"]}\n')
    fine = plan_of(tmp_path, config, RunContext(git_sha="c" * 40, git_branch="main"))
    assert "main" in fine.images["plain/p"].tags.all
    for branch in ("sha-" + "d" * 12, "inputs-" + "ab" * 12, "pr-sha-" + "d" * 12):
        with pytest.raises(ConfigError) as raised:
            plan_of(tmp_path, config, RunContext(git_sha="c" * 40, git_branch=branch))
        shown = "extra tag template '{{ git.branch }}' renders to an invalid tag: it starts like a tag the run "
        assert shown + "writes itself (inputs-, sha-, pr-sha-)" in str(raised.value)


class _Unreachable:
    def __getattr__(self, name: str) -> object:
        def fail(*args: object, **kwargs: object) -> object:
            raise RegistryError("registry unreachable")

        return fail


@pytest.mark.parametrize(("reuse", "sources"), [("never", 0), ("any", 2)])
def test_reuse_never_builds_on_no_earlier_image_cache(tmp_path: Path, reuse: str, sources: int) -> None:
    """`reuse: never` uses no earlier image at all, not even its layer cache (`--cache-from`)."""
    plan = plan_of(tmp_path, two_pipelines(unsigned=f"    reuse: {reuse}\n"))
    image = plan.images["plain/p"]
    registry = cast(Registry, _Unreachable())
    found = cache_sources(plan, registry, None, image, "sha-" + "c" * 12, lambda *said: None)
    assert len(found) == sources  # `any`: this commit's build tag and latest, by tag
    if sources:
        assert found == (f"{image.repository}:sha-{'c' * 12}", f"{image.repository}:latest")
