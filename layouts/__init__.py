"""Dash component trees; never touches Redis."""
