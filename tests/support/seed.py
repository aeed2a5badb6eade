"""The user guide's example key documents, verbatim, and the same keys as a dict."""

from __future__ import annotations

import json
from typing import Any

# The seed's Quick Setup step 1, exactly as a user pastes it into a shell.
SEED_QUICK_SETUP_JSON = """{
  "chatgpt-connector-key": {
    "name": "ChatGPT Connector",
    "userId": "connector-user",
    "role": "user",
    "permissions": ["*"]
  }
}"""
#: The Quick Setup document parsed: ``{key id: entry}``.
SEED_KEYS: dict[str, Any] = json.loads(SEED_QUICK_SETUP_JSON)
SEED_KEY = "chatgpt-connector-key"

# The seed's "API Key Configuration Options" example (its expiresAt is already past).
SEED_FULL_ENTRY_JSON = """{
  "chatgpt-connector-key": {
    "name": "ChatGPT Connector",
    "userId": "connector-user",
    "role": "user",
    "permissions": ["*"],
    "rateLimit": {
      "requestsPerMinute": 100,
      "requestsPerHour": 1000
    },
    "expiresAt": "2025-12-31T23:59:59Z"
  }
}"""
