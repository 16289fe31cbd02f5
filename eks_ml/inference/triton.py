"""NVIDIA Triton Inference Server for non-LLM models (vision, speech, tabular, embeddings): on a GPU of a node
pool, or on CPU in Fargate; its model repository in S3, autoscaled on its pending requests, behind an ALB.

Model repository: Triton reads ``s3://bucket/prefix`` itself (Triton v2.71.0, docs/user_guide/model_repository.md,
"S3": credentials and region from the AWS environment variables) and copies it to a local directory. Its
credentials are IAM roles for service accounts (IRSA), scoped to that bucket prefix, on GPU nodes and Fargate
alike: EKS Pod Identity is not available to Fargate pods (its agent is a DaemonSet, and Fargate runs none), and
the Mountpoint CSI driver (eks_ml.inference.weights) is a node plugin Fargate cannot run either; one mechanism
for both placements keeps one trust policy and one egress rule to reason about.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from aws_cdk import Aws, CfnJson, Duration, Stack, Token
from aws_cdk import aws_eks_v2 as eks
from aws_cdk import aws_iam as iam
from aws_cdk.region_info import RegionInfo
from constructs import Construct

from .. import helm
from ..catalog import AcceleratorVendor, InstanceSpec, lookup
from ..errors import Problems
from ..guards import (
    expect_all,
    expect_bool,
    expect_duration,
    expect_instance,
    expect_int,
    expect_number,
    expect_str,
    expect_str_list,
)
from ..k8s.model_service import AutoscalingValues
from ..k8s.triton import GRPC_PORT, HTTP_PORT, METRICS_PORT, MODEL_CACHE_DIR, TritonValues
from ..kube_names import check_dns_label
from ..nag import acknowledge, acknowledge_inline_policy
from ..placement.fargate import (
    DEFAULT_EPHEMERAL_GIB,
    EPHEMERAL_STORAGE,
    FARGATE_SIZES,
    KUBERNETES_OVERHEAD_MIB,
    MAX_EPHEMERAL_GIB,
)
from .exposure import Exposure
from .fargate import fargate_labels
from .fit import pod_requests, shm_size
from .metrics import TRITON_QUEUE_METRIC
from .model_service import _BUCKET
from .pools import INFERENCE_FAMILIES, POOL_LABEL

# Triton v2.71.0 = NGC container 26.07 (server README.md @ v2.71.0). The -py3 image holds the GPU and CPU
# backends (ONNX Runtime, PyTorch, TensorRT, OpenVINO, Python); the same image serves CPU models on Fargate.
TRITON_IMAGE = "nvcr.io/nvidia/tritonserver:26.07-py3"
# Flags eks-ml sets from the props: a copy in extra_args would contradict the ports the Service, probes and
# scrape annotations use, or the repository the IAM role is scoped to.
MANAGED_TRITON_FLAGS = ("--model-repository", "--http-port", "--grpc-port", "--metrics-port", "--allow-metrics")
NAME_MAX = 40
ROLE_NAME_MAX = 64  # IAM
NVIDIA_GPU = "nvidia.com/gpu"
# Fargate: ephemeral storage holds the image's layers and Triton's copy of the repository; the -py3 image is
# several GB, so the default is above Fargate's 20 GiB. An estimate, not a measurement (nothing is deployed).
DEFAULT_FARGATE_STORAGE_GIB = 60


@dataclass(frozen=True, kw_only=True)
class S3ModelRepository:
    """A Triton model repository (one folder per model, each with config.pbtxt and version folders) at
    ``s3://bucket/prefix``."""

    bucket: str
    prefix: str = ""

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}".rstrip("/")


@dataclass(frozen=True, kw_only=True)
class TritonServiceProps:
    """A Triton Inference Server, autoscaled on its pending requests, behind an Application Load Balancer.

    name: DNS label, at most 40 characters (Deployment, Service, ServiceAccount, HPA, Ingress, IAM role suffix).
    model_repository: where the models are; Triton reads only that prefix (its IAM role allows no more).
    instance_type: a GPU type of one of the cluster's node pools (g5, g6, g6e), one GPU per replica. Default:
        None, CPU on the cluster's Fargate profile (InferenceClusterProps.fargate).
    fargate_cpu / fargate_memory_gib: a replica's Fargate size, one of Fargate's vCPU/memory combinations (the
        pod requests 256 MiB less, which Fargate adds for its Kubernetes components). Default: 2 vCPU, 8 GB.
    fargate_storage_gib: a Fargate replica's ephemeral storage, 20 to 175 GiB. Default: 60.
    min_replicas / max_replicas: Default: 1 / 4.
    queue_target: pending requests per replica the autoscaler holds. Default: 8.
    cpu_target: CPU utilization (%) when the queue metric is missing. Default: 80.
    load_timeout: how long a replica may take to copy the repository and load its models. Default: 10 minutes.
    public, certificate_arn, allowed_cidrs, allow_any_source: the ALB's reach, as for ModelServiceProps.
        Default: internal.
    image: Default: nvcr.io/nvidia/tritonserver:26.07-py3.
    extra_args: more tritonserver flags (not those eks-ml sets).
    """

    name: str
    model_repository: S3ModelRepository
    instance_type: str | None = None
    fargate_cpu: float = 2
    fargate_memory_gib: float = 8
    fargate_storage_gib: int = DEFAULT_FARGATE_STORAGE_GIB
    min_replicas: int = 1
    max_replicas: int = 4
    queue_target: int = 8
    cpu_target: int = 80
    load_timeout: Duration = field(default_factory=lambda: Duration.minutes(10))
    public: bool = False
    certificate_arn: str | None = None
    allowed_cidrs: Sequence[str] = ()
    allow_any_source: bool = False
    image: str | None = None
    extra_args: Sequence[str] = ()

    @property
    def on_fargate(self) -> bool:
        return self.instance_type is None

    def exposure(self) -> Exposure:
        return Exposure(self.public, self.certificate_arn, self.allowed_cidrs, self.allow_any_source)

    def check(self, field_name: str, problems: Problems) -> bool:
        """Add the service's problems; False when its types are wrong."""
        if not expect_all(
            expect_str(self.name, f"{field_name}.name", problems),
            expect_instance(
                self.model_repository,
                S3ModelRepository,
                f"{field_name}.model_repository",
                problems,
                fix="pass S3ModelRepository(bucket=..., prefix=...)",
            )
            and expect_str(self.model_repository.bucket, f"{field_name}.model_repository.bucket", problems)
            # An empty prefix is the whole bucket.
            and (
                isinstance(self.model_repository.prefix, str)
                or expect_str(self.model_repository.prefix, f"{field_name}.model_repository.prefix", problems)
            ),
            expect_str(self.instance_type, f"{field_name}.instance_type", problems, optional=True),
            expect_number(self.fargate_cpu, f"{field_name}.fargate_cpu", problems),
            expect_number(self.fargate_memory_gib, f"{field_name}.fargate_memory_gib", problems),
            expect_int(self.fargate_storage_gib, f"{field_name}.fargate_storage_gib", problems),
            expect_int(self.min_replicas, f"{field_name}.min_replicas", problems),
            expect_int(self.max_replicas, f"{field_name}.max_replicas", problems),
            expect_int(self.queue_target, f"{field_name}.queue_target", problems),
            expect_int(self.cpu_target, f"{field_name}.cpu_target", problems),
            expect_duration(self.load_timeout, f"{field_name}.load_timeout", problems),
            expect_bool(self.public, f"{field_name}.public", problems),
            expect_bool(self.allow_any_source, f"{field_name}.allow_any_source", problems),
            expect_str(self.image, f"{field_name}.image", problems, optional=True),
            expect_str_list(self.extra_args, f"{field_name}.extra_args", problems),
        ):
            return False
        check_dns_label(self.name, f"{field_name}.name", problems, max_length=NAME_MAX)
        repository = self.model_repository
        if not _BUCKET.match(repository.bucket):
            problems.add(
                f"{field_name}.model_repository.bucket", repository.bucket, "an S3 bucket name", "give the bare name"
            )
        if repository.prefix.startswith("/") or "*" in repository.prefix:
            problems.add(
                f"{field_name}.model_repository.prefix",
                repository.prefix,
                "a key prefix without a leading / or wildcards",
                "give the folder that holds the model folders, e.g. triton/resnet",
            )
        if self.on_fargate:
            self._check_fargate(field_name, problems)
        else:
            self._check_gpu(field_name, problems)
        if not 1 <= self.min_replicas <= self.max_replicas:
            problems.add(
                f"{field_name}.replicas",
                {"min": self.min_replicas, "max": self.max_replicas},
                "1 <= min_replicas <= max_replicas",
                "keep at least one replica warm and max_replicas >= min_replicas",
            )
        if self.queue_target < 1 or not 1 <= self.cpu_target <= 100:
            problems.add(
                f"{field_name}.targets",
                {"queue_target": self.queue_target, "cpu_target": self.cpu_target},
                "queue_target >= 1 and cpu_target from 1 to 100",
                "use the defaults: 8 pending requests per replica, 80% CPU",
            )
        minutes = self.load_timeout.to_minutes()
        if not 1 <= minutes <= 60:
            problems.add(
                f"{field_name}.load_timeout", f"{minutes} min", "1 to 60 minutes", "give the models time to load"
            )
        for arg in self.extra_args:
            flag = arg.split("=", 1)[0]
            if flag in MANAGED_TRITON_FLAGS:
                problems.add(
                    f"{field_name}.extra_args",
                    arg,
                    f"flags other than those eks-ml sets ({', '.join(MANAGED_TRITON_FLAGS)})",
                    "set model_repository instead" if flag == "--model-repository" else f"remove {flag}",
                )
        self.exposure().check(field_name, problems)
        return True

    def _check_fargate(self, field_name: str, problems: Problems) -> None:
        cpu = round(self.fargate_cpu * 1000)
        memories = dict(FARGATE_SIZES).get(cpu)
        if memories is None or self.fargate_memory_gib not in memories:
            sizes = "; ".join(f"{c / 1000:g} vCPU: {m[0]:g}-{m[-1]:g} GB" for c, m in FARGATE_SIZES)
            problems.add(
                f"{field_name}.fargate_size",
                {"fargate_cpu": self.fargate_cpu, "fargate_memory_gib": self.fargate_memory_gib},
                f"a Fargate vCPU/memory combination ({sizes}; 1 GB steps up to 4 vCPU, then 4 and 8 GB)",
                "pick the combination the model needs, e.g. fargate_cpu=2, fargate_memory_gib=8",
            )
        if not DEFAULT_EPHEMERAL_GIB <= self.fargate_storage_gib <= MAX_EPHEMERAL_GIB:
            problems.add(
                f"{field_name}.fargate_storage_gib",
                self.fargate_storage_gib,
                f"{DEFAULT_EPHEMERAL_GIB} to {MAX_EPHEMERAL_GIB} GiB (Fargate's ephemeral storage)",
                "hold the image and the model repository; larger repositories belong on a GPU or CPU node pool",
            )

    def _check_gpu(self, field_name: str, problems: Problems) -> None:
        spec = None
        with problems.collecting():
            spec = lookup(str(self.instance_type), field=f"{field_name}.instance_type")
        nvidia = set(INFERENCE_FAMILIES[AcceleratorVendor.NVIDIA])
        if spec is not None and (not spec.is_nvidia or spec.family not in nvidia):
            problems.add(
                f"{field_name}.instance_type",
                self.instance_type,
                f"an NVIDIA inference type of the {', '.join(sorted(nvidia))} families, or None for Fargate",
                "Triton here serves on one NVIDIA GPU per replica (g5, g6, g6e) or on CPU in Fargate",
            )

    def spec(self) -> InstanceSpec:
        return lookup(str(self.instance_type), field="instance_type")

    def role_name(self, cluster_name: str) -> str:
        return f"{cluster_name}-triton-{self.name}"

    def values(
        self,
        *,
        namespace: str,
        region: str,
        role_arn: str,
        load_balancer_cidrs: Sequence[str],
        scraper_cidrs: Sequence[str] = (),
        pool: str | None = None,
    ) -> TritonValues:
        args = [
            f"--model-repository={self.model_repository.url}",
            f"--http-port={HTTP_PORT}",
            f"--grpc-port={GRPC_PORT}",
            f"--metrics-port={METRICS_PORT}",
            *([] if not self.on_fargate else ["--allow-gpu-metrics=false"]),
            *self.extra_args,
        ]
        env = {"AWS_DEFAULT_REGION": region, "AWS_REGION": region, "TRITON_AWS_MOUNT_DIRECTORY": MODEL_CACHE_DIR}
        if self.on_fargate:
            # Guaranteed QoS (Fargate requires requests = limits); 256 MiB under the size: Fargate adds it.
            cpu = f"{round(self.fargate_cpu * 1000)}m"
            memory = f"{int(self.fargate_memory_gib * 1024) - KUBERNETES_OVERHEAD_MIB}Mi"
            resources = {"cpu": cpu, "memory": memory, EPHEMERAL_STORAGE: f"{self.fargate_storage_gib}Gi"}
            requests, limits = resources, resources
            node_selector: dict[str, str] = {}
            tolerations: list[dict[str, str]] = []
            pod_labels = dict(fargate_labels())
            shm = "1Gi"
        else:
            spec = self.spec()
            requests = pod_requests(spec, 1)  # one GPU and its share of the host, sized like model services
            limits = {NVIDIA_GPU: "1"}
            node_selector = {"node.kubernetes.io/instance-type": spec.name, **({POOL_LABEL: pool} if pool else {})}
            tolerations = [{"key": NVIDIA_GPU, "operator": "Exists", "effect": "NoSchedule"}]
            pod_labels = {}
            shm = shm_size(spec, 1)
        load_seconds = int(self.load_timeout.to_seconds())
        return TritonValues(
            name=self.name,
            namespace=namespace,
            image=self.image or TRITON_IMAGE,
            args=args,
            env=env,
            pod_labels=pod_labels,
            role_arn=role_arn,
            node_selector=node_selector,
            tolerations=tolerations,
            requests=requests,
            limits=limits,
            shm_size=shm,
            startup_failure_threshold=math.ceil(load_seconds / 10),
            autoscaling=AutoscalingValues(
                min_replicas=self.min_replicas,
                max_replicas=self.max_replicas,
                queue_metric=TRITON_QUEUE_METRIC,
                queue_target=self.queue_target,
                cpu_target=self.cpu_target,
                scale_down_window_seconds=max(300, load_seconds),
            ),
            ingress_annotations=self.exposure().annotations(),
            load_balancer_cidrs=list(load_balancer_cidrs),
            scraper_namespaces=[helm.PROMETHEUS.namespace],
            scraper_cidrs=list(scraper_cidrs),
        )


def role_arn(scope: Construct, role_name: str) -> str:
    """The ARN of a role by name, as a plain string when the stack's account and region are known (so the
    ServiceAccount's annotation exports to GitOps YAML without CDK tokens)."""
    stack = Stack.of(scope)
    partition = (
        RegionInfo.get(stack.region).partition if not Token.is_unresolved(stack.region) else None
    ) or stack.partition
    return f"arn:{partition}:iam::{stack.account}:role/{role_name}"


class TritonModelAccess(Construct):
    """The IAM role one Triton service's pods assume through IRSA: trusted only by that service account of
    this cluster, allowed only to list and read its repository's prefix.

    Attributes: ``role``.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        cluster: eks.ICluster,
        role_name: str,
        namespace: str,
        service_account: str,
        repository: S3ModelRepository,
    ) -> None:
        super().__init__(scope, construct_id)
        provider = cluster.open_id_connect_provider
        issuer = provider.open_id_connect_provider_issuer
        # The issuer is known only at deploy, and IAM condition keys cannot be intrinsics: CfnJson resolves them.
        conditions = CfnJson(
            self,
            "TrustConditions",
            value={
                f"{issuer}:sub": f"system:serviceaccount:{namespace}:{service_account}",
                f"{issuer}:aud": "sts.amazonaws.com",
            },
        )
        self.role = iam.Role(
            self,
            "Role",
            role_name=role_name,
            assumed_by=iam.OpenIdConnectPrincipal(provider, {"StringEquals": conditions}),
            description=f"Triton {namespace}/{service_account}: read its model repository {repository.url}",
        )
        bucket_arn = f"arn:{Aws.PARTITION}:s3:::{repository.bucket}"
        prefix = f"{repository.prefix.rstrip('/')}/" if repository.prefix else ""
        listing: dict[str, object] = {"StringLike": {"s3:prefix": [f"{prefix}*"]}} if prefix else {}
        self.role.add_to_policy(
            iam.PolicyStatement(actions=["s3:ListBucket"], resources=[bucket_arn], conditions=listing or None)
        )
        self.role.add_to_policy(iam.PolicyStatement(actions=["s3:GetObject"], resources=[f"{bucket_arn}/{prefix}*"]))
        acknowledge(
            self.role,
            f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::{repository.bucket}/{prefix}*]",
            "Read-only access to the objects under one Triton model repository prefix; the model files' keys are "
            "not known in advance.",
        )
        acknowledge_inline_policy(
            self.role, "The role's two read-only statements belong to this one service's repository, nothing else."
        )
