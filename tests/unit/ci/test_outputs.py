"""Step outputs, Azure output variables and the dotenv file: one naming scheme, exact lines."""

from __future__ import annotations

from typing import Any

import pytest

from pipeline.ci.outputs import (
    Output,
    azure_variable_lines,
    check_names,
    dotenv_text,
    dotenv_warnings,
    github_output_text,
    outputs,
)
from pipeline.errors import ConfigError
from pipeline.report import RunReport

DIGEST = "sha256:" + "a" * 64
REPORT: dict[str, Any] = {
    "ok": False,
    "version": "1.2.3",
    "images": [
        {
            "image": "shop/web-app",
            "repository": "r.example/shop/web-app",
            "digest": DIGEST,
            "reference": f"r.example/shop/web-app@{DIGEST}",
            "tags": ["sha-0123", "1.2.3", "latest"],
            "status": "succeeded",
            "error": None,
        },
        {
            "image": "shop/db",
            "repository": "r.example/shop/db",
            "digest": None,
            "reference": None,
            "tags": [],
            "status": "failed",
            "error": "shop/db: build failed",
        },
    ],
}
IMAGES_JSON = (
    '[{"image":"shop/web-app","repository":"r.example/shop/web-app","digest":"' + DIGEST + '","reference":'
    '"r.example/shop/web-app@' + DIGEST + '","tags":["sha-0123","1.2.3","latest"],"status":"succeeded"},'
    '{"image":"shop/db","repository":"r.example/shop/db","digest":null,"reference":null,"tags":[],"status":"failed"}]'
)


def test_names_keep_letters_and_digits_with_one_separator_per_run() -> None:
    assert Output(("shop/web-app", "digest"), "").github_name == "shop-web-app-digest"
    assert Output(("Shop//web.app_", "ref"), "").env_name == "PIPELINE_SHOP_WEB_APP_REF"
    assert Output(("images",), "").env_name == "PIPELINE_IMAGES"


def test_github_outputs_are_exact_lines_for_pushed_images_only() -> None:
    assert github_output_text(outputs(RunReport.model_validate(REPORT))).splitlines() == [
        f"images={IMAGES_JSON}",
        "version=1.2.3",
        f"shop-web-app-digest={DIGEST}",
        f"shop-web-app-ref=r.example/shop/web-app@{DIGEST}",
        "shop-web-app-tags=sha-0123,1.2.3,latest",
    ]


def test_a_multi_line_value_uses_the_delimiter_syntax() -> None:
    text = github_output_text([Output(("notes",), "a\nb"), Output(("version",), "")], lambda: "EOF_1")
    assert text == "notes<<EOF_1\na\nb\nEOF_1\nversion=\n"
    with pytest.raises(ValueError, match="delimiter"):
        github_output_text([Output(("notes",), "x\nEOF_1")], lambda: "EOF_1")


def test_azure_output_variables_are_escaped_single_lines() -> None:
    lines = azure_variable_lines(outputs(RunReport(ok=True, version=None, images=REPORT["images"][:1])))
    assert lines[1:] == [
        "##vso[task.setvariable variable=PIPELINE_VERSION;isOutput=true]",
        f"##vso[task.setvariable variable=PIPELINE_SHOP_WEB_APP_DIGEST;isOutput=true]{DIGEST}",
        f"##vso[task.setvariable variable=PIPELINE_SHOP_WEB_APP_REF;isOutput=true]r.example/shop/web-app@{DIGEST}",
        "##vso[task.setvariable variable=PIPELINE_SHOP_WEB_APP_TAGS;isOutput=true]sha-0123,1.2.3,latest",
    ]
    assert azure_variable_lines([Output(("x",), "50%\nmore")]) == [
        "##vso[task.setvariable variable=PIPELINE_X;isOutput=true]50%AZP25%0Amore"
    ]


def test_dotenv_lines_and_gitlab_limits() -> None:
    assert dotenv_text(outputs(RunReport.model_validate(REPORT))).splitlines() == [
        f"PIPELINE_IMAGES={IMAGES_JSON}",
        "PIPELINE_VERSION=1.2.3",
        f"PIPELINE_SHOP_WEB_APP_DIGEST={DIGEST}",
        f"PIPELINE_SHOP_WEB_APP_REF=r.example/shop/web-app@{DIGEST}",
        "PIPELINE_SHOP_WEB_APP_TAGS=sha-0123,1.2.3,latest",
    ]
    with pytest.raises(ValueError, match="one line"):
        dotenv_text([Output(("x",), "a\nb")])
    assert dotenv_warnings(dotenv_text(outputs(RunReport.model_validate(REPORT)))) == []
    many = "".join(f"PIPELINE_{n}={'x' * 100}\n" for n in range(51))
    assert dotenv_warnings(many) == [
        f"{len(many)} bytes, over GitLab's default limit of 5120",
        "51 variables, over GitLab.com's Free-tier limit of 50",
    ]


def test_images_whose_output_names_clash_are_refused() -> None:
    check_names(["shop/web", "shop/db"])
    with pytest.raises(ConfigError, match="images shop/web-app and shop/web_app would both write the CI outputs"):
        check_names(["shop/web-app", "shop/web_app"])
