"""Where a training node group's instances come from: On-Demand, a reservation, or a Capacity Block."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

from ..errors import Problems
from ..guards import expect_enum, expect_str

_RESERVATION_ID = re.compile(r"^cr-[0-9a-f]{8,17}$")


class CapacitySource(Enum):
    ON_DEMAND = "onDemand"
    CAPACITY_RESERVATION = "capacityReservation"  # an On-Demand Capacity Reservation (ODCR)
    CAPACITY_BLOCK = "capacityBlock"  # an EC2 Capacity Block for ML


@dataclass(frozen=True)
class Capacity:
    """Use ``Capacity.on_demand()``, ``Capacity.reservation("cr-...")`` or ``Capacity.capacity_block("cr-...")``."""

    source: CapacitySource = CapacitySource.ON_DEMAND
    reservation_id: str | None = None

    @classmethod
    def on_demand(cls) -> Capacity:
        return cls()

    @classmethod
    def reservation(cls, reservation_id: str) -> Capacity:
        return cls(CapacitySource.CAPACITY_RESERVATION, reservation_id)

    @classmethod
    def capacity_block(cls, reservation_id: str) -> Capacity:
        return cls(CapacitySource.CAPACITY_BLOCK, reservation_id)

    @property
    def is_reserved(self) -> bool:
        """A reservation or Capacity Block already fixes where instances land."""
        return self.source is not CapacitySource.ON_DEMAND

    def check(self, field: str, problems: Problems) -> None:
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
