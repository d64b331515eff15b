"""`pipeline explain`: why an image would be rebuilt — which of its inputs differ from its last
pushed build on this line of history, down to the context files git says changed since then."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.cache.inputs import INPUTS_LABEL, GitBlobs
from pipeline.cache.lastbuild import last_build
from pipeline.cache.predict import predict
from pipeline.plan import REVISION_LABEL, Plan
from pipeline.registry.client import RegistryClient
from pipeline.vcs.loader import git


@dataclass
class Explanation:
    verdict: str
    details: list[str] = field(default_factory=list)
    changed_inputs: list[str] = field(default_factory=list)
    last_build: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "details": self.details,
            "changed_inputs": self.changed_inputs,
            "last_build": self.last_build,
        }


def explain_image(
    plan: Plan, key: str, registry: RegistryClient, blobs: GitBlobs | None, base_dir: Path
) -> Explanation:
    predictions = predict(plan, registry, blobs)
    prediction = predictions[key]
    if prediction.action == "reuse":
        return Explanation(f"reuse {prediction.digest}: its inputs match that pushed image ({prediction.why})")
    image = plan.images[key]
    try:
        repo = git.Repo(base_dir, search_parent_directories=True)
        history = str(repo.git.rev_list("--max-count=500", "--first-parent", "HEAD")).split()
    except (git.InvalidGitRepositoryError, git.GitCommandError):
        repo, history = None, []
    found = last_build(registry, image, history)
    if found is None:
        return Explanation(f"build: {prediction.why}; no earlier build of it is tagged on this line of history")
    digest = found.digest
    labels = registry.image_labels(image.repository.with_digest(digest))
    explanation = Explanation(f"build: {prediction.why}", last_build=f"{image.repository}@{digest}")
    if INPUTS_LABEL not in labels:
        explanation.details.append(f"the last build {digest[:19]} records no inputs (built without the input cache)")
        return explanation
    if prediction.inputs is None:  # a dependency is rebuilt, so this image's own inputs can't be final yet
        explanation.details.append(prediction.why)
        return explanation
    for name, value in prediction.inputs.components.items():
        if labels.get(f"{INPUTS_LABEL}.{name}") != value:
            explanation.changed_inputs.append(name)
    explanation.details.append(
        f"last build: {image.repository}@{digest[:19]} from commit {labels.get(REVISION_LABEL, 'unknown')[:12]}"
    )
    for name in explanation.changed_inputs:
        explanation.details.append(f"changed: {name}")
    revision = labels.get(REVISION_LABEL)
    if "context" in explanation.changed_inputs and repo is not None and revision:
        context = image.context.resolve().relative_to(Path(str(repo.working_tree_dir)).resolve()).as_posix()
        try:
            files = str(repo.git.diff("--name-only", revision, "--", context or ".")).split()
        except git.GitCommandError:
            files = []
        explanation.details += [f"  {path}" for path in files[:50]]
    return explanation
