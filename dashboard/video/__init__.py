"""Video: which cameras see a spot, and the video wall's state and saved layouts."""
