"""pipeline: build, tag, push and release DAGs of container images declared in pipelines.yaml."""

import sys

__version__ = "0.1.0"

# httpx imports its command-line client (rich, pygments, click) with the library unless that import
# fails, and then stubs it; pipeline never uses it, and it is a third of httpx's import time.
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
