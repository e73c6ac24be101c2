"""The HTML report and its figures: read a run folder (and optionally a listening test), never run codecs."""
