"""Flink, in one package: the job's configuration (config), the JobManager's REST API (rest), the
client's conf/ and lib/ from the apache-flink distribution (cluster), submission (submit), the job's
operations (operations: savepoints, stop, resume, rescale, upgrade, replay), its status report
(status) and its sinks (sinks). Every runtime uses these; a runtime only says where the job runs
(placement)."""
