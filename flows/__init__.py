"""Prefect flows: composition only. Stage logic lives in components/."""

import os

# Make Prefect's temporary local server quiet and patient (cold start takes 20-27 s here).
# setdefault: a user's own settings always win.
for _key, _value in {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90",
}.items():
    os.environ.setdefault(_key, _value)
