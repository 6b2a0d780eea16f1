"""Kubernetes building blocks shared by the Kubernetes silo kinds and the confidential
orchestrator: the Azure ML extension, instance types, the attached compute, AKS clusters,
Arc onboarding and on-premises data volumes."""
