"""Offline tests of the Pulumi program: config, components, blueprints, invariants."""
