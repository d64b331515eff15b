"""BuildKit reads `<Dockerfile>.dockerignore` beside the Dockerfile before the context's .dockerignore;
the input digest must follow the same rule, or a change to a file the build sends would not rebuild."""

from __future__ import annotations

from pathlib import Path

from pipeline.cache.inputs import context_listing


def _context(tmp_path: Path) -> tuple[Path, Path]:
    context = tmp_path / "ctx"
    (context / "docker").mkdir(parents=True)
    dockerfile = context / "docker" / "app.Dockerfile"
    dockerfile.write_text("FROM scratch\nCOPY . /\n")
    (context / "secret.txt").write_text("x")
    (context / "notes.md").write_text("y")
    (context / ".dockerignore").write_text("notes.md\n")
    (context / "docker" / "app.Dockerfile.dockerignore").write_text("secret.txt\n")
    return context, dockerfile


def test_buildkit_reads_the_dockerfiles_own_ignore_file(tmp_path: Path) -> None:
    context, dockerfile = _context(tmp_path)
    listing = context_listing(context, dockerfile, None, buildkit=True)
    assert "secret.txt" not in listing
    assert "notes.md" in listing  # the context's .dockerignore is not read when the Dockerfile has its own


def test_classic_reads_only_the_contexts_ignore_file(tmp_path: Path) -> None:
    context, dockerfile = _context(tmp_path)
    listing = context_listing(context, dockerfile, None, buildkit=False)
    assert "secret.txt" in listing
    assert "notes.md" not in listing
