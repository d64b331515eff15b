"""The architecture of pipeline/, read from its import graph: no import circles, no import from a lower
layer to a higher one, a top level holding only the pure core, documented packages and a CLI that reaches
I/O only through the core.

The graph is built with `ast` from the source (nothing is imported, so a broken module cannot hide a
rule): these few rules need no third-party tool such as import-linter, and the failures name the file,
line and import statement to change.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2] / "pipeline"

# Lowest first. A module may import its own package, `pipeline` itself (only `__version__`) and any
# package of a lower layer. Packages of one layer are in a strict order too, lowest first (a later one
# may import an earlier one, never the reverse), so no two packages can import each other; where the
# code today has no edge between them the order is the one the issue lists them in.
LAYERS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("pipeline.errors",), "error types and their exit codes: every layer raises them"),
    (
        ("pipeline.files",),
        "reading a file a user or a config names (regular files only, bounded, never blocking) and writing "
        "a run's files whole; over errors only",
    ),
    (
        ("pipeline.common",),
        "general helpers of no one domain: the retry policy, URL credentials stripped, the checkout as plain "
        "data, the progress Reporter, an object's fields as a dict; over errors only",
    ),
    (
        ("pipeline.report",),
        "the run report's typed model and its JSON Schema: what run writes and CI, JUnit and triggers read",
    ),
    (
        ("pipeline.versioning", "pipeline.registry", "pipeline.vcs", "pipeline.ci"),
        "leaves over errors and common only: pure tag rules, the OCI client, the git checkout, what a CI "
        "service reads; none imports another",
    ),
    (
        ("pipeline.redaction",),
        "what must never be shown: secret values and their base64 forms, URL credentials (common.urls), JWTs; "
        "every output of notify, run and triggers goes through it",
    ),
    (
        ("pipeline.graph", "pipeline.dockerfile", "pipeline.config"),
        "reading what to build: config's checks use graph's find_cycle, so graph (pure DAG) comes first",
    ),
    (("pipeline.pictures",), "drawings of a dependency graph (layout, SVG), pure: only the graph's data"),
    (("pipeline.plan",), "the plan joins config, graph, versioning and references into what a run does"),
    (
        ("pipeline.bases", "pipeline.cache", "pipeline.acr", "pipeline.sbom", "pipeline.notify"),
        "services over a plan: external base images by digest (and their lock file); reuse prediction; "
        "Azure tasks and auth; what an image's layers contain; "
        "notifications (config's notify blocks posted with common's retry policy)",
    ),
    (
        ("pipeline.builders", "pipeline.signing", "pipeline.attest"),
        "build and sign planned images (builders use acr); attest them (provenance, SBOM) with signing's signers",
    ),
    (("pipeline.release",), "releasing uses cache prediction, signing's trust policy and the registry"),
    (("pipeline.run",), "the run session wires builders, cache, release and signing into an executor"),
    (("pipeline.triggers",), "triggers decide what to run and hand it to the same run session"),
    (("pipeline.cli",), "the command line: parses argv, calls the core, prints, maps errors to exit codes"),
    (("pipeline.__main__",), "`python -m pipeline` calls the CLI"),
)

# The pure core every layer uses; everything else belongs in a package named after its concern.
TOP_LEVEL = {"__init__", "__main__", "errors", "plan", "graph", "versioning"}

# Commands go through the core: the CLI never reaches the engine, git, Azure or the network itself.
CLI_FORBIDDEN = (
    "docker",
    "git",
    "azure",
    "httpx",
    "pipeline.vcs",
    "pipeline.registry.client",
    "pipeline.registry.session",
    "pipeline.acr.client",
)

# One module owns git (STYLE.md): only pipeline.vcs imports GitPython or runs the `git` binary.
GIT_OWNER = "pipeline.vcs"
GIT_MODULES = ("git", "pipeline.vcs.loader")


@dataclass(frozen=True)
class Import:
    file: str  # relative to the directory holding the package, as a user would open it
    line: int
    statement: str
    importer: str  # dotted module name
    target: str  # dotted module imported (the submodule when `from a import b` names one)
    lazy: bool  # inside a function: runs after the module has loaded
    type_only: bool  # under `if TYPE_CHECKING:`: never runs

    def where(self) -> str:
        return f"{self.file}:{self.line}: `{self.statement}`" + (" (in a function)" if self.lazy else "")


def module_name(root: Path, path: Path) -> str:
    parts = [root.name, *path.relative_to(root).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports_in(
    statements: Iterable[ast.stmt], lazy: bool = False, type_only: bool = False
) -> Iterator[tuple[ast.Import | ast.ImportFrom, bool, bool]]:
    """Each import statement with whether it runs in a function and whether only type checkers see it.
    Only statements can import, so expressions are not walked (a full ast.walk is ten times slower)."""
    for node in statements:
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node, lazy, type_only
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield from imports_in(node.body, True, type_only)
        elif isinstance(node, ast.If) and is_type_checking(node.test):
            yield from imports_in(node.body, lazy, True)
            yield from imports_in(node.orelse, lazy, type_only)
        else:  # class bodies, if/for/while/with/try/match: they run when the module loads
            for field in ("body", "orelse", "finalbody"):
                yield from imports_in(getattr(node, field, ()), lazy, type_only)
            for block in [*getattr(node, "handlers", ()), *getattr(node, "cases", ())]:  # except:, case:
                yield from imports_in(block.body, lazy, type_only)


def collect_imports(root: Path) -> list[Import]:
    """Every import statement in the package at `root` (a directory holding `__init__.py`); `from a
    import b` targets the module `a.b` when there is one, else `a`."""
    files = sorted(root.rglob("*.py"))
    modules = {module_name(root, path) for path in files}
    imports: list[Import] = []
    for path in files:
        source = path.read_text(encoding="utf-8")
        module = module_name(root, path)
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        file = path.relative_to(root.parent).as_posix()
        for node, lazy, type_only in imports_in(ast.parse(source, filename=str(path)).body):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1]) if node.level else ""
                source_module = ".".join(name for name in (base, node.module) if name)
                submodules = (f"{source_module}.{alias.name}" for alias in node.names)
                targets = [name if name in modules else source_module for name in submodules]
            statement = ast.unparse(node)  # one line even when the source wraps it in parentheses
            for target in dict.fromkeys(targets):  # `from a import x, y` imports `a` once
                imports.append(Import(file, node.lineno, statement, module, target, lazy, type_only))
    return imports


def within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def load_edges(imports: Iterable[Import], root: str) -> dict[str, dict[str, Import]]:
    """What loading each module runs: its module-level imports of `root`'s modules, with the packages
    (`__init__.py`) above each one that are not already loading above the importer."""
    edges: dict[str, dict[str, Import]] = {}
    for imp in imports:
        if imp.lazy or imp.type_only or not within(imp.target, root):
            continue
        parts = imp.target.split(".")
        for depth in range(2, len(parts) + 1):
            target = ".".join(parts[:depth])
            if not within(imp.importer, target) and target != imp.importer:
                edges.setdefault(imp.importer, {}).setdefault(target, imp)
    return edges


def strongly_connected(edges: dict[str, dict[str, Import]]) -> list[list[str]]:
    """Tarjan's components of size > 1, each sorted, in a stable order."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(edges.get(node, {})):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return sorted(found)


def shortest_cycle(edges: dict[str, dict[str, Import]], component: Sequence[str]) -> list[str]:
    start, members = component[0], set(component)
    paths = {start: [start]}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for nxt in sorted(edges.get(node, {})):
            if nxt == start:
                return paths[node] + [start]
            if nxt in members and nxt not in paths:
                paths[nxt] = paths[node] + [nxt]
                queue.append(nxt)
    raise AssertionError(f"no cycle through {start}")  # a component of size > 1 always has one


def import_circles(imports: Sequence[Import], root: str) -> list[str]:
    """Module-level circles: the first of them to load sees the other half-initialised. Imports under
    `if TYPE_CHECKING:` never run and imports in functions run after loading, so neither counts."""
    edges = load_edges(imports, root)
    problems = []
    for component in strongly_connected(edges):
        cycle = shortest_cycle(edges, component)
        steps = "\n".join(f"    {edges[a][b].where()}" for a, b in zip(cycle, cycle[1:], strict=False))
        problems.append(f"import circle {' -> '.join(cycle)}:\n{steps}")
    return problems


def mutual_imports(imports: Sequence[Import], root: str) -> list[str]:
    """Two modules that import each other where one import is lazy: the circle is still there, just
    postponed to run time (STYLE.md: no two modules import each other). Module-level pairs are
    reported by import_circles."""
    first: dict[tuple[str, str], Import] = {}
    for imp in imports:
        if not imp.type_only and within(imp.target, root) and imp.target != imp.importer:
            first.setdefault((imp.importer, imp.target), imp)
    problems = []
    for (a, b), there in sorted(first.items()):
        back = first.get((b, a))
        if a < b and back is not None and (there.lazy or back.lazy):
            problems.append(f"{a} and {b} import each other:\n    {there.where()}\n    {back.where()}")
    return problems


def layer_rank(layers: Sequence[tuple[tuple[str, ...], str]]) -> dict[str, tuple[int, int]]:
    """(layer, place in the layer) of each package, to compare as tuples."""
    return {
        package: (layer, order) for layer, (packages, _) in enumerate(layers) for order, package in enumerate(packages)
    }


def owner(module: str, root: str) -> str:
    """The package (or top-level module) of the layer table a module belongs to."""
    return ".".join(module.split(".")[:2]) if module != root else root


def layer_violations(imports: Sequence[Import], root: str, layers: Sequence[tuple[tuple[str, ...], str]]) -> list[str]:
    """Imports from a lower layer (or an earlier package of the same layer) to a higher one. Lazy and
    type-only imports count: the dependency runs (or is designed) upwards all the same."""
    rank = {root: (-1, 0), **layer_rank(layers)}  # the root package holds only __version__: below all
    problems = []
    for imp in imports:
        if not within(imp.target, root) or imp.target == root:
            continue
        source, target = owner(imp.importer, root), owner(imp.target, root)
        if source == target:
            continue
        unknown = [name for name in (source, target) if name not in rank]
        if unknown:
            problems.append(f"{imp.where()}: {' and '.join(unknown)} not in the layer table; give it a layer")
        elif rank[target] > rank[source]:
            (low, low_order), (high, high_order) = rank[source], rank[target]
            detail = f"layer {low}" if low != high else f"layer {low}, place {low_order + 1}"
            higher = f"layer {high}" if low != high else f"place {high_order + 1}"
            problems.append(f"{imp.where()}: {source} ({detail}) imports {target} ({higher}), a higher one")
    return problems


def cli_io_imports(imports: Sequence[Import], cli: str, forbidden: Sequence[str]) -> list[str]:
    return [
        f"{imp.where()}: the CLI imports {imp.target}; call a core function that does the I/O"
        for imp in imports
        if within(imp.importer, cli) and any(within(imp.target, name) for name in forbidden)
    ]


def git_argv_literals(tree: ast.AST) -> Iterator[ast.List | ast.Tuple]:
    """Lists and tuples that start with the string "git": the argv of a git process, whether passed to
    subprocess directly or built first."""
    for node in ast.walk(tree):
        if isinstance(node, ast.List | ast.Tuple) and node.elts:
            first = node.elts[0]
            if isinstance(first, ast.Constant) and first.value == "git":
                yield node


def git_outside_owner(root: Path, imports: Sequence[Import], owner_package: str) -> list[str]:
    """Modules outside `owner_package` that import GitPython (or its loader) or spell a `git` argv."""
    problems = [
        f"{imp.where()}: only {owner_package} calls git; add a function there and call it"
        for imp in imports
        if not within(imp.importer, owner_package) and any(within(imp.target, name) for name in GIT_MODULES)
    ]
    for path in sorted(root.rglob("*.py")):
        if within(module_name(root, path), owner_package):
            continue
        file = path.relative_to(root.parent).as_posix()
        for node in git_argv_literals(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            problems.append(
                f"{file}:{node.lineno}: `{ast.unparse(node)[:60]}`: only {owner_package} runs git; "
                "add a function there and call it"
            )
    return problems


def alias_definitions(root: Path, names: Iterable[str]) -> dict[str, list[str]]:
    """Where each of `names` is assigned at a module's top level (file:line), for names that must have one home."""
    wanted = set(names)
    found: dict[str, list[str]] = {name: [] for name in wanted}
    for path in sorted(root.rglob("*.py")):
        for node in ast.parse(path.read_text(encoding="utf-8"), filename=str(path)).body:
            targets = (
                node.targets
                if isinstance(node, ast.Assign)
                else [node.target]
                if isinstance(node, ast.AnnAssign)
                else []
            )
            for target in targets:
                if isinstance(target, ast.Name) and target.id in wanted:
                    found[target.id].append(f"{path.relative_to(root.parent).as_posix()}:{node.lineno}")
    return found


def layout_problems(root: Path, top_level: set[str]) -> list[str]:
    problems = []
    for entry in sorted(root.iterdir()):
        if entry.is_file() and entry.suffix == ".py" and entry.stem not in top_level:
            problems.append(f"{entry.relative_to(root.parent)}: only {sorted(top_level)} live at the top level")
    for directory in sorted(path for path in root.rglob("*") if path.is_dir() and path.name != "__pycache__"):
        init = directory / "__init__.py"
        relative = directory.relative_to(root.parent)
        if not init.exists():
            if any(directory.glob("*.py")):
                problems.append(f"{relative}/: modules without an __init__.py; make it a package with a docstring")
        elif not ast.get_docstring(ast.parse(init.read_text(encoding="utf-8"))):
            problems.append(f"{relative}/__init__.py: no docstring saying what the package is for")
    root_init = root / "__init__.py"
    if not ast.get_docstring(ast.parse(root_init.read_text(encoding="utf-8"))):
        problems.append(f"{root_init.relative_to(root.parent)}: no docstring saying what the package is for")
    return problems


@cache
def pipeline_imports() -> tuple[Import, ...]:
    return tuple(collect_imports(ROOT))


def report(problems: Sequence[str]) -> str:
    return f"{len(problems)} problem(s):\n" + "\n".join(problems)


def test_no_import_circles() -> None:
    problems = import_circles(pipeline_imports(), "pipeline")
    assert not problems, report(problems)


def test_no_two_modules_import_each_other() -> None:
    problems = mutual_imports(pipeline_imports(), "pipeline")
    assert not problems, report(problems)


def test_no_import_from_a_lower_layer_to_a_higher_one() -> None:
    problems = layer_violations(pipeline_imports(), "pipeline", LAYERS)
    assert not problems, report(problems)


def test_every_package_has_a_layer() -> None:
    packages = {owner(module_name(ROOT, path), "pipeline") for path in ROOT.rglob("*.py")} - {"pipeline"}
    missing = sorted(packages - set(layer_rank(LAYERS)))
    assert not missing, f"not in LAYERS: {missing}"


def test_cli_reaches_io_only_through_the_core() -> None:
    problems = cli_io_imports(pipeline_imports(), "pipeline.cli", CLI_FORBIDDEN)
    assert not problems, report(problems)


def test_only_vcs_calls_git() -> None:
    problems = git_outside_owner(ROOT, pipeline_imports(), GIT_OWNER)
    assert not problems, report(problems)


# Types several layers share: one definition each, in the lowest layer that needs it, imported elsewhere.
DEFINED_ONCE = ("CredentialLookup",)


def test_shared_types_are_defined_once() -> None:
    twice = {name: where for name, where in alias_definitions(ROOT, DEFINED_ONCE).items() if len(where) != 1}
    assert not twice, f"defined more (or less) than once: {twice}"


# Progress goes through one protocol, pipeline.common.reporting.Reporter: no package defines or takes its own callback.
PROGRESS_ALIASES = ("Say", "Log", "WarnFn", "ProgressFn", "Progress", "Notify")
REPORTING = "pipeline/common/"


def progress_aliases(root: Path) -> list[str]:
    """Progress callbacks outside pipeline/common (file:line name): a module-level alias named as one the
    Reporter replaced, or any alias of `Callable[[str], None]` (a line said somewhere), or a function
    parameter of that type (see `progress_parameters`)."""
    named = [
        f"{where} {name}"
        for name, places in alias_definitions(root, PROGRESS_ALIASES).items()
        for where in places
        if not where.startswith(REPORTING)
    ]
    for path in sorted(root.rglob("*.py")):
        relative = path.relative_to(root.parent).as_posix()
        if relative.startswith(REPORTING):
            continue
        for node in ast.parse(path.read_text(encoding="utf-8"), filename=str(path)).body:
            if isinstance(node, ast.Assign) and ast.unparse(node.value) == "Callable[[str], None]":
                line = f"{relative}:{node.lineno} {ast.unparse(node.targets[0])}"
                if not any(found.startswith(f"{relative}:{node.lineno} ") for found in named):
                    named.append(line)
        named += progress_parameters(path, relative)
    return sorted(named)


# Parameters typed `Callable[[str], None]` that are not progress: a closer told why, a check that raises.
NOT_PROGRESS = {"pipeline/ci/groups.py on_interrupt(close)", "pipeline/release/publish.py verify_published(guard)"}


def progress_parameters(path: Path, relative: str) -> list[str]:
    """Function parameters typed `Callable[[str], None]` (optionally `| None`) in one module (file:line
    function(parameter)): a progress callback a Reporter replaces, unless NOT_PROGRESS names it."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        arguments = node.args
        for argument in [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs]:
            annotation = ast.unparse(argument.annotation) if argument.annotation is not None else ""
            if annotation.removesuffix(" | None") != "Callable[[str], None]":
                continue
            if f"{relative} {node.name}({argument.arg})" not in NOT_PROGRESS:
                found.append(f"{relative}:{argument.lineno} {node.name}({argument.arg})")
    return found


def test_progress_goes_through_the_reporter_protocol() -> None:
    found = progress_aliases(ROOT)
    assert not found, "progress callbacks (take a pipeline.common.reporting.Reporter instead):\n" + "\n".join(found)


def test_progress_alias_checker_names_file_line_and_alias(tmp_path: Path) -> None:
    package = tmp_path / "pipeline"
    (package / "common").mkdir(parents=True)
    (package / "common" / "reporting.py").write_text("Say = Callable[[str], None]\n")
    (package / "run.py").write_text("x = 1\nNotify = Callable[[str, str, str], None]\nEcho = Callable[[str], None]\n")
    assert progress_aliases(package) == ["pipeline/run.py:2 Notify", "pipeline/run.py:3 Echo"]


def test_progress_checker_names_callback_parameters(tmp_path: Path) -> None:
    package = tmp_path / "pipeline"
    (package / "common").mkdir(parents=True)
    (package / "common" / "reporting.py").write_text("def f(say: Callable[[str], None]) -> None: ...\n")
    (package / "copy.py").write_text(
        "def copy(a: int, notify: Callable[[str], None] = print) -> None: ...\n"
        "class Server:\n"
        "    def __init__(self, *, log: Callable[[str], None] | None = None, on: Callable[[int], None]) -> None: ...\n"
        "def fine(reporter: Reporter, done: Callable[[str, str], None]) -> None: ...\n"
    )
    assert progress_aliases(package) == ["pipeline/copy.py:1 copy(notify)", "pipeline/copy.py:3 __init__(log)"]


def test_top_level_holds_the_core_and_packages_are_documented() -> None:
    problems = layout_problems(ROOT, TOP_LEVEL)
    assert not problems, report(problems)


# The checker itself, on tiny packages made to break each rule (so these tests can fail) or keep them.
FAKE = {
    "__init__.py": '"""A fake package."""\n',
    "errors.py": "def fail() -> None:\n    from fake.cli import main  # back edge, lazy\n\n    main()\n",
    "cli.py": "import httpx\n\nfrom fake.errors import fail\n\n\ndef main() -> None:\n    fail()\n",
    "stray.py": "",
    "core/__init__.py": '"""The core."""\n',
    "core/a.py": "from typing import TYPE_CHECKING\n\nfrom fake.core import b\n\n"
    "if TYPE_CHECKING:\n    from fake import cli\n",
    "core/b.py": "from fake.core.a import (\n    thing,\n)\n",
    "core/c.py": "from fake.core import d\n",
    "core/d.py": "def later() -> None:\n    from fake.core import c\n",
    "nodoc/__init__.py": "import fake.stray\nfrom fake.errors import fail\n",
}
FAKE_LAYERS = (
    (("fake.errors",), "lowest"),
    (("fake.core", "fake.nodoc", "fake.stray"), "middle"),
    (("fake.cli",), "top"),
)


def write_fake(tmp_path: Path) -> Path:
    root = tmp_path / "fake"
    for name, text in FAKE.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def test_checker_reports_each_broken_rule_with_file_line_and_import(tmp_path: Path) -> None:
    root = write_fake(tmp_path)
    imports = collect_imports(root)

    assert import_circles(imports, "fake") == [
        "import circle fake.core.a -> fake.core.b -> fake.core.a:\n"
        "    fake/core/a.py:3: `from fake.core import b`\n"
        "    fake/core/b.py:1: `from fake.core.a import thing`"
    ]
    assert mutual_imports(imports, "fake") == [
        "fake.cli and fake.errors import each other:\n"
        "    fake/cli.py:3: `from fake.errors import fail`\n"
        "    fake/errors.py:2: `from fake.cli import main` (in a function)",
        "fake.core.c and fake.core.d import each other:\n"
        "    fake/core/c.py:1: `from fake.core import d`\n"
        "    fake/core/d.py:2: `from fake.core import c` (in a function)",
    ]
    assert layer_violations(imports, "fake", FAKE_LAYERS) == [
        # type-only imports never run, but still point the design the wrong way
        "fake/core/a.py:6: `from fake import cli`: fake.core (layer 1) imports fake.cli (layer 2), a higher one",
        "fake/errors.py:2: `from fake.cli import main` (in a function): fake.errors (layer 0) imports fake.cli "
        "(layer 2), a higher one",
        "fake/nodoc/__init__.py:1: `import fake.stray`: fake.nodoc (layer 1, place 2) imports fake.stray (place 3), "
        "a higher one",
    ]
    assert cli_io_imports(imports, "fake.cli", CLI_FORBIDDEN) == [
        "fake/cli.py:1: `import httpx`: the CLI imports httpx; call a core function that does the I/O"
    ]
    assert layout_problems(root, TOP_LEVEL) == [
        "fake/cli.py: only ['__init__', '__main__', 'errors', 'graph', 'plan', 'versioning'] live at the top level",
        "fake/stray.py: only ['__init__', '__main__', 'errors', 'graph', 'plan', 'versioning'] live at the top level",
        "fake/nodoc/__init__.py: no docstring saying what the package is for",
    ]


def test_git_checker_names_each_git_call_outside_the_owner(tmp_path: Path) -> None:
    root = tmp_path / "fake"
    (root / "vcs").mkdir(parents=True)
    (root / "__init__.py").write_text('"""Fake."""\n')
    (root / "vcs" / "__init__.py").write_text('"""Git."""\n')
    (root / "vcs" / "own.py").write_text('import subprocess\n\nimport git\n\nsubprocess.run(["git", "status"])\n')
    (root / "cache.py").write_text(
        "import subprocess\n\n\ndef blobs() -> None:\n    from git import Repo\n\n    Repo('.')\n"
        '    subprocess.run(("git", "ls-files"), check=True)\n'
    )
    (root / "loader_user.py").write_text("from pipeline.vcs.loader import git\n")
    (root / "other.py").write_text('import subprocess\n\nsubprocess.run(["docker", "git"])\nNAME = "git"\n')
    assert git_outside_owner(root, collect_imports(root), "fake.vcs") == [
        "fake/cache.py:5: `from git import Repo` (in a function): only fake.vcs calls git; add a function there "
        "and call it",
        "fake/loader_user.py:1: `from pipeline.vcs.loader import git`: only fake.vcs calls git; add a function "
        "there and call it",
        "fake/cache.py:8: `('git', 'ls-files')`: only fake.vcs runs git; add a function there and call it",
    ]


def test_checker_accepts_downward_lazy_and_type_only_imports(tmp_path: Path) -> None:
    root = tmp_path / "fake"
    (root / "low").mkdir(parents=True)
    (root / "__init__.py").write_text('"""Fake."""\n\n__version__ = "1"\n')
    (root / "errors.py").write_text("from fake import __version__\n")
    (root / "low" / "__init__.py").write_text('"""Low."""\n\nfrom fake.low.x import X\n')
    (root / "low" / "x.py").write_text("from fake.errors import __version__ as X\nfrom fake.low import y\n")
    (root / "low" / "y.py").write_text(
        "from typing import TYPE_CHECKING\n\nif TYPE_CHECKING:\n    from fake.low.x import X\n"
    )
    imports = collect_imports(root)
    layers = ((("fake.errors",), ""), (("fake.low",), ""))
    assert import_circles(imports, "fake") == []
    assert mutual_imports(imports, "fake") == []
    assert layer_violations(imports, "fake", layers) == []
    assert layout_problems(root, TOP_LEVEL) == []


def test_checker_sees_a_circle_through_a_package_init(tmp_path: Path) -> None:
    # importing fake.b.other runs fake/b/__init__.py first, which imports fake.b.m, which imports fake.a
    # back: `import fake.a` fails half-way, as `import pipeline.graph` does while graph imports config.schema
    root = tmp_path / "fake"
    (root / "b").mkdir(parents=True)
    (root / "__init__.py").write_text('"""Fake."""\n')
    (root / "a.py").write_text("from fake.b.other import O\n")
    (root / "b" / "__init__.py").write_text('"""B."""\n\nfrom fake.b.m import M\n')
    (root / "b" / "m.py").write_text("from fake.a import O as M\n")
    (root / "b" / "other.py").write_text("O = 1\n")
    assert import_circles(collect_imports(root), "fake") == [
        "import circle fake.a -> fake.b -> fake.b.m -> fake.a:\n"
        "    fake/a.py:1: `from fake.b.other import O`\n"
        "    fake/b/__init__.py:3: `from fake.b.m import M`\n"
        "    fake/b/m.py:1: `from fake.a import O as M`"
    ]
