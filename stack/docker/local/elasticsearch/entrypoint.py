"""Settings given as variables with a dot in their name become -E flags, as in the official image."""
import os

flags = ["-Enetwork.host=0.0.0.0", "-Ecluster.routing.allocation.disk.threshold_enabled=false"]
for key, value in os.environ.items():
    if "." in key:
        flags.append(f"-E{key}={value}")
os.execv("/usr/share/elasticsearch/bin/elasticsearch", ["elasticsearch", *flags])
