"""Runtimes run the stack's services: `local` as processes on this machine, `docker` as containers."""
