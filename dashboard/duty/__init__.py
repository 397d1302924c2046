"""The duty desk (值班台): alarms nobody has acknowledged, the roster (值班表) and the shift
handover (交接班)."""
