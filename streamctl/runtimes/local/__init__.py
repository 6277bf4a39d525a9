"""The local runtime: every service as a process of this machine, from verified artifacts."""
