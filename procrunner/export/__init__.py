"""``procrunner export``: the formation written as another orchestrator's configuration.

``model.py`` turns the app and its frozen settings into one ``ExportModel`` (names, replicas,
ports, restart policies, stop timeouts and signals, the environment split by the secret
rule) and lists what a platform cannot express; ``kubernetes.py``, ``compose.py`` and
``systemd.py`` only render that model; ``files.py`` writes the files atomically;
``command.py`` is the command line (light: the rest is imported when the command runs).
"""
