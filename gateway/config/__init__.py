"""Configuration: YAML with positions, pydantic models, FILE:LINE:COL errors."""

from gateway.config.errors import ConfigError, ConfigIssue
from gateway.config.fields import ConfigPath, ExistingFile
from gateway.config.model import Config, config_schema, describe_driver, root_model
from gateway.config.parse import load_config, parse_config
from gateway.config.secrets import Secret

__all__ = [
    "Config",
    "ConfigError",
    "ConfigIssue",
    "ConfigPath",
    "ExistingFile",
    "Secret",
    "config_schema",
    "describe_driver",
    "load_config",
    "parse_config",
    "root_model",
]
