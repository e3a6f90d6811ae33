"""Random street layouts: a straight road along +x, built from labelled primitives.

World frame: metres, x along the road (the camera looks down +x), y to the left,
z up, road surface at z = 0. A layout is pure data (no renderer), fully
determined by its seed, so the same street can be rendered under any condition
and from any camera position along the road.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

# CamVid-11 class ids (hydranet.labels.CAMVID11).
SKY, BUILDING, POLE, ROAD, PAVEMENT, TREE, SIGN, FENCE, CAR, PEDESTRIAN, BICYCLIST = range(11)

# Materials drive the procedural surface detail added after rendering (see shading.py).
PLAIN, ASPHALT, PAVING, FACADE, FOLIAGE, LAMP, HEADLIGHT, TAILLIGHT, GLASS = range(9)


@dataclass(frozen=True)
class Part:
    """One primitive: ``box`` (size = half extents x, y, z), ``cylinder`` (radius, length
    along its local z), or ``sphere`` (radius,); ``euler`` = roll, pitch, yaw in radians."""

    shape: str
    size: tuple[float, ...]
    position: tuple[float, float, float]
    color: tuple[float, float, float]
    label: int
    material: int = PLAIN
    euler: tuple[float, float, float] = (0.0, 0.0, 0.0)
    seed: int = 0  # per-part variation of the procedural texture (e.g. which windows are lit)

    def extent(self, axis: int) -> tuple[float, float]:
        """Range the part covers along world ``axis`` (0 = x, 1 = y; conservative for rotated parts)."""
        if self.shape == "box" and self.euler == (0.0, 0.0, 0.0):
            return self.position[axis] - self.size[axis], self.position[axis] + self.size[axis]
        r = max(self.size) if self.shape != "cylinder" else max(self.size[0], self.size[1] / 2)
        return self.position[axis] - r, self.position[axis] + r

    @property
    def x_extent(self) -> tuple[float, float]:
        """Range of x the part covers (conservative for rotated parts)."""
        return self.extent(0)


@dataclass(frozen=True)
class Light:
    """A light source used at dusk and night: ``street`` (point, at a lamp head),
    ``head``/``tail`` (a vehicle's lights, facing ``direction`` along x: +1 or -1)."""

    kind: str
    position: tuple[float, float, float]
    color: tuple[float, float, float]
    direction: float = 1.0


@dataclass
class Layout:
    """A street: primitives, light sources and the geometry the camera needs."""

    seed: int
    length: float
    road_half_width: float
    lane_width: float
    lane_lines: list[float]  # y of dashed lane separators
    edge_lines: list[float]  # y of solid edge lines
    ego_lane_y: float
    parts: list[Part] = field(default_factory=list)
    lights: list[Light] = field(default_factory=list)
    crossings: list[float] = field(default_factory=list)  # x of zebra crossings

    def add(self, part: Part) -> None:
        self.parts.append(part)


def _choice(rng: np.random.Generator, options: list) -> object:
    return options[int(rng.integers(len(options)))]


def _jitter(rng: np.random.Generator, color: tuple[float, float, float], amount: float = 0.06) -> tuple:
    return tuple(float(np.clip(c + rng.uniform(-amount, amount), 0.02, 0.98)) for c in color)


# With large scenery, the largest factor a building's height and a tree's size are grown by.
LARGE_SCENERY: tuple[float, float] = (3.5, 2.2)
FACADE_COLORS = [(0.62, 0.32, 0.24), (0.78, 0.70, 0.56), (0.85, 0.83, 0.78), (0.55, 0.55, 0.57),
                 (0.72, 0.55, 0.40), (0.45, 0.35, 0.30), (0.88, 0.86, 0.70), (0.60, 0.62, 0.66)]
CAR_COLORS = [(0.80, 0.80, 0.82), (0.12, 0.12, 0.14), (0.60, 0.08, 0.08), (0.10, 0.20, 0.50),
              (0.45, 0.47, 0.50), (0.90, 0.90, 0.88), (0.20, 0.35, 0.25), (0.75, 0.60, 0.20)]
CLOTH_COLORS = [(0.10, 0.10, 0.12), (0.25, 0.25, 0.40), (0.55, 0.10, 0.12), (0.70, 0.68, 0.60),
                (0.20, 0.35, 0.55), (0.40, 0.30, 0.20), (0.85, 0.85, 0.85), (0.30, 0.45, 0.25)]
SKIN_COLORS = [(0.85, 0.68, 0.55), (0.62, 0.45, 0.33), (0.40, 0.28, 0.20), (0.92, 0.78, 0.66)]


def _tile_x(layout: Layout, x0: float, x1: float, step: float, make) -> None:
    """Split a long strip into pieces so no triangle is huge (TinyRenderer does not clip)."""
    x = x0
    while x < x1 - 1e-6:
        nx = min(x + step, x1)
        make(x, nx)
        x = nx


def _ground(layout: Layout, rng: np.random.Generator, pave_left: float, pave_right: float,
            curb: float, x0: float) -> None:
    hw = layout.road_half_width
    asphalt = _jitter(rng, (0.32, 0.32, 0.33), 0.05)
    paving = _jitter(rng, _choice(rng, [(0.62, 0.60, 0.57), (0.55, 0.50, 0.48), (0.68, 0.66, 0.62)]), 0.04)
    far = layout.length + 60.0

    def road(a: float, b: float) -> None:
        layout.add(Part("box", ((b - a) / 2, hw, 0.05), ((a + b) / 2, 0.0, -0.05), asphalt, ROAD, ASPHALT))

    def pavement(a: float, b: float) -> None:
        for side, width in ((1, pave_left), (-1, pave_right)):
            y = side * (hw + width / 2)
            layout.add(Part("box", ((b - a) / 2, width / 2, curb / 2), ((a + b) / 2, y, curb / 2),
                            paving, PAVEMENT, PAVING))

    _tile_x(layout, x0, far, 4.0, road)
    _tile_x(layout, x0, far, 4.0, pavement)
    # Ground beyond the pavement (forecourts, verges): pavement-coloured, labelled pavement.
    for side, width in ((1, pave_left), (-1, pave_right)):
        inner = hw + width
        _tile_x(layout, x0, far, 8.0, lambda a, b, side=side, inner=inner: layout.add(
            Part("box", ((b - a) / 2, 15.0, 0.05), ((a + b) / 2, side * (inner + 15.0), curb - 0.05),
                 _jitter(rng, paving, 0.03), PAVEMENT, PAVING)))


def _building(layout: Layout, rng: np.random.Generator, side: int, x0: float, x1: float, y_front: float,
              grow: float = 1.0) -> None:
    height = float(rng.choice([rng.uniform(5, 10), rng.uniform(9, 18), rng.uniform(15, 30)], p=[0.4, 0.4, 0.2]))
    height *= grow
    depth = float(rng.uniform(8, 16))
    color = _jitter(rng, _choice(rng, FACADE_COLORS))
    y = side * (y_front + depth / 2)
    seed = int(rng.integers(1 << 30))
    _tile_x(layout, x0, x1, 6.0, lambda a, b: layout.add(
        Part("box", ((b - a) / 2, depth / 2, height / 2), ((a + b) / 2, y, height / 2), color,
             BUILDING, FACADE, seed=seed)))
    if rng.random() < 0.3:  # a shop awning or ground-floor band in another colour
        band = _jitter(rng, _choice(rng, FACADE_COLORS))
        _tile_x(layout, x0, x1, 6.0, lambda a, b: layout.add(
            Part("box", ((b - a) / 2, 0.3, 0.4), ((a + b) / 2, side * (y_front - 0.3), 3.2), band,
                 BUILDING)))


def _tree(layout: Layout, rng: np.random.Generator, x: float, y: float, z0: float, grow: float = 1.0) -> None:
    trunk_h = float(rng.uniform(1.8, 3.5)) * grow
    layout.add(Part("cylinder", (float(rng.uniform(0.12, 0.25)) * grow, trunk_h), (x, y, z0 + trunk_h / 2),
                    _jitter(rng, (0.30, 0.22, 0.15), 0.05), TREE))
    green = _jitter(rng, _choice(rng, [(0.20, 0.38, 0.14), (0.28, 0.45, 0.18), (0.16, 0.30, 0.12)]), 0.05)
    radius = float(rng.uniform(1.3, 2.8)) * grow
    for _ in range(int(rng.integers(1, 4))):
        off = rng.uniform(-0.6, 0.6, 3) * radius
        layout.add(Part("sphere", (radius * float(rng.uniform(0.7, 1.0)),),
                        (x + off[0], y + off[1], z0 + trunk_h + radius * 0.8 + abs(off[2]) * 0.5),
                        _jitter(rng, green, 0.04), TREE, FOLIAGE, seed=int(rng.integers(1 << 30))))


def _hedge(layout: Layout, rng: np.random.Generator, x0: float, x1: float, y: float, z0: float) -> None:
    h = float(rng.uniform(0.8, 2.0))
    green = _jitter(rng, (0.22, 0.36, 0.15), 0.05)
    _tile_x(layout, x0, x1, 5.0, lambda a, b: layout.add(
        Part("box", ((b - a) / 2, 0.5, h / 2), ((a + b) / 2, y, z0 + h / 2), green, TREE, FOLIAGE)))


def _fence(layout: Layout, rng: np.random.Generator, x0: float, x1: float, y: float, z0: float) -> None:
    h = float(rng.uniform(0.9, 1.8))
    color = _jitter(rng, _choice(rng, [(0.25, 0.25, 0.27), (0.50, 0.40, 0.28), (0.70, 0.70, 0.70)]))
    solid = rng.random() < 0.4  # a wall-like fence or posts and rails
    if solid:
        _tile_x(layout, x0, x1, 5.0, lambda a, b: layout.add(
            Part("box", ((b - a) / 2, 0.04, h / 2), ((a + b) / 2, y, z0 + h / 2), color, FENCE)))
        return
    for frac in (0.3, 0.9):
        _tile_x(layout, x0, x1, 5.0, lambda a, b, frac=frac: layout.add(
            Part("box", ((b - a) / 2, 0.03, 0.05), ((a + b) / 2, y, z0 + h * frac), color, FENCE)))
    x = x0
    while x <= x1:
        layout.add(Part("box", (0.04, 0.04, h / 2), (x, y, z0 + h / 2), color, FENCE))
        x += float(rng.uniform(1.2, 2.5))


def _street_lamp(layout: Layout, rng: np.random.Generator, x: float, side: int, y_curb: float, z0: float) -> None:
    h = float(rng.uniform(6.0, 9.0))
    y = side * (y_curb + 0.5)
    grey = _jitter(rng, (0.35, 0.36, 0.38), 0.05)
    layout.add(Part("cylinder", (0.09, h), (x, y, z0 + h / 2), grey, POLE))
    arm = float(rng.uniform(1.0, 2.0))
    layout.add(Part("box", (0.05, arm / 2, 0.05), (x, y - side * arm / 2, z0 + h), grey, POLE))
    head = (x, y - side * arm, z0 + h - 0.1)
    layout.add(Part("box", (0.35, 0.2, 0.08), head, (0.9, 0.9, 0.85), POLE, LAMP))
    warm = rng.random() < 0.6  # sodium orange or LED white
    layout.lights.append(Light("street", (head[0], head[1], head[2] - 0.15),
                               (1.0, 0.72, 0.42) if warm else (0.95, 0.95, 1.0)))


def _sign(layout: Layout, rng: np.random.Generator, x: float, side: int, y_curb: float, z0: float) -> None:
    h = float(rng.uniform(2.0, 3.2))
    y = side * (y_curb + 0.4)
    layout.add(Part("cylinder", (0.04, h), (x, y, z0 + h / 2), (0.55, 0.55, 0.57), POLE))
    kind = int(rng.integers(3))
    if kind == 0:  # round or square plate facing the road user
        color = _choice(rng, [(0.75, 0.10, 0.10), (0.10, 0.25, 0.65), (0.95, 0.95, 0.95), (0.95, 0.75, 0.10)])
        layout.add(Part("box", (0.03, 0.35, 0.35), (x, y, z0 + h + 0.3), _jitter(rng, color, 0.03), SIGN))
    elif kind == 1:  # traffic light
        layout.add(Part("box", (0.15, 0.18, 0.45), (x, y, z0 + h + 0.45), (0.08, 0.08, 0.08), SIGN))
        lamp = _choice(rng, [(0.9, 0.1, 0.1), (0.1, 0.9, 0.3), (0.95, 0.7, 0.1)])
        layout.add(Part("sphere", (0.1,), (x - 0.12, y, z0 + h + 0.45), lamp, SIGN, LAMP))
    else:  # wide direction sign
        layout.add(Part("box", (0.03, 0.8, 0.45), (x, y - side * 0.4, z0 + h + 0.4),
                        _jitter(rng, _choice(rng, [(0.10, 0.35, 0.15), (0.10, 0.20, 0.60)]), 0.03), SIGN))


def _car(layout: Layout, rng: np.random.Generator, x: float, y: float, heading: float, lights: bool) -> None:
    big = rng.random() < 0.12
    length = float(rng.uniform(7, 12) if big else rng.uniform(3.8, 4.9))
    width = float(rng.uniform(2.2, 2.5) if big else rng.uniform(1.65, 1.9))
    color = _jitter(rng, _choice(rng, CAR_COLORS), 0.04)
    if big:
        height = float(rng.uniform(2.6, 3.4))
        layout.add(Part("box", (length / 2, width / 2, (height - 0.4) / 2), (x, y, 0.4 + (height - 0.4) / 2),
                        color, CAR))
        layout.add(Part("box", (0.02, width / 2 - 0.1, 0.5), (x + heading * (length / 2 + 0.01), y, height - 1.0),
                        (0.1, 0.12, 0.15), CAR, GLASS))
    else:
        body_h = float(rng.uniform(0.6, 0.8))
        layout.add(Part("box", (length / 2, width / 2, body_h / 2), (x, y, 0.3 + body_h / 2), color, CAR))
        cabin_l = length * float(rng.uniform(0.45, 0.6))
        cabin_h = float(rng.uniform(0.45, 0.6))
        layout.add(Part("box", (cabin_l / 2, width / 2 - 0.08, cabin_h / 2),
                        (x - heading * length * 0.05, y, 0.3 + body_h + cabin_h / 2),
                        _jitter(rng, (0.12, 0.14, 0.17), 0.03), CAR, GLASS))
    for dx in (-0.32, 0.32):
        for dy in (-1, 1):
            layout.add(Part("cylinder", (0.32, 0.22), (x + dx * length, y + dy * (width / 2 - 0.05), 0.32),
                            (0.05, 0.05, 0.05), CAR, euler=(math.pi / 2, 0.0, 0.0)))
    front, back = x + heading * length / 2, x - heading * length / 2
    for dy in (-1, 1):
        ly = y + dy * (width / 2 - 0.3)
        layout.add(Part("box", (0.03, 0.15, 0.06), (front + heading * 0.02, ly, 0.75), (0.95, 0.95, 0.9),
                        CAR, HEADLIGHT))
        layout.add(Part("box", (0.03, 0.12, 0.07), (back - heading * 0.02, ly, 0.85), (0.7, 0.05, 0.05),
                        CAR, TAILLIGHT))
    if lights:
        layout.lights.append(Light("head", (front + heading * 0.1, y, 0.75), (1.0, 0.97, 0.9), heading))
        layout.lights.append(Light("tail", (back - heading * 0.1, y, 0.85), (1.0, 0.1, 0.05), -heading))


def _person(layout: Layout, rng: np.random.Generator, x: float, y: float, z0: float, label: int = PEDESTRIAN,
            height: float | None = None, seated: bool = False) -> None:
    h = height if height is not None else float(rng.uniform(1.5, 1.9))
    shirt = _jitter(rng, _choice(rng, CLOTH_COLORS))
    trousers = _jitter(rng, _choice(rng, CLOTH_COLORS))
    skin = _choice(rng, SKIN_COLORS)
    leg = 0.47 * h
    yaw = float(rng.uniform(0, 2 * math.pi))
    if not seated:
        stride = float(rng.uniform(-0.15, 0.15))
        for side in (-1, 1):
            layout.add(Part("box", (0.07, 0.07, leg / 2), (x + side * stride, y + side * 0.1, z0 + leg / 2),
                            trousers, label, euler=(0.0, 0.0, yaw)))
    torso = 0.33 * h
    tz = z0 + leg + torso / 2
    layout.add(Part("box", (0.12, 0.2, torso / 2), (x, y, tz), shirt, label, euler=(0.0, 0.0, yaw)))
    for side in (-1, 1):
        layout.add(Part("box", (0.05, 0.05, torso * 0.45), (x, y + side * 0.26, tz - 0.05), shirt, label,
                        euler=(0.0, 0.0, yaw)))
    layout.add(Part("sphere", (0.11,), (x, y, z0 + leg + torso + 0.12), skin, label))


def _cyclist(layout: Layout, rng: np.random.Generator, x: float, y: float, heading: float) -> None:
    frame = _jitter(rng, _choice(rng, CAR_COLORS))
    for dx in (-0.5, 0.5):
        layout.add(Part("cylinder", (0.34, 0.04), (x + dx, y, 0.34), (0.06, 0.06, 0.06), BICYCLIST,
                        euler=(math.pi / 2, 0.0, 0.0)))
    layout.add(Part("box", (0.5, 0.03, 0.03), (x, y, 0.6), frame, BICYCLIST))
    layout.add(Part("box", (0.03, 0.03, 0.25), (x + heading * 0.1, y, 0.75), frame, BICYCLIST))
    # Rider: legs start at the saddle (0.9 m); CamVid labels rider and bicycle together.
    _person(layout, rng, x - heading * 0.1, y, 0.5, label=BICYCLIST, height=float(rng.uniform(1.6, 1.85)))


def generate_layout(seed: int, length: float = 140.0, start: float = -2.0, clear_ahead: float = 10.0,
                    large_scenery: bool = False) -> Layout:
    """A random street ``length`` metres long (plus a far backdrop), deterministic by ``seed``.

    The ego lane is kept free of traffic for ``clear_ahead`` metres past x = 0, so a
    camera can drive that far without meeting a car. ``large_scenery`` grows each building
    up to ``LARGE_SCENERY[0]`` times (5-30 m becomes up to about 100 m, as in a city centre) and each
    tree up to ``LARGE_SCENERY[1]`` times (mature street trees of up to 20 m), log-uniformly, so
    that how large a facade or a crown looks does not tell how far it is.
    """
    rng = np.random.default_rng(seed)
    # Its own stream: without large scenery every layout is exactly what it was.
    grow_rng = np.random.default_rng([seed, 0x7A11]) if large_scenery else None

    def grow(kind: int) -> float:
        return 1.0 if grow_rng is None else float(np.exp(grow_rng.uniform(0.0, math.log(LARGE_SCENERY[kind]))))

    lanes = 4 if rng.random() < 0.2 else 2
    lane_width = float(rng.uniform(3.0, 3.7))
    parking = 2.2 if rng.random() < 0.6 else 0.0  # a parking strip along both kerbs
    carriageway = lanes * lane_width / 2
    hw = carriageway + parking
    left_traffic = rng.random() < 0.5  # CamVid is filmed in the UK (drive on the left)
    ego_lane = (lane_width / 2 if left_traffic else -lane_width / 2) * (1 if lanes == 2 else 3)
    ego_lane = float(np.clip(ego_lane, -carriageway + lane_width / 2, carriageway - lane_width / 2))
    lane_lines = [-carriageway + i * lane_width for i in range(1, lanes)]
    edge = carriageway - 0.15 if parking else hw - 0.25
    layout = Layout(seed=seed, length=length, road_half_width=hw, lane_width=lane_width,
                    lane_lines=lane_lines, edge_lines=[-edge, edge], ego_lane_y=ego_lane)
    pave = {1: float(rng.uniform(1.5, 5.0)), -1: float(rng.uniform(1.5, 5.0))}
    curb = float(rng.uniform(0.10, 0.16))
    _ground(layout, rng, pave[1], pave[-1], curb, start)
    if rng.random() < 0.5:
        layout.crossings.append(clear_ahead + float(rng.uniform(5, 50)))
    night_lights = True  # vehicle light positions are always recorded; shading decides if they glow

    for side in (1, -1):
        y_curb = hw
        y_front = hw + pave[side] + float(rng.choice([0.0, rng.uniform(1, 6)], p=[0.6, 0.4]))
        x = start - 10.0
        while x < length + 40:
            r = rng.random()
            if r < 0.62:
                seg = float(rng.uniform(8, 30))
                _building(layout, rng, side, x, x + seg, y_front + float(rng.uniform(0, 1.5)), grow(0))
            elif r < 0.85:
                seg = float(rng.uniform(6, 25))
                if rng.random() < 0.6:
                    _fence(layout, rng, x, x + seg, side * (y_front - 0.2), curb)
                else:
                    _hedge(layout, rng, x, x + seg, side * (y_front - 0.6), curb)
                for tx in np.arange(x + 2, x + seg, float(rng.uniform(4, 9))):
                    _tree(layout, rng, float(tx), side * (y_front + float(rng.uniform(1, 6))), curb, grow(1))
                if rng.random() < 0.7:  # a building set further back
                    _building(layout, rng, side, x, x + seg, y_front + float(rng.uniform(10, 25)), grow(0))
            else:
                seg = float(rng.uniform(8, 15))  # side street: an opening onto distant buildings
                _building(layout, rng, side, x, x + seg, y_front + float(rng.uniform(25, 50)), grow(0))
            x += seg
        # Street furniture along the curb.
        lamp_gap = float(rng.uniform(18, 35))
        for lx in np.arange(start + float(rng.uniform(3, lamp_gap)), length + 20, lamp_gap):
            _street_lamp(layout, rng, float(lx), side, y_curb, curb)
        for _ in range(int(rng.integers(0, 5))):
            _sign(layout, rng, float(rng.uniform(start + 5, length)), side, y_curb, curb)
        if rng.random() < 0.55:
            gap = float(rng.uniform(7, 14))
            for tx in np.arange(start + float(rng.uniform(2, gap)), length + 20, gap):
                if rng.random() < 0.8:
                    _tree(layout, rng, float(tx), side * (y_curb + pave[side] * float(rng.uniform(0.5, 0.8))), curb,
                          grow(1))
        if rng.random() < 0.25:  # a railing along the kerb
            a = float(rng.uniform(start + 5, length * 0.6))
            _fence(layout, rng, a, a + float(rng.uniform(5, 25)), side * (y_curb + 0.25), curb)
        for _ in range(int(rng.integers(0, 14))):
            _person(layout, rng, float(rng.uniform(start + 6, length * 0.7)),
                    side * (y_curb + float(rng.uniform(0.5, pave[side] - 0.3))), curb)
        # Parked cars along this kerb.
        if parking and rng.random() < 0.8:
            px = start + float(rng.uniform(4, 12))
            while px < length * 0.8:
                if rng.random() < 0.7:
                    _car(layout, rng, px, side * (y_curb - 1.1), float(rng.choice([-1.0, 1.0])), False)
                px += float(rng.uniform(5.5, 9.0))

    # Traffic in the lanes: ahead of the camera in the ego lane, anywhere in the others.
    lane_centres = [-carriageway + lane_width * (i + 0.5) for i in range(lanes)]
    for lane_y in lane_centres:
        heading = 1.0 if (lane_y > 0) == left_traffic else -1.0
        if abs(lane_y - ego_lane) < 0.1:
            cx = clear_ahead + float(rng.uniform(0, 20))
        else:
            cx = float(rng.uniform(start + 8, 30))
        while cx < length * 0.9:
            if rng.random() < 0.55:
                _car(layout, rng, cx, lane_y + float(rng.uniform(-0.3, 0.3)), heading, night_lights)
            cx += float(rng.uniform(9, 30))
    for _ in range(int(rng.choice([0, 1, 2, 3], p=[0.35, 0.35, 0.2, 0.1]))):
        edge = float(rng.choice([-1.0, 1.0]))
        _cyclist(layout, rng, float(rng.uniform(clear_ahead, clear_ahead + 50)), edge * (carriageway - 0.9),
                 1.0 if (edge > 0) == left_traffic else -1.0)
    for cross in layout.crossings:
        for _ in range(int(rng.integers(0, 4))):
            _person(layout, rng, cross + float(rng.uniform(-1.5, 1.5)), float(rng.uniform(-hw, hw)), 0.0)
    if rng.random() < 0.5:  # the street ends at a cross street with a building row
        far_x = length + float(rng.uniform(0, 20))
        for y0 in np.arange(-60, 60, 12.0):
            h = float(rng.uniform(8, 30)) * grow(0)
            layout.add(Part("box", (6.0, 6.0, h / 2), (far_x + 6, float(y0) + 6, h / 2),
                            _jitter(rng, _choice(rng, FACADE_COLORS)), BUILDING, FACADE,
                            seed=int(rng.integers(1 << 30))))
    return layout
