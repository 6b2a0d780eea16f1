"""The sandbox's vocabulary: pure data and rules, no Pulumi.

Blueprint postures (``posture``), Azure's built-in role names (``builtin_roles``), ARM resource
types and ids (``arm_types``), resource names (``naming``), VM sizes (``vm_sizes``), the tags
and containers the checks recognise (``conventions``, ``tags``) and access targets
(``access_targets``). The Pulumi components use them to declare resources and ``policies``
uses them to check a recorded graph, so the checks import no Pulumi code through them;
``tests/test_package_layers.py`` keeps this package free of imports from outside itself
(the standard library and pydantic aside).
"""
