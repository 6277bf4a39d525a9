"""The Flink job as something to operate: placement, savepoints, stop, resume, rescale, upgrade, replay."""
