"""Cost of one request from its reported usage, bucket by bucket (docs/metrics.md §5).

The four buckets of docs/metrics.md §4 are priced separately, in USD per million tokens::

    uncached_input = input_tokens − cache_read_tokens − cache_write_tokens
    cost = (uncached_input × input + cache_read × cache_read_rate
            + cache_write × cache_write_rate + output_tokens × output) / 1e6

``input_tokens`` is the inclusive total and ``output_tokens`` includes reasoning, whatever the
provider's own convention (see :mod:`probes.usage_conventions`). Reasoning gets its own rate
only for a model that has one in the price data.

Where each bucket's rate comes from (a partial override merges with the snapshot):

1. A rate configured on the target (``input_usd_per_mtok``, ``cache_read_usd_per_mtok``,
   ``cache_write_usd_per_mtok``, ``output_usd_per_mtok``) always wins for its bucket; it is
   flat (a configured rate has no long-context tier).
2. Every other bucket takes the genai-prices **bundled snapshot**'s rate for the model
   (historic, time-of-day and long-context tiers included). The snapshot is never updated over
   the network: :class:`genai_prices.UpdatePrices` is never started.
3. When the snapshot has no rate for a cache bucket (or does not know the model), cache reads
   and writes are charged at the input rate: a guess must never make the bill look smaller.
   Without the snapshot, input and output must both be configured.
4. When no rate can be found, the cost is unknown: ``None`` with ``cost_source =
   "unpriced"``, shown as "price unknown", never $0.

When the provider reports what it charged (OpenRouter ``usage.cost``), that charge is the cost
(``cost_source = "provider"``): it is a measurement, the price table an estimate. The estimate
is kept beside it and a disagreement is flagged (:func:`cost_mismatch`).

``cost_source`` says which of these priced the request: ``config`` (every rate from the
config), ``genai-prices <version>`` (every rate from the snapshot), ``config+genai-prices
<version>`` (a partial override merged with the snapshot), ``provider`` or ``unpriced``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

import genai_prices
from genai_prices.types import ModelPrice, TieredPrices

from probes.config import TargetConfig
from probes.dialects.base import Usage

#: A computed cost disagrees with the provider's own charge when the difference is above
#: this share of the provider's charge ...
MISMATCH_RELATIVE = 0.05
#: ... and above this many USD (sub-micro-dollar differences are rounding, not disagreement).
MISMATCH_MIN_USD = 0.000001

#: Largest plausible price: above 0.001 USD per token (1000 USD per million) is a unit error.
MAX_PLAUSIBLE_USD_PER_MTOK = 1000.0

PriceUnit = Literal["per_mtok", "per_ktok", "per_token"]
_TOKENS_PER_UNIT: dict[str, int] = {"per_mtok": 1_000_000, "per_ktok": 1_000, "per_token": 1}

#: Bucket name -> (config key, genai-prices ModelPrice key).
_BUCKET_KEYS: dict[str, tuple[str, str]] = {
    "input": ("input_usd_per_mtok", "input_mtok"),
    "cache_read": ("cache_read_usd_per_mtok", "cache_read_mtok"),
    "cache_write": ("cache_write_usd_per_mtok", "cache_write_mtok"),
    "output": ("output_usd_per_mtok", "output_mtok"),
}
_MTOK = Decimal(1_000_000)


def usd_per_mtok(value: float, unit: PriceUnit) -> float:
    """Normalise a price to USD per million tokens, once, when it is loaded (docs/field-cases.md
    FC-11).

    Args:
        value: the price as written, USD per ``unit``.
        unit: ``per_mtok`` (per million tokens), ``per_ktok`` (per thousand) or ``per_token``.

    Returns:
        USD per million tokens (``0.0025`` per 1K -> ``2.5``).

    Raises:
        ValueError: for a negative price, an unknown unit, or a result above
            :data:`MAX_PLAUSIBLE_USD_PER_MTOK` (more than 0.001 USD per token: a unit error).
    """
    if unit not in _TOKENS_PER_UNIT:
        raise ValueError(f"unknown price unit {unit!r}; use one of {', '.join(_TOKENS_PER_UNIT)}")
    if value < 0:
        raise ValueError(f"price {value} is negative")
    per_m = float(Decimal(repr(value)) * _MTOK / _TOKENS_PER_UNIT[unit])
    if per_m > MAX_PLAUSIBLE_USD_PER_MTOK:
        raise ValueError(
            f"price {value} USD {unit} is {per_m:g} USD per million tokens, above "
            f"{MAX_PLAUSIBLE_USD_PER_MTOK:g}: check the unit"
        )
    return per_m


@dataclass(frozen=True, slots=True)
class Rates:
    """The flat rates that priced one request, USD per million tokens (tiers already chosen).

    Attributes:
        input: uncached input tokens.
        cache_read: input tokens read from the prompt cache.
        cache_write: input tokens written to the prompt cache.
        output: output tokens (reasoning included).
        reasoning: the model's own reasoning rate, or None when reasoning is billed as output.
        source: ``config``, ``genai-prices <version>`` or ``config+genai-prices <version>``.
    """

    input: float
    cache_read: float
    cache_write: float
    output: float
    reasoning: float | None = None
    source: str = "config"


@dataclass(frozen=True, slots=True)
class BucketCosts:
    """One request's cost split by token bucket, USD.

    Attributes:
        uncached_input_usd: uncached input tokens at the input rate.
        cache_read_usd: cache reads at the cache-read rate.
        cache_write_usd: cache writes at the cache-write rate.
        output_usd: output tokens (reasoning included, at its own rate when it has one).
        other_usd: what the price data charges beyond the four buckets (e.g. a per-request
            fee); ``total − sum of the buckets``, normally 0.
    """

    uncached_input_usd: float
    cache_read_usd: float
    cache_write_usd: float
    output_usd: float
    other_usd: float = 0.0


@dataclass(frozen=True, slots=True)
class Cost:
    """A computed cost.

    Attributes:
        cost_usd: USD for the request: the provider's charge when it reported one, else the
            price-table estimate; None when neither is known.
        cost_source: ``config``, ``genai-prices <version>``, ``config+genai-prices <version>``,
            ``provider`` or ``unpriced``.
        rates: the rates used (None for ``provider`` and ``unpriced``).
        buckets: the cost per bucket (None for ``provider`` and ``unpriced``).
        provider_cost_usd: the provider's own charge, when it reported one.
        mismatch: True when the price-table estimate and ``provider_cost_usd`` disagree (see
            :func:`cost_mismatch`); None when there is nothing to compare.
        estimate_usd: the price-table estimate (config and/or genai-prices), whatever
            ``cost_usd`` is; None when no price is known or usage is missing.
    """

    cost_usd: float | None
    cost_source: str
    rates: Rates | None = None
    buckets: BucketCosts | None = None
    provider_cost_usd: float | None = None
    mismatch: bool | None = None
    estimate_usd: float | None = None


def cost_mismatch(computed_usd: float | None, provider_usd: float | None) -> bool | None:
    """Whether a computed cost disagrees with the provider's own charge.

    The rule: ``|computed − provider| > MISMATCH_MIN_USD`` and ``> MISMATCH_RELATIVE ×
    provider`` (relative to the provider's charge, i.e. the bill; a provider charge of 0 with a
    computed cost above the absolute floor is a mismatch).

    Returns:
        True or False, or None when either value is missing.
    """
    if computed_usd is None or provider_usd is None:
        return None
    diff = abs(computed_usd - provider_usd)
    if diff <= MISMATCH_MIN_USD:
        return False
    if provider_usd == 0:
        return True
    return diff / abs(provider_usd) > MISMATCH_RELATIVE


def _counts(usage: Usage) -> tuple[int, int, int, int, int]:
    """(input, cache_read, cache_write, output, reasoning) with missing buckets as 0.

    A report whose cache buckets exceed its input total (an exclusive count passed off as
    inclusive) raises the input total to their sum, so no bucket goes negative.
    """
    read = usage.cache_read_tokens or 0
    write = usage.cache_write_tokens or 0
    inp = max(usage.input_tokens or 0, read + write)
    return inp, read, write, usage.output_tokens or 0, usage.reasoning_tokens or 0


def bucket_costs(usage: Usage, rates: Rates) -> BucketCosts:
    """Price each token bucket of ``usage`` at flat ``rates`` (the formula of docs/metrics.md §5).

    Args:
        usage: normalised usage; ``input_tokens`` inclusive of cache reads and writes, missing
            counts read as 0.
        rates: USD per million tokens.

    Returns:
        USD per bucket, computed in decimal so ``12 × 2.5 + 5 × 10`` per million is exactly
        0.00008 (FC-11).
    """
    inp, read, write, out, reasoning = _counts(usage)

    def usd(tokens: int, rate: float) -> Decimal:
        return Decimal(tokens) * Decimal(repr(rate)) / _MTOK

    if rates.reasoning is not None and 0 < reasoning <= out:
        output = usd(out - reasoning, rates.output) + usd(reasoning, rates.reasoning)
    else:
        output = usd(out, rates.output)
    return BucketCosts(
        uncached_input_usd=float(usd(inp - read - write, rates.input)),
        cache_read_usd=float(usd(read, rates.cache_read)),
        cache_write_usd=float(usd(write, rates.cache_write)),
        output_usd=float(output),
    )


def _total(buckets: BucketCosts) -> float:
    return float(
        sum(
            (
                Decimal(repr(v))
                for v in (
                    buckets.uncached_input_usd,
                    buckets.cache_read_usd,
                    buckets.cache_write_usd,
                    buckets.output_usd,
                    buckets.other_usd,
                )
            ),
            Decimal(0),
        )
    )


def configured_rates(target: TargetConfig) -> dict[str, float]:
    """The target's configured rates by bucket (``input``, ``cache_read``, ``cache_write``,
    ``output``), USD per million tokens; buckets without a configured rate are absent."""
    out: dict[str, float] = {}
    for bucket, (key, _) in _BUCKET_KEYS.items():
        value = getattr(target, key)
        if value is not None:
            out[bucket] = float(value)
    return out


def snapshot_version() -> str:
    """The installed genai-prices version, whose bundled snapshot prices requests."""
    return str(genai_prices.__version__)


def _flat(price: Any, total_input: int) -> float | None:
    """A ModelPrice value as a flat rate for this request: the tier chosen by the inclusive
    input total, as genai-prices does (a tier applies when the total is above its start)."""
    if price is None:
        return None
    if isinstance(price, TieredPrices):
        chosen = price.base
        for tier in reversed(price.tiers):
            if total_input > tier.start:
                chosen = tier.price
                break
        return float(chosen)
    return float(price)


def _genai_usage(usage: Usage) -> Any:
    inp, read, write, out, reasoning = _counts(usage)
    counts: dict[str, int] = {
        "input_tokens": inp,
        "cache_read_tokens": read,
        "cache_write_tokens": write,
        "output_tokens": out,
    }
    if 0 < reasoning <= out:  # third-party hosts may report reasoning > output (docs/metrics.md §4)
        counts["output_reasoning_tokens"] = reasoning
    return genai_prices.Usage(**counts)


def price_usage(
    usage: Usage,
    target: TargetConfig,
    prices_id: str | None,
    when: datetime | None,
    *,
    price_context: dict[str, str] | None = None,
) -> Cost | None:
    """Price ``usage`` from configured rates merged over the genai-prices snapshot.

    Args:
        usage: normalised usage (inclusive input); missing counts read as 0.
        target: the target: its model id and configured rates.
        prices_id: genai-prices provider id, or None for self-hosted servers (snapshot unused).
        when: request time (UTC) for historic and time-of-day prices; None means now.
        price_context: genai-prices variant selectors (e.g. ``{"service_tier": "flex"}``).

    Returns:
        The cost with its rates and buckets, or None when no rate is known for the model (an
        unknown model without input and output configured).
    """
    conf = configured_rates(target)
    if len(conf) == len(_BUCKET_KEYS):
        rates = Rates(conf["input"], conf["cache_read"], conf["cache_write"], conf["output"])
        buckets = bucket_costs(usage, rates)
        return Cost(_total(buckets), "config", rates, buckets)

    calc = None
    if prices_id is not None:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                calc = genai_prices.calc_price(
                    _genai_usage(usage),
                    target.model,
                    provider_id=prices_id,
                    genai_request_timestamp=when,
                    price_context=price_context,
                )
        except (LookupError, ValueError):
            calc = None

    if calc is None:
        if "input" not in conf or "output" not in conf:
            return None
        rates = Rates(
            input=conf["input"],
            cache_read=conf.get("cache_read", conf["input"]),
            cache_write=conf.get("cache_write", conf["input"]),
            output=conf["output"],
        )
        buckets = bucket_costs(usage, rates)
        return Cost(_total(buckets), "config", rates, buckets)

    version = f"genai-prices {snapshot_version()}"
    model_price = calc.model_price
    total = Decimal(calc.total_price)
    source = version
    if conf:
        values = {k: v for k, v in vars(model_price).items() if not k.startswith("_")}
        for bucket, rate in conf.items():
            values[_BUCKET_KEYS[bucket][1]] = Decimal(repr(rate))
        model_price = ModelPrice(**values)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            total = Decimal(model_price.calc_price(_genai_usage(usage))["total_price"])
        source = f"config+{version}"
    inp = _counts(usage)[0]
    input_rate = _flat(getattr(model_price, "input_mtok", None), inp) or 0.0
    read_rate = _flat(getattr(model_price, "cache_read_mtok", None), inp)
    write_rate = _flat(getattr(model_price, "cache_write_mtok", None), inp)
    rates = Rates(
        input=input_rate,
        cache_read=input_rate if read_rate is None else read_rate,
        cache_write=input_rate if write_rate is None else write_rate,
        output=_flat(getattr(model_price, "output_mtok", None), inp) or 0.0,
        reasoning=_flat(getattr(model_price, "output_reasoning_mtok", None), inp),
        source=source,
    )
    buckets = bucket_costs(usage, rates)
    other = float(total - Decimal(repr(_total(buckets))))
    buckets = replace(buckets, other_usd=0.0 if abs(other) < 1e-15 else other)
    return Cost(float(total), source, rates, buckets)


def cost_from_config(usage: Usage, target: TargetConfig) -> float:
    """Price ``usage`` with the target's configured rates only (no snapshot).

    Cache reads and writes default to the input rate when their own rate is not configured.

    Raises:
        ValueError: when the target has no input/output price or usage lacks output tokens.
    """
    conf = configured_rates(target)
    if "input" not in conf or "output" not in conf or usage.output_tokens is None:
        raise ValueError("config prices or output tokens missing")
    cost = price_usage(usage, target, None, None)
    assert cost is not None and cost.cost_usd is not None
    return cost.cost_usd


def compute_cost(
    usage: Usage,
    target: TargetConfig,
    prices_id: str | None,
    started_at: datetime,
    provider_cost_usd: float | None = None,
) -> Cost:
    """Return the cost of one request, and whether it agrees with the provider's charge.

    Args:
        usage: normalised usage; ``input_tokens`` inclusive of cache reads and writes.
        target: the target (its price overrides and model id).
        prices_id: genai-prices provider id, or None for self-hosted servers.
        started_at: request time (UTC), for historic and time-of-day prices.
        provider_cost_usd: the provider's own reported charge (OpenRouter ``usage.cost``):
            when present it is the cost, and the price-table estimate is compared with it.

    Returns:
        A :class:`Cost`. ``cost_usd`` is the provider's charge when reported, else the
        estimate; None (``unpriced``) when neither is known, never 0 for "unknown". The estimate
        needs input and output tokens.
    """
    priced = None
    if usage.output_tokens is not None and usage.input_tokens is not None:
        priced = price_usage(usage, target, prices_id, started_at)
    estimate = priced.cost_usd if priced is not None else None
    if provider_cost_usd is not None:
        return Cost(
            provider_cost_usd,
            "provider",
            rates=priced.rates if priced else None,
            buckets=priced.buckets if priced else None,
            provider_cost_usd=provider_cost_usd,
            mismatch=cost_mismatch(estimate, provider_cost_usd),
            estimate_usd=estimate,
        )
    if priced is not None:
        return replace(priced, estimate_usd=estimate)
    return Cost(None, "unpriced")
