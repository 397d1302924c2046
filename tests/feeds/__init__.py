"""Ingest, streams, the relay and its core, the watch service, fault drills, the simulator."""
