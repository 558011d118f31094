"""difffake-ray: DiffFake differential anomaly deepfake detection as a distributed batch system on Ray."""

__version__ = "0.1.0"
