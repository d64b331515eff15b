"""Loading and validating pipelines.yaml: schema, YAML with positions, templates."""

from pipeline.config.loader import LoadedConfig, load_config

__all__ = ["LoadedConfig", "load_config"]
