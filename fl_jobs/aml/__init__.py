"""Azure ML (SDK v2) pipelines for the FedAvg job across a provisioned federation.

Nothing here imports azure-ai-ml at module import time except ``pipeline`` and ``submit``:
the SDK takes seconds to import and the local federation never needs it.
"""
