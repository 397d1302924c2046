"""The duty desk, the roster and the shift handover."""
