"""Dash callbacks, one module per page or feature."""
