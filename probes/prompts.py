"""Long prompts made locally: deterministic text, sized by what the provider reports.

Two checks need prompts much longer than the canary: the prompt-caching check (a stable prefix
of at least the provider's caching minimum) and the long-prompt workloads (1k, 10k input
tokens, to measure prefill). Neither ships a tokenizer: the size that counts is the
``input_tokens`` the provider reports, so :class:`PromptSizer` starts from a guess and corrects
itself from each reported size (docs/questions.md, "Long-prompt workloads").

The text is ordinary English-like prose from a fixed vocabulary and a seeded generator: the
same ``(n_chars, seed)`` always gives the same text (a cache check's two requests share their
prefix byte for byte), and different seeds give different text from the first word on (a
workload's runs never hit a prefix cache).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

_WORDS = (
    "harbour",
    "tide",
    "lantern",
    "gull",
    "anchor",
    "rope",
    "sail",
    "keel",
    "mast",
    "deck",
    "chart",
    "compass",
    "pilot",
    "ferry",
    "quay",
    "storm",
    "breeze",
    "current",
    "shoal",
    "reef",
    "beacon",
    "lighthouse",
    "channel",
    "estuary",
    "dune",
    "pebble",
    "driftwood",
    "salt",
    "spray",
    "fog",
    "mist",
    "dawn",
    "dusk",
    "evening",
    "morning",
    "island",
    "cove",
    "bay",
    "inlet",
    "cliff",
    "meadow",
    "orchard",
    "river",
    "bridge",
    "mill",
    "barn",
    "cart",
    "lane",
    "hedge",
    "village",
    "market",
    "baker",
    "weaver",
    "cobbler",
    "smith",
    "miller",
    "farmer",
    "shepherd",
    "orchardist",
    "carpenter",
    "mason",
    "clerk",
    "ledger",
    "account",
    "invoice",
    "parcel",
    "letter",
    "stamp",
    "route",
    "station",
    "platform",
    "signal",
    "timetable",
    "carriage",
    "engine",
    "journey",
    "traveller",
    "season",
    "winter",
    "spring",
    "summer",
    "autumn",
    "harvest",
    "frost",
    "thaw",
    "blossom",
    "grain",
    "copper",
    "silver",
    "amber",
    "violet",
    "crimson",
    "ochre",
    "slate",
    "granite",
    "marble",
    "timber",
    "linen",
    "wool",
    "cotton",
    "quietly",
    "slowly",
    "gently",
    "briskly",
    "carefully",
    "steadily",
    "warmly",
    "brightly",
    "softly",
    "early",
    "late",
    "north",
    "south",
    "east",
    "west",
    "upper",
    "lower",
    "inner",
    "outer",
    "distant",
    "nearby",
    "ancient",
    "modern",
)
_JOINERS = ("and", "while", "because", "although", "after", "before", "where", "until")

#: Characters per token for English prose under the common BPE tokenizers (o200k, cl100k,
#: Llama 3): the starting guess before the provider has reported a size.
DEFAULT_CHARS_PER_TOKEN = 4.0


def stable_text(n_chars: int, seed: int | str) -> str:
    """Deterministic prose of at most ``n_chars`` characters (and at least ``n_chars − 16``).

    Args:
        n_chars: wanted length in characters (>= 1).
        seed: selects the text; equal seeds give equal texts.

    Raises:
        ValueError: when ``n_chars`` is below 1.
    """
    if n_chars < 1:
        raise ValueError(f"n_chars must be >= 1, got {n_chars}")
    rng = random.Random(f"inferwatch-prompt:{seed}")
    parts: list[str] = []
    size = 0
    sentence = 0
    while size < n_chars:
        words = [rng.choice(_WORDS) for _ in range(rng.randint(5, 11))]
        words.insert(rng.randint(2, len(words) - 2), rng.choice(_JOINERS))
        words.append(str(rng.randint(2, 999)))
        sentence += 1
        text = " ".join(words).capitalize() + ". "
        if sentence % 6 == 0:
            text += "\n"
        parts.append(text)
        size += len(text)
    return "".join(parts)[:n_chars].rstrip()


@dataclass
class PromptSizer:
    """Finds the text length that makes the provider report ``target_tokens`` input tokens.

    The provider's count is modelled as ``overhead + chars / chars_per_token`` (the overhead is
    the chat template and any fixed instruction around our text). The first guess uses
    :data:`DEFAULT_CHARS_PER_TOKEN` and no overhead; each reported size refits the model
    (from the last two observations at different lengths, else the ratio alone), so it lands
    within a few percent after one or two probes and follows a tokenizer change.

    Attributes:
        target_tokens: the wanted reported input size, tokens.
        chars_per_token: current estimate.
        overhead_tokens: current estimate of the tokens outside our text.
    """

    target_tokens: int
    chars_per_token: float = DEFAULT_CHARS_PER_TOKEN
    overhead_tokens: float = 0.0
    _seen: list[tuple[int, int]] = field(default_factory=list)

    def chars(self) -> int:
        """Characters of text to send next."""
        text_tokens = max(1.0, self.target_tokens - self.overhead_tokens)
        return max(1, round(text_tokens * self.chars_per_token))

    def observe(self, sent_chars: int, reported_tokens: int | None) -> None:
        """Learn from one request: ``sent_chars`` of our text were reported as
        ``reported_tokens`` input tokens (None or non-positive reports are ignored)."""
        if reported_tokens is None or reported_tokens <= 0 or sent_chars <= 0:
            return
        self._seen.append((sent_chars, reported_tokens))
        self._seen = self._seen[-4:]
        pairs = {c: t for c, t in self._seen}
        if len(pairs) >= 2:
            (c1, t1), (c2, t2) = sorted(pairs.items())[-2:]
            slope = (t2 - t1) / (c2 - c1)
            if slope > 0:
                overhead = t2 - slope * c2
                if 0 <= overhead < t2:
                    self.chars_per_token = 1.0 / slope
                    self.overhead_tokens = overhead
                    return
        text_tokens = reported_tokens - self.overhead_tokens
        if text_tokens > 0:
            self.chars_per_token = sent_chars / text_tokens

    def on_target(self, reported_tokens: int | None, tolerance: float) -> bool:
        """True when a reported size is within ``tolerance`` (relative) of the target."""
        if reported_tokens is None:
            return False
        return abs(reported_tokens - self.target_tokens) <= tolerance * self.target_tokens
