"""QueueWorker: a Deployment of the user's image that runs a model on each message of an Amazon SQS queue or an
Amazon MSK topic, scaled by KEDA on the backlog (queue depth or consumer lag), down to zero when idle.

Trigger fields from kedacore/keda @ v2.20.2: pkg/scalers/aws_sqs_queue_scaler.go (queueURL, queueLength,
activationQueueLength, awsRegion) and pkg/scalers/kafka_scaler.go (bootstrapServers, consumerGroup, topic,
lagThreshold, activationLagThreshold, tls=enable, sasl=oauthbearer, saslTokenProvider=aws_msk_iam, awsRegion;
MSK IAM needs TLS and a region). MSK IAM actions and resource ARNs: Amazon MSK Developer Guide, "IAM access
control", "Semantics of the IAM authorization policy actions and resources" (kafka-actions.html).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from aws_cdk import Duration, Stack, Token
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sqs as sqs

from ..catalog import InstanceSpec, lookup
from ..errors import Problems
from ..guards import (
    expect_all,
    expect_duration,
    expect_instance,
    expect_int,
    expect_str,
    expect_str_list,
    expect_str_map,
)
from ..k8s.queue_worker import QueueWorkerValues, TriggerValues
from ..kube_names import check_dns_label
from .fit import pod_requests
from .model_service import NEURON_CAPABILITIES
from .pools import INFERENCE_FAMILIES, POOL_LABEL

NAME_MAX = 40  # IAM role names <cluster>-<name>-worker / -scaler stay under 64 characters with short clusters
SQS_ACTIONS = ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ChangeMessageVisibility")
# KEDA's SQS scaler calls GetQueueAttributes only (ApproximateNumberOfMessages, ...NotVisible, ...Delayed).
SQS_SCALER_ACTIONS = ("sqs:GetQueueAttributes",)
# A consumer connects, reads the topic's metadata and data, and joins and commits in its group.
MSK_CLUSTER_ACTIONS = ("kafka-cluster:Connect",)
MSK_TOPIC_ACTIONS = ("kafka-cluster:DescribeTopic", "kafka-cluster:ReadData")
MSK_GROUP_ACTIONS = ("kafka-cluster:AlterGroup", "kafka-cluster:DescribeGroup")
# KEDA's kafka scaler reads the topic's offsets (ListOffsets: DescribeTopic) and the group's committed
# offsets (OffsetFetch: DescribeGroup); it never reads data or joins the group.
MSK_SCALER_TOPIC_ACTIONS = ("kafka-cluster:DescribeTopic",)
MSK_SCALER_GROUP_ACTIONS = ("kafka-cluster:DescribeGroup",)
MSK_IAM_PORT = 9098  # MSK brokers' IAM (SASL/TLS) listener
HTTPS_PORT = 443
KMS_ACTIONS = ("kms:Decrypt",)  # receiving from a queue encrypted with a customer managed key

_QUEUE_ARN = re.compile(r"^arn:aws[a-z-]*:sqs:([a-z0-9-]+):(\d{12}):([A-Za-z0-9_-]{1,80}(\.fifo)?)$")
_MSK_CLUSTER_ARN = re.compile(
    r"^arn:(aws[a-z-]*):kafka:([a-z0-9-]+):(\d{12}):cluster/([A-Za-z0-9-]{1,64})/([A-Za-z0-9-]+)$"
)
_KMS_KEY_ARN = re.compile(r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/[A-Za-z0-9-]+$")
_TOPIC = re.compile(r"^[A-Za-z0-9._-]{1,249}$")  # Kafka's legal topic names
_GROUP = re.compile(r"^[A-Za-z0-9._-]{1,255}$")
_BROKER = re.compile(r"^[A-Za-z0-9.-]+:\d{1,5}$")


@dataclass(frozen=True, kw_only=True)
class SqsSource:
    """An Amazon SQS queue: ``queue`` (a queue of your CDK app; its KMS key is read from it) or ``queue_arn``
    (an existing queue; pass ``kms_key_arn`` when it is encrypted with a customer managed key).
    queue_length: visible messages per replica KEDA aims for. Default: 5 (KEDA's own default)."""

    queue: sqs.IQueue | None = None
    queue_arn: str | None = None
    kms_key_arn: str | None = None
    queue_length: int = 5

    def arn(self) -> str:
        return self.queue.queue_arn if self.queue is not None else str(self.queue_arn)

    def key_arn(self) -> str | None:
        if self.queue is not None:
            key: kms.IKey | None = self.queue.encryption_master_key
            return key.key_arn if key is not None else None
        return self.kms_key_arn

    def url(self) -> str:
        if self.queue is not None:
            return self.queue.queue_url
        match = _QUEUE_ARN.match(str(self.queue_arn))
        assert match is not None  # checked before values are built
        region, account, name = match.group(1), match.group(2), match.group(3)
        return f"https://sqs.{region}.amazonaws.com/{account}/{name}"

    def check(self, field: str, problems: Problems) -> bool:
        if not expect_all(
            expect_str(self.queue_arn, f"{field}.queue_arn", problems, optional=True),
            expect_str(self.kms_key_arn, f"{field}.kms_key_arn", problems, optional=True),
            expect_int(self.queue_length, f"{field}.queue_length", problems, minimum=1),
        ):
            return False
        if (self.queue is None) == (self.queue_arn is None):
            problems.add(
                f"{field}.queue",
                {"queue": self.queue is not None, "queue_arn": self.queue_arn},
                "exactly one of queue (an sqs.IQueue) or queue_arn",
                "pass the queue of your app as queue=, or an existing queue's ARN as queue_arn=",
            )
            return False
        # jsii interfaces are not runtime-checkable protocols: look for what an IQueue has.
        if self.queue is not None and not all(hasattr(self.queue, a) for a in ("queue_arn", "queue_url", "node")):
            problems.add(f"{field}.queue", type(self.queue).__name__, "an aws_sqs.IQueue", "pass sqs.Queue(...)")
            return False
        if self.queue_arn is not None and Token.is_unresolved(self.queue_arn):
            problems.add(
                f"{field}.queue_arn",
                "(a value known only at deploy time)",
                "a literal queue ARN (its URL and region are derived from it at synth)",
                "pass the queue construct itself as queue=",
            )
            return False
        if self.queue_arn is not None and not _QUEUE_ARN.match(self.queue_arn):
            problems.add(
                f"{field}.queue_arn",
                self.queue_arn,
                "an SQS queue ARN, arn:aws:sqs:<region>:<account>:<name>",
                "copy the queue's ARN from its details page (not its URL)",
            )
            return False
        if self.queue is not None and self.kms_key_arn is not None:
            problems.add(
                f"{field}.kms_key_arn",
                self.kms_key_arn,
                "no kms_key_arn with queue= (the key is read from the queue)",
                "drop kms_key_arn, or pass the queue's ARN as queue_arn",
            )
        if self.kms_key_arn is not None and not _KMS_KEY_ARN.match(self.kms_key_arn):
            problems.add(
                f"{field}.kms_key_arn",
                self.kms_key_arn,
                "a KMS key ARN, arn:aws:kms:<region>:<account>:key/<id>",
                "give the key's ARN (not an alias)",
            )
        return True


@dataclass(frozen=True, kw_only=True)
class MskSource:
    """An Amazon MSK topic read with IAM access control.

    cluster_arn: arn:aws:kafka:<region>:<account>:cluster/<name>/<uuid>. bootstrap_servers: the brokers' IAM
    endpoints (host:9098). lag_threshold: unconsumed messages per replica KEDA aims for. Default: 10 (KEDA's)."""

    cluster_arn: str
    topic: str
    consumer_group: str
    bootstrap_servers: Sequence[str]
    lag_threshold: int = 10

    def _parts(self) -> tuple[str, str, str, str, str]:
        match = _MSK_CLUSTER_ARN.match(self.cluster_arn)
        assert match is not None  # checked before ARNs are built
        return match.group(1), match.group(2), match.group(3), match.group(4), match.group(5)

    def region(self) -> str:
        return self._parts()[1]

    def topic_arn(self) -> str:
        partition, region, account, name, uuid = self._parts()
        return f"arn:{partition}:kafka:{region}:{account}:topic/{name}/{uuid}/{self.topic}"

    def group_arn(self) -> str:
        partition, region, account, name, uuid = self._parts()
        return f"arn:{partition}:kafka:{region}:{account}:group/{name}/{uuid}/{self.consumer_group}"

    def check(self, field: str, problems: Problems) -> bool:
        if not expect_all(
            expect_str(self.cluster_arn, f"{field}.cluster_arn", problems),
            expect_str(self.topic, f"{field}.topic", problems),
            expect_str(self.consumer_group, f"{field}.consumer_group", problems),
            expect_str_list(self.bootstrap_servers, f"{field}.bootstrap_servers", problems),
            expect_int(self.lag_threshold, f"{field}.lag_threshold", problems, minimum=1),
        ):
            return False
        ok = True
        if not _MSK_CLUSTER_ARN.match(self.cluster_arn):
            problems.add(
                f"{field}.cluster_arn",
                self.cluster_arn,
                "an MSK cluster ARN, arn:aws:kafka:<region>:<account>:cluster/<name>/<uuid>",
                "copy the cluster ARN from the MSK console or `aws kafka list-clusters-v2`",
            )
            ok = False
        for name, value, pattern in (("topic", self.topic, _TOPIC), ("consumer_group", self.consumer_group, _GROUP)):
            if not pattern.match(value) or "*" in value:
                problems.add(
                    f"{field}.{name}",
                    value,
                    "one exact Kafka name (letters, digits, '.', '_', '-'; no wildcards)",
                    f"name the one {name.replace('_', ' ')} the worker reads; the IAM policy is scoped to it",
                )
                ok = False
        bad = [s for s in self.bootstrap_servers if not _BROKER.match(s) or not s.endswith(f":{MSK_IAM_PORT}")]
        if bad or not self.bootstrap_servers:
            problems.add(
                f"{field}.bootstrap_servers",
                list(self.bootstrap_servers),
                f"the brokers' IAM endpoints, host:{MSK_IAM_PORT}",
                "use the 'Private endpoint (IAM)' bootstrap servers of `aws kafka get-bootstrap-brokers`",
            )
            ok = False
        return ok


Source = SqsSource | MskSource


@dataclass(frozen=True, kw_only=True)
class QueueWorkerProps:
    """One queue worker.

    name: Deployment, ServiceAccount and ScaledObject name (DNS label, at most 40 characters).
    image: the worker's container image (it reads the source, runs the model, deletes or commits).
    source: SqsSource or MskSource.
    instance_type: an inference type (g5, g6, g6e, inf2) for a worker that runs a model on an accelerator,
        from the pool that may launch it; None for the CPU pool. Default: None.
    accelerators: GPUs or Neuron devices per replica (with instance_type). Default: 1; CPU and memory
        follow the same share of the instance as model services take.
    cpu / memory: requests of a CPU worker. Default: 1 and 2Gi.
    min_replicas: Default: 0 (scale to zero when the backlog is empty). max_replicas: Default: 4.
    cooldown: how long the backlog must stay empty before the last replica goes. Default: 5 minutes.
    polling_interval: how often KEDA reads the backlog. Default: 30 seconds.
    termination_grace: time a replica has to finish its message when scaled in. Default: 2 minutes.
    """

    name: str
    image: str
    source: Source
    instance_type: str | None = None
    accelerators: int = 1
    cpu: str = "1"
    memory: str = "2Gi"
    command: Sequence[str] = ()
    args: Sequence[str] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    min_replicas: int = 0
    max_replicas: int = 4
    cooldown: Duration = field(default_factory=lambda: Duration.minutes(5))
    polling_interval: Duration = field(default_factory=lambda: Duration.seconds(30))
    termination_grace: Duration = field(default_factory=lambda: Duration.minutes(2))

    def spec(self) -> InstanceSpec | None:
        return lookup(self.instance_type) if self.instance_type else None

    def capabilities(self) -> list[str]:
        """Linux capabilities the worker adds back (the Neuron runtime locks its host buffers)."""
        spec = self.spec()
        return list(NEURON_CAPABILITIES) if spec is not None and spec.is_neuron else []

    def check(self, field: str, problems: Problems) -> bool:
        """Add the worker's problems; False when its types are wrong (then nothing else may read it)."""
        if not expect_all(
            expect_str(self.name, f"{field}.name", problems),
            expect_str(self.image, f"{field}.image", problems),
            expect_instance(
                self.source,
                (SqsSource, MskSource),
                f"{field}.source",
                problems,
                fix="pass SqsSource(queue=...) or MskSource(cluster_arn=..., topic=..., ...)",
            ),
            expect_str(self.instance_type, f"{field}.instance_type", problems, optional=True),
            expect_int(self.accelerators, f"{field}.accelerators", problems, minimum=1),
            expect_str(self.cpu, f"{field}.cpu", problems),
            expect_str(self.memory, f"{field}.memory", problems),
            expect_str_list(self.command, f"{field}.command", problems),
            expect_str_list(self.args, f"{field}.args", problems),
            expect_str_map(self.env, f"{field}.env", problems),
            expect_int(self.min_replicas, f"{field}.min_replicas", problems, minimum=0),
            expect_int(self.max_replicas, f"{field}.max_replicas", problems, minimum=1),
            expect_duration(self.cooldown, f"{field}.cooldown", problems),
            expect_duration(self.polling_interval, f"{field}.polling_interval", problems),
            expect_duration(self.termination_grace, f"{field}.termination_grace", problems),
        ):
            return False
        ok = check_dns_label(self.name, f"{field}.name", problems, max_length=NAME_MAX)
        ok = self.source.check(f"{field}.source", problems) and ok
        if self.min_replicas > self.max_replicas:
            problems.add(
                f"{field}.replicas",
                {"min": self.min_replicas, "max": self.max_replicas},
                "0 <= min_replicas <= max_replicas",
                "keep min_replicas at 0 to scale to zero, and max_replicas above it",
            )
        if not 1 <= self.polling_interval.to_seconds() <= 3600:
            problems.add(
                f"{field}.polling_interval",
                f"{self.polling_interval.to_seconds()} s",
                "1 s to 1 hour",
                "use the default 30 seconds",
            )
        if self.instance_type is not None:
            spec = None
            with problems.collecting():
                spec = lookup(self.instance_type, field=f"{field}.instance_type")
            families = {f for group in INFERENCE_FAMILIES.values() for f in group}
            if spec is not None and spec.family not in families:
                problems.add(
                    f"{field}.instance_type",
                    self.instance_type,
                    f"an inference type of the {', '.join(sorted(families))} families, or None for the CPU pool",
                    "run workers on g5, g6, g6e or inf2",
                )
                ok = False
            elif spec is not None and self.accelerators > spec.accelerator_count:
                problems.add(
                    f"{field}.accelerators",
                    self.accelerators,
                    f"1 to {spec.accelerator_count} (the devices of {spec.name})",
                    "ask for fewer devices per replica or a larger instance type",
                )
                ok = False
        return ok

    def trigger(self, *, scaler_role_arn: str) -> TriggerValues:
        source = self.source
        if isinstance(source, SqsSource):
            return TriggerValues(
                type="aws-sqs-queue",
                metadata={
                    "queueURL": source.url(),
                    "queueLength": str(source.queue_length),
                    "activationQueueLength": "0",  # one message wakes the worker from zero
                    "awsRegion": _region_of_queue(source),
                },
                scaler_role_arn=scaler_role_arn,
            )
        return TriggerValues(
            type="kafka",
            metadata={
                "bootstrapServers": ",".join(source.bootstrap_servers),
                "consumerGroup": source.consumer_group,
                "topic": source.topic,
                "lagThreshold": str(source.lag_threshold),
                "activationLagThreshold": "0",
                "tls": "enable",
                "sasl": "oauthbearer",
                "saslTokenProvider": "aws_msk_iam",
                "awsRegion": source.region(),
            },
            scaler_role_arn=scaler_role_arn,
        )

    def values(self, *, namespace: str, pool: str, scaler_role_arn: str) -> QueueWorkerValues:
        """``pool``: the node pool that launches the worker's instance type (or the CPU pool)."""
        spec = self.spec()
        node_selector = {POOL_LABEL: pool}
        tolerations: list[dict[str, str]] = []
        if spec is None:
            requests = {"cpu": self.cpu, "memory": self.memory}
            limits = {"memory": self.memory}
        else:
            requests = pod_requests(spec, self.accelerators)  # sized like model services
            limits = {"memory": requests["memory"], spec.accelerator_resource: str(self.accelerators)}
            node_selector["node.kubernetes.io/instance-type"] = spec.name
            tolerations = [{"key": spec.accelerator_resource, "operator": "Exists", "effect": "NoSchedule"}]
        return QueueWorkerValues(
            name=self.name,
            namespace=namespace,
            image=self.image,
            command=list(self.command),
            args=list(self.args),
            env=dict(self.env),
            capabilities=self.capabilities(),
            node_selector=node_selector,
            tolerations=tolerations,
            requests=requests,
            limits=limits,
            min_replicas=self.min_replicas,
            max_replicas=self.max_replicas,
            cooldown_seconds=int(self.cooldown.to_seconds()),
            polling_seconds=int(self.polling_interval.to_seconds()),
            termination_grace_seconds=int(self.termination_grace.to_seconds()),
            trigger=self.trigger(scaler_role_arn=scaler_role_arn),
            egress_ports=(HTTPS_PORT,) if isinstance(self.source, SqsSource) else (HTTPS_PORT, MSK_IAM_PORT),
        )


def _region_of_queue(source: SqsSource) -> str:
    if source.queue is not None:
        return Stack.of(source.queue).region
    match = _QUEUE_ARN.match(str(source.queue_arn))
    assert match is not None
    return match.group(1)
