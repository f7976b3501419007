"""The tests run in the explicit development mode (COMMERCE_DEV=1: a generated
secret, plain-HTTP cookies for the live server); production-shape settings
are tested in subprocesses (tests/commerce/test_deploy_settings.py)."""

import os

os.environ.setdefault("COMMERCE_DEV", "1")

from commerce.settings import *  # noqa: E402, F403
