"""Known provider names: their default base URL, wire dialect and genai-prices provider id.

Adding a provider that speaks an existing dialect is one entry here; adding a wire format is
one new module in ``probes/dialects/`` plus its entry in ``probes.dialects.DIALECTS``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ProviderInfo:
    """What inferwatch knows about a provider name.

    Attributes:
        name: the name used in the config's ``provider`` key.
        dialect: key into ``probes.dialects.DIALECTS``.
        base_url: default API base URL; ``None`` means the config must give ``base_url``.
        prices_id: provider id for genai-prices, or ``None`` for self-hosted servers.
        default_key_env: the conventional API-key variable, suggested by ``check-config``.
        required_keys: target keys this provider needs besides the common ones (Azure's
            ``deployment`` and ``api_version``); other providers reject them.
    """

    name: str
    dialect: str
    base_url: str | None
    prices_id: str | None
    default_key_env: str | None = None
    required_keys: tuple[str, ...] = ()


PROVIDERS: dict[str, ProviderInfo] = {
    p.name: p
    for p in [
        ProviderInfo(
            "openai", "openai-chat", "https://api.openai.com/v1", "openai", "OPENAI_API_KEY"
        ),
        ProviderInfo(
            "groq", "openai-chat", "https://api.groq.com/openai/v1", "groq", "GROQ_API_KEY"
        ),
        ProviderInfo(
            "together", "openai-chat", "https://api.together.xyz/v1", "together", "TOGETHER_API_KEY"
        ),
        ProviderInfo(
            "fireworks",
            "openai-chat",
            "https://api.fireworks.ai/inference/v1",
            "fireworks",
            "FIREWORKS_API_KEY",
        ),
        ProviderInfo(
            "cerebras", "openai-chat", "https://api.cerebras.ai/v1", "cerebras", "CEREBRAS_API_KEY"
        ),
        ProviderInfo(
            "deepseek", "openai-chat", "https://api.deepseek.com", "deepseek", "DEEPSEEK_API_KEY"
        ),
        ProviderInfo(
            "openrouter",
            "openai-chat",
            "https://openrouter.ai/api/v1",
            "openrouter",
            "OPENROUTER_API_KEY",
        ),
        ProviderInfo(
            "mistral", "openai-chat", "https://api.mistral.ai/v1", "mistral", "MISTRAL_API_KEY"
        ),
        ProviderInfo("vllm", "openai-chat", "http://127.0.0.1:8000/v1", None),
        ProviderInfo("llama.cpp", "openai-chat", "http://127.0.0.1:8080/v1", None),
        ProviderInfo("ollama", "openai-chat", "http://127.0.0.1:11434/v1", None),
        ProviderInfo("openai-compatible", "openai-chat", None, None),
        # Native dialects, one module each in probes/dialects/.
        ProviderInfo(
            "openai-responses",
            "openai-responses",
            "https://api.openai.com/v1",
            "openai",
            "OPENAI_API_KEY",
        ),
        # Resource-specific host: https://{resource}.openai.azure.com
        ProviderInfo(
            "azure",
            "azure-openai",
            None,
            "azure",
            "AZURE_OPENAI_API_KEY",
            required_keys=("deployment", "api_version"),
        ),
        ProviderInfo(
            "anthropic",
            "anthropic",
            "https://api.anthropic.com/v1",
            "anthropic",
            "ANTHROPIC_API_KEY",
        ),
        ProviderInfo(
            "gemini",
            "gemini",
            "https://generativelanguage.googleapis.com/v1beta",
            "google",
            "GEMINI_API_KEY",
        ),
        ProviderInfo("ollama-native", "ollama-native", "http://127.0.0.1:11434", None),
        # Three requests per probe (create, stream, result); model = "owner/name",
        # "owner/name:version" or "deployments/owner/name". Priced per token only with
        # configured rates (genai-prices has no Replicate prices).
        ProviderInfo(
            "replicate",
            "replicate",
            "https://api.replicate.com/v1",
            None,
            "REPLICATE_API_TOKEN",
        ),
        # Region in the host; set base_url for another region. Key: a Bedrock API key.
        ProviderInfo(
            "bedrock",
            "bedrock-converse",
            "https://bedrock-runtime.us-east-1.amazonaws.com",
            "aws",
            "AWS_BEARER_TOKEN_BEDROCK",
        ),
    ]
}


#: ``gen_ai.provider.name`` (OpenTelemetry GenAI semantic conventions, the
#: ``gen_ai_provider_name`` label of /metrics) of each provider name. Well-known OTel values
#: where one exists (openai, anthropic, azure.ai.openai, gcp.gemini, aws.bedrock, groq,
#: deepseek, mistral_ai); otherwise the provider's own lower-case name, as the convention asks
#: for providers it does not list. docs/prometheus-metrics.md prints this table; a test keeps
#: it complete.
OTEL_PROVIDER_NAMES: dict[str, str] = {
    "openai": "openai",
    "openai-responses": "openai",
    "azure": "azure.ai.openai",
    "anthropic": "anthropic",
    "gemini": "gcp.gemini",
    "bedrock": "aws.bedrock",
    "groq": "groq",
    "deepseek": "deepseek",
    "mistral": "mistral_ai",
    "together": "together_ai",
    "fireworks": "fireworks",
    "cerebras": "cerebras",
    "openrouter": "openrouter",
    "vllm": "vllm",
    "llama.cpp": "llama_cpp",
    "ollama": "ollama",
    "ollama-native": "ollama",
    "openai-compatible": "openai_compatible",
    "replicate": "replicate",
}


def otel_provider_name(provider: str) -> str:
    """The ``gen_ai.provider.name`` of a provider name (itself, lower-cased, when unmapped)."""
    return OTEL_PROVIDER_NAMES.get(provider, provider.lower().replace("-", "_"))
