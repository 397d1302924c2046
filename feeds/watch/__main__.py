"""`python -m feeds.watch`: one watch service against REDIS_URL."""

from __future__ import annotations

from feeds.service import run_service
from feeds.watch.follower import Watch


def main() -> None:
    run_service("feeds.watch", lambda settings, url, stop: Watch(settings, url).run(stop))


if __name__ == "__main__":
    main()
