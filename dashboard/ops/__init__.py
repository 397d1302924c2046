"""Running the stack: readiness and health, the memory a city needs, repairs of bad data."""
