"""pipeline: build, tag, push and release DAGs of container images declared in pipelines.yaml."""

__version__ = "0.1.0"
