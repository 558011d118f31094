"""Inputs: the manifest, dataset adapters (registry) and the synthetic corpus generator."""
