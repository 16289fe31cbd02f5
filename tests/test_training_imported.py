"""A TrainingCluster on an existing (imported) EKS cluster: what the import must provide."""

from __future__ import annotations

import pytest
from aws_cdk import assertions

from eks_ml import ValidationError
from eks_ml.training import TrainingCluster

from .support.synth import imported_training_cluster, library_stack


def test_an_imported_cluster_with_its_security_group_and_kubectl_provider_works() -> None:
    _, stack = library_stack()
    training = imported_training_cluster(stack, cluster_name="existing")
    assert isinstance(training, TrainingCluster)
    assert training.base is None and training.base_cluster_name == "existing"
    template = assertions.Template.from_stack(stack)
    # Device plugins, Kueue and Trainer go through the imported kubectl provider.
    template.resource_count_is("Custom::AWSCDK-EKS-HelmChart", 4)
    template.resource_count_is("AWS::EKS::Cluster", 0)
    template.has_resource_properties("AWS::EKS::Nodegroup", {"ClusterName": "existing"})


@pytest.mark.parametrize(
    ("missing", "message"),
    [
        ("cluster_security_group_id", r"cluster='an imported cluster without cluster_security_group_id'"),
        ("kubectl_provider", r"cluster='an imported cluster without a kubectl provider'"),
    ],
)
def test_an_import_without_what_training_needs_is_a_validation_error(missing: str, message: str) -> None:
    _, stack = library_stack()
    with pytest.raises(ValidationError, match=message):
        imported_training_cluster(stack, cluster_name="existing", **{missing: None})
