"""Long-prompt workloads: the deterministic text, the sizer that follows the reported input
size, and TTFT at a feature's size (nearest measured, interpolated between sizes)."""

from __future__ import annotations

import math

import pytest

from probes.prompts import PromptSizer, stable_text
from store.prefill import SizePoint, size_points, ttft_at_size


def test_stable_text_is_deterministic_and_seed_specific() -> None:
    a = stable_text(3000, "t:1k:0")
    assert a == stable_text(3000, "t:1k:0")
    assert 3000 - 16 <= len(a) <= 3000
    b = stable_text(3000, "t:1k:1")
    assert a.split()[0] != b.split()[0] or a[:30] != b[:30]
    assert not any(ch.isdigit() for ch in a[:8])  # no timestamp or counter up front
    with pytest.raises(ValueError):
        stable_text(0, 1)


@pytest.mark.parametrize(
    ("chars_per_token", "overhead"),
    [(4.0, 0), (1.25, 9), (5.4, 7), (3.1, 40)],
    ids=["bpe", "byte-level", "coarse", "long-template"],
)
def test_sizer_lands_on_the_reported_target(chars_per_token: float, overhead: int) -> None:
    def reported(text_chars: int) -> int:
        # A provider's count: its template plus its tokenizer's view of our text.
        return overhead + math.ceil(text_chars / chars_per_token)

    sizer = PromptSizer(10_000)
    sizes = []
    for _ in range(3):
        n = sizer.chars()
        sizes.append(reported(n))
        sizer.observe(n, sizes[-1])
    assert abs(sizes[-1] - 10_000) <= 0.01 * 10_000, sizes
    assert sizer.on_target(sizes[-1], 0.01)
    assert not sizer.on_target(None, 0.5)


def test_sizer_ignores_reports_it_cannot_learn_from() -> None:
    sizer = PromptSizer(1000)
    before = sizer.chars()
    sizer.observe(4000, None)
    sizer.observe(4000, 0)
    sizer.observe(0, 500)
    assert sizer.chars() == before == 4000


CANARY = SizePoint("canary", 20, 300.0, 420.0, 40)
ONE_K = SizePoint("1k", 1000, 500.0, 700.0, 12)
TEN_K = SizePoint("10k", 10_000, 2300.0, 3100.0, 12)


def test_ttft_interpolated_between_sizes_hand_computed() -> None:
    sized = ttft_at_size([TEN_K, CANARY, ONE_K], 5000)
    assert sized is not None and sized.method == "interpolated"
    # 500 + (5000 − 1000) / (10000 − 1000) × (2300 − 500) = 500 + 4/9 × 1800 = 1300 ms
    assert sized.ttft_p50_ms == pytest.approx(1300.0)
    # 700 + 4/9 × 2400 = 1766.67 ms
    assert sized.ttft_p99_ms == pytest.approx(700 + 4 / 9 * 2400)
    assert sized.used == (ONE_K, TEN_K)
    assert sized.note == "interpolated between 1,000 (1k) and 10,000 (10k) input tokens"


def test_ttft_measured_at_the_same_size_and_nearest_at_the_ends() -> None:
    same = ttft_at_size([CANARY, ONE_K, TEN_K], 1050)  # within 10 % of 1,000
    assert same is not None and same.method == "measured" and same.ttft_p50_ms == 500.0
    assert same.note == "measured at 1,000 (1k) input tokens"
    beyond = ttft_at_size([CANARY, ONE_K, TEN_K], 20_000)
    assert beyond is not None and beyond.method == "largest_measured"
    assert (beyond.ttft_p50_ms, beyond.ttft_p99_ms) == (2300.0, 3100.0)  # not extrapolated
    assert "the feature's 20,000 will take longer" in beyond.note
    small = ttft_at_size([ONE_K, TEN_K], 100)
    assert small is not None and small.method == "smallest_measured"
    assert small.ttft_p50_ms == 500.0
    only_canary = ttft_at_size([CANARY], 5000)
    assert only_canary is not None and only_canary.used == (CANARY,)
    assert ttft_at_size([], 5000) is None


def test_size_points_from_probe_rows() -> None:
    def row(kind: str, ttft: float | None, size: int | None, **kw: object) -> dict[str, object]:
        return {"kind": kind, "ttft_ms": ttft, "input_tokens": size, "status": "ok"} | kw

    rows = [
        row("canary", 300, 20),
        row("canary", 320, 20),
        row("canary", 900, 20, cold=1),  # a cold start is not prefill
        row("workload", 500, 980, workload="1k"),
        row("workload", 560, 1010, workload="1k"),
        row("workload", 540, 1002, workload="1k"),
        row("workload", None, 1000, workload="1k", status="error"),
        row("cache_check", 50, 4200),  # a cache hit is not prefill either
        row("cold_start", 5000, 20),
    ]
    points = size_points(rows)
    assert [p.label for p in points] == ["canary", "1k"]
    canary, one_k = points
    assert (canary.input_tokens, canary.ttft_p50_ms, canary.samples) == (20, 310.0, 2)
    assert one_k.input_tokens == 1002  # median of 980, 1002, 1010
    assert one_k.ttft_p50_ms == 540.0
    # P99 of 500, 540, 560 by linear interpolation: 540 + 0.98 × 20 = 559.6
    assert one_k.ttft_p99_ms == pytest.approx(559.6)
