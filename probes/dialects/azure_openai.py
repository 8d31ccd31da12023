"""Azure OpenAI Chat Completions streaming (classic deployment URLs).

Source: Azure OpenAI REST reference and MicrosoftDocs/azure-ai-docs
``articles/ai-foundry/openai/concepts/content-streaming.md``; openai-python ``lib/azure.py``;
docs/dialects.md. The request goes to
``{base_url}/openai/deployments/{deployment}/chat/completions?api-version={api_version}`` with
the key in an ``api-key`` header (not ``Authorization: Bearer``). The stream is OpenAI
``chat.completion.chunk`` events ending in ``data: [DONE]``, read by the OpenAI chat parser
(reused, not copied), plus Azure's own chunks:

* a prompt-annotation chunk first (``choices: []`` + ``prompt_filter_results``, empty ``id``);
* asynchronous-filter annotation chunks whose choice has no ``delta`` key
  (``content_filter_results`` / ``content_filter_offsets``), possibly after the finish chunk;
* ``finish_reason: "content_filter"`` when the filter blocked the output mid-stream (status
  stays 200; the tokens are still billed).

Annotation chunks carry no token and are skipped. A ``content_filter`` finish makes the probe's
outcome ``content_filter`` (a policy stop, not provider downtime), reported once the stream's
``[DONE]`` has been read so the usage chunk that may follow it is still recorded (a billed
failure is priced). A prompt the filter blocked before any output (400 with code
``content_filter``) is ``safety_block``.
"""

from __future__ import annotations

from urllib.parse import quote

from probes.config import ResolvedTarget
from probes.dialects.base import Framing, HttpRequest, ProviderError
from probes.dialects.openai_chat import OpenAIChatDialect, OpenAIChatParser
from probes.dialects.openai_responses import is_reasoning_model

#: ``finish_reason`` Azure sends when its content filter stopped the output.
CONTENT_FILTER = "content_filter"


class AzureOpenAIParser(OpenAIChatParser):
    """The OpenAI chat parser: Azure's annotation chunks carry no token (no ``delta``, or
    ``choices: []``) and its ``content_filter`` finish is the chat parser's ``stop_kind``."""


class AzureOpenAIDialect:
    """Dialect for Azure OpenAI deployments (``provider = "azure"``)."""

    name = "azure-openai"
    framing: Framing = "sse"

    def build_request(self, target: ResolvedTarget, api_key: str | None) -> HttpRequest:
        """Build the canary: the OpenAI chat body at the deployment URL, key in ``api-key``.

        For reasoning models (``model`` of the o-series or gpt-5 families) the budget is sent
        as ``max_completion_tokens`` and ``temperature`` is left out: those deployments reject
        ``max_tokens`` and non-default sampling with a 400.

        Raises:
            ValueError: when the target has no ``deployment`` or ``api_version`` (the config
                validator already requires both for provider ``azure``).
        """
        config = target.config
        if not config.deployment or not config.api_version:
            raise ValueError("Azure OpenAI targets need deployment and api_version")
        chat = OpenAIChatDialect().build_request(target, None)
        body = dict(chat.json)
        if is_reasoning_model(config.model):
            body["max_completion_tokens"] = body.pop("max_tokens")
            body.pop("temperature", None)
        headers = dict(chat.headers)
        if api_key:
            headers["api-key"] = api_key
        url = (
            f"{target.base_url}/openai/deployments/{quote(config.deployment, safe='')}"
            f"/chat/completions?api-version={quote(config.api_version, safe='')}"
        )
        return HttpRequest("POST", url, headers, body)

    def new_parser(self) -> AzureOpenAIParser:
        """Return a fresh stream parser."""
        return AzureOpenAIParser()

    def parse_error_body(self, body: str) -> ProviderError | None:
        """Read Azure's ``{"error": {...}}`` bodies (``code`` may be the string ``"429"``)."""
        return OpenAIChatDialect().parse_error_body(body)
