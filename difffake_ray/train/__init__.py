"""Backbone training: SAM, the lr schedule, NRS, the training data, the Ray Train wiring."""
