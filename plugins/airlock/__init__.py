"""Airlock: build images in layers split by sensitivity and promote them across networks."""
