"""The command loop and the alerts over HTTP."""
