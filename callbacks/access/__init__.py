"""Sign-in, sessions and the HTTP hardening every request passes through."""
