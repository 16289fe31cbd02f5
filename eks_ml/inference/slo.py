"""Service level objectives of a model service: how fast and how reliably it must answer.

The objectives become SLO burn-rate alerts with the Prometheus backend of the observability add-on
(eks_ml.observability.slo_rules); the CloudWatch backend has no alert for them.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import Problems
from ..guards import expect_all, expect_number

# Upper bounds (seconds) of vLLM's end-to-end request latency histogram, vllm:e2e_request_latency_seconds.
# Source: vllm-project/vllm @ v0.11.0 (the pinned VLLM_NVIDIA_IMAGE), vllm/v1/metrics/loggers.py,
# request_latency_buckets. A latency objective can only be measured at a bucket bound.
VLLM_E2E_LATENCY_BUCKETS = (
    0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0,
    40.0, 50.0, 60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0,
)  # fmt: skip
# The SLO window the burn-rate factors are computed for (Google SRE workbook, "Alerting on SLOs").
SLO_WINDOW_DAYS = 30
MIN_TARGET = 0.9  # below 90% a 30-day budget is days of failure: an objective that pages on nothing useful
MAX_TARGET = 0.9999  # above it the error budget of 30 days is under 5 minutes: every blip pages


@dataclass(frozen=True, kw_only=True)
class ServiceLevelObjective:
    """Objectives of one model service over a rolling 30 days.

    latency_seconds: the end-to-end request latency vLLM measures (queueing, prefill and decoding) that
        ``latency_target`` of the requests must stay under. It must be a bucket bound of vLLM's
        ``vllm:e2e_request_latency_seconds`` histogram (0.3 ... 7680 s). Default: 30 s.
    latency_target: share of requests under ``latency_seconds``. Default: 0.99 (99%).
    availability_target: share of API requests (``/v1/...``) answered without a server error (HTTP 5xx).
        Default: 0.995 (99.5%).
    """

    latency_seconds: float = 30.0
    latency_target: float = 0.99
    availability_target: float = 0.995

    @property
    def latency_budget(self) -> float:
        """The share of requests allowed to be slower than ``latency_seconds``."""
        return round(1 - self.latency_target, 10)

    @property
    def error_budget(self) -> float:
        """The share of requests allowed to fail."""
        return round(1 - self.availability_target, 10)

    def check(self, field: str, problems: Problems) -> None:
        if not expect_all(
            expect_number(self.latency_seconds, f"{field}.latency_seconds", problems),
            expect_number(self.latency_target, f"{field}.latency_target", problems),
            expect_number(self.availability_target, f"{field}.availability_target", problems),
        ):
            return
        if float(self.latency_seconds) not in VLLM_E2E_LATENCY_BUCKETS:
            nearest = min(VLLM_E2E_LATENCY_BUCKETS, key=lambda bound: abs(bound - self.latency_seconds))
            problems.add(
                f"{field}.latency_seconds",
                self.latency_seconds,
                "a bucket bound of vLLM's e2e latency histogram: "
                + ", ".join(f"{bound:g}" for bound in VLLM_E2E_LATENCY_BUCKETS),
                f"use the nearest bound, e.g. {nearest:g}",
            )
        for name in ("latency_target", "availability_target"):
            value = getattr(self, name)
            if not MIN_TARGET <= value <= MAX_TARGET:
                problems.add(
                    f"{field}.{name}",
                    value,
                    f"a share from {MIN_TARGET} to {MAX_TARGET} (e.g. 0.99 for 99%)",
                    "write the objective as a fraction, e.g. 0.995 for 99.5%",
                )
