"""Situation replay: the whole wall as it was at a past moment (docs/REPLAY.md).

`history.py` holds the format (keys, keyframes, minute chunks, the entry clock, thinning);
`recorder.py` writes it (run by the watch service, feeds/watch/replay.py); `reader.py` reads
it back: the wall at a moment, the changes after it, the period's actions.
"""
