"""A street seen from a pole camera, drawn with Pillow: the demo video server's pictures.

Every camera id gets its own street (seeded layout and colours); cars and pedestrians move
with time, so consecutive frames differ; between 19:00 and 06:00 local time it is night.
The on-screen display is a real camera's: a running clock top left, the name bottom right.
The static part (road, buildings, trees, the name) is drawn once per camera and kept in a
bounded LRU; a frame is that background, a dozen moving shapes and the clock, ~2–4 ms.
"""

from __future__ import annotations

import functools
import io
import math
import random
import threading
import zlib
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from PIL import Image, ImageDraw, ImageFont

WIDTH, HEIGHT = 480, 270
JPEG_QUALITY = 70
BACKGROUNDS_MAX = 128  # cached backgrounds (~390 KB each at 480×270)
NIGHT_FROM, NIGHT_UNTIL = 19, 6  # local hours

# Debian's CJK fonts (fonts-noto-cjk, fonts-wqy-*, arphic, droid), first found wins.
CJK_FONTS = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc",
    "/usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc",
    "/usr/share/fonts/truetype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/truetype/arphic/uming.ttc",
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
)
MONO_FONTS = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSansMono-Bold.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationMono-Bold.ttf",
)

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont


def _cjk_font(size: int, paths: tuple[str, ...] = CJK_FONTS) -> ImageFont.FreeTypeFont | None:
    """The first CJK font found, its Simplified Chinese face where a collection has one."""
    for path in paths:
        if not Path(path).is_file():
            continue
        try:
            first = ImageFont.truetype(path, size)
        except OSError:
            continue
        for index in range(1, 10) if path.endswith(".ttc") else ():
            try:
                face = ImageFont.truetype(path, size, index=index)
            except OSError:
                break
            if " SC" in " ".join(face.getname()):
                return face
        return first
    return None


def _mono_font(size: int) -> Font:
    for path in MONO_FONTS:
        if Path(path).is_file():
            return ImageFont.truetype(path, size)
    return ImageFont.load_default(size)


@dataclass(frozen=True)
class _Car:
    lane: float  # lateral position, -1 (left kerb) … 1 (right kerb)
    toward: bool  # driving toward the camera
    speed: float  # of the loop per second
    phase: float
    colour: tuple[int, int, int]
    bus: bool


@dataclass(frozen=True)
class _Walker:
    side: int  # -1 left pavement, 1 right, 0 on the crossing
    offset: float  # across the pavement (0…1) or where along the crossing it starts
    speed: float
    phase: float
    colour: tuple[int, int, int]


@dataclass(frozen=True)
class _Static:
    street: Image.Image  # RGB, everything that does not move
    name: Image.Image  # RGBA, the name's OSD
    name_at: tuple[int, int]


@dataclass(frozen=True)
class Layout:
    """One camera's street: everything the seed decides."""

    horizon: float  # y of the horizon, pixels
    vx: float  # x of the vanishing point
    left: float  # road edges at the bottom of the picture, pixels
    right: float
    crossing: bool
    cars: tuple[_Car, ...]
    walkers: tuple[_Walker, ...]
    seed: int


_CAR_COLOURS = ((235, 235, 235), (30, 30, 34), (160, 165, 170), (180, 30, 30), (30, 60, 140),
                (210, 210, 200), (90, 95, 100), (200, 160, 40), (40, 110, 70))
_COAT_COLOURS = ((40, 40, 60), (150, 30, 40), (30, 80, 150), (200, 200, 190), (70, 90, 60),
                 (220, 150, 40), (90, 60, 40))
D_NEAR, D_FAR = 1.0, 24.0  # distances (in road widths) drawn: bottom edge … near the horizon


@functools.lru_cache(maxsize=BACKGROUNDS_MAX)
def layout_for(cam_id: str, width: int = WIDTH, height: int = HEIGHT) -> Layout:
    """The seeded street of `cam_id` (the same on every run and every machine)."""
    seed = zlib.crc32(cam_id.encode())
    rng = random.Random(seed)
    horizon = height * rng.uniform(0.30, 0.40)
    vx = width * rng.uniform(0.38, 0.62)
    half = width * rng.uniform(0.36, 0.50)
    centre = vx + width * rng.uniform(-0.10, 0.10)
    cars = []
    for _ in range(rng.randint(4, 7)):
        lane = rng.choice((-0.6, -0.25, 0.25, 0.6))
        # Right-hand traffic: cars on the right half come toward the camera.
        cars.append(_Car(lane, lane > 0, rng.uniform(0.05, 0.12), rng.random(),
                         rng.choice(_CAR_COLOURS), rng.random() < 0.12))
    walkers = tuple(
        _Walker(side=rng.choice((-1, 1, -1, 1, 0)), offset=rng.random(),
                speed=rng.uniform(0.012, 0.03), phase=rng.random(),
                colour=rng.choice(_COAT_COLOURS))
        for _ in range(rng.randint(3, 8)))
    return Layout(horizon, vx, centre - half, centre + half, rng.random() < 0.6, tuple(cars),
                  walkers, seed)


def is_night(now: float, tz: ZoneInfo) -> bool:
    hour = datetime.fromtimestamp(now, tz).hour
    return hour >= NIGHT_FROM or hour < NIGHT_UNTIL


def clock_text(now: float, tz: ZoneInfo) -> str:
    """The OSD clock: local time as `YYYY-MM-DD HH:MM:SS`."""
    return datetime.fromtimestamp(now, tz).strftime("%Y-%m-%d %H:%M:%S")


def _shade(c: tuple[int, int, int], f: float) -> tuple[int, int, int]:
    return (min(255, int(c[0] * f)), min(255, int(c[1] * f)), min(255, int(c[2] * f)))


class Renderer:
    """Draws frames; thread-safe; backgrounds cached per (camera, name, night)."""

    def __init__(self, tz: str | ZoneInfo = "Asia/Shanghai",
                 size: tuple[int, int] = (WIDTH, HEIGHT), *, quality: int = JPEG_QUALITY,
                 backgrounds_max: int = BACKGROUNDS_MAX,
                 cjk_fonts: tuple[str, ...] = CJK_FONTS) -> None:
        self.tz = tz if isinstance(tz, ZoneInfo) else ZoneInfo(tz)
        self.width, self.height = size
        self.quality = quality
        self.backgrounds_max = backgrounds_max
        scale = self.height / HEIGHT
        self.name_font: Font | None = _cjk_font(max(10, round(15 * scale)), cjk_fonts)
        self.id_font = _mono_font(max(10, round(13 * scale)))
        self.clock_font = _mono_font(max(10, round(15 * scale)))
        self._backgrounds: OrderedDict[tuple[str, str, bool], _Static] = OrderedDict()
        self._lock = threading.Lock()

    # -- public ------------------------------------------------------------------------

    def osd(self, cam_id: str, name: str | None, now: float) -> tuple[str, str]:
        """(the name line, the clock line) as drawn on a frame of `cam_id` at `now`.

        Without a CJK font a name that needs one is replaced by the id."""
        label = (name or "").strip() or cam_id
        if self.name_font is None and not label.isascii():
            label = cam_id
        return label, clock_text(now, self.tz)

    def frame(self, cam_id: str, name: str | None, now: float) -> Image.Image:
        """The picture of `cam_id` at `now` (epoch seconds)."""
        label, clock = self.osd(cam_id, name, now)
        night = is_night(now, self.tz)
        static = self.background(cam_id, label, night)
        img = static.street.copy()
        lay = layout_for(cam_id, self.width, self.height)
        draw = ImageDraw.Draw(img)
        self._draw_moving(draw, lay, now, night)
        img.paste(static.name, static.name_at, static.name)  # the OSD stays over the traffic
        draw.text((8, 6), clock, font=self.clock_font, fill=(255, 255, 255),
                  stroke_width=1, stroke_fill=(0, 0, 0))
        return img

    def jpeg(self, cam_id: str, name: str | None, now: float) -> bytes:
        """`frame` encoded as a baseline JPEG."""
        return encode(self.frame(cam_id, name, now), self.quality)

    def background(self, cam_id: str, label: str, night: bool) -> _Static:
        """The static pictures (street, name) of a camera; do not draw on them."""
        key = (cam_id, label, night)
        with self._lock:
            bg = self._backgrounds.get(key)
            if bg is not None:
                self._backgrounds.move_to_end(key)
                return bg
        bg = _Static(self._draw_background(cam_id, night), *self._osd_name(label))
        with self._lock:
            self._backgrounds[key] = bg
            while len(self._backgrounds) > self.backgrounds_max:
                self._backgrounds.popitem(last=False)
        return bg

    def cached(self) -> int:
        """How many backgrounds are cached (bounded by `backgrounds_max`)."""
        return len(self._backgrounds)

    # -- drawing -----------------------------------------------------------------------

    def _at(self, lay: Layout, u: float, d: float) -> tuple[float, float, float]:
        """Screen (x, y, scale) of lateral position `u` (-1…1 across the road) at distance d."""
        k = D_NEAR / d
        bottom_x = (lay.left + lay.right) / 2 + u * (lay.right - lay.left) / 2
        return (lay.vx + (bottom_x - lay.vx) * k, lay.horizon + (self.height - lay.horizon) * k, k)

    def _draw_background(self, cam_id: str, night: bool) -> Image.Image:
        w, h = self.width, self.height
        lay = layout_for(cam_id, w, h)
        rng = random.Random(lay.seed ^ 0x5EED)
        dim = 0.35 if night else 1.0
        img = Image.new("RGB", (w, h))
        draw = ImageDraw.Draw(img)
        top = (14, 20, 48) if night else (120, 165, 215)
        low = (40, 48, 80) if night else (200, 220, 235)
        hz = int(lay.horizon)
        for y in range(hz + 1):  # sky gradient
            f = y / max(1, hz)
            colour = tuple(int(a + (b - a) * f) for a, b in zip(top, low, strict=True))
            draw.line([(0, y), (w, y)], fill=colour)
        ground = _shade((96, 104, 88), dim)
        draw.rectangle([0, hz, w, h], fill=ground)
        # distant skyline
        x = 0.0
        while x < w:
            bw = rng.uniform(12, 40) * w / WIDTH
            bh = rng.uniform(6, 30) * h / HEIGHT
            draw.rectangle([x, hz - bh, x + bw, hz], fill=_shade((120, 128, 140), dim * 0.8))
            x += bw
        # pavements, then the road over them
        pave = _shade((150, 148, 140), dim)
        pts_pave = [self._at(lay, -1.7, D_NEAR * 0.8)[:2], self._at(lay, -1.7, 400)[:2],
                    self._at(lay, 1.7, 400)[:2], self._at(lay, 1.7, D_NEAR * 0.8)[:2]]
        draw.polygon(pts_pave, fill=pave)
        road = _shade((70, 72, 76), dim)
        pts_road = [self._at(lay, -1, D_NEAR * 0.8)[:2], self._at(lay, -1, 400)[:2],
                    self._at(lay, 1, 400)[:2], self._at(lay, 1, D_NEAR * 0.8)[:2]]
        draw.polygon(pts_road, fill=road)
        white = _shade((235, 235, 225), max(dim, 0.55))
        yellow = _shade((230, 190, 40), max(dim, 0.55))
        # centre line (double yellow) and dashed lane marks
        for u in (-0.02, 0.02):
            draw.polygon([self._at(lay, u - 0.01, D_NEAR * 0.8)[:2],
                          self._at(lay, u - 0.01, 400)[:2], self._at(lay, u + 0.01, 400)[:2],
                          self._at(lay, u + 0.01, D_NEAR * 0.8)[:2]], fill=yellow)
        d = D_NEAR * 0.8
        while d < D_FAR * 2:
            for u in (-0.5, 0.5):
                a, b = d, d * 1.12
                draw.polygon([self._at(lay, u - 0.02, a)[:2], self._at(lay, u - 0.02, b)[:2],
                              self._at(lay, u + 0.02, b)[:2], self._at(lay, u + 0.02, a)[:2]],
                             fill=white)
            d *= 1.35
        if lay.crossing:  # a zebra crossing across the near road
            a, b = 1.25, 1.55
            for i in range(10):
                u0 = -1 + i * 0.2 + 0.04
                draw.polygon([self._at(lay, u0, a)[:2], self._at(lay, u0, b)[:2],
                              self._at(lay, u0 + 0.11, b)[:2], self._at(lay, u0 + 0.11, a)[:2]],
                             fill=white)
        # buildings and trees on both sides, far to near
        items: list[tuple[float, int, float]] = []
        for side in (-1, 1):
            d = D_FAR
            while d > D_NEAR * 0.7:
                items.append((d, side, rng.random()))
                d /= rng.uniform(1.18, 1.45)
        items.sort(reverse=True)
        for d, side, r in items:
            self._building(draw, lay, d, side, r, night, rng)
            if r < 0.55:
                self._tree(draw, lay, d * 0.98, side, night)
        # poles with street lamps
        for d in (1.6, 3.2, 6.4, 12.8):
            for side in (-1, 1):
                x, y, k = self._at(lay, side * 1.15, d)
                hgt = 140 * k * h / HEIGHT
                draw.line([(x, y), (x, y - hgt)], fill=_shade((60, 60, 64), max(dim, 0.5)),
                          width=max(1, round(3 * k)))
                lamp = (255, 230, 150) if night else (200, 200, 200)
                draw.ellipse([x - 5 * k, y - hgt - 3 * k, x + 5 * k, y - hgt + 3 * k], fill=lamp)
        return img

    def _building(self, draw: ImageDraw.ImageDraw, lay: Layout, d: float, side: int, r: float,
                  night: bool, rng: random.Random) -> None:
        x, y, k = self._at(lay, side * 1.75, d)
        _, _, k2 = self._at(lay, side * 1.75, d * 1.25)
        bw = (self.width * 0.9) * k
        bh = self.height * (1.2 + 2.2 * r) * k
        base = rng.choice(((175, 160, 140), (190, 185, 170), (150, 150, 160), (200, 170, 150),
                           (130, 120, 115), (210, 205, 195)))
        col = _shade(base, 0.3 if night else 1.0)
        x0, x1 = (x - bw, x) if side < 0 else (x, x + bw)
        draw.rectangle([x0, y - bh, x1, y], fill=col, outline=_shade(col, 0.8))
        # a side wall toward the road, receding to the vanishing point
        xf, yf = lay.vx + (x - lay.vx) * k2 / k, lay.horizon + (y - lay.horizon) * k2 / k
        draw.polygon([(x, y), (x, y - bh), (xf, yf - bh * k2 / k), (xf, yf)],
                     fill=_shade(col, 0.78))
        if bw < 8:
            return
        cols, rows = max(2, int(bw / (14 * max(k, 0.25)))), max(2, int(bh / (16 * max(k, 0.25))))
        cols, rows = min(cols, 14), min(rows, 24)
        ww, wh = bw / cols, bh / rows
        for i in range(cols):
            for j in range(rows - 1):
                lit = night and rng.random() < 0.35
                win = (250, 215, 120) if lit else (_shade((60, 80, 100), 0.5) if night
                                                   else (110, 140, 170))
                draw.rectangle([x0 + i * ww + ww * 0.25, y - bh + j * wh + wh * 0.3,
                                x0 + i * ww + ww * 0.75, y - bh + j * wh + wh * 0.8], fill=win)

    def _tree(self, draw: ImageDraw.ImageDraw, lay: Layout, d: float, side: int,
              night: bool) -> None:
        x, y, k = self._at(lay, side * 1.45, d)
        s = self.height / HEIGHT
        trunk = _shade((90, 65, 45), 0.4 if night else 1.0)
        leaf = _shade((60, 120, 60), 0.35 if night else 1.0)
        draw.rectangle([x - 3 * k * s, y - 60 * k * s, x + 3 * k * s, y], fill=trunk)
        draw.ellipse([x - 28 * k * s, y - 110 * k * s, x + 28 * k * s, y - 50 * k * s], fill=leaf)

    def _osd_name(self, label: str) -> tuple[Image.Image, tuple[int, int]]:
        """The name as an RGBA layer and where it goes (bottom right, like a real OSD)."""
        font: Font = self.name_font if self.name_font is not None and not label.isascii() \
            else (self.name_font or self.id_font)
        measure = ImageDraw.Draw(Image.new("RGBA", (1, 1)))
        text = label
        while len(text) > 4 and measure.textlength(text, font=font) > self.width - 16:
            text = text[:-2] + "…"
        box = [round(v) for v in measure.textbbox((0, 0), text, font=font, stroke_width=1)]
        layer = Image.new("RGBA", (box[2] - box[0] + 2, box[3] - box[1] + 2), (0, 0, 0, 0))
        ImageDraw.Draw(layer).text((1 - box[0], 1 - box[1]), text, font=font,
                                   fill=(255, 255, 255, 255), stroke_width=1,
                                   stroke_fill=(0, 0, 0, 255))
        return layer, (self.width - 8 - layer.width, self.height - 8 - layer.height)

    def _draw_moving(self, draw: ImageDraw.ImageDraw, lay: Layout, now: float,
                     night: bool) -> None:
        span = math.log(D_FAR / (D_NEAR * 0.7))
        shapes: list[tuple[float, float, _Car | _Walker]] = []  # (distance, u, thing)
        for car in lay.cars:
            s = (now * car.speed + car.phase) % 1.0
            # even steps in log distance: a car seems to keep its speed as it recedes
            shapes.append((D_NEAR * 0.7 * math.exp(span * (1 - s if car.toward else s)),
                           car.lane, car))
        for wk in lay.walkers:
            s = (now * wk.speed + wk.phase) % 1.0
            if wk.side == 0:
                if lay.crossing:  # crossing the road on the zebra
                    shapes.append((1.4, -1.0 + 2.0 * ((wk.offset + s) % 1.0), wk))
            else:
                shapes.append((D_NEAR * 0.8 * math.exp(math.log(D_FAR / 2) * s),
                               wk.side * (1.1 + 0.5 * wk.offset), wk))
        shapes.sort(key=lambda item: -item[0])  # far first: near things cover far ones
        for d, u, thing in shapes:
            if isinstance(thing, _Car):
                self._car(draw, lay, thing, d, night)
            else:
                self._walker(draw, lay, thing, u, d, now, night)

    def _car(self, draw: ImageDraw.ImageDraw, lay: Layout, car: _Car, d: float,
             night: bool) -> None:
        x, y, k = self._at(lay, car.lane, d)
        road_w = (lay.right - lay.left) * k
        cw = road_w * (0.2 if car.bus else 0.17)
        ch = cw * (1.05 if car.bus else 0.62)
        body = _shade(car.colour, 0.45 if night else 1.0)
        draw.rectangle([x - cw / 2, y - ch, x + cw / 2, y], fill=body)
        glass = (20, 25, 35) if night else (70, 90, 110)
        draw.rectangle([x - cw * 0.4, y - ch * 0.92, x + cw * 0.4, y - ch * 0.55], fill=glass)
        draw.rectangle([x - cw / 2, y - ch * 0.08, x + cw / 2, y], fill=(20, 20, 20))
        if night or car.toward:
            lamp = (255, 250, 210) if car.toward else (230, 30, 30)
            r = max(1.0, cw * 0.07)
            for lx in (x - cw * 0.36, x + cw * 0.36):
                draw.ellipse([lx - r, y - ch * 0.3 - r, lx + r, y - ch * 0.3 + r], fill=lamp)

    def _walker(self, draw: ImageDraw.ImageDraw, lay: Layout, wk: _Walker, u: float, d: float,
                now: float, night: bool) -> None:
        x, y, k = self._at(lay, u, d)
        hgt = 62 * k * self.height / HEIGHT
        if hgt < 2:
            return
        coat = _shade(wk.colour, 0.5 if night else 1.0)
        step = math.sin(now * 6.0 + wk.phase * 6.28) * hgt * 0.12
        legs = _shade((30, 30, 40), 0.6 if night else 1.0)
        lw = max(1, round(hgt * 0.08))
        draw.line([(x, y - hgt * 0.45), (x - step, y)], fill=legs, width=lw)
        draw.line([(x, y - hgt * 0.45), (x + step, y)], fill=legs, width=lw)
        draw.rectangle([x - hgt * 0.13, y - hgt * 0.85, x + hgt * 0.13, y - hgt * 0.42], fill=coat)
        r = hgt * 0.09
        draw.ellipse([x - r, y - hgt - r * 0.2, x + r, y - hgt + r * 1.8],
                     fill=_shade((230, 190, 160), 0.6 if night else 1.0))


def encode(img: Image.Image, quality: int = JPEG_QUALITY) -> bytes:
    """A baseline JPEG of `img` (4:2:0, what every browser decodes fastest)."""
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality, subsampling=2)
    return buf.getvalue()
