"""The default profile keeps conversations in SQLite under the data dir: a restart loses nothing."""
import sqlite3


def texts(messages):
    return " ".join(m.get("text") or "" for m in messages)


def test_conversation_goes_on_after_the_rasa_server_restarts(stack, chat):
    assert "24-48 hours" in texts(chat("what is the trial"))
    stack.stop_rasa()
    stack.start_rasa()
    assert "24-48 hours" in texts(chat("how long does it take?"))


def test_conversations_are_stored_in_the_data_dir(stack, chat):
    chat("how do they refill the pump")
    # endpoints.yml's ${TRACKER_SQLITE_DB} is substituted (it is not when quoted: Rasa then
    # writes a file literally named "${TRACKER_SQLITE_DB}" in the working directory)
    assert stack.tracker_db.is_file()
    with sqlite3.connect(stack.tracker_db) as db:
        kinds = [kind for (kind,) in db.execute(
            "SELECT type_name FROM events WHERE sender_id = ?", (chat.sender,))]
    assert kinds.count("user") == 1 and "bot" in kinds
