"""Server strategies (Flower-style): which silos train each round, how each trains, and how
their updates combine. One strategy per module; ``base`` is the interface, ``registry`` builds
them from a job config, ``fedopt`` and ``stacked`` hold what several strategies share."""
