"""This machine, for every runtime: the process supervisor, the preflight checks (ports, memory, disk,
the service account), Java, and the context a runtime's processes here share (LocalContext)."""
