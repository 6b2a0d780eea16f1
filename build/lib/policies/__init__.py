"""Isolation checks: the six invariants as pure functions, the graph they read, the access
matrix and network views the offline plan prints, and the CrossGuard pack (``crossguard/``)."""
