"""Sign-in, accounts, scope and the HTTP doors."""
