"""The building blocks of the config's models: the strict base model, the severity types and
the default model's name."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict

CONFIG_FILE = ".eval-firewall.yml"
DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
# A Hugging Face hub id: "name" or "org/name" (never a path: see SemanticConfig.model).
HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}(/[A-Za-z0-9][A-Za-z0-9._-]{0,95})?$")

SeverityName = Literal["error", "warning", "notice"]


def _off(value: Any) -> Any:
    """YAML 1.1 reads an unquoted ``off`` as false: take it to mean "off"."""
    return "off" if value is False else value


SeverityOrOff = Annotated[Literal["error", "warning", "notice", "off"], BeforeValidator(_off)]
FailOn = Literal["error", "warning", "notice", "never"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
