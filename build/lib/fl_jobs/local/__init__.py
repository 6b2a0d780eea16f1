"""The local federation: one long-lived worker process per silo on this machine."""
