"""Scoring regime answers against the simulator's ground truth, transitions included.

- **Lag** of a switch to regime R: how many candles of R had closed when the answer first
  named R and then kept it for `HOLD` candles (or to the stretch's end, if sooner). An
  answer that never settles on R within the stretch counts as the stretch's length + 1.
- **Steady-state accuracy**: the share of right answers from the `GRACE + 1`th candle of
  each stretch on (the first `GRACE` candles belong to the lag).
- **Flip-flop**: an answer that changes and changes back within `FLIP` candles.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

HOLD = 10
GRACE = 20
FLIP = 5
NAMES = ("TRENDING", "CHOPPY", "VOLATILE")
BUCKETS = ((1, 5), (6, 10), (11, 15), (16, 20), (21, 30), (31, 40), (41, None))

Pair = tuple[str, str]


def p90(lags: Sequence[int]) -> int:
    """The 90th percentile as a lag that occurred (nearest rank, rounded up)."""
    return int(np.percentile(lags, 90, method="higher"))


@dataclass
class Score:
    """Lags per pair of regimes, steady-state confusion and flip-flops, over many series."""

    lags: dict[Pair, list[int]] = field(default_factory=lambda: defaultdict(list))
    confusion: Counter[Pair] = field(default_factory=Counter)
    flips: int = 0
    calls: int = 0

    def add(self, truth: Sequence[str], answers: Sequence[str]) -> None:
        """Score `answers`, one per candle, against `truth`, the same candles' regimes
        preceded by as many earlier ones as it has (so stretch starts are known)."""
        lead = len(truth) - len(answers)
        self.calls += len(answers)
        self.flips += sum(
            1
            for i in range(1, len(answers))
            if answers[i] != answers[i - 1] and answers[i - 1] in answers[i + 1 : i + 1 + FLIP]
        )
        switches = [j for j in range(1, len(truth)) if truth[j] != truth[j - 1]]
        for start, end in zip(switches, [*switches[1:], len(truth)], strict=True):
            if start >= lead:
                self._add_lag(truth, answers, lead, start, end)
        since = GRACE  # candles into the stretch; unknown before the first switch seen
        for j in range(len(truth)):
            since = 0 if j in switches else since + 1
            if j >= lead and since >= GRACE:
                self.confusion[(truth[j], answers[j - lead])] += 1

    def _add_lag(
        self, truth: Sequence[str], answers: Sequence[str], lead: int, a: int, b: int
    ) -> None:
        new = truth[a]
        lag = b - a + 1
        for k in range(a, b):
            if all(answer == new for answer in answers[k - lead : min(k + HOLD, b) - lead]):
                lag = k - a + 1
                break
        self.lags[(truth[a - 1], new)].append(lag)

    def accuracy(self) -> float:
        """Right answers / answers, in steady state."""
        right = sum(n for (true, said), n in self.confusion.items() if true == said)
        return right / sum(self.confusion.values())

    def flip_share(self) -> float:
        """Flip-flops / answers."""
        return self.flips / self.calls

    def table(self) -> str:
        """The lag table (candles, per pair), then accuracy, confusion and flip-flops."""
        heads = "".join(
            f"{lo}-{hi}".rjust(7) if hi else f">{lo - 1}".rjust(7) for lo, hi in BUCKETS
        )
        lines = [f"{'switch':<20}{'n':>4}{'p50':>5}{'p90':>5}{'max':>5}{heads}"]
        for pair in [(a, b) for a in NAMES for b in NAMES if a != b]:
            lags = self.lags.get(pair, [])
            if not lags:
                lines.append(f"{pair[0] + '->' + pair[1]:<20}{0:>4}")
                continue
            counts = [sum(lo <= x and (hi is None or x <= hi) for x in lags) for lo, hi in BUCKETS]
            lines.append(
                f"{pair[0] + '->' + pair[1]:<20}{len(lags):>4}{int(np.median(lags)):>5}"
                f"{p90(lags):>5}{max(lags):>5}" + "".join(f"{n:>7}" for n in counts)
            )
        lines.append(
            f"steady-state accuracy {self.accuracy():.3f} over {sum(self.confusion.values())} "
            f"answers; flip-flops {self.flips}/{self.calls} = {self.flip_share():.2%}"
        )
        lines.append("steady state, rows truth, cols answer: " + " ".join(NAMES))
        for true in NAMES:
            lines.append(f"{true:>20}" + "".join(f"{self.confusion[(true, n)]:>9}" for n in NAMES))
        return "\n".join(lines)
