"""Cost of one request from its reported usage (metrics.md §5).

Price source, in order: the target's configured prices (USD per million tokens), then the
genai-prices bundled snapshot (never updated over the network at run time), then the
provider's own reported charge (OpenRouter ``usage.cost``). Unknown stays unknown: the cost is
``None`` with ``cost_source = "unpriced"``, never $0.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from datetime import datetime

import genai_prices

from probes.config import TargetConfig
from probes.dialects.base import Usage


@dataclass(frozen=True, slots=True)
class Cost:
    """A computed cost.

    Attributes:
        cost_usd: USD for the request, or None when no price is known or usage is missing.
        cost_source: ``config``, ``genai-prices <version>``, ``provider`` or ``unpriced``.
    """

    cost_usd: float | None
    cost_source: str


def _has_config_prices(target: TargetConfig) -> bool:
    return target.input_usd_per_mtok is not None and target.output_usd_per_mtok is not None


def cost_from_config(usage: Usage, target: TargetConfig) -> float:
    """Price ``usage`` with the target's configured USD-per-million-token rates.

    Cache reads and writes default to the input rate when their own rate is not configured.

    Raises:
        ValueError: when the target has no input/output price or usage lacks output tokens.
    """
    if not _has_config_prices(target) or usage.output_tokens is None:
        raise ValueError("config prices or output tokens missing")
    price_in = target.input_usd_per_mtok or 0.0
    price_read = (
        target.cache_read_usd_per_mtok if target.cache_read_usd_per_mtok is not None else price_in
    )
    price_write = (
        target.cache_write_usd_per_mtok if target.cache_write_usd_per_mtok is not None else price_in
    )
    price_out = target.output_usd_per_mtok or 0.0
    inp = usage.input_tokens or 0
    read = usage.cache_read_tokens or 0
    write = usage.cache_write_tokens or 0
    uncached = max(inp - read - write, 0)
    return (
        uncached * price_in
        + read * price_read
        + write * price_write
        + usage.output_tokens * price_out
    ) / 1_000_000


def compute_cost(
    usage: Usage,
    target: TargetConfig,
    prices_id: str | None,
    started_at: datetime,
    provider_cost_usd: float | None = None,
) -> Cost:
    """Return the cost of one request.

    Args:
        usage: normalised usage; ``input_tokens`` inclusive of cache reads and writes.
        target: the target (its price overrides and model id).
        prices_id: genai-prices provider id, or None for self-hosted servers.
        started_at: request time (UTC), for historic and time-of-day prices.
        provider_cost_usd: the provider's own reported charge, used when nothing else prices it.
    """
    if usage.output_tokens is None or usage.input_tokens is None:
        return Cost(None, "unpriced")
    if _has_config_prices(target):
        return Cost(cost_from_config(usage, target), "config")
    if prices_id is not None:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                calc = genai_prices.calc_price(
                    genai_prices.Usage(
                        input_tokens=usage.input_tokens,
                        cache_read_tokens=usage.cache_read_tokens or 0,
                        cache_write_tokens=usage.cache_write_tokens or 0,
                        output_tokens=usage.output_tokens,
                    ),
                    target.model,
                    provider_id=prices_id,
                    genai_request_timestamp=started_at,
                )
            return Cost(float(calc.total_price), f"genai-prices {genai_prices.__version__}")
        except (LookupError, ValueError):
            pass
    if provider_cost_usd is not None:
        return Cost(provider_cost_usd, "provider")
    return Cost(None, "unpriced")
