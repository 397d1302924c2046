"""Camera coverage, the map's camera layer, the video API, the player and the video wall."""
