"""Face extraction, as plain functions: sample frames, detect, landmark, crop (no Ray here)."""
