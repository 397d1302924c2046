"""The demo simulator's parts; `feeds.simulator` is the entry point."""
