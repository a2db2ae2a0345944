"""The command-line tools (`python -m api …`); the serving code never imports them."""

import pathlib

PROJECT_ROOT = pathlib.Path(__file__).resolve().parents[2]
