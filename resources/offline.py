"""Air-gap defaults, applied before any ML or parsing library is imported.

Hugging Face libraries read these variables at import time, so this module must be
imported first (``resources/__init__`` does). Users can still override each one.
"""

import os

OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "DO_NOT_TRACK": "1",
    "SCARF_NO_ANALYTICS": "1",
    "RAGAS_DO_NOT_TRACK": "true",
    "ANONYMIZED_TELEMETRY": "False",
    "TOKENIZERS_PARALLELISM": "false",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "TRANSFORMERS_VERBOSITY": "error",
    "UNSTRUCTURED_DISABLE_NOTICE": "1",
}

for _name, _value in OFFLINE_ENV.items():
    os.environ.setdefault(_name, _value)
