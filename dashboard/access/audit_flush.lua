return flush()
