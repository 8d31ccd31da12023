"""Wire dialects, one module each; :data:`DIALECTS` maps a dialect name to its implementation."""

from __future__ import annotations

from probes.dialects.base import Dialect
from probes.dialects.openai_chat import OpenAIChatDialect

DIALECTS: dict[str, Dialect] = {d.name: d for d in [OpenAIChatDialect()]}
