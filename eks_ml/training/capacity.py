"""Where a training node group's instances come from: On-Demand, a reservation, or a Capacity Block."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

from aws_cdk import Duration

from ..errors import Problems
from ..guards import expect_enum, expect_instance, expect_str
from .capacity_block import DEFAULT_CHECKPOINT_LEAD_MINUTES, DEFAULT_LONGEST_JOB_HOURS, BlockWindow

_RESERVATION_ID = re.compile(r"^cr-[0-9a-f]{8,17}$")


class CapacitySource(Enum):
    ON_DEMAND = "onDemand"
    CAPACITY_RESERVATION = "capacityReservation"  # an On-Demand Capacity Reservation (ODCR)
    CAPACITY_BLOCK = "capacityBlock"  # an EC2 Capacity Block for ML


@dataclass(frozen=True)
class Capacity:
    """Use ``Capacity.on_demand()``, ``Capacity.reservation("cr-...")`` or ``Capacity.capacity_block("cr-...")``.

    A Capacity Block given its window (``start`` and ``end``) also gets its lifecycle: see
    :class:`~eks_ml.training.capacity_block.BlockWindow`.
    """

    source: CapacitySource = CapacitySource.ON_DEMAND
    reservation_id: str | None = None
    window: BlockWindow | None = None

    @classmethod
    def on_demand(cls) -> Capacity:
        return cls()

    @classmethod
    def reservation(cls, reservation_id: str) -> Capacity:
        return cls(CapacitySource.CAPACITY_RESERVATION, reservation_id)

    @classmethod
    def capacity_block(
        cls,
        reservation_id: str,
        *,
        start: str | None = None,
        end: str | None = None,
        upfront_usd: float | None = None,
        instance_count: int | None = None,
        longest_job: Duration | None = None,
        checkpoint_lead: Duration | None = None,
    ) -> Capacity:
        """A Capacity Block. With ``start`` and ``end`` (UTC, as describe-capacity-reservations prints them)
        Kueue stops admitting work onto it and running jobs are told to checkpoint before it ends, and the
        plan shows its window and price; see :class:`~eks_ml.training.capacity_block.BlockWindow`."""
        lifecycle = (upfront_usd, instance_count, longest_job, checkpoint_lead)
        if start is None and end is None and all(value is None for value in lifecycle):
            return cls(CapacitySource.CAPACITY_BLOCK, reservation_id)
        window = BlockWindow(
            # None (only one of the two given) is reported by BlockWindow.check, naming the missing one.
            start=start,  # type: ignore[arg-type]
            end=end,  # type: ignore[arg-type]
            upfront_usd=upfront_usd,
            instance_count=instance_count,
            longest_job=Duration.hours(DEFAULT_LONGEST_JOB_HOURS) if longest_job is None else longest_job,
            checkpoint_lead=(
                Duration.minutes(DEFAULT_CHECKPOINT_LEAD_MINUTES) if checkpoint_lead is None else checkpoint_lead
            ),
        )
        return cls(CapacitySource.CAPACITY_BLOCK, reservation_id, window)

    @property
    def block_window(self) -> BlockWindow | None:
        """The window of a Capacity Block whose start and end were given."""
        return self.window if self.source is CapacitySource.CAPACITY_BLOCK else None

    @property
    def is_reserved(self) -> bool:
        """A reservation or Capacity Block already fixes where instances land."""
        return self.source is not CapacitySource.ON_DEMAND

    def uses_placement_group(self, choice: bool | None) -> bool:
        """Whether nodes on this capacity go into a cluster placement group: the explicit ``choice``, else only for
        On-Demand (a reservation or Capacity Block already fixes where its instances land)."""
        return (not self.is_reserved) if choice is None else choice

    def check(
        self, field: str, problems: Problems, *, max_size: int | None = None, size_field: str = "node group's max_size"
    ) -> None:
        """``max_size``: the most nodes of the group or pool (a block's instance_count must cover them), named in
        problems as ``size_field``."""
        self._check_window(field, problems, max_size, size_field)
        source_ok = expect_enum(self.source, CapacitySource, f"{field}.source", problems)
        # An empty id is left to the reservation-id rule below, which says where to find one.
        id_ok = isinstance(self.reservation_id, str) or expect_str(
            self.reservation_id, f"{field}.reservation_id", problems, optional=True
        )
        if not (source_ok and id_ok):
            return
        if self.source is CapacitySource.ON_DEMAND:
            if self.reservation_id is not None:
                problems.add(
                    f"{field}.reservation_id",
                    self.reservation_id,
                    "no reservation id for On-Demand capacity",
                    "use Capacity.reservation(id) or Capacity.capacity_block(id)",
                )
            return
        if self.reservation_id is None or not _RESERVATION_ID.match(self.reservation_id):
            problems.add(
                f"{field}.reservation_id",
                self.reservation_id,
                "a capacity reservation id such as cr-0123456789abcdef0",
                "copy the id from the EC2 console (Capacity Reservations) or describe-capacity-reservations",
            )

    def _check_window(self, field: str, problems: Problems, max_size: int | None, size_field: str) -> None:
        if self.window is None:
            return
        fix = "use Capacity.capacity_block(id, start=..., end=...)"
        if not expect_instance(self.window, BlockWindow, f"{field}.window", problems, fix=fix):
            return
        if self.source is not CapacitySource.CAPACITY_BLOCK:
            problems.add(
                f"{field}.window",
                f"{self.window.start} .. {self.window.end}",
                "a window only for a Capacity Block (other capacity does not end)",
                "use Capacity.capacity_block(id, start=..., end=...), or drop the window",
            )
            return
        self.window.check(f"{field}.window", problems, max_size=max_size, size_field=size_field)
