"""Implementation helpers shared by every layer (Go JSON, hashing threads, stat cache, times, atomic
files, MLmodel reading, environment facts); not public API."""
