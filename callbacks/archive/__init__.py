"""The cockpit's figures, the history export and units' tracks over HTTP."""
