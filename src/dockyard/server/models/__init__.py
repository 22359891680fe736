"""Database operations, one module per concept, between the API routes and the tables."""
