"""A run's results as CI outputs: GitHub step outputs, Azure output variables, a GitLab dotenv file.

One scheme for every service, from the run report (pipeline.report.RunReport): `images` (the report's
images as compact JSON), `version`, and per pushed image `<image>-digest`, `<image>-ref` and `<image>-tags`
(comma-separated). Names are made of parts: every run of characters other than ASCII letters and digits
becomes one separator. GitHub: lower case, `-` (`shop/web` -> `shop-web-digest`); Azure and GitLab:
`PIPELINE_` then upper case, `_` (`PIPELINE_SHOP_WEB_DIGEST`), as both turn variables into environment
variables and GitLab's dotenv keys may hold only `[A-Za-z0-9_]`.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pipeline.ci.commands import azure_data, azure_property
from pipeline.errors import ConfigError

if TYPE_CHECKING:
    from pipeline.report import RunReport

SEPARATORS = re.compile(r"[^A-Za-z0-9]+")
IMAGE_FIELDS = ("image", "repository", "digest", "reference", "tags", "status")
ENV_PREFIX = "PIPELINE"
# GitLab.com's documented limits for a dotenv report (instance admins may raise them): 5 KB, and 50
# variables on the Free tier (150 on self-managed by default).
DOTENV_MAX_BYTES = 5120
DOTENV_MAX_VARIABLES = 50


@dataclass(frozen=True)
class Output:
    parts: tuple[str, ...]  # ("shop/web", "digest"), ("images",)
    value: str  # one line

    @property
    def github_name(self) -> str:
        return "-".join(_words(part) for part in self.parts).lower()

    @property
    def env_name(self) -> str:
        return "_".join([ENV_PREFIX, *(_words(part, "_") for part in self.parts)]).upper()


def _words(text: str, separator: str = "-") -> str:
    return SEPARATORS.sub(separator, text).strip(separator)


def check_names(images: Iterable[str]) -> None:
    """Refuse (before anything is built) image keys whose output names would be the same."""
    seen: dict[str, str] = {}
    for image in images:
        name = Output((image,), "").github_name
        if name in seen:
            raise ConfigError(
                f"images {seen[name]} and {image} would both write the CI outputs '{name}-*'; "
                "rename one (outputs keep only ASCII letters and digits of an image's name)"
            )
        seen[name] = image


def outputs(report: RunReport) -> list[Output]:
    """`images` and `version`, then digest, ref and tags of each image that has a digest (was pushed, or
    reused), also after a failed run."""
    images = [{field: getattr(image, field) for field in IMAGE_FIELDS} for image in report.images]
    found = [
        Output(("images",), json.dumps(images, separators=(",", ":"))),
        Output(("version",), report.version or ""),
    ]
    for image in report.images:
        if not image.digest:
            continue
        found += [
            Output((image.image, "digest"), image.digest),
            Output((image.image, "ref"), image.reference or ""),
            Output((image.image, "tags"), ",".join(image.tags)),
        ]
    return found


def github_output_text(
    found: Sequence[Output], delimiter: Callable[[], str] = lambda: f"ghadelimiter_{uuid.uuid4()}"
) -> str:
    """Lines for $GITHUB_OUTPUT: `name=value`, or `name<<DELIMITER` ... for a value with a line break."""
    lines = []
    for output in found:
        if "\n" not in output.value and "\r" not in output.value:
            lines.append(f"{output.github_name}={output.value}")
            continue
        marker = delimiter()
        if marker in output.value:
            raise ValueError(f"output {output.github_name}: its value holds the delimiter {marker}")
        lines += [f"{output.github_name}<<{marker}", output.value, marker]
    return "".join(f"{line}\n" for line in lines)


def azure_variable_lines(found: Sequence[Output]) -> list[str]:
    """`##vso[task.setvariable]` lines: output variables a later job reads as
    `dependencies.<job>.outputs['<step>.PIPELINE_...']`."""
    return [
        f"##vso[task.setvariable variable={azure_property(output.env_name)};isOutput=true]{azure_data(output.value)}"
        for output in found
    ]


def dotenv_text(found: Sequence[Output]) -> str:
    """KEY=VALUE lines for GitLab's `artifacts:reports:dotenv`: no quotes (GitLab keeps them as part of the
    value), no blank or comment lines, one line per value."""
    for output in found:
        if "\n" in output.value or "\r" in output.value:
            raise ValueError(f"{output.env_name}: a dotenv value must be one line")
    return "".join(f"{output.env_name}={output.value.strip()}\n" for output in found)


def dotenv_warnings(text: str) -> list[str]:
    """What GitLab.com would refuse about this dotenv file (the upload of the whole report fails)."""
    warnings = []
    size = len(text.encode("utf-8"))
    if size > DOTENV_MAX_BYTES:
        warnings.append(f"{size} bytes, over GitLab's default limit of {DOTENV_MAX_BYTES}")
    count = text.count("\n")
    if count > DOTENV_MAX_VARIABLES:
        warnings.append(f"{count} variables, over GitLab.com's Free-tier limit of {DOTENV_MAX_VARIABLES}")
    return warnings
