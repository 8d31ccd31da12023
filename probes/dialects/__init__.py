"""Wire dialects, one module each; :data:`DIALECTS` maps a dialect name to its implementation."""

from __future__ import annotations

from probes.dialects.anthropic import AnthropicDialect
from probes.dialects.azure_openai import AzureOpenAIDialect
from probes.dialects.base import Dialect
from probes.dialects.bedrock_converse import BedrockConverseDialect
from probes.dialects.gemini import GeminiDialect
from probes.dialects.ollama_native import OllamaNativeDialect
from probes.dialects.openai_chat import OpenAIChatDialect
from probes.dialects.openai_responses import OpenAIResponsesDialect
from probes.dialects.replicate import ReplicateDialect

_ALL: list[Dialect] = [
    OpenAIChatDialect(),
    OpenAIResponsesDialect(),
    AzureOpenAIDialect(),
    AnthropicDialect(),
    GeminiDialect(),
    OllamaNativeDialect(),
    BedrockConverseDialect(),
    ReplicateDialect(),
]

DIALECTS: dict[str, Dialect] = {d.name: d for d in _ALL}
