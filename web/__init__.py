"""The clinic's web pages: the treatment page with the chat widget (web/app.py).

`python -m web --port 8080 --rasa-url http://127.0.0.1:5005` serves them; `make run` starts it
with the rest of the stack (stack/launch.py).
"""
from web.app import create_app

__all__ = ["create_app"]
