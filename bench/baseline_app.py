"""The benchmark's baseline: what a platform engineer would write by hand with aws_eks_v2 alone, one
cluster, one GPU managed node group and one Helm chart, so eks-ml's synth time is judged against it."""

from __future__ import annotations

from aws_cdk import App, Environment, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_eks_v2 as eks
from aws_cdk.lambda_layer_kubectl_v35 import KubectlV35Layer


def build(app: App) -> None:
    stack = Stack(app, "Baseline", env=Environment(region="us-west-2"))
    vpc = ec2.Vpc(stack, "Vpc", max_azs=2)
    cluster = eks.Cluster(
        stack,
        "Cluster",
        vpc=vpc,
        version=eks.KubernetesVersion.V1_35,
        default_capacity_type=eks.DefaultCapacityType.NODEGROUP,
        default_capacity=0,
        kubectl_provider_options=eks.KubectlProviderOptions(kubectl_layer=KubectlV35Layer(stack, "Kubectl")),
    )
    cluster.add_nodegroup_capacity(
        "Gpu",
        instance_types=[ec2.InstanceType("g6e.xlarge")],
        ami_type=eks.NodegroupAmiType.AL2023_X86_64_NVIDIA,
        desired_size=1,
    )
    cluster.add_helm_chart(
        "NvidiaDevicePlugin",
        chart="nvidia-device-plugin",
        repository="https://nvidia.github.io/k8s-device-plugin",
        version="0.20.0",
        namespace="kube-system",
    )
