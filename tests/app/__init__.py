"""The app as a whole: the wall page, the JSON API's basics, health, vendored files."""
