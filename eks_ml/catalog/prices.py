"""A dated table of On-Demand list prices, for estimates only (``eks-ml plan``).

Source: Karpenter's generated fallback price table (aws/karpenter-provider-aws,
pkg/providers/pricing/zz_generated.pricing_aws.go, "generated at 2026-01-19T13:23:24Z for us-east-1"),
which Karpenter builds from the AWS Price List API. Prices differ by region and change over time; types
missing from that table (p5e, p6-b300, trn2: sold through Capacity Blocks or not in us-east-1) have no
price here and the plan says so rather than guess.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

PRICES_AS_OF = "2026-01-19"
PRICE_REGION = "us-east-1"
# The EKS control plane under standard support, per cluster (Amazon EKS pricing page).
EKS_CLUSTER_USD_PER_HOUR = 0.10

ON_DEMAND_USD_PER_HOUR: Mapping[str, float] = MappingProxyType(
    {
        # Training
        "p4d.24xlarge": 21.957642,
        "p4de.24xlarge": 27.447050,
        "p5.4xlarge": 6.880000,
        "p5.48xlarge": 55.040000,
        "p5en.48xlarge": 63.296000,
        "p6-b200.48xlarge": 113.932800,
        "trn1.2xlarge": 1.343750,
        "trn1.32xlarge": 21.500000,
        "trn1n.32xlarge": 24.780000,
        # Inference
        "g5.xlarge": 1.006000,
        "g5.2xlarge": 1.212000,
        "g5.4xlarge": 1.624000,
        "g5.8xlarge": 2.448000,
        "g5.12xlarge": 5.672000,
        "g5.16xlarge": 4.096000,
        "g5.24xlarge": 8.144000,
        "g5.48xlarge": 16.288000,
        "g6.xlarge": 0.804800,
        "g6.2xlarge": 0.977600,
        "g6.4xlarge": 1.323200,
        "g6.8xlarge": 2.014400,
        "g6.12xlarge": 4.601600,
        "g6.16xlarge": 3.396800,
        "g6.24xlarge": 6.675200,
        "g6.48xlarge": 13.350400,
        "g6e.xlarge": 1.861000,
        "g6e.2xlarge": 2.242080,
        "g6e.4xlarge": 3.004240,
        "g6e.8xlarge": 4.528560,
        "g6e.12xlarge": 10.492640,
        "g6e.16xlarge": 7.577190,
        "g6e.24xlarge": 15.065590,
        "g6e.48xlarge": 30.131180,
        "inf2.xlarge": 0.758200,
        "inf2.8xlarge": 1.967860,
        "inf2.24xlarge": 6.490630,
        "inf2.48xlarge": 12.981270,
        # System nodes (the default and the usual alternatives)
        "m7g.large": 0.081600,
        "m7g.xlarge": 0.163200,
        "m7i.large": 0.100800,
        "m7i.xlarge": 0.201600,
        "m6i.large": 0.096000,
        "m8g.large": 0.089760,
    }
)


def on_demand_price(instance_type: str) -> float | None:
    """USD per hour, or None when the table has no price for the type."""
    return ON_DEMAND_USD_PER_HOUR.get(instance_type)
