"""Page rotation for unattended walls (docs/ROTATION.md): the spec and the saved rotations."""
