"""The video wall over HTTP."""
