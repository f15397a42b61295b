"""``python -m slackbot``: the same as ``python app.py slack``."""

import sys

from slackbot.cli import main

sys.exit(main())
