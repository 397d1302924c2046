"""Talking to the outside: the embedded Redis, ingest, relay and the demo simulator."""
