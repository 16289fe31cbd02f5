"""Alert limits both backends share, so a CloudWatch alarm and its Prometheus rule fire on the same
condition."""

from __future__ import annotations

GPU_HOT_CELSIUS = 85  # data-centre GPUs start clocking down for heat in the high 80s (NVIDIA slowdown temp)
IDLE_PERCENT = 5  # accelerators below this while a job holds them are idle
IDLE_MINUTES = 30
