"""Server strategies (Flower-style): which silos train each round and how updates combine."""
