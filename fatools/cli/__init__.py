"""Thin click front ends, one module per command; options shared through ``options``."""
