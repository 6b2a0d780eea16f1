"""The CrossGuard policy pack: the isolation invariants enforced by ``pulumi preview/up``."""
