"""Every checkov finding the gate accepts, each on named resources with a specific reason.

A key is "<stack>/<logical id>" for a template resource, "<kind>/<namespace>/<name>" for an object eks-ml
applies or exports ("-" for no namespace), and "<chart>: <kind>/<namespace>/<name>" for an object rendered
from a pinned upstream chart (which eks-ml does not control; it configures only the values). A suppression
that matches no finding fails the gate, so the table cannot go stale.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from eks_ml import helm
from eks_ml.cluster.system_nodes import AUTO_MODE_SYSTEM_PLACEMENT, MANAGED_SYSTEM_PLACEMENT
from eks_ml.inference.model_service import VLLM_NEURON_IMAGE, VLLM_NVIDIA_IMAGE
from eks_ml.k8s.image_prepull import prepull_name

from .checkov import Result


@dataclass(frozen=True)
class Suppression:
    check_id: str
    keys: tuple[str, ...]
    reason: str

    def __post_init__(self) -> None:
        assert len(self.reason) >= 20, f"{self.check_id}: a suppression needs a specific reason"
        assert self.keys and len(set(self.keys)) == len(self.keys), f"{self.check_id}: name each resource once"

    def matches(self, result: Result) -> bool:
        return result.check_id == self.check_id and result.key in self.keys


# ---- CloudFormation ---------------------------------------------------------------------------------------

STACKS_WITH_KUBECTL = {"Training": "Cluster", "Inference": "Cluster", "Serving": "Serving", "Patterns": "Patterns"}
_KUBECTL_IDS = {
    "Cluster": (
        "ClusterBaseClusterKubectlProviderHandler8CE0B9B9",
        "ClusterBaseClusterKubectlProviderframeworkonEventDFE7976E",
    ),
    "Serving": (
        "ServingBaseClusterKubectlProviderHandlerF609C9D4",
        "ServingBaseClusterKubectlProviderframeworkonEvent64F50518",
    ),
    # examples/inference_patterns
    "Patterns": (
        "PatternsBaseClusterKubectlProviderHandlerEE906C60",
        "PatternsBaseClusterKubectlProviderframeworkonEvent4875AF7E",
    ),
}
# examples/karpenter_training: its VPC and its training cluster in one stack.
_KARPENTER_TRAINING = "KarpenterTraining"
KUBECTL_FUNCTIONS = (
    *(f"{stack}/{logical_id}" for stack, prefix in STACKS_WITH_KUBECTL.items() for logical_id in _KUBECTL_IDS[prefix]),
    f"{_KARPENTER_TRAINING}/TrainingBaseClusterKubectlProviderHandler0D24D98D",
    f"{_KARPENTER_TRAINING}/TrainingBaseClusterKubectlProviderframeworkonEventCD83D305",
)
RESTRICT_DEFAULT_SG = tuple(
    f"{stack}/CustomVpcRestrictDefaultSGCustomResourceProviderHandlerDC833E5E"
    for stack in ("Network", _KARPENTER_TRAINING)
)
LOAD_BALANCER_POLICIES = (
    "Inference/ClusterLoadBalancerRoleDefaultPolicyDCFCA09D",
    "Serving/ServingLoadBalancerRoleDefaultPolicy6B9C3BA9",
    "Patterns/PatternsLoadBalancerRoleDefaultPolicy81B97571",
)
# CDK's CfnJson function, which resolves the IRSA trust conditions of the Triton roles (their keys hold the
# cluster's OIDC issuer, known only at deploy): examples/inference_patterns.
CFN_JSON_FUNCTIONS = ("Patterns/AWSCDKCfnUtilsProviderCustomResourceProviderHandlerCF82AA57",)
INTERRUPTION_QUEUES = (
    "Inference/ClusterKarpenterInterruptionQueue4FC4486E",
    "Serving/ServingKarpenterInterruptionQueueD7D37A68",
    "Patterns/PatternsKarpenterInterruptionQueueB608CFDB",
    f"{_KARPENTER_TRAINING}/TrainingKarpenterNodesKarpenterInterruptionQueue8D6181B5",
)

CLOUDFORMATION = (
    Suppression(
        "CKV_AWS_116",
        (*KUBECTL_FUNCTIONS, *RESTRICT_DEFAULT_SG),
        "CDK custom-resource function: CloudFormation invokes it synchronously (through the provider framework), "
        "and a failure fails the deployment; a dead-letter queue only receives failed asynchronous invocations.",
    ),
    Suppression(
        "CKV_AWS_115",
        (*KUBECTL_FUNCTIONS, *RESTRICT_DEFAULT_SG),
        "CDK custom-resource function that runs only during a deployment of its stack; aws_eks_v2 and the VPC "
        "construct offer no reserved-concurrency option, and a reservation would take account capacity.",
    ),
    Suppression(
        "CKV_AWS_117",
        RESTRICT_DEFAULT_SG,
        "CDK's function that strips the default security group's rules calls only the EC2 API over the internet; "
        "it has nothing to reach inside the VPC, and CDK creates it without VPC options.",
    ),
    Suppression(
        "CKV_AWS_173",
        KUBECTL_FUNCTIONS,
        "The kubectl functions' environment holds no secret (AWS_STS_REGIONAL_ENDPOINTS, the handler's ARN); "
        "Lambda encrypts it at rest with its service key.",
    ),
    Suppression(
        "CKV_AWS_116",
        CFN_JSON_FUNCTIONS,
        "CDK's CfnJson custom-resource function: CloudFormation invokes it synchronously during the deployment, "
        "and a failure fails it; a dead-letter queue only receives failed asynchronous invocations.",
    ),
    Suppression(
        "CKV_AWS_115",
        CFN_JSON_FUNCTIONS,
        "CDK's CfnJson function runs only while its stack deploys (it turns a JSON string into an object); CDK "
        "offers no reserved-concurrency option for it, and a reservation would take account capacity.",
    ),
    Suppression(
        "CKV_AWS_117",
        CFN_JSON_FUNCTIONS,
        "CDK's CfnJson function parses its input and calls no service at all; it has nothing to reach inside the "
        "VPC, and CDK creates it without VPC options.",
    ),
    Suppression(
        "CKV_AWS_27",
        INTERRUPTION_QUEUES,
        "The queue is encrypted with SQS-managed SSE (SqsManagedSseEnabled: true), which this check does not "
        "recognise; it holds only EC2 interruption notices, kept five minutes.",
    ),
    Suppression(
        "CKV_AWS_111",
        LOAD_BALANCER_POLICIES,
        "The AWS Load Balancer Controller's upstream policy (shipped by aws-cdk-lib): writes on '*' are limited "
        "by conditions on the elbv2.k8s.aws/cluster tag, which this check does not evaluate.",
    ),
)

# ---- eks-ml's own Kubernetes objects --------------------------------------------------------------------------

MODEL_SERVERS = ("Deployment/inference/qwen3-8b", "Deployment/inference/qwen3-8b-inf2")
# examples/inference_patterns: the user's images, run by eks-ml as given (eks_ml.inference.queue_worker).
QUEUE_WORKERS = ("Deployment/inference/embed-sqs", "Deployment/inference/summarize-msk")
USER_IMAGE = "The worker runs the user's own image (QueueWorkerProps.image), passed as given; "
# examples/inference_patterns: Triton on a GPU pool, and on Fargate (which sets CPU and memory limits).
TRITON_GPU_SERVERS = ("Deployment/inference/vision",)
TRITON_SERVERS = (*TRITON_GPU_SERVERS, "Deployment/inference/tabular")
NEURON_MONITOR = "DaemonSet/neuron-monitor/neuron-monitor"
BATCH_JOBS = ("Job/batch/nightly-summaries",)
# The default app's server images kept on their pools (eks_ml.k8s.image_prepull).
PREPULLS = tuple(
    f"DaemonSet/inference/{prepull_name(pool, image)}"
    for pool, image in (("gpu", VLLM_NVIDIA_IMAGE), ("inferentia", VLLM_NEURON_IMAGE))
)
# One per training node group of the variants (default: p5, trainium: trn1).
BURN_IN = tuple(
    f"DaemonSet/eks-ml-burn-in/burn-in-{group}"
    for group in ("p5", "trn1", "p5-on-demand", "p5-block")  # the last two: examples/karpenter_training's pools
)
# The trainium variant runs on a Capacity Block with a window (tests/conftest.py).
CAPACITY_BLOCK_WATCH = ("CronJob/training/capacity-block-trn1",)
# The Jobs' names carry a hash of their spec (eks_ml.k8s.crd_upgrade.job_name): one per cluster of the variants
# that run them (Auto Mode has neither Karpenter nor the load balancer controller release; it runs its own).
_CRD_JOBS = (
    ((helm.KARPENTER, helm.AWS_LOAD_BALANCER_CONTROLLER), MANAGED_SYSTEM_PLACEMENT),
    ((helm.KUBEFLOW_TRAINER,), MANAGED_SYSTEM_PLACEMENT),
    ((helm.KUBEFLOW_TRAINER,), AUTO_MODE_SYSTEM_PLACEMENT),
    ((helm.KARPENTER,), MANAGED_SYSTEM_PLACEMENT),  # examples/karpenter_training: Karpenter's own prelude
    ((helm.LWS,), MANAGED_SYSTEM_PLACEMENT),  # examples/inference_patterns: LeaderWorkerSet's own prelude
)
CRD_UPGRADE_JOBS = tuple(
    f"Job/{pins[0].namespace}/" + helm.crd_upgrade_job_name(pins, placement.values()) for pins, placement in _CRD_JOBS
)

OWN_OBJECTS = (
    Suppression(
        "CKV_K8S_11",
        TRITON_GPU_SERVERS,
        "No CPU limit on a GPU Triton replica: its request reserves its share of the GPU node's CPUs, and a CFS "
        "limit would throttle pre- and post-processing under load; Fargate replicas do set limits.",
    ),
    Suppression(
        "CKV_K8S_13",
        TRITON_GPU_SERVERS,
        "Memory is requested as the replica's share of its GPU node (one GPU's worth); the node belongs to the GPU "
        "pool's model servers, and a limit would kill a replica that loads a larger model version.",
    ),
    Suppression(
        "CKV_K8S_15",
        TRITON_SERVERS,
        "nvcr.io/nvidia/tritonserver:26.07-py3 is a fixed release tag; IfNotPresent pulls the multi-gigabyte image "
        "once per node instead of on every start.",
    ),
    Suppression(
        "CKV_K8S_43",
        TRITON_SERVERS,
        "The Triton image is pinned to NGC release 26.07 in eks_ml.inference.triton; a digest would hide which "
        "Triton release runs.",
    ),
    Suppression(
        "CKV_K8S_22",
        TRITON_SERVERS,
        "Triton's backends may write temporary files under the image's file system, and eks-ml has not run Triton "
        "with a read-only root (nothing is deployed); the S3 repository copy already goes to an emptyDir.",
    ),
    Suppression(
        "CKV_K8S_23",
        TRITON_SERVERS,
        "The Triton image starts as root; runAsNonRoot would refuse to start it. It drops ALL capabilities, "
        "forbids privilege escalation and uses RuntimeDefault seccomp instead.",
    ),
    Suppression(
        "CKV_K8S_40",
        TRITON_SERVERS,
        "The Triton image runs as root (uid 0), see CKV_K8S_23; another uid would lose access to the image's files.",
    ),
    Suppression(
        "CKV_K8S_16",
        BURN_IN,
        "The burn-in's accelerator and EFA checks open every GPU, Neuron and EFA device without a device-plugin "
        "allocation (one would hold all GPUs for the pod's life) and run DCGM diagnostics: privileged, those two "
        "init containers only (eks_ml.k8s.burn_in).",
    ),
    Suppression(
        "CKV_K8S_20",
        BURN_IN,
        "The privileged check containers (CKV_K8S_16) cannot set allowPrivilegeEscalation: false (the API rejects "
        "the pair); the API steps and the pause container set it.",
    ),
    Suppression(
        "CKV_K8S_37",
        BURN_IN,
        "A privileged container holds every capability whatever it drops (CKV_K8S_16); the API steps and the "
        "pause container drop ALL.",
    ),
    Suppression(
        "CKV_K8S_28",
        BURN_IN,
        "NET_RAW comes with privilege in the two check containers (CKV_K8S_16); the others drop ALL.",
    ),
    Suppression(
        "CKV_K8S_23",
        CAPACITY_BLOCK_WATCH,
        "The watch writes the checkpoint signal into the jobs' checkpoint directory on FSx, which the training "
        "images (root) own; it drops ALL capabilities, forbids escalation and has a read-only root. Without a "
        "file system it runs as nobody (eks_ml.k8s.capacity_block_watch).",
    ),
    Suppression(
        "CKV_K8S_40",
        CAPACITY_BLOCK_WATCH,
        "Runs as root (uid 0) to write beside the root-owned checkpoints, see CKV_K8S_23.",
    ),
    Suppression(
        "CKV_K8S_38",
        CAPACITY_BLOCK_WATCH,
        "The watch gets and JSON-patches the training ClusterQueue (zeroing the block's quota); its RBAC allows "
        "only get and patch on that one queue, by resourceNames.",
    ),
    Suppression(
        "CKV_K8S_43",
        CAPACITY_BLOCK_WATCH,
        "python:3.12-slim-bookworm is a patch-series tag pulled on every run (imagePullPolicy Always) so that "
        "Python and Debian security fixes arrive; a digest would freeze them out.",
    ),
    Suppression(
        "CKV_K8S_22",
        BURN_IN,
        "nv-hostengine writes its socket and state under /var/run and /var/log of the DCGM image; the API steps "
        "and the pause container have read-only roots.",
    ),
    Suppression(
        "CKV_K8S_8",
        BURN_IN,
        "The burn-in runs in init containers; what stays is a pause container with nothing to probe (no shell, "
        "no port).",
    ),
    Suppression(
        "CKV_K8S_9",
        BURN_IN,
        "The burn-in runs in init containers; the pause container that stays serves nothing a readiness probe "
        "could gate.",
    ),
    Suppression(
        "CKV_K8S_8",
        PREPULLS,
        "The pre-pull container only sleeps to keep the server image on the node: it serves no port and has no "
        "state a liveness probe could check; the kubelet restarts it if sleep exits.",
    ),
    Suppression(
        "CKV_K8S_9",
        PREPULLS,
        "The pre-pull DaemonSet is behind no Service and takes no traffic: readiness gates nothing.",
    ),
    Suppression(
        "CKV_K8S_38",
        CRD_UPGRADE_JOBS,
        "The Job's one command is kubectl apply of CRDs: it needs its service account token, whose RBAC allows "
        "only creating CRDs and getting or patching the named ones (eks_ml.k8s.crd_upgrade).",
    ),
    Suppression(
        "CKV_K8S_43",
        CRD_UPGRADE_JOBS,
        "registry.k8s.io/kubectl is pinned to a release tag chosen for the supported Kubernetes versions (a test "
        "checks the skew); the registry's digests differ per architecture and hide which release runs.",
    ),
    Suppression(
        "CKV_K8S_15",
        CRD_UPGRADE_JOBS,
        "IfNotPresent with a pinned release tag: the Job runs once per chart version and needs no fresh pull.",
    ),
    Suppression(
        "CKV_K8S_11",
        MODEL_SERVERS,
        "No CPU limit on purpose: a model server's request reserves its CPUs, and a limit would throttle "
        "tokenization and scheduling threads under load (CFS quota) without protecting anything else on the node.",
    ),
    Suppression(
        "CKV_K8S_13",
        MODEL_SERVERS,
        "Memory is requested from the catalog's per-instance share; vLLM's host memory grows with the KV-cache "
        "swap space and batch, and the node is dedicated to the model (Karpenter pool), so no limit is set.",
    ),
    Suppression(
        "CKV_K8S_15",
        (*MODEL_SERVERS, NEURON_MONITOR, *BURN_IN, *PREPULLS),
        "Images are pinned to a version tag; IfNotPresent pulls each version once per node instead of making every "
        "start of a multi-gigabyte image depend on the registry.",
    ),
    Suppression(
        "CKV_K8S_43",
        (*MODEL_SERVERS, NEURON_MONITOR, *BURN_IN, *PREPULLS),
        "Images are pinned to an exact release tag in eks_ml (vLLM, Neuron, DCGM, the training DLCs, pause); digests are per registry and "
        "architecture and would hide which release runs.",
    ),
    Suppression(
        "CKV_K8S_22",
        MODEL_SERVERS,
        "vLLM writes its compile, Hugging Face and Triton caches under the root file system; a read-only root "
        "fails its start-up (DESIGN.md note 14).",
    ),
    Suppression(
        "CKV_K8S_23",
        MODEL_SERVERS,
        "The vLLM images run as root (no USER in their Dockerfiles); runAsNonRoot would refuse to start them. "
        "They drop ALL capabilities, forbid privilege escalation and use RuntimeDefault seccomp instead.",
    ),
    Suppression(
        "CKV_K8S_40",
        MODEL_SERVERS,
        "The vLLM images run as root (uid 0), see CKV_K8S_23; a different uid would lose access to the image's "
        "own files.",
    ),
    # examples/inference_patterns' batch inference Job (eks_ml.k8s.batch_inference): the vLLM image, as a Job.
    *(
        Suppression(check, BATCH_JOBS, reason)
        for check, reason in (
            (
                "CKV_K8S_11",
                "No CPU limit: the request reserves the node's CPUs for vLLM's tokenizer and scheduler "
                "threads, which a CFS quota would throttle; the node runs nothing else of the job's.",
            ),
            (
                "CKV_K8S_13",
                "Memory is requested from the catalog's per-instance share; vLLM's host memory grows with "
                "its batch, and an OOM kill would only spend one of the shard's retries.",
            ),
            (
                "CKV_K8S_15",
                "The vLLM image is pinned to a release tag; IfNotPresent pulls it once per node instead of "
                "once per shard.",
            ),
            (
                "CKV_K8S_43",
                "The vLLM image is pinned to an exact release tag (eks_ml.inference.model_service); a digest "
                "would hide which release runs.",
            ),
            (
                "CKV_K8S_22",
                "vLLM writes its compile, Hugging Face and Triton caches under the root file system; a "
                "read-only root fails its start-up (DESIGN.md note 14).",
            ),
            (
                "CKV_K8S_23",
                "The vLLM image runs as root (no USER in its Dockerfile); the container drops ALL "
                "capabilities, forbids privilege escalation and uses RuntimeDefault seccomp instead.",
            ),
            (
                "CKV_K8S_40",
                "The vLLM image runs as root (uid 0), see CKV_K8S_23; another uid would lose access to the "
                "image's own files.",
            ),
            (
                "CKV_K8S_38",
                "The pod reaches S3 through EKS Pod Identity; that it gets its credentials with the "
                "service account token unmounted is not verified, and the account has no RBAC binding, so its token "
                "grants nothing in the cluster.",
            ),
        )
    ),
    Suppression(
        "CKV_K8S_25",
        ("Deployment/inference/qwen3-8b-inf2",),
        "IPC_LOCK, the one capability added back after dropping ALL: the Neuron runtime locks its host DMA buffers "
        "(Neuron's Kubernetes examples add it).",
    ),
    Suppression(
        "CKV_K8S_8",
        QUEUE_WORKERS,
        "A queue worker serves no port to probe; a stuck worker stops deleting (or committing) its messages, which "
        "return to the queue after their visibility timeout (or stay as lag), and KEDA scales on that backlog.",
    ),
    Suppression(
        "CKV_K8S_9",
        QUEUE_WORKERS,
        "No Service routes traffic to a queue worker (it pulls its work), so readiness gates nothing.",
    ),
    Suppression(
        "CKV_K8S_11",
        QUEUE_WORKERS,
        "No CPU limit on purpose, as for model servers: the request reserves the CPUs that come with the "
        "accelerators, and CFS throttling would slow pre- and post-processing without protecting anything.",
    ),
    Suppression("CKV_K8S_15", QUEUE_WORKERS, USER_IMAGE + "its tag decides when a new version is pulled."),
    Suppression("CKV_K8S_43", QUEUE_WORKERS, USER_IMAGE + "pin a digest in the image string to get one."),
    Suppression("CKV_K8S_22", QUEUE_WORKERS, USER_IMAGE + "model runtimes write caches under the root file system."),
    Suppression(
        "CKV_K8S_23",
        QUEUE_WORKERS,
        USER_IMAGE + "most ML images run as root; the worker drops ALL capabilities, forbids escalation and "
        "uses RuntimeDefault seccomp.",
    ),
    Suppression("CKV_K8S_40", QUEUE_WORKERS, USER_IMAGE + "its user is the image's own, see CKV_K8S_23."),
    Suppression(
        "CKV_K8S_25",
        ("Deployment/inference/summarize-msk",),
        "IPC_LOCK, the one capability added back after dropping ALL on an Inferentia worker: the Neuron runtime "
        "locks its host DMA buffers (as for the inf2 model server).",
    ),
    Suppression(
        "CKV_K8S_16",
        (NEURON_MONITOR,),
        "neuron-monitor reads every Neuron device through the driver; AWS's published DaemonSet runs it privileged.",
    ),
    Suppression(
        "CKV_K8S_20",
        (NEURON_MONITOR,),
        "A privileged container cannot set allowPrivilegeEscalation: false (the API rejects the pair).",
    ),
    Suppression(
        "CKV_K8S_22",
        (NEURON_MONITOR,),
        "AWS's neuron-monitor image writes its runtime state under the root file system; eks-ml keeps AWS's "
        "published container settings for it.",
    ),
    Suppression(
        "CKV_K8S_23",
        (NEURON_MONITOR,),
        "neuron-monitor runs as root in a privileged container to open the Neuron devices.",
    ),
    Suppression(
        "CKV_K8S_40",
        (NEURON_MONITOR,),
        "neuron-monitor runs as root (uid 0) to open the Neuron devices, see CKV_K8S_23.",
    ),
    Suppression(
        "CKV_K8S_28",
        (NEURON_MONITOR,),
        "A privileged container has every capability; dropping NET_RAW has no effect on it.",
    ),
    Suppression(
        "CKV_K8S_37",
        (NEURON_MONITOR,),
        "A privileged container has every capability; capability lists have no effect on it.",
    ),
    Suppression(
        "CKV_K8S_29",
        (NEURON_MONITOR,),
        "Its one container is privileged, which a pod or container security context cannot confine further.",
    ),
    Suppression(
        "CKV_K8S_31",
        (NEURON_MONITOR,),
        "The container runtime does not apply a seccomp profile to a privileged container.",
    ),
    Suppression(
        "CKV_K8S_8",
        (NEURON_MONITOR,),
        "AWS's published neuron-monitor DaemonSet has no health endpoint to probe; a crash restarts the container.",
    ),
    Suppression(
        "CKV_K8S_9",
        (NEURON_MONITOR,),
        "No readiness endpoint: the scraper reads the metrics port directly and no Service routes to the pods.",
    ),
)

# ---- objects rendered from pinned upstream charts (eks-ml sets values, not templates) -------------------------

EFA = "aws-efa-k8s-device-plugin: DaemonSet/kube-system/aws-efa-device-plugin-aws-efa-k8s-device-plugin"
LBC = "aws-load-balancer-controller: Deployment/kube-system/aws-load-balancer-controller"
DCGM = "dcgm-exporter: DaemonSet/eks-ml-observability/dcgm-exporter"
KARPENTER = "karpenter: Deployment/kube-system/karpenter"
KSM = "kube-state-metrics: Deployment/eks-ml-observability/kube-state-metrics"
JOBSET = "kubeflow-trainer: Deployment/kubeflow-system/jobset-controller"
TRAINER = "kubeflow-trainer: Deployment/kubeflow-system/kubeflow-trainer-controller-manager"
KUEUE = "kueue: Deployment/kueue-system/kueue-controller-manager"
NEURON = "neuron-helm-chart: DaemonSet/kube-system/neuron-device-plugin"
NVIDIA = "nvidia-device-plugin: DaemonSet/kube-system/nvidia-device-plugin"
MPS = "nvidia-device-plugin: DaemonSet/kube-system/nvidia-device-plugin-mps-control-daemon"
ADAPTER = "prometheus-adapter: Deployment/monitoring/prometheus-adapter"
NODE_EXPORTER = "prometheus-node-exporter: DaemonSet/eks-ml-observability/node-exporter-prometheus-node-exporter"
PROMETHEUS = "prometheus: Deployment/monitoring/prometheus-server"
KEDA = tuple(
    f"keda: Deployment/keda/{name}"
    for name in ("keda-operator", "keda-operator-metrics-apiserver", "keda-admission-webhooks")
)
LWS = "lws: Deployment/lws-system/lws-controller-manager"
DEVICE_PLUGINS = (EFA, NEURON, NVIDIA)
MPS_NEVER_RUNS = (
    "the MPS control daemon runs only on nodes labelled nvidia.com/mps.capable=true, which eks-ml never sets "
    "(declared optional in eks_ml.helm), so no pod of it is ever created"
)
ADAPTER_BINDING = "prometheus-adapter: ClusterRoleBinding/-/prometheus-adapter-hpa-controller"
ADAPTER_WILDCARD = (
    "The adapter's role allows '*' only in API group custom.metrics.k8s.io (the metrics it serves itself); the "
    "check reads the wildcard as every resource (secrets, nodes/proxy, impersonate, services/status), which it "
    "does not grant."
)
WEBHOOK_CERTS = (
    "The controller manages its own webhook serving certificate: it patches the caBundle of its own webhook "
    "configurations (resourceNames in the chart's rules) and reads that certificate's Secret in its namespace."
)

UPSTREAM_CHARTS = (
    Suppression(
        "CKV_K8S_43",
        (*DEVICE_PLUGINS, MPS, DCGM, LBC, KSM, JOBSET, TRAINER, KUEUE, ADAPTER, PROMETHEUS, NODE_EXPORTER, *KEDA, LWS),
        "The chart names its image by the release tag that matches the chart version eks-ml pins (eks_ml.helm); "
        "the chart's values take a tag, and the pin moves tag and chart together.",
    ),
    Suppression(
        "CKV_K8S_15",
        (*DEVICE_PLUGINS, MPS, DCGM, LBC, KSM, JOBSET, TRAINER, KUEUE, ADAPTER, NODE_EXPORTER, PROMETHEUS, LWS),
        "IfNotPresent with a pinned release tag (the chart's default): each version is pulled once per node, and "
        "a node restart does not depend on the registry.",
    ),
    Suppression(
        "CKV_K8S_11",
        (*DEVICE_PLUGINS, MPS, LBC, KARPENTER, KSM, TRAINER, ADAPTER, NODE_EXPORTER, PROMETHEUS, LWS),
        "eks-ml sets CPU requests (the cluster model places pods by them) and no CPU limits: CFS throttling of a "
        "controller or device plugin delays leader-election renewals and kubelet registration.",
    ),
    Suppression(
        "CKV_K8S_38",
        (LBC, KARPENTER, KSM, JOBSET, TRAINER, KUEUE, ADAPTER, PROMETHEUS, NEURON, NVIDIA, MPS, *KEDA, LWS),
        "The pod calls the Kubernetes API with the RBAC its chart grants (controllers watch and write objects; "
        "the device plugins read Node objects), so it needs its service account token.",
    ),
    Suppression(
        "CKV_K8S_40",
        (*DEVICE_PLUGINS, MPS, DCGM),
        "Runs as root (uid 0): it writes its socket in the kubelet's device-plugin directory (hostPath), or, for "
        "dcgm-exporter, talks to the GPU driver.",
    ),
    Suppression(
        "CKV_K8S_40",
        (LBC, JOBSET, TRAINER, KUEUE, *KEDA, LWS),
        "The image's own non-root user (uid 65532 or the chart's runAsNonRoot) is below 10000; overriding it would "
        "have to match file ownership inside the image.",
    ),
    Suppression(
        "CKV_K8S_23",
        (*DEVICE_PLUGINS, MPS, DCGM),
        "Runs as root: device plugins register through a root-owned kubelet socket directory, and dcgm-exporter "
        "needs root with SYS_ADMIN for GPU profiling counters.",
    ),
    Suppression(
        "CKV_K8S_22",
        (*DEVICE_PLUGINS, MPS, DCGM, TRAINER),
        "Not read-only in the chart: device plugins and the DCGM host engine keep runtime state under /, and the "
        "trainer controller writes its generated webhook certificate there.",
    ),
    Suppression(
        "CKV_K8S_29",
        (EFA, DCGM, TRAINER, NEURON),
        "The chart renders no pod-level security context; its container-level context carries the settings "
        "(for the device plugins and DCGM, what their devices need; for the trainer, non-root and no capabilities).",
    ),
    Suppression(
        "CKV_K8S_31",
        (EFA, DCGM, NEURON, NVIDIA, MPS),
        "The device plugin or DCGM chart sets no seccomp profile and eks-ml does not add one to host-level "
        "daemons it cannot test on hardware; EKS nodes' containerd applies no default profile.",
    ),
    Suppression(
        "CKV_K8S_16",
        (EFA,),
        "The EFA device plugin (AWS's chart) runs privileged to expose /dev/infiniband devices to training pods.",
    ),
    Suppression("CKV_K8S_16", (MPS,), f"Privileged in the chart, but {MPS_NEVER_RUNS}."),
    Suppression(
        "CKV_K8S_19",
        (EFA,),
        "The EFA device plugin uses the host network to discover the node's EFA interfaces.",
    ),
    Suppression(
        "CKV_K8S_19",
        (NODE_EXPORTER,),
        "node-exporter reports the node's own network interfaces, so it runs in the host network namespace.",
    ),
    Suppression(
        "CKV_K8S_17",
        (NODE_EXPORTER,),
        "node-exporter reports the node's processes, so it runs in the host PID namespace.",
    ),
    Suppression("CKV_K8S_17", (MPS,), f"Uses the host PID namespace, but {MPS_NEVER_RUNS}."),
    Suppression(
        "CKV_K8S_20",
        (EFA,),
        "A privileged container (see CKV_K8S_16) cannot set allowPrivilegeEscalation: false.",
    ),
    Suppression("CKV_K8S_20", (MPS,), f"Privileged in the chart, but {MPS_NEVER_RUNS}."),
    Suppression(
        "CKV_K8S_28",
        (EFA,),
        "A privileged container (see CKV_K8S_16) has every capability; dropping NET_RAW has no effect on it.",
    ),
    Suppression("CKV_K8S_28", (MPS,), f"Keeps the default capabilities, but {MPS_NEVER_RUNS}."),
    Suppression(
        "CKV_K8S_37",
        (EFA,),
        "A privileged container (see CKV_K8S_16) has every capability; capability lists have no effect on it.",
    ),
    Suppression("CKV_K8S_37", (MPS,), f"Keeps the default capabilities, but {MPS_NEVER_RUNS}."),
    Suppression(
        "CKV_K8S_25",
        (DCGM,),
        "dcgm-exporter adds SYS_ADMIN, which DCGM needs to read the GPU profiling counters (NVIDIA's chart).",
    ),
    Suppression(
        "CKV_K8S_39",
        (DCGM,),
        "dcgm-exporter needs SYS_ADMIN for DCGM's profiling metrics (NVIDIA's chart default).",
    ),
    Suppression(
        "CKV_K8S_8",
        (*DEVICE_PLUGINS, MPS, NODE_EXPORTER),
        "The chart defines no liveness probe for this DaemonSet (a device plugin has no HTTP endpoint; the "
        "kubelet re-registers it when its socket goes away).",
    ),
    Suppression(
        "CKV_K8S_9",
        (*DEVICE_PLUGINS, MPS, NODE_EXPORTER),
        "The chart defines no readiness probe for this DaemonSet: no Service routes traffic to a device plugin.",
    ),
    Suppression(
        "CKV_K8S_155",
        (
            "kubeflow-trainer: ClusterRole/-/jobset-controller",
            "kubeflow-trainer: ClusterRole/-/kubeflow-trainer-controller-manager",
            "kueue: ClusterRole/-/kueue-manager-role",
        ),
        WEBHOOK_CERTS,
    ),
    Suppression(
        "CKV_K8S_155",
        ("keda: ClusterRole/-/keda-operator-minimal-cluster-role",),
        "KEDA's operator generates its own certificates (the chart's certificates.autoGenerated) and patches the "
        "caBundle of its ValidatingWebhookConfiguration; the chart's rule names no resourceNames, so the check "
        "reads it as control over every webhook configuration.",
    ),
    Suppression(
        "CKV_K8S_155",
        ("lws: ClusterRole/-/lws-manager-role",),
        "LWS v0.10.0's manager role may get, list, update and watch (never create or delete) webhook "
        "configurations, without resourceNames in the upstream chart: its built-in certificate management writes "
        "the CA into the controller's own two configurations. eks-ml installs the chart as released.",
    ),
    Suppression(
        "CKV2_K8S_5",
        (
            "kubeflow-trainer: RoleBinding/kubeflow-system/jobset-manager-secrets-rolebinding",
            "kueue: RoleBinding/kueue-system/kueue-manager-secrets-rolebinding",
        ),
        WEBHOOK_CERTS + " The binding is a Role in the controller's own namespace, not cluster-wide.",
    ),
    *(
        Suppression(check, (ADAPTER_BINDING,), ADAPTER_WILDCARD)
        for check in ("CKV2_K8S_1", "CKV2_K8S_2", "CKV2_K8S_3", "CKV2_K8S_4", "CKV2_K8S_5")
    ),
    Suppression(
        "CKV_K8S_49",
        ("prometheus-adapter: ClusterRole/-/prometheus-adapter-server-resources",),
        ADAPTER_WILDCARD,
    ),
)

SUPPRESSIONS: tuple[Suppression, ...] = (*CLOUDFORMATION, *OWN_OBJECTS, *UPSTREAM_CHARTS)


def unsuppressed(results: Iterable[Result]) -> list[Result]:
    return [r for r in results if not r.passed and not any(s.matches(r) for s in SUPPRESSIONS)]


def stale(results: Iterable[Result], *, rendered_charts: set[str]) -> list[str]:
    """Suppressed (check, key) pairs with no failing result. Keys of charts that were not rendered (no chart
    cache) cannot be judged and are left out."""
    failed = {(r.check_id, r.key) for r in results if not r.passed}
    return [
        f"{s.check_id} on {key}"
        for s in SUPPRESSIONS
        for key in s.keys
        if (s.check_id, key) not in failed and (": " not in key or key.split(": ")[0] in rendered_charts)
    ]
