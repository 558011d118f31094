"""Pseudo-deepfakes from real faces (self-blending): masks (registry), transforms, blend.

Pure numpy/OpenCV/albumentations functions, seeded per sample; no torch, no Ray.
"""
