"""A Capacity Block's window and what happens before it ends: the times at which Kueue stops admitting work onto
the block and running jobs are told to checkpoint, derived from the block's end.

EC2 facts (Amazon EC2 User Guide, "Monitor Capacity Blocks using EventBridge" and "Find and purchase Capacity
Blocks", checked 2026-11):

- Forty minutes before a block ends EC2 sends the EventBridge event "Capacity Block Reservation Expiration
  Warning" (source aws.ec2; detail: capacity-reservation-id, end-date) saying that instances in the block
  begin to terminate in ten minutes: termination starts 30 minutes before the end date.
- Blocks end at 11:30 UTC; they are bought in 1-day steps up to 14 days and 7-day steps up to 182 days, and
  can be extended (the reservation id stays, the end date moves).
- The price is dynamic and paid up front: describe-capacity-block-offerings shows it as UpfrontFee for the
  whole block (all instances, all hours). There is no public price table, so eks-ml never guesses one: the
  user gives the fee they paid and the plan divides it.

Ten minutes between EC2's own warning and the first termination is too short to write a large checkpoint
(``eks-ml plan`` shows how long one takes), so eks-ml does not wait for that event: it schedules its warning
from the end date the user gives, ``checkpoint_lead`` before termination starts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from aws_cdk import Duration

from ..errors import Problems
from ..guards import expect_all, expect_duration, expect_int, expect_number, expect_str

# EC2 starts terminating a block's instances this long before its end date (see the module docstring).
TERMINATION_LEAD = timedelta(minutes=30)
# How often the in-cluster watch runs (a CronJob): each of its actions can come this much later than planned.
WATCH_EVERY_MINUTES = 5
# A checkpoint trigger must leave time for at least one run of the watch and a save.
MIN_CHECKPOINT_LEAD_MINUTES = 2 * WATCH_EVERY_MINUTES
DEFAULT_LONGEST_JOB_HOURS = 4
DEFAULT_CHECKPOINT_LEAD_MINUTES = 30
EXAMPLE_END = "2026-12-08T11:30:00Z"


@dataclass(frozen=True, kw_only=True)
class BlockWindow:
    """When a Capacity Block runs, what it cost, and how eks-ml winds work down before it ends.

    start / end: the block's start-date and end-date, ISO-8601 in UTC ("2026-12-01T11:30:00Z"), as
        describe-capacity-reservations prints them. After an extension, give the new end.
    upfront_usd: the block's UpfrontFee in USD (all instances, all hours). None: the plan shows no price.
    instance_count: instances in the block. Default: the node group's max_size.
    longest_job: the longest a job on the block may run. Kueue stops admitting work onto the block this long
        before termination starts, and the example jobs carry it as Kueue's maximum execution time, so any
        job admitted ends (or is stopped by Kueue) before its nodes go. Default: 4 hours.
    checkpoint_lead: running jobs are told to checkpoint this long before termination starts. Default: 30
        minutes (at least 10: the watch runs every 5 minutes).
    """

    start: str
    end: str
    upfront_usd: float | None = None
    instance_count: int | None = None
    longest_job: Duration = field(default_factory=lambda: Duration.hours(DEFAULT_LONGEST_JOB_HOURS))
    checkpoint_lead: Duration = field(default_factory=lambda: Duration.minutes(DEFAULT_CHECKPOINT_LEAD_MINUTES))

    @property
    def start_time(self) -> datetime:
        return parse_utc(self.start)

    @property
    def end_time(self) -> datetime:
        return parse_utc(self.end)

    @property
    def hours(self) -> float:
        return (self.end_time - self.start_time).total_seconds() / 3600

    @property
    def termination_starts(self) -> datetime:
        return self.end_time - TERMINATION_LEAD

    @property
    def stop_admitting_at(self) -> datetime:
        return self.termination_starts - timedelta(seconds=self.longest_job.to_seconds())

    @property
    def checkpoint_at(self) -> datetime:
        return self.termination_starts - timedelta(seconds=self.checkpoint_lead.to_seconds())

    def usd_per_instance_hour(self, instances: int) -> float | None:
        if self.upfront_usd is None:
            return None
        return self.upfront_usd / (instances * self.hours)

    def check(
        self, field: str, problems: Problems, *, max_size: int | None, size_field: str = "node group's max_size"
    ) -> None:
        shapes = expect_all(
            expect_str(self.start, f"{field}.start", problems),
            expect_str(self.end, f"{field}.end", problems),
            self.upfront_usd is None or expect_number(self.upfront_usd, f"{field}.upfront_usd", problems),
            self.instance_count is None
            or expect_int(self.instance_count, f"{field}.instance_count", problems, minimum=1),
            expect_duration(self.longest_job, f"{field}.longest_job", problems),
            expect_duration(self.checkpoint_lead, f"{field}.checkpoint_lead", problems),
        )
        start = _utc(self.start, f"{field}.start", problems) if isinstance(self.start, str) else None
        end = _utc(self.end, f"{field}.end", problems) if isinstance(self.end, str) else None
        if not shapes or start is None or end is None:
            return
        if end <= start:
            problems.add(
                f"{field}.end",
                self.end,
                f"a time after start ({self.start})",
                "copy StartDate and EndDate from: aws ec2 describe-capacity-reservations --capacity-reservation-ids",
            )
            return
        if self.upfront_usd is not None and self.upfront_usd <= 0:
            problems.add(
                f"{field}.upfront_usd",
                self.upfront_usd,
                "the block's upfront fee in USD, more than 0",
                "give the UpfrontFee of the offering you bought, or None for no price in the plan",
            )
        if self.instance_count is not None and max_size is not None and max_size > self.instance_count:
            problems.add(
                f"{field}.instance_count",
                self.instance_count,
                f"at least the {size_field} ({max_size}): instances beyond the block never launch",
                f"lower {size_field.rsplit(' ', 1)[-1]} to {self.instance_count}, or give the block's real instance "
                "count",
            )
        lead_minutes = self.checkpoint_lead.to_seconds() / 60
        if lead_minutes < MIN_CHECKPOINT_LEAD_MINUTES:
            problems.add(
                f"{field}.checkpoint_lead",
                f"{lead_minutes:g} minutes",
                f"at least {MIN_CHECKPOINT_LEAD_MINUTES} minutes (the watch runs every {WATCH_EVERY_MINUTES})",
                f"use Duration.minutes({DEFAULT_CHECKPOINT_LEAD_MINUTES})",
            )
        elif self.checkpoint_at <= start:
            problems.add(
                f"{field}.checkpoint_lead",
                f"{lead_minutes:g} minutes",
                "shorter than the block (termination starts 30 minutes before its end)",
                "shorten checkpoint_lead",
            )
        if self.longest_job.to_seconds() < 60:
            problems.add(f"{field}.longest_job", self.longest_job.to_string(), "at least 1 minute", "lengthen it")
        elif self.stop_admitting_at <= start:
            usable = (self.termination_starts - start).total_seconds() / 3600
            problems.add(
                f"{field}.longest_job",
                f"{self.longest_job.to_seconds() / 3600:g} hours",
                f"shorter than the block's usable time ({usable:g} hours from start until termination starts), "
                "or Kueue would never admit work onto it",
                "shorten longest_job, or give the block's real start and end",
            )


def parse_utc(text: str) -> datetime:
    """An ISO-8601 time with a zero UTC offset ("Z" or "+00:00"); raises ValueError otherwise."""
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None or parsed.utcoffset() != timedelta(0):
        raise ValueError(f"{text} is not in UTC")
    return parsed.astimezone(UTC)


def format_utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _utc(text: str, field: str, problems: Problems) -> datetime | None:
    try:
        return parse_utc(text)
    except ValueError:
        problems.add(
            field,
            text,
            f"an ISO-8601 time in UTC such as {EXAMPLE_END} (a local time or a bare date is ambiguous)",
            "copy it from aws ec2 describe-capacity-reservations (StartDate, EndDate), ending in Z",
        )
        return None
