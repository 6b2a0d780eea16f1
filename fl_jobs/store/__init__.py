"""Federated rounds through the model store: long-running agents that never open a port.

The orchestrator agent writes round announcements and global models to the store's ``global``
container; each silo agent polls them, trains, and writes its update and heartbeats only to
its own container. See docs/azure-ml.md ("The model-store transport") for the layout.
"""
