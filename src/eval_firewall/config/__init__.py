"""`.eval-firewall.yml`: parsed and validated once into typed objects.

Every error names the file, the line of the offending key and the key itself. The models live in
:mod:`.model` (the audits' sections in :mod:`.audits`), loading and validation in :mod:`.load`;
their names are importable from here.
"""

from __future__ import annotations

from ..safeio.yaml import (  # the bounded YAML reader's home is safeio.yaml; kept importable here
    MAX_CONFIG_BYTES,
    MAX_CONFIG_YAML_NODES,
    KeyLines,
    compose_yaml,
    construct_yaml,
    load_yaml,
    yaml_error,
    yaml_nodes,
)
from .audits import (
    AuditsConfig,
    ContainmentConfig,
    DisagreementConfig,
    DistributionConfig,
    ExactConfig,
    InvarianceConfig,
    NearDuplicateConfig,
    OverlapConfig,
    ProvenanceConfig,
    SemanticConfig,
    WindowsConfig,
)
from .base import CONFIG_FILE, DEFAULT_MODEL, HUB_ID, FailOn, SeverityName, SeverityOrOff
from .load import (
    Location,
    check_severity_rules,
    find_config,
    load_config,
    parse_config,
    resolve_paths,
    resolve_remote,
    with_model_path,
)
from .model import Config, DatasetConfig, IndexConfig, LimitsConfig, ProvenanceFields, WaiverEntry

__all__ = [
    "CONFIG_FILE", "DEFAULT_MODEL", "HUB_ID", "MAX_CONFIG_BYTES", "MAX_CONFIG_YAML_NODES",
    "AuditsConfig", "Config", "ContainmentConfig", "DatasetConfig", "DisagreementConfig",
    "DistributionConfig", "ExactConfig", "FailOn", "InvarianceConfig", "IndexConfig", "KeyLines", "LimitsConfig",
    "Location", "NearDuplicateConfig", "OverlapConfig", "ProvenanceConfig", "ProvenanceFields",
    "SemanticConfig", "SeverityName", "SeverityOrOff", "WaiverEntry", "WindowsConfig",
    "check_severity_rules", "compose_yaml", "construct_yaml", "find_config", "load_config",
    "load_yaml", "parse_config", "resolve_paths", "resolve_remote", "with_model_path",
    "yaml_error", "yaml_nodes",
]
