"""What the end-to-end, scale, soak and client tests share: one pytest plugin of server
fixtures (``servers``: daphne processes on databases of their own; ``services``: private
Redis and PostgreSQL servers to kill), registered for the whole suite in
``pyproject.toml``, and the client side (``client``: plain HTTP and a real WebSocket)."""
