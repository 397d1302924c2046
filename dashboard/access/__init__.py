"""Who may do what: accounts, sessions and display tokens, the audit trail, and the secrets the
server makes for itself."""
