"""Silo kinds, one module each behind one interface (``base.SiloComponent``): an Azure ML
compute cluster (``aml_cluster``), an on-premises cluster attached through Azure Arc
(``arc_cluster``), an AKS cluster, optionally confidential (``aks_cluster``). Each kind's
descriptor (``blueprints.silo_kinds``) names its component."""
