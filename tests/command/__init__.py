"""The command loop: plans, time limits, nearby units, dispatch, alerts, its API and pages."""
