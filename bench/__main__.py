"""Run the quick benchmarks in turn and print their summaries.

    python -m bench            ingest throughput (100,000 messages), latency, moves,
                               plan matching, nearest units, the watch service,
                               click to dispatched, the demo video server, the wall
                               with 42,000 cameras, the video wall's tile picking,
                               cockpit figures, tracks, one and two cities on a
                               three-master cluster

Each also runs alone: `python -m bench.ingest_throughput`, `python -m bench.latency`,
`python -m bench.moves`, `python -m bench.plans`, `python -m bench.nearest`,
`python -m bench.watch`, `python -m bench.dispatch_click`, `python -m bench.video_render`,
`python -m bench.cameras_wall`, `python -m bench.wallpick`, `python -m bench.cockpit`,
`python -m bench.tracks`, `python -m bench.cluster`. Not
run here: the 16-tile video wall in a browser (`python -m bench.videowall`, ~1 min),
`python -m bench.ingest_profile` (ingest's CPU per message), the cockpit's Plotly charts
against its old hand-drawn page in a browser (`python -m bench.cockpit_plotly`, ~2 min),
the Sentinel failover drill (`python -m bench.sentinel`, ~40 s), walls per relay against
bare broadcast (`python -m bench.walls`, ~12 min), a wall's snapshot for Pingdu and a
Bao'an-sized city (`python -m bench.snapshot`), the demo's 90 days of history on a fresh folder
(`python -m bench.history`, ~2 min), a kiosk's page rotation against navigating and a
static wall (`python -m bench.rotate`, ~20 min) and the 30-minute memory soak
(`python -m bench.soak`).
Results: bench/results/*.json.
"""

from __future__ import annotations

import argparse
import json

from bench import (
    cameras_wall,
    cluster,
    cockpit,
    dispatch_click,
    ingest_throughput,
    latency,
    moves,
    nearest,
    plans,
    tracks,
    video_render,
    wallpick,
    watch,
)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__.splitlines()[0],
        epilog="The 30-minute memory soak is separate: python -m bench.soak")
    parser.add_argument("--messages", type=int, default=100_000, help="ingest messages")
    parser.add_argument("--probes", type=int, default=200, help="latency probes")
    parser.add_argument("--reps", type=int, default=30, help="moves repetitions")
    args = parser.parse_args(argv)
    latency.exit_on_sigterm()
    summaries: list[str] = []

    print("== ingest throughput", flush=True)
    ingest = ingest_throughput.run(args.messages)
    summaries.append("ingest " + json.dumps({k: round(v, 2) if isinstance(v, float) else v
                                             for k, v in ingest.items()}))
    print(summaries[-1], flush=True)

    print("== latency", flush=True)
    summaries.append(latency.summary(latency.main(["--probes", str(args.probes)])))

    print("== moves", flush=True)
    summaries.append(moves.summary(moves.main(["--reps", str(args.reps)])))

    print("== plan matching", flush=True)
    summaries.append(plans.summary(plans.main([])))

    print("== nearest units", flush=True)
    summaries.append(nearest.summary(nearest.main([])))

    print("== watch service", flush=True)
    summaries.append("watch " + json.dumps(watch.main([]), ensure_ascii=False))

    print("== click to dispatched", flush=True)
    summaries.append(dispatch_click.summary(dispatch_click.main([])))

    print("== demo video server", flush=True)
    summaries.append(video_render.summary(video_render.main([])))

    print("== cockpit figures", flush=True)
    summaries.append(cockpit.summary(cockpit.main([])))

    print("== 42,000 cameras on the wall", flush=True)
    summaries.append(cameras_wall.summary(cameras_wall.main([])))

    print("== the video wall's tile picking", flush=True)
    picked = wallpick.main([])["cities"]
    summaries.append("wallpick " + json.dumps({n: round(f["tour_plan_ms"], 1)
                                               for n, f in picked.items()}))

    print("== tracks: bytes per unit-day", flush=True)
    result = tracks.run()
    summaries.append("tracks " + json.dumps({row["scenario"]: row["memory_bytes"]
                                             for row in result["rows"]}, ensure_ascii=False))

    print("== cluster: one and two cities", flush=True)
    summaries.append(cluster.summary(cluster.main(["--messages", str(args.messages)])))

    print("\n== summary\n" + "\n".join(summaries), flush=True)


if __name__ == "__main__":
    main()
