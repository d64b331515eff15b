"""`explain` names each dependency whose digest moved since the last build, from the digests that build
recorded in its labels (an image's own labels, and each variant's child's)."""

from __future__ import annotations

from pipeline.cache.explain import DependencyChange, changed_dependencies
from pipeline.cache.inputs import DEPENDENCIES_LABEL, INPUTS_LABEL, InputDigest

OLD, NEW, LIB = "sha256:" + "a" * 64, "sha256:" + "b" * 64, "sha256:" + "c" * 64


def inputs(dependencies: dict[str, str], hashed: str) -> InputDigest:
    return InputDigest("sha256:x", {"dependencies": hashed}, dependencies=dependencies)


def test_a_build_records_the_digests_it_built_on_and_explain_names_the_one_that_moved() -> None:
    last = inputs({"shop/base": OLD, "shop/lib": LIB}, "sha256:h1").labels()
    now = inputs({"shop/base": NEW, "shop/lib": LIB}, "sha256:h2")
    changes = changed_dependencies(now, last)
    assert changes == [DependencyChange("shop/base", OLD, NEW)]
    assert changes[0].line == "shop/base: sha256:aaaaaaaaaaaa → sha256:bbbbbbbbbbbb"
    assert changes[0].as_dict() == {"image": "shop/base", "old": OLD, "new": NEW}


def test_unchanged_dependencies_name_nothing_and_an_older_build_names_each_dependency_now() -> None:
    same = inputs({"shop/base": OLD}, "sha256:h1")
    assert changed_dependencies(same, same.labels()) == []
    # Built before the digests were recorded: only the dependencies' hash is in its labels.
    older = {f"{INPUTS_LABEL}.dependencies": "sha256:h0"}
    (change,) = changed_dependencies(same, older)
    assert change == DependencyChange("shop/base", None, OLD)
    assert change.line == "shop/base: now sha256:aaaaaaaaaaaa (the last build recorded no digest for it)"


def test_a_dependency_added_or_dropped_is_named_too() -> None:
    last = {DEPENDENCIES_LABEL: f'{{"shop/base":"{OLD}"}}', f"{INPUTS_LABEL}.dependencies": "sha256:h1"}
    now = inputs({"shop/lib": LIB}, "sha256:h2")
    assert changed_dependencies(now, last) == [
        DependencyChange("shop/base", OLD, None),
        DependencyChange("shop/lib", None, LIB),
    ]
