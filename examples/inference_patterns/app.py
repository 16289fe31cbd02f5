#!/usr/bin/env python3
"""Library use: one InferenceCluster serving every pattern beyond real-time LLM serving.

The default app serves real-time LLMs (vLLM behind a load balancer, scaled on its queue). This app adds,
on one cluster, the patterns issue 13 names, each as its own construct with typed props: see the README's
"Choosing a serving pattern". Replace the VPC and subnet ids with yours, then ``cdk synth`` / ``cdk deploy``
from this directory; the private subnets must carry ``SUBNET_TAGS`` (Karpenter finds them by it).
"""

from __future__ import annotations

import eks_ml.bundled_node  # noqa: F401  (optional, first: jsii runs on eks-ml[node]'s Node.js)

# isort: split
from aws_cdk import App, Duration, Environment, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sqs as sqs
from constructs import Construct

import eks_ml
from eks_ml.inference import (
    BatchInferenceJobProps,
    FargateProfileProps,
    InferenceCluster,
    InferenceClusterProps,
    MskSource,
    QueueWorkerProps,
    S3ModelRepository,
    S3Prefix,
    SqsSource,
    TritonServiceProps,
    default_pools,
)
from eks_ml.inference.model_service import HubWeights
from eks_ml.inference.multi_node import MultiNodeServiceProps

ENV = Environment(account="111122223333", region="us-west-2")  # yours
SUBNET_TAGS = {"karpenter.sh/discovery": "patterns"}


class PatternsStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, **kwargs: object) -> None:
        super().__init__(scope, construct_id, **kwargs)  # type: ignore[arg-type]
        vpc = ec2.Vpc.from_vpc_attributes(
            self,
            "ExistingVpc",
            vpc_id="vpc-0a1b2c3d4e5f67891",
            availability_zones=["us-west-2a", "us-west-2b"],
            private_subnet_ids=["subnet-0ccccccccccccccc1", "subnet-0ddddddddddddddd2"],
            vpc_cidr_block="10.30.0.0/16",
            private_subnet_ipv4_cidr_blocks=["10.30.0.0/18", "10.30.64.0/18"],
        )
        # Queue-driven inference (KEDA): a GPU worker per batch of SQS messages, and an Inferentia worker reading
        # an MSK topic with IAM auth; both scale on their backlog and to zero when it is empty.
        self.requests_key = kms.Key(self, "RequestsKey", enable_key_rotation=True, description="inference requests")
        self.requests = sqs.Queue(
            self,
            "Requests",
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=self.requests_key,
            enforce_ssl=True,
            visibility_timeout=Duration.minutes(5),
            dead_letter_queue=sqs.DeadLetterQueue(
                max_receive_count=3,
                queue=sqs.Queue(
                    self,
                    "FailedRequests",
                    encryption=sqs.QueueEncryption.KMS,
                    encryption_master_key=self.requests_key,
                    enforce_ssl=True,
                    retention_period=Duration.days(14),
                ),
            ),
        )
        queue_workers = [
            QueueWorkerProps(
                name="embed-sqs",
                image="111122223333.dkr.ecr.us-west-2.amazonaws.com/embed-worker:1.0",  # yours
                instance_type="g6.xlarge",
                source=SqsSource(queue=self.requests, queue_length=8),
            ),
            QueueWorkerProps(
                name="summarize-msk",
                image="111122223333.dkr.ecr.us-west-2.amazonaws.com/summarize-worker:1.0",  # yours
                instance_type="inf2.xlarge",
                source=MskSource(
                    cluster_arn="arn:aws:kafka:us-west-2:111122223333:cluster/events/0a1b2c3d-4e5f-6789-abcd-ef0123456789-2",
                    topic="documents",
                    consumer_group="summarizers",
                    bootstrap_servers=["b-1.events.abc123.c2.kafka.us-west-2.amazonaws.com:9098"],
                ),
            ),
        ]
        self.inference = InferenceCluster(
            self,
            "Patterns",
            InferenceClusterProps(
                base=eks_ml.BaseClusterProps(
                    vpc=vpc, cluster_name="patterns", endpoint_access=eks_ml.EndpointAccessMode.PRIVATE
                ),
                # GPU, Inferentia and CPU pools, as in the default app.
                pools=default_pools(),
                subnet_tags=SUBNET_TAGS,
                # Batch inference: an offline vLLM pass over JSONL prompts in S3, results back to S3; 8 shards,
                # 4 at a time, on Spot g6 nodes of the gpu pool, queued through Kueue (installed for it).
                batch_jobs=[
                    BatchInferenceJobProps(
                        name="nightly-summaries",
                        instance_type="g6.xlarge",
                        model=HubWeights(model_id="Qwen/Qwen3-8B"),
                        parameters_billions=8,
                        input=S3Prefix(bucket="example-batch-data", prefix="prompts/"),
                        output=S3Prefix(bucket="example-batch-data", prefix="results/"),
                        shards=8,
                        parallelism=4,
                        capacity_types=["spot"],
                    )
                ],
                queue_workers=queue_workers,
                # Non-LLM models on NVIDIA Triton: an image model on one GPU of the gpu pool, and a small CPU
                # model serverless on Fargate (same server, metrics and autoscaling; no nodes to manage).
                fargate=FargateProfileProps(),
                triton_services=[
                    TritonServiceProps(
                        name="vision",
                        model_repository=S3ModelRepository(bucket="example-models", prefix="triton/vision"),
                        instance_type="g6.xlarge",
                    ),
                    TritonServiceProps(
                        name="tabular",
                        model_repository=S3ModelRepository(bucket="example-models", prefix="triton/tabular"),
                        fargate_cpu=2,
                        fargate_memory_gib=8,
                    ),
                ],
                # Multi-node serving: a 405B bf16 model (about 754 GiB of weights) fits no single node, so
                # each replica is a LeaderWorkerSet group of g6e.48xlarge nodes (8 L40S GPUs, 4 EFA interfaces
                # each): tensor parallel 8 within a node, pipeline parallel across the ceil(754 / 241) = 4 nodes
                # the fit check sets. LWS and the EFA device plugin are installed because of it.
                multi_node_services=[
                    MultiNodeServiceProps(
                        name="llama-405b",
                        instance_type="g6e.48xlarge",
                        weights=HubWeights(model_id="meta-llama/Llama-3.1-405B-Instruct", token_secret="hf-token"),
                        parameters_billions=405,
                    )
                ],
            ),
        )


def build(app: App) -> PatternsStack:
    return PatternsStack(app, "Patterns", env=ENV)


if __name__ == "__main__":
    app = App()
    build(app)
    app.synth()
