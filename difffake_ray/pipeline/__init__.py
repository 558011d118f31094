"""The Ray Data / Ray Train stages: thin wiring of the plain functions into Ray."""
