"""cdk8s charts: plain values in, Kubernetes objects out; no AWS constructs inside."""

from .lustre_volume import LustreVolumeChart, LustreVolumeValues

__all__ = ["LustreVolumeChart", "LustreVolumeValues"]
