"""Superset's configuration for this project (SUPERSET_CONFIG_PATH points here).

Everything secret or local comes from the environment `hrss bi start` (or docker-compose) sets:
nothing here is a credential.
"""

import os

SECRET_KEY = os.environ["SUPERSET_SECRET_KEY"]
# Superset's own metadata: a PostgreSQL database of its own (never SQLite).
SQLALCHEMY_DATABASE_URI = os.environ["HRSS_SUPERSET_METADATA_URI"]
# A local tool on 127.0.0.1 (or behind a proxy in compose): no HTTPS to enforce here.
TALISMAN_ENABLED = False
SESSION_COOKIE_SECURE = False
# The rate limiter's default in-memory store warns at every start; say it is meant.
RATELIMIT_STORAGE_URI = "memory://"
