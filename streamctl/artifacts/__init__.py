"""Artifacts the stack downloads from a Maven repository: the lock, the cache, the fetcher."""
