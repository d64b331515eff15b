"""serve's --read-timeout, --max-body and --max-connections: one option per ServerLimits field, in order,
each defaulting to that field's default (what `serve --help` shows)."""

from __future__ import annotations

import dataclasses

import click

from pipeline.cli.serve_command import serve
from pipeline.triggers.server import ServerLimits


def test_each_limit_option_is_named_after_and_defaults_to_its_server_limits_field() -> None:
    fields = {f.name: f.default for f in dataclasses.fields(ServerLimits)}
    limits = [p for p in serve.params if isinstance(p, click.Option) and p.name in fields]
    assert [(p.opts, p.name, p.default, p.show_default) for p in limits] == [
        (["--read-timeout"], "read_timeout", 10.0, True),
        (["--max-body"], "max_body", 25 * 1024 * 1024, True),
        (["--max-connections"], "max_connections", 16, True),
    ]
    assert [p.default for p in limits] == [fields[p.name or ""] for p in limits]
    names = [p.name for p in serve.params]
    assert names.index("stop_timeout") + 1 == names.index("read_timeout")
    assert names.index("max_connections") + 1 == names.index("public_url")
