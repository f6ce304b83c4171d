"""`make purge DAYS=N` (scripts/purge.py) on the default profile's SQLite tracker store."""
import requests


def test_purge_in_sqlite(stack, purge_check):
    def send(sender, text):
        response = requests.post(f"{stack.rasa_url}/webhooks/rest/webhook",
                                 json={"sender": sender, "message": text}, timeout=60)
        response.raise_for_status()

    purge_check(stack, f"sqlite:///{stack.tracker_db}", send, "default")
