"""A test's ``listening.sqlite``: participants and their design slots, trials, ratings, answers and listening
events (:class:`ListeningStore`); slot assignment rules in :mod:`.slots`."""

from evalkit.listening.storage.store import ListeningStore, Participant

__all__ = ["ListeningStore", "Participant"]
