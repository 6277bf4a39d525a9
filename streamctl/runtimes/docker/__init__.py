"""The docker runtime: the stack as containers of stack/compose.yaml, applied by streamctl's own engine."""
