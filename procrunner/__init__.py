"""procrunner: a process-formation supervisor for Procfile apps."""

__version__ = "0.1.0"
