"""The cockpit's figures and page, and units' tracks."""
