"""The demo app that ``Procfile.example`` runs: the twelve-factor rule on processes, shown.

``web`` counts every hit three times (in process memory, in a file in its scratch dir, in the
database) and keeps a login session twice (in memory, in the database); ``clock`` enqueues a job
every few seconds and ``worker`` does them under a lease; ``traffic`` sends requests through
procrunner's router and prints the verdict: what survived the restarts and random routing that
procrunner imposes (only what lives in the backing service) and what did not.
"""
