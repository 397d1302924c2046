"""Render the demo video clip (data/video/) from the scene renderer, through ffmpeg.

Dev only, like scripts/derive_city.py: the files are committed, and neither the app nor the
tests need ffmpeg. The clip is what the demo video server loops for `hls`, `mp4` and `webm`
cameras (MJPEG and snapshots are drawn live):

- `clip/index.m3u8` + `clip/<n>.ts`: H.264 (main profile, yuv420p) in MPEG-TS, 2 s segments,
  each starting on a key frame, so a live playlist can list them in any loop order;
- `clip.mp4`: the same, faststart (the index first: plays while it downloads);
- `clip.webm`: VP8, for browsers without H.264.

    python scripts/make_demo_clip.py [--out DIR] [--seconds 8] [--fps 10]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from feeds.sim.scene import HEIGHT, WIDTH, Renderer  # noqa: E402

CLIP_ID = "DEMO-CLIP"
CLIP_NAME = "演示录像-人民路与青岛路路口"
TZ = ZoneInfo("Asia/Shanghai")
START = datetime(2026, 5, 18, 10, 0, 0, tzinfo=TZ).timestamp()  # daylight, a fixed date
SEGMENT_S = 2


def frames(seconds: int, fps: int) -> bytes:
    """Raw RGB frames of the clip, deterministic."""
    renderer = Renderer(TZ)
    return b"".join(renderer.frame(CLIP_ID, CLIP_NAME, START + i / fps).tobytes()
                    for i in range(seconds * fps))


def ffmpeg(raw: bytes, fps: int, *out_args: str) -> None:
    cmd = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
           "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{WIDTH}x{HEIGHT}", "-r", str(fps),
           "-i", "-", "-an", "-fflags", "+bitexact", *out_args]  # bitexact: no random ids
    subprocess.run(cmd, input=raw, check=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "data" / "video")
    ap.add_argument("--seconds", type=int, default=8, help="a multiple of 2")
    ap.add_argument("--fps", type=int, default=10)
    args = ap.parse_args(argv)
    if shutil.which("ffmpeg") is None:
        ap.error("ffmpeg is needed (apt-get install ffmpeg); the app and tests never need it")
    if args.seconds % SEGMENT_S:
        ap.error(f"--seconds must be a multiple of {SEGMENT_S}")
    raw = frames(args.seconds, args.fps)
    gop = str(SEGMENT_S * args.fps)
    h264 = ["-c:v", "libx264", "-profile:v", "main", "-pix_fmt", "yuv420p", "-preset", "slow",
            "-crf", "26", "-g", gop, "-keyint_min", gop, "-sc_threshold", "0",
            "-x264-params", "bframes=0"]  # no B-frames: the cheapest for any decoder
    clip = args.out / "clip"
    if clip.exists():
        shutil.rmtree(clip)
    clip.mkdir(parents=True)
    ffmpeg(raw, args.fps, *h264, "-f", "hls", "-hls_time", str(SEGMENT_S),
           "-hls_list_size", "0", "-hls_playlist_type", "vod", "-hls_flags", "independent_segments",
           "-hls_segment_filename", str(clip / "%d.ts"), str(clip / "index.m3u8"))
    ffmpeg(raw, args.fps, *h264, "-movflags", "+faststart", str(args.out / "clip.mp4"))
    ffmpeg(raw, args.fps, "-c:v", "libvpx", "-deadline", "good", "-cpu-used", "0",
           "-b:v", "250k", "-crf", "12", "-g", gop, "-auto-alt-ref", "0",
           str(args.out / "clip.webm"))
    total = sum(f.stat().st_size for f in args.out.rglob("*") if f.is_file())
    print(f"clip: {args.seconds} s at {args.fps} fps, {len(list(clip.glob('*.ts')))} segments, "
          f"{total / 1024:.0f} KiB in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
