"""Azure ML (SDK v2) pipelines for a federated job across a provisioned federation.

azure-ai-ml takes seconds to import and the local federation never needs it: every module
here imports it inside the functions that use it, never at module level.
"""
