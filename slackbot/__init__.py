"""The Slack front end: a slack_bolt app over :class:`rag.assistant.Assistant`.

Start it with ``python app.py slack`` (see :mod:`slackbot.cli`); build it in code with
:class:`slackbot.bot.SlackBot` and serve it with :class:`slackbot.server.HTTPTransport` or
:class:`slackbot.server.SocketModeTransport`.
"""
