"""Command-line interface: each command parses, calls the core, renders the result."""
