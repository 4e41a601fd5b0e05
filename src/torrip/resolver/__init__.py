"""Dependency resolution with resolvelib, from PEP 658 metadata."""
