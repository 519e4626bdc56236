"""How long and how a benchmark runs: a small validated settings object."""

from __future__ import annotations

import dataclasses
import math

from keras_squeeze.errors import ConfigError

# benchmark_model's defaults are 1 warm-up run (0.5 s), 50 runs, 1 s, 150 s cap.
DEFAULT_WARMUP_RUNS = 10
DEFAULT_MIN_RUNS = 50
DEFAULT_MIN_SECONDS = 1.0
DEFAULT_MAX_SECONDS = 150.0


def _count(value, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(
            f"{name} must be an integer >= {minimum}. Expected >= {minimum}. "
            f"Received: {name}={value!r}"
        )
    return value


def _seconds(value, name: str, minimum: float, strict: bool) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (value > minimum if strict else value >= minimum)
    if not ok:
        sign = ">" if strict else ">="
        raise ConfigError(
            f"{name} must be a finite number of seconds {sign} {minimum:g}. Expected "
            f"{sign} {minimum:g}. Received: {name}={value!r}"
        )
    return float(value)


@dataclasses.dataclass(frozen=True)
class RunSettings:
    """Warm-up, stopping rule and threads, checked on creation.

    Attributes:
        warmup_runs: runs before measuring, kept out of the steady-state
            figures (>= 0); each model also gets one first inference, timed
            separately.
        warmup_seconds: keep warming up at least this long (>= 0).
        min_runs: measure at least this many runs of each model (>= 1) ...
        min_seconds: ... and for at least this long (>= 0) ...
        max_seconds: ... but start no run after this many seconds (> 0).
        num_threads: CPU threads for the interpreter (>= 1).

    Example:
        >>> RunSettings(min_runs=0)
        Traceback (most recent call last):
        ConfigError: min_runs must be an integer >= 1. ...
    """

    warmup_runs: int = DEFAULT_WARMUP_RUNS
    warmup_seconds: float = 0.0
    min_runs: int = DEFAULT_MIN_RUNS
    min_seconds: float = DEFAULT_MIN_SECONDS
    max_seconds: float = DEFAULT_MAX_SECONDS
    num_threads: int = 1

    def __post_init__(self):
        _count(self.warmup_runs, "warmup_runs", 0)
        _count(self.min_runs, "min_runs", 1)
        _count(self.num_threads, "num_threads", 1)
        object.__setattr__(
            self,
            "warmup_seconds",
            _seconds(self.warmup_seconds, "warmup_seconds", 0.0, strict=False),
        )
        object.__setattr__(
            self, "min_seconds", _seconds(self.min_seconds, "min_seconds", 0.0, strict=False)
        )
        object.__setattr__(
            self, "max_seconds", _seconds(self.max_seconds, "max_seconds", 0.0, strict=True)
        )
        if self.max_seconds < self.min_seconds:
            raise ConfigError(
                "max_seconds is below min_seconds. Expected max_seconds >= min_seconds. "
                f"Received: min_seconds={self.min_seconds:g}, max_seconds={self.max_seconds:g}"
            )

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)
