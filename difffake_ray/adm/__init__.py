"""Differential anomaly detection: pairs, feature combinations, anomaly models, persistence."""
