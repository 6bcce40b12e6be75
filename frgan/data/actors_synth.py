"""actors-synth: a synthetic stand-in for Penn Action (the paper's 8 actions, 13 joints).

Each video is one actor performing one action. A 2D kinematic model (pelvis, torso, neck,
head, two-segment arms and legs, feet) is driven by per-action keyframed angles, smoothly
interpolated over an action phase; props (bat, club, racket, barbell, rope, glove) make the
sports read as what they are. The figure is drawn in numpy as thick, shaded capsules in depth
order over a textured background, without anti-aliasing.

Geometry is authored in world units (a standing actor is ~1 tall; y points down; the ground
is y = 0), for a right-handed actor. Limb angles are absolute image angles in degrees:
0 points down, +90 points to +x (image right), 180 points up, -90 points to -x.
Facing the camera (yaw 0) the person's left side is at +x; yaw +90 faces +x, showing the
right side nearest the camera. A mirrored video is the horizontal reflection of the whole
scene: joints keep their names (a mirrored front view reads as a back view).

Framing imitates Penn Action after the temporal-tube crop: one square crop per video around
the figure's extent over all frames plus a margin, so the person fills most of the frame.

Pixel convention (frames and gt["joints"]): (x, y) = (column, row) of pixel centres, 0-based;
the image covers [-0.5, size - 0.5] on both axes. The "head" joint is the centre of the head. A joint is visible (gt["visibility"] = 1)
when it lies inside the frame and no nearer body part covers its pixel.

Splits are by actor (subject-disjoint, as records.SPLITS asks): every actor performs all 8
actions; the first third of the actors is "gm", the second "gr", the rest "test".
"""
from __future__ import annotations

import colorsys
from dataclasses import dataclass
from typing import Iterator

import numpy as np

from frgan.data.records import SPLITS, VideoRecord
from frgan.data.skeleton import ACTIONS, N_JOINTS

# ---------------------------------------------------------------------------------------------
# Splits


def split_of_video(index: int, n: int) -> str:
    """The split of item `index` of `n` ordered items: first third "gm", second "gr", rest "test"."""
    if not 0 <= index < n:
        raise ValueError(f"index {index} outside 0..{n - 1}")
    return SPLITS[min(3 * index // n, 2)]


# ---------------------------------------------------------------------------------------------
# Pose parameters and the per-action keyframes

PARAMS = (
    "lift",      # jump height (world units): the lower ankle is this far above its rest height
    "shift",     # pelvis x offset (world units, +x): strides, steps
    "lean",      # torso tilt from vertical, degrees, top towards +x
    "yaw",       # body turn, degrees: 0 faces the camera, +90 faces +x (right side nearest)
    "l_upper", "l_fore", "r_upper", "r_fore",     # arm segment angles
    "l_thigh", "l_shin", "r_thigh", "r_shin",     # leg segment angles
    "prop_angle",  # angle of a held stick (bat, club, racket) or of the barbell's bar
    "prop_len",    # its projected length, 0..1 (foreshortening when it points at the camera)
    "prop_z",      # depth offset of the prop: > 0 behind the body, < 0 in front
    "rope",        # jump rope apex: 1 over the head, 0 at the hands, -1 under the feet
    "l_arm_z", "r_arm_z",  # depth offsets of the arms (e.g. an arm behind the back)
)
P = {name: i for i, name in enumerate(PARAMS)}
ANGLE_PARAMS = ("lean", "l_upper", "l_fore", "r_upper", "r_fore",
                "l_thigh", "l_shin", "r_thigh", "r_shin", "prop_angle")

NEUTRAL = dict(lift=0.0, shift=0.0, lean=0.0, yaw=0.0,
               l_upper=8.0, l_fore=4.0, r_upper=-8.0, r_fore=-4.0,
               l_thigh=4.0, l_shin=2.0, r_thigh=-4.0, r_shin=-2.0,
               prop_angle=0.0, prop_len=1.0, prop_z=0.0, rope=0.0, l_arm_z=0.0, r_arm_z=0.0)


@dataclass(frozen=True)
class Motion:
    """An action's motion: keyframes (phase, changes from the previous keyframe) and its prop."""
    periodic: bool
    keys: tuple
    prop: str | None


# Each keyframe lists only what changes from the keyframe before it (the first from NEUTRAL).
# One-shot actions run once from phase 0 to 1; periodic ones loop (the last key blends into
# the first).
MOTIONS = {
    "baseball_pitch": Motion(False, (
        (0.00, dict(yaw=85, l_upper=20, l_fore=130, r_upper=20, r_fore=130,
                    l_thigh=3, l_shin=0, r_thigh=-3, r_shin=0)),                  # set, hands at chest
        (0.20, dict(yaw=100, lean=-8, l_thigh=95, l_shin=10, r_thigh=0)),            # leg kick
        (0.38, dict(lean=5, shift=0.08, l_thigh=55, l_shin=5, r_thigh=-35, r_shin=-20,
                    l_upper=85, l_fore=80, r_upper=-120, r_fore=-140)),              # stride, arms apart
        (0.50, dict(yaw=85, lean=12, shift=0.14, l_thigh=40, l_shin=0, r_thigh=-45, r_shin=-30,
                    l_upper=70, l_fore=110, r_upper=-100, r_fore=-190)),             # arm cocked
        (0.62, dict(yaw=70, lean=30, shift=0.18, l_upper=20, l_fore=100,
                    r_upper=-200, r_fore=-240)),                                     # release over the top
        (0.76, dict(lean=45, shift=0.22, l_upper=-20, l_fore=60, r_upper=-300, r_fore=-340,
                    l_thigh=30, l_shin=-5, r_thigh=-10, r_shin=-60)),                # follow-through
        (0.90, dict(lean=20, shift=0.25, l_upper=10, l_fore=60, r_upper=-340, r_fore=-350,
                    l_thigh=10, l_shin=0, r_thigh=20, r_shin=5)),                    # finish
        (1.00, dict()),
    ), "glove"),
    "baseball_swing": Motion(False, (
        (0.00, dict(yaw=-10, l_upper=-100, l_fore=-132, r_upper=-20, r_fore=-183,
                    l_thigh=16, l_shin=6, r_thigh=-16, r_shin=-6, prop_angle=-160)),  # stance, bat up
        (0.25, dict(yaw=-25, l_upper=-105, l_fore=-140, r_upper=-30, r_fore=-190,
                    l_thigh=45, l_shin=12, prop_angle=-150)),                         # load, front leg up
        (0.45, dict(yaw=-15, l_thigh=25, l_shin=5, r_thigh=-22, r_shin=-6,
                    l_upper=-80, l_fore=-110, r_upper=-5, r_fore=-160, prop_angle=-115,
                    prop_len=0.8)),                                                   # stride lands
        (0.52, dict(yaw=0, l_upper=-40, l_fore=-30, r_upper=20, r_fore=-60,
                    prop_angle=-30, prop_len=0.45)),                                  # bat lags behind
        (0.60, dict(yaw=10, l_upper=-20, l_fore=15, r_upper=35, r_fore=10,
                    prop_angle=90, prop_len=1.0)),                                    # contact, bat level
        (0.74, dict(yaw=25, l_upper=30, l_fore=120, r_upper=100, r_fore=130,
                    prop_angle=150, prop_len=0.75, r_shin=-20)),                      # extension
        (0.88, dict(yaw=35, l_upper=25, l_fore=170, r_upper=110, r_fore=170,
                    prop_angle=250, prop_len=0.9, r_thigh=-10, r_shin=-30)),          # bat wraps around
        (1.00, dict()),
    ), "bat"),
    "clean_and_jerk": Motion(False, (
        (0.00, dict(l_thigh=70, l_shin=-14, r_thigh=-70, r_shin=14, prop_angle=90,
                    l_upper=10, l_fore=8, r_upper=-10, r_fore=-8)),                   # set-up squat
        (0.18, dict(l_thigh=32, l_shin=-6, r_thigh=-32, r_shin=6)),                   # first pull
        (0.30, dict(lift=0.03, l_thigh=6, l_shin=2, r_thigh=-6, r_shin=-2,
                    l_upper=14, l_fore=12, r_upper=-14, r_fore=-12)),                 # extension
        (0.40, dict(lift=0.0, l_thigh=75, l_shin=-14, r_thigh=-75, r_shin=14,
                    l_upper=40, l_fore=175, r_upper=-40, r_fore=-175)),               # catch, front squat
        (0.55, dict(l_thigh=6, l_shin=2, r_thigh=-6, r_shin=-2)),                     # stand up
        (0.64, dict(l_thigh=26, l_shin=-8, r_thigh=-26, r_shin=8)),                   # dip
        (0.74, dict(l_thigh=34, l_shin=-4, r_thigh=-14, r_shin=-6,
                    l_upper=160, l_fore=172, r_upper=-160, r_fore=-172)),             # jerk, split
        (0.88, dict(l_thigh=8, l_shin=2, r_thigh=-8, r_shin=-2,
                    l_upper=165, l_fore=175, r_upper=-165, r_fore=-175)),             # recover, overhead
        (1.00, dict()),
    ), "barbell"),
    "golf_swing": Motion(False, (
        (0.00, dict(l_upper=-15, l_fore=-22, r_upper=15, r_fore=22,
                    l_thigh=12, l_shin=3, r_thigh=-12, r_shin=-3, prop_angle=0)),     # address
        (0.16, dict(yaw=-10, l_upper=-49, l_fore=-52, r_upper=10, r_fore=-60,
                    prop_angle=-85)),                                                 # takeaway
        (0.36, dict(yaw=-25, l_upper=-111, l_fore=-118, r_upper=-60, r_fore=-209,
                    prop_angle=-250, l_thigh=6, l_shin=-6)),                          # top of backswing
        (0.50, dict(yaw=-15, l_upper=-40, l_fore=-45, r_upper=0, r_fore=-50,
                    prop_angle=-120, l_thigh=12, l_shin=3)),                          # downswing
        (0.58, dict(yaw=0, l_upper=-8, l_fore=-10, r_upper=18, r_fore=22,
                    prop_angle=5)),                                                   # impact
        (0.72, dict(yaw=15, l_upper=10, l_fore=70, r_upper=49, r_fore=49,
                    prop_angle=90)),                                                  # extension
        (0.88, dict(yaw=35, l_upper=60, l_fore=209, r_upper=111, r_fore=118,
                    prop_angle=250, r_thigh=8, r_shin=-18)),                          # finish
        (1.00, dict()),
    ), "club"),
    "jumping_jacks": Motion(True, (
        (0.00, dict(l_upper=10, l_fore=8, r_upper=-10, r_fore=-8,
                    l_thigh=3, l_shin=2, r_thigh=-3, r_shin=-2)),                     # together
        (0.25, dict(lift=0.07, l_upper=95, l_fore=105, r_upper=-95, r_fore=-105,
                    l_thigh=14, l_shin=14, r_thigh=-14, r_shin=-14)),                 # jumping out
        (0.50, dict(lift=0.0, l_upper=162, l_fore=172, r_upper=-162, r_fore=-172,
                    l_thigh=22, l_shin=22, r_thigh=-22, r_shin=-22)),                 # spread, hands up
        (0.75, dict(lift=0.07, l_upper=95, l_fore=105, r_upper=-95, r_fore=-105,
                    l_thigh=12, l_shin=12, r_thigh=-12, r_shin=-12)),                 # jumping in
    ), None),
    "jump_rope": Motion(True, (
        (0.00, dict(yaw=15, lift=0.0, rope=1.0, prop_z=0.0, l_upper=22, l_fore=75,
                    r_upper=-22, r_fore=-75, l_thigh=14, l_shin=-10, r_thigh=10, r_shin=-12)),  # rope overhead
        (0.25, dict(lift=0.03, rope=0.0, prop_z=-2.0, l_fore=65, r_fore=-65,
                    l_thigh=6, l_shin=-4, r_thigh=4, r_shin=-6)),                     # rope in front
        (0.50, dict(lift=0.08, rope=-1.0, prop_z=0.0, l_fore=58, r_fore=-58,
                    l_thigh=16, l_shin=-22, r_thigh=12, r_shin=-24)),                 # hop over it
        (0.75, dict(lift=0.03, rope=0.0, prop_z=2.0, l_fore=68, r_fore=-68,
                    l_thigh=6, l_shin=-4, r_thigh=4, r_shin=-6)),                     # rope behind
    ), "rope"),
    "tennis_forehand": Motion(False, (
        (0.00, dict(yaw=75, l_upper=30, l_fore=95, r_upper=30, r_fore=95, prop_angle=125,
                    l_thigh=22, l_shin=-8, r_thigh=-4, r_shin=-14)),                  # ready
        (0.25, dict(yaw=110, l_upper=70, l_fore=90, r_upper=-60, r_fore=-85,
                    prop_angle=-110)),                                                # backswing
        (0.42, dict(r_upper=-30, r_fore=-25, prop_angle=-45)),                        # racket drops
        (0.58, dict(yaw=70, shift=0.06, l_upper=20, l_fore=40, r_upper=50, r_fore=80,
                    prop_angle=95, l_thigh=40, l_shin=5, r_thigh=-25, r_shin=-15)),   # contact
        (0.74, dict(yaw=55, lean=10, l_upper=-10, l_fore=30, r_upper=140, r_fore=175,
                    prop_angle=200)),                                                 # follow-through
        (0.88, dict(r_upper=160, r_fore=240, prop_angle=330, r_thigh=-10, r_shin=-35)),  # finish
        (1.00, dict()),
    ), "racket"),
    "tennis_serve": Motion(False, (
        (0.00, dict(yaw=80, lean=-5, l_upper=30, l_fore=100, r_upper=30, r_fore=100,
                    prop_angle=120, l_thigh=15, l_shin=2, r_thigh=-10, r_shin=-2)),   # stance
        (0.20, dict(lean=-10, l_upper=170, l_fore=175, r_upper=-40, r_fore=-50,
                    prop_angle=-60)),                                                 # toss
        (0.38, dict(lean=-15, l_thigh=35, l_shin=-20, r_thigh=10, r_shin=-30,
                    l_upper=165, r_upper=-110, r_fore=-190, prop_angle=-200)),        # trophy
        (0.50, dict(r_upper=-150, r_fore=-360, prop_angle=-350, prop_z=2.0,
                    l_upper=90, l_fore=60)),                                          # racket drop
        (0.62, dict(lift=0.07, lean=8, l_thigh=5, l_shin=-5, r_thigh=-15, r_shin=-40,
                    r_upper=-200, r_fore=-200, prop_angle=-195, prop_z=0.0)),         # contact, jump
        (0.78, dict(lift=0.02, lean=35, r_upper=-300, r_fore=-330, prop_angle=-340,
                    l_upper=10, l_fore=30)),                                          # follow-through
        (0.90, dict(lift=0.0, lean=20, shift=0.12, r_thigh=20, r_shin=-10, l_thigh=-10,
                    l_shin=-30, r_upper=-350, r_fore=-380, prop_angle=-370)),         # landing
        (1.00, dict()),
    ), "racket"),
}
assert tuple(MOTIONS) == ACTIONS


def _key_table(motion: Motion) -> tuple[np.ndarray, np.ndarray]:
    """Keyframe phases (K,) and full parameter rows (K, n_params), each key inheriting the last."""
    row, rows, phases = dict(NEUTRAL), [], []
    for phase, changes in motion.keys:
        row.update(changes)
        rows.append([row[name] for name in PARAMS])
        phases.append(phase)
    return np.asarray(phases, np.float64), np.asarray(rows, np.float64)


def _interpolate(key_phases: np.ndarray, key_rows: np.ndarray, phases: np.ndarray,
                 periodic: bool) -> np.ndarray:
    """Cubic Hermite (Catmull-Rom tangents) through the keyframes at `phases` -> (T, n_params).

    Periodic motions wrap around phase 1 -> 0; one-shot motions start and end at rest.
    """
    k = len(key_phases)
    if periodic:
        t_ext = np.concatenate([[key_phases[-1] - 1.0], key_phases, [key_phases[0] + 1.0]])
        v_ext = np.concatenate([key_rows[-1:], key_rows, key_rows[:1]])
        tangents = (v_ext[2:] - v_ext[:-2]) / (t_ext[2:] - t_ext[:-2])[:, None]
        phases = np.mod(phases, 1.0)
        seg = np.searchsorted(key_phases, phases, side="right") - 1
        nxt = (seg + 1) % k
        t0 = key_phases[seg]
        t1 = np.where(seg + 1 < k, key_phases[np.minimum(seg + 1, k - 1)], key_phases[0] + 1.0)
    else:
        tangents = np.zeros_like(key_rows)
        tangents[1:-1] = ((key_rows[2:] - key_rows[:-2])
                          / (key_phases[2:] - key_phases[:-2])[:, None])
        phases = np.clip(phases, key_phases[0], key_phases[-1])
        seg = np.clip(np.searchsorted(key_phases, phases, side="right") - 1, 0, k - 2)
        nxt = seg + 1
        t0, t1 = key_phases[seg], key_phases[nxt]
    span = (t1 - t0)[:, None]
    u = ((phases - t0) / (t1 - t0))[:, None]
    h00, h10 = 2 * u**3 - 3 * u**2 + 1, u**3 - 2 * u**2 + u
    h01, h11 = -2 * u**3 + 3 * u**2, u**3 - u**2
    return (h00 * key_rows[seg] + h10 * span * tangents[seg]
            + h01 * key_rows[nxt] + h11 * span * tangents[nxt])


# ---------------------------------------------------------------------------------------------
# Actors: body, clothes, and what differs per video

@dataclass(frozen=True)
class Body:
    """Segment lengths and half-widths, world units (standing height ~1)."""
    torso: float
    neck: float
    head_r: float
    shoulder_half: float
    hip_half: float
    chest_depth_half: float
    upper_arm: float
    forearm: float
    thigh: float
    shin: float
    ankle_h: float
    foot: float
    width: float  # multiplies every limb half-width


@dataclass(frozen=True)
class Look:
    """Colours (RGB in [0, 1]) and cut of the clothes."""
    skin: tuple
    hair: tuple
    shirt: tuple
    trousers: tuple
    shoes: tuple
    long_sleeves: bool
    long_trousers: bool


def _hsv(h: float, s: float, v: float) -> tuple:
    return tuple(float(c) for c in colorsys.hsv_to_rgb(h % 1.0, s, v))


def _make_body(rng: np.random.Generator) -> Body:
    def vary(x, sd=0.05):
        return float(x * np.clip(rng.normal(1.0, sd), 1 - 2.5 * sd, 1 + 2.5 * sd))
    return Body(torso=vary(0.30), neck=vary(0.03, 0.1), head_r=vary(0.066, 0.06),
                shoulder_half=vary(0.105, 0.07), hip_half=vary(0.072, 0.07),
                chest_depth_half=vary(0.07, 0.08), upper_arm=vary(0.17), forearm=vary(0.15),
                thigh=vary(0.245), shin=vary(0.245), ankle_h=0.04, foot=vary(0.08),
                width=float(rng.uniform(0.85, 1.2)))


def _make_look(rng: np.random.Generator) -> Look:
    return Look(
        skin=_hsv(rng.uniform(0.03, 0.1), rng.uniform(0.25, 0.6), rng.uniform(0.35, 0.95)),
        hair=_hsv(rng.uniform(0.03, 0.12), rng.uniform(0.3, 0.8), rng.uniform(0.06, 0.6)),
        shirt=_hsv(rng.uniform(), rng.uniform(0.45, 0.95), rng.uniform(0.35, 0.95)),
        trousers=_hsv(rng.uniform(), rng.uniform(0.15, 0.8), rng.uniform(0.12, 0.7)),
        shoes=_hsv(rng.uniform(), rng.uniform(0.0, 0.3), rng.uniform(0.08, 0.9)),
        long_sleeves=bool(rng.random() < 0.5),
        long_trousers=bool(rng.random() < 0.6),
    )


# ---------------------------------------------------------------------------------------------
# Kinematics


def _direction(deg: np.ndarray) -> np.ndarray:
    """Unit vectors (..., 2) for image angles in degrees (0 down, +90 towards +x)."""
    rad = np.deg2rad(deg)
    return np.stack([np.sin(rad), np.cos(rad)], axis=-1)


def _skeleton(pose: np.ndarray, body: Body) -> dict[str, np.ndarray]:
    """World positions (T, 2) of every named point of the figure for pose rows (T, n_params)."""
    col = {name: pose[:, i] for name, i in P.items()}
    yaw = np.deg2rad(col["yaw"])
    spread = np.cos(yaw)[:, None]          # shoulders and hips close up as the body turns
    up = _direction(180.0 - col["lean"])   # pelvis -> neck
    across = np.stack([-up[:, 1], up[:, 0]], axis=-1)  # the person's left, when facing us

    pelvis = np.stack([col["shift"], np.zeros_like(col["shift"])], axis=-1)
    pts = {"pelvis": pelvis}
    pts["neck"] = pelvis + body.torso * up
    pts["head"] = pts["neck"] + (body.neck + body.head_r) * up
    shoulder_line = pts["neck"] - 0.02 * up
    for side, sign in (("l", 1.0), ("r", -1.0)):
        pts[f"{side}_shoulder"] = shoulder_line + sign * body.shoulder_half * spread * across
        pts[f"{side}_elbow"] = pts[f"{side}_shoulder"] + body.upper_arm * _direction(col[f"{side}_upper"])
        pts[f"{side}_wrist"] = pts[f"{side}_elbow"] + body.forearm * _direction(col[f"{side}_fore"])
        pts[f"{side}_hip"] = pelvis + sign * body.hip_half * spread * across
        pts[f"{side}_knee"] = pts[f"{side}_hip"] + body.thigh * _direction(col[f"{side}_thigh"])
        pts[f"{side}_ankle"] = pts[f"{side}_knee"] + body.shin * _direction(col[f"{side}_shin"])
        pts[f"{side}_toe"] = pts[f"{side}_ankle"] + _foot_vector(col[f"{side}_shin"], yaw, body)

    # Stand on the ground: the lower ankle rests at its height, lifted by `lift` in a jump.
    lowest = np.maximum(pts["l_ankle"][:, 1], pts["r_ankle"][:, 1])
    drop = (-body.ankle_h - col["lift"]) - lowest
    return {name: p + np.stack([np.zeros_like(drop), drop], axis=-1) for name, p in pts.items()}


def _foot_vector(shin_deg: np.ndarray, yaw: np.ndarray, body: Body) -> np.ndarray:
    """Ankle -> toe: at right angles to the shin, towards the facing side, foreshortened when
    the body faces the camera (then the foot mostly extends the shin a little)."""
    side_on = np.abs(np.sin(yaw))[:, None]
    facing = np.where(np.sin(yaw) >= 0, 1.0, -1.0)
    along = _direction(shin_deg + 90.0 * facing)
    return body.foot * side_on * along + 0.3 * body.foot * (1 - side_on) * _direction(shin_deg)


JOINT_POINTS = ("head", "l_shoulder", "r_shoulder", "l_elbow", "r_elbow", "l_wrist", "r_wrist",
                "l_hip", "r_hip", "l_knee", "r_knee", "l_ankle", "r_ankle")  # Penn's order
assert len(JOINT_POINTS) == N_JOINTS


# ---------------------------------------------------------------------------------------------
# Parts: capsules (segment a-b, radius tapering ra -> rb) with a colour and a depth per frame


@dataclass
class Part:
    name: str
    a: np.ndarray        # (T, 2)
    b: np.ndarray        # (T, 2)
    ra: np.ndarray       # (T,)
    rb: np.ndarray       # (T,)
    colour: tuple
    depth: np.ndarray    # (T,), larger is farther; painted far to near
    body: bool = True    # props do not hide joints


ARM_FORWARD = 0.3   # arms swing in front of the trunk unless turned away
LEG_BACK = 0.05     # thigh tops tuck behind the pelvis


def _body_parts(pts: dict, pose: np.ndarray, body: Body, look: Look) -> list[Part]:
    """Trunk, pelvis, neck, head, and per side: upper arm, forearm, hand, thigh, shin, foot.
    Depth: the trunk is at 0; a side turned away from the camera (sin(yaw)) lies behind it."""
    t = pose.shape[0]
    yaw = np.deg2rad(pose[:, P["yaw"]])
    turned = np.sin(yaw)
    ones = np.ones(t)
    w = body.width

    def part(name, a, b, ra, rb, colour, depth):
        return Part(name, pts[a] if isinstance(a, str) else a, pts[b] if isinstance(b, str) else b,
                    np.broadcast_to(ra, (t,)).astype(np.float64),
                    np.broadcast_to(rb, (t,)).astype(np.float64), colour, depth)

    # The trunk's projected half-width: shoulders seen from the front, chest depth from the side.
    chest = np.hypot(body.shoulder_half * np.cos(yaw), body.chest_depth_half * np.sin(yaw)) + 0.02 * w
    waist = np.hypot(body.hip_half * np.cos(yaw), 0.85 * body.chest_depth_half * np.sin(yaw)) + 0.02 * w
    up = pts["neck"] - pts["pelvis"]
    up = up / np.linalg.norm(up, axis=-1, keepdims=True)
    # Capsule ends pulled inwards so the rounded top sits at the shoulders, not over the face.
    trunk_top = pts["neck"] - 0.75 * chest[:, None] * up
    trunk_bottom = pts["pelvis"] + 0.6 * waist[:, None] * up
    hip_r = 0.05 * w
    pelvis_half = np.maximum(waist - hip_r, 0.0)[:, None]
    across = np.stack([-up[:, 1], up[:, 0]], axis=-1)

    parts = [
        part("torso", trunk_top, trunk_bottom, chest, waist, look.shirt, 0.0 * ones),
        part("pelvis", pts["pelvis"] - pelvis_half * across, pts["pelvis"] + pelvis_half * across,
             hip_r, hip_r, look.trousers, -0.01 * ones),
        part("neck", "neck", "head", 0.028 * w, 0.028 * w, look.skin, 0.005 * ones),
        part("head", "head", "head", body.head_r, body.head_r, look.skin, -0.02 * ones),
    ]
    fore = look.shirt if look.long_sleeves else look.skin
    shin = look.trousers if look.long_trousers else look.skin
    for side, away in (("l", turned), ("r", -turned)):   # away > 0: this side is turned from us
        arm = away - ARM_FORWARD + pose[:, P[f"{side}_arm_z"]]
        leg = away + LEG_BACK
        parts += [
            part(f"{side}_upper_arm", f"{side}_shoulder", f"{side}_elbow", 0.034 * w, 0.03 * w, look.shirt, arm),
            part(f"{side}_forearm", f"{side}_elbow", f"{side}_wrist", 0.029 * w, 0.025 * w, fore, arm - 0.001),
            part(f"{side}_hand", f"{side}_wrist", f"{side}_wrist", 0.03 * w, 0.03 * w, look.skin, arm - 0.002),
            part(f"{side}_thigh", f"{side}_hip", f"{side}_knee", 0.052 * w, 0.04 * w, look.trousers, leg),
            part(f"{side}_shin", f"{side}_knee", f"{side}_ankle", 0.038 * w, 0.03 * w, shin, leg - 0.001),
            part(f"{side}_foot", f"{side}_ankle", f"{side}_toe", 0.026 * w, 0.026 * w, look.shoes, leg - 0.002),
        ]
    return parts


# The part that owns each joint: a joint is hidden when a part clearly nearer than it covers it.
JOINT_OWNER = ("head", "l_upper_arm", "r_upper_arm", "l_upper_arm", "r_upper_arm",
               "l_forearm", "r_forearm", "l_thigh", "r_thigh", "l_thigh", "r_thigh",
               "l_shin", "r_shin")
HIDDEN_MARGIN = 0.25  # depth units: same-side parts (within the margin) never hide a joint


def _prop_parts(kind: str | None, pts: dict, pose: np.ndarray, parts: list[Part],
                rng: np.random.Generator) -> list[Part]:
    """The action's prop, held in the hands, with its depth tied to theirs."""
    if kind is None:
        return []
    t = pose.shape[0]
    depth_of = {p.name: p.depth for p in parts}
    hands_depth = np.minimum(depth_of["l_hand"], depth_of["r_hand"]) - 0.01 + pose[:, P["prop_z"]]
    angle, length = pose[:, P["prop_angle"]], np.clip(pose[:, P["prop_len"]], 0.05, 1.0)[:, None]
    grip = 0.5 * (pts["l_wrist"] + pts["r_wrist"])
    ones = np.ones(t)

    def stick(name, a, b, ra, rb, colour, depth=hands_depth):
        return Part(name, a, b, ra * ones, rb * ones, colour, depth, body=False)

    if kind == "bat":
        tip = grip + 0.46 * length * _direction(angle)
        colour = (0.78, 0.58, 0.32) if rng.random() < 0.6 else (0.72, 0.72, 0.78)
        return [stick("bat", grip, tip, 0.012, 0.024, colour)]
    if kind == "club":
        tip = grip + 0.52 * length * _direction(angle)
        return [stick("shaft", grip, tip, 0.008, 0.008, (0.78, 0.78, 0.8)),
                stick("club_head", tip, tip, 0.02, 0.02, (0.2, 0.2, 0.22), hands_depth - 0.001)]
    if kind == "racket":
        hand = pts["r_wrist"]
        direction = _direction(angle)
        throat = hand + 0.13 * length * direction
        centre = hand + 0.2 * length * direction
        frame = _hsv(rng.uniform(), rng.uniform(0.5, 0.9), rng.uniform(0.3, 0.8))
        head_r = 0.07 * np.sqrt(length[:, 0])
        return [stick("racket_handle", hand, throat, 0.01, 0.01, frame),
                Part("racket_frame", centre, centre, head_r, head_r, frame, hands_depth - 0.001, False),
                Part("racket_strings", centre, centre, 0.72 * head_r, 0.72 * head_r,
                     (0.92, 0.92, 0.86), hands_depth - 0.002, False)]
    if kind == "barbell":
        direction = _direction(angle)
        plate = _hsv(rng.choice([0.0, 0.6, 0.33, 0.15]), rng.uniform(0.6, 0.9), rng.uniform(0.25, 0.8))
        across = np.stack([-direction[:, 1], direction[:, 0]], axis=-1)
        out = [stick("bar", grip - 0.32 * direction, grip + 0.32 * direction, 0.01, 0.01, (0.62, 0.62, 0.65))]
        for end, sign in (("l", 1.0), ("r", -1.0)):
            centre = grip + sign * 0.27 * direction
            out.append(stick(f"{end}_plate", centre - 0.11 * across, centre + 0.11 * across,
                             0.028, 0.028, plate, hands_depth - 0.001))
        return out
    if kind == "rope":
        return _rope_parts(pts, pose, rng)
    if kind == "glove":
        return [Part("glove", pts["l_wrist"], pts["l_wrist"], 0.042 * ones, 0.042 * ones,
                     (0.42, 0.26, 0.12), depth_of["l_hand"] - 0.001, False)]
    raise ValueError(f"unknown prop {kind!r}")


ROPE_SEGMENTS = 10


def _rope_parts(pts: dict, pose: np.ndarray, rng: np.random.Generator) -> list[Part]:
    """A rope hanging between the hands as a parabola through its apex (over the head at
    rope = 1, at the hands at 0, under the feet at -1); in front of the body while prop_z < 0."""
    t = pose.shape[0]
    left, right = pts["l_wrist"], pts["r_wrist"]
    mid = 0.5 * (left + right)
    level = pose[:, P["rope"]]
    over = pts["head"][:, 1] - 0.16
    under = np.maximum(pts["l_toe"][:, 1], pts["r_toe"][:, 1]) + 0.03
    apex_y = np.where(level >= 0, mid[:, 1] + level * (over - mid[:, 1]),
                      mid[:, 1] - level * (under - mid[:, 1]))
    control = np.stack([mid[:, 0], 2 * apex_y - mid[:, 1]], axis=-1)  # the curve passes the apex
    s = np.linspace(0.0, 1.0, ROPE_SEGMENTS + 1)[:, None, None]
    curve = (1 - s) ** 2 * left + 2 * s * (1 - s) * control + s**2 * right   # (S+1, T, 2)
    depth = pose[:, P["prop_z"]].copy()
    colour = _hsv(rng.uniform(), rng.uniform(0.6, 0.95), rng.uniform(0.5, 0.95))
    r = 0.009 * np.ones(t)
    return [Part(f"rope{i}", curve[i], curve[i + 1], r, r, colour, depth, body=False)
            for i in range(ROPE_SEGMENTS)]


# ---------------------------------------------------------------------------------------------
# Timing and per-video style


def _phases(motion: Motion, n_frames: int, rng: np.random.Generator,
            duration_range: tuple, cycles_range: tuple) -> np.ndarray:
    """Action phase per frame. Periodic: `cycles` loops from a random phase. One-shot: an idle
    lead-in, then the whole action at the actor's speed, then holding the last pose."""
    tau = np.linspace(0.0, 1.0, n_frames)
    if motion.periodic:
        return rng.uniform() + rng.uniform(*cycles_range) * tau
    delay = rng.uniform(0.0, 0.12)
    duration = min(rng.uniform(*duration_range), 1.0 - delay)
    start, end = rng.uniform(0.0, 0.05), rng.uniform(0.95, 1.0)
    return start + (end - start) * np.clip((tau - delay) / duration, 0.0, 1.0)


STYLED = [P[name] for name in ("lift", "shift", "lean") + ANGLE_PARAMS[1:]]


def _styled(key_rows: np.ndarray, rng: np.random.Generator, style_deg: float,
            amplitude_range: tuple) -> np.ndarray:
    """The actor's own version of the keyframes: bigger or smaller moves, offset angles."""
    rows = key_rows.copy()
    mean = rows[:, STYLED].mean(axis=0)
    rows[:, STYLED] = mean + rng.uniform(*amplitude_range) * (rows[:, STYLED] - mean)
    for name in ANGLE_PARAMS:
        rows[:, P[name]] += rng.normal(0.0, style_deg)
    rows[:, P["yaw"]] += rng.normal(0.0, 6.0)
    return rows


# ---------------------------------------------------------------------------------------------
# Framing (the temporal-tube crop), background, painting

MIN_BODY_RADIUS = 0.75  # px: covers the pixel nearest any point of a limb's axis, joints included
MIN_PROP_RADIUS = 0.55  # px: thin props stay unbroken lines


def _mirror(parts: list[Part], joints: np.ndarray) -> None:
    for part in parts:
        part.a = part.a * [-1.0, 1.0]
        part.b = part.b * [-1.0, 1.0]
    joints *= [-1.0, 1.0]


def _crop_box(parts: list[Part], rng: np.random.Generator, margin_range: tuple,
              offset_jitter: float) -> tuple[np.ndarray, float]:
    """Square world box (origin, side) around the figure over the whole video, plus a margin,
    moved by up to `offset_jitter` of the slack so the figure stays inside."""
    body = [p for p in parts if p.body]
    lo = np.min([np.minimum(p.a - p.ra[:, None], p.b - p.rb[:, None]).min(axis=0) for p in body], axis=0)
    hi = np.max([np.maximum(p.a + p.ra[:, None], p.b + p.rb[:, None]).max(axis=0) for p in body], axis=0)
    extent = hi - lo
    side = extent.max() * (1.0 + rng.uniform(*margin_range))
    centre = 0.5 * (lo + hi) + rng.uniform(-1, 1, size=2) * offset_jitter * 0.5 * (side - extent)
    return centre - 0.5 * side, float(side)


def _to_pixels(parts: list[Part], joints: np.ndarray, origin: np.ndarray, side: float,
               size: int) -> np.ndarray:
    """World -> pixel-centre coordinates, in place for the parts; returns the joints."""
    scale = size / side
    for part in parts:
        floor = MIN_BODY_RADIUS if part.body else MIN_PROP_RADIUS
        part.a = (part.a - origin) * scale - 0.5
        part.b = (part.b - origin) * scale - 0.5
        part.ra = np.maximum(part.ra * scale, floor)
        part.rb = np.maximum(part.rb * scale, floor)
    return (joints - origin) * scale - 0.5


def _smooth_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """(size, size, 3) bilinear upsampling of a coarse random grid: blotchy lighting."""
    grid = rng.normal(0.0, 1.0, (cells, cells, 3))
    at = np.linspace(0.0, cells - 1.0, size)
    i0 = np.minimum(at.astype(int), cells - 2)
    f = (at - i0)[:, None]
    rows = grid[i0] * (1 - f)[..., None] + grid[i0 + 1] * f[..., None]
    return rows[:, i0] * (1 - f.T)[..., None] + rows[:, i0 + 1] * f.T[..., None]


def _contrasting(rng: np.random.Generator, sample, avoid: list[tuple]) -> tuple:
    """Draw colours until one stands apart from every colour in `avoid` (bounded tries)."""
    colour = sample()
    for _ in range(8):
        if min(np.linalg.norm(np.subtract(colour, c)) for c in avoid) > 0.22:
            break
        colour = sample()
    return colour


def _background(rng: np.random.Generator, size: int, ground_row: float, look: Look) -> np.ndarray:
    """A static scene: wall/sky gradient over a floor, stripes, blotches and grain; (H, W, 3)."""
    clothes = [look.shirt, look.trousers]
    wall = _contrasting(rng, lambda: _hsv(rng.uniform(), rng.uniform(0.05, 0.35), rng.uniform(0.45, 0.92)), clothes)
    floor = _contrasting(rng, lambda: _hsv(rng.uniform(), rng.uniform(0.1, 0.5), rng.uniform(0.3, 0.8)), clothes)
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float64) / size
    tilt = rng.uniform(-0.5, 0.5)
    gradient = (ys + tilt * xs)[..., None] - 0.5
    img = np.asarray(wall) * (1.0 + rng.uniform(0.1, 0.4) * gradient)
    horizon = np.clip(ground_row / size - rng.uniform(0.12, 0.5), 0.15, 0.95)
    below = (ys >= horizon)[..., None]
    ground = np.asarray(floor) * (1.0 + 0.3 * (ys - horizon)[..., None])
    if rng.random() < 0.5:  # court or field lines across the floor
        lines = np.abs(np.sin(np.pi * (ys - horizon) * rng.uniform(3, 9) / np.maximum(ys - horizon + 0.3, 0.3)))
        ground = ground + 0.12 * (lines > 0.93)[..., None]
    img = np.where(below, ground, img)
    if rng.random() < 0.6:  # panels, fence or stands behind
        angle = rng.uniform(-0.3, 0.3)
        stripes = np.sin(2 * np.pi * (xs + angle * ys) * rng.uniform(3, 12) + rng.uniform(0, 6.3))
        img = img + np.where(below, 0.0, rng.uniform(0.03, 0.08) * np.sign(stripes)[..., None])
    img = img + 0.05 * _smooth_noise(rng, size, int(rng.integers(3, 7)))
    img = img + rng.normal(0.0, 0.018, img.shape)
    return np.clip(img, 0.0, 1.0)


def _shadow(size: int, feet_x: np.ndarray, ground_row: float, half_width: float,
            lift_px: np.ndarray) -> np.ndarray:
    """Per-frame multiplicative ground shadow under the feet, fainter in the air: (T, H, W)."""
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float64)
    dx = (xs[None] - feet_x[:, None, None]) / half_width
    dy = (ys[None] - ground_row) / max(0.18 * half_width, 0.6)
    strength = 0.35 / (1.0 + lift_px / max(half_width, 1e-6))[:, None, None]
    return 1.0 - strength * np.exp(-(dx**2 + dy**2))


SHADE = 0.35  # limbs darken towards their outline, so overlapping same-coloured parts stay apart


def _segment_distance(xs: np.ndarray, ys: np.ndarray, a: np.ndarray, b: np.ndarray):
    """Distance (T, H, W) from every pixel centre to segments a-b (T, 2), and the position
    (0..1) of the nearest point along each segment."""
    ab = b - a
    length2 = np.maximum((ab**2).sum(axis=-1), 1e-12)[:, None, None]
    px = xs[None] - a[:, 0, None, None]
    py = ys[None] - a[:, 1, None, None]
    u = np.clip((px * ab[:, 0, None, None] + py * ab[:, 1, None, None]) / length2, 0.0, 1.0)
    dx = px - u * ab[:, 0, None, None]
    dy = py - u * ab[:, 1, None, None]
    return np.sqrt(dx * dx + dy * dy), u


PAINT_CHUNK = 8  # frames painted together: big enough to vectorise, small enough for the cache


def _paint(background: np.ndarray, parts: list[Part]) -> tuple[np.ndarray, np.ndarray]:
    """Paint the parts far to near, per frame, onto (T, H, W, 3) float images.

    Returns the images and `body_map` (T, H, W): the index of the body part seen at each
    pixel, -1 where only background or props are seen. Each part is evaluated only inside
    its bounding window over a chunk of frames."""
    t, size = background.shape[0], background.shape[1]
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    a = np.stack([p.a for p in parts]).astype(np.float32)    # (n_parts, T, 2)
    b = np.stack([p.b for p in parts]).astype(np.float32)
    ra = np.stack([p.ra for p in parts]).astype(np.float32)  # (n_parts, T)
    rb = np.stack([p.rb for p in parts]).astype(np.float32)
    colours = np.asarray([p.colour for p in parts], np.float32)
    is_body = np.asarray([p.body for p in parts])
    depth = np.stack([p.depth for p in parts])               # (n_parts, T)
    order = np.argsort(-depth.T, axis=1, kind="stable")      # (T, n_parts): far first
    frames = background.astype(np.float32)
    body_map = np.full((t, size, size), -1, np.int16)
    for c0 in range(0, t, PAINT_CHUNK):
        c1 = min(c0 + PAINT_CHUNK, t)
        frame_ix = np.arange(c0, c1)
        for slot in range(len(parts)):
            idx = order[c0:c1, slot]
            pa, pb = a[idx, frame_ix], b[idx, frame_ix]
            r0, r1 = ra[idx, frame_ix], rb[idx, frame_ix]
            reach = np.maximum(r0, r1).max()
            lo = np.floor(np.minimum(pa.min(axis=0), pb.min(axis=0)) - reach).astype(int)
            hi = np.ceil(np.maximum(pa.max(axis=0), pb.max(axis=0)) + reach).astype(int) + 1
            x0, y0 = np.clip(lo, 0, size)
            x1, y1 = np.clip(hi, 0, size)
            if x1 <= x0 or y1 <= y0:
                continue
            d, u = _segment_distance(xs[y0:y1, x0:x1], ys[y0:y1, x0:x1], pa, pb)
            radius = r0[:, None, None] + (r1 - r0)[:, None, None] * u
            inside = d <= radius
            shade = 1.0 - SHADE * (d / radius) ** 2
            window = frames[c0:c1, y0:y1, x0:x1]
            window[...] = np.where(inside[..., None], colours[idx][:, None, None, :] * shade[..., None], window)
            labels = body_map[c0:c1, y0:y1, x0:x1]
            labels[...] = np.where(inside & is_body[idx][:, None, None], idx[:, None, None].astype(np.int16),
                                   labels)
    return frames, body_map


def _paint_hair(frames: np.ndarray, body_map: np.ndarray, head: Part, head_index: int,
                hair: tuple, facing_x: np.ndarray) -> None:
    """Hair over the top of the head, and over its back when the head is turned sideways."""
    size = frames.shape[1]
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    cx, cy, r = head.a[:, 0, None, None], head.a[:, 1, None, None], head.ra[:, None, None]
    dx, dy = (xs[None] - cx) / r, (ys[None] - cy) / r
    back = (dx * facing_x[:, None, None] < -0.3) & (dy < 0.35) & (np.abs(facing_x) > 0.4)[:, None, None]
    hair_mask = (body_map == head_index) & ((dy < -0.25) | back)
    shade = 1.0 - SHADE * np.minimum(dx * dx + dy * dy, 1.0)
    frames[:] = np.where(hair_mask[..., None], np.asarray(hair, np.float32) * shade[..., None], frames)


def _visibility(joints_px: np.ndarray, body_map: np.ndarray, parts: list[Part]) -> np.ndarray:
    """(T, 13) 1.0 where a joint is inside the frame and no clearly nearer body part covers it."""
    t, size = body_map.shape[:2]
    x, y = joints_px[..., 0], joints_px[..., 1]
    inside = (x >= -0.5) & (x < size - 0.5) & (y >= -0.5) & (y < size - 0.5)
    col = np.clip(np.floor(x + 0.5), 0, size - 1).astype(int)
    row = np.clip(np.floor(y + 0.5), 0, size - 1).astype(int)
    frame_ix = np.arange(t)[:, None]
    seen = body_map[frame_ix, row, col]                                   # (T, 13)
    depth = np.stack([p.depth for p in parts])                            # (n_parts, T)
    names = [p.name for p in parts]
    owner = np.asarray([names.index(n) for n in JOINT_OWNER])
    own_depth = depth[owner, :].T                                         # (T, 13)
    seen_depth = np.where(seen >= 0, depth[np.maximum(seen, 0), frame_ix], np.inf)
    hidden = seen_depth < own_depth - HIDDEN_MARGIN
    return (inside & ~hidden).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# Public API


def actor_id(actor_index: int) -> str:
    return f"a{actor_index:03d}"


def make_video(actor_index: int, action: str, image_size: int, n_frames: int, seed: int,
               split: str = "gm", *, mirror_prob: float = 0.5, props: bool = True,
               margin_range: tuple = (0.04, 0.14), offset_jitter: float = 0.6,
               duration_range: tuple = (0.75, 1.0), cycles_range: tuple = (1.5, 3.0),
               style_deg: float = 5.0, amplitude_range: tuple = (0.85, 1.1),
               noise_std: float = 0.0, return_masks: bool = False) -> VideoRecord:
    """One actor performing one action. The actor's body and clothes depend on (seed,
    actor_index) only; framing, background, timing and style on (seed, actor_index, action).

    Knobs: mirror_prob (chance of a horizontally mirrored scene), props (draw bat, club, ...),
    margin_range (crop margin, fraction of the figure's extent), offset_jitter (0..1 of the
    slack the figure moves off-centre), duration_range (one-shot actions: fraction of the video
    the action takes), cycles_range (periodic actions: loops per video), style_deg (std of the
    actor's angle offsets), amplitude_range (how big the actor moves), noise_std (per-frame
    pixel noise, 0..255 units), return_masks (adds gt["body_mask"] (T, H, W): 1 on the body).
    """
    if image_size < 16 or n_frames < 1 or seed < 0 or actor_index < 0:
        raise ValueError(f"image_size {image_size} (>= 16), n_frames {n_frames} (>= 1), "
                         f"seed {seed} and actor_index {actor_index} (>= 0) out of range")
    action_index = ACTIONS.index(action)
    actor_rng = np.random.default_rng([seed, actor_index])
    body, look = _make_body(actor_rng), _make_look(actor_rng)
    rng = np.random.default_rng([seed, actor_index, 1 + action_index])

    motion = MOTIONS[action]
    key_phases, key_rows = _key_table(motion)
    key_rows = _styled(key_rows, rng, style_deg, amplitude_range)
    pose = _interpolate(key_phases, key_rows, _phases(motion, n_frames, rng, duration_range, cycles_range),
                        motion.periodic)
    pts = _skeleton(pose, body)
    parts = _body_parts(pts, pose, body, look)
    parts += _prop_parts(motion.prop if props else None, pts, pose, parts, rng)
    joints = np.stack([pts[name] for name in JOINT_POINTS], axis=1)       # (T, 13, 2) world

    mirrored = rng.random() < mirror_prob
    facing_x = np.sin(np.deg2rad(pose[:, P["yaw"]])) * (-1.0 if mirrored else 1.0)
    feet_world_x = 0.5 * (pts["l_ankle"][:, 0] + pts["r_ankle"][:, 0]) * (-1.0 if mirrored else 1.0)
    if mirrored:
        _mirror(parts, joints)
    origin, side = _crop_box(parts, rng, margin_range, offset_jitter)
    joints_px = _to_pixels(parts, joints, origin, side, image_size)
    scale = image_size / side

    ground_row = (0.0 - origin[1]) * scale - 0.5
    background = _background(rng, image_size, ground_row, look)
    shadow = _shadow(image_size, (feet_world_x - origin[0]) * scale - 0.5, ground_row,
                     0.16 * scale, pose[:, P["lift"]] * scale)
    frames, body_map = _paint(background[None] * shadow[..., None], parts)
    head_index = [p.name for p in parts].index("head")
    _paint_hair(frames, body_map, parts[head_index], head_index, look.hair, facing_x)
    if noise_std > 0:
        frames = frames + rng.normal(0.0, noise_std / 255.0, frames.shape).astype(np.float32)

    gt = {"joints": joints_px.astype(np.float32),
          "visibility": _visibility(joints_px, body_map, parts)}
    if return_masks:
        gt["body_mask"] = (body_map >= 0).astype(np.float32)
    subject = actor_id(actor_index)
    return VideoRecord(clip_id=f"{subject}_{action}", subject=subject, label=action, split=split,
                       frames=np.clip(np.rint(frames * 255.0), 0, 255).astype(np.uint8), gt=gt)


def iter_videos(image_size: int, actors_per_action: int, n_frames: int, seed: int,
                **knobs) -> Iterator[VideoRecord]:
    """Every actor (a000, a001, ...) performing each of the 8 actions, actor by actor.

    `actors_per_action` actors in all (each performs every action, so that is also the number
    of videos per action); they are split by actor into thirds (see split_of_video), so each
    split needs at least 3 actors to be non-empty. Knobs: see make_video. Deterministic: the
    same arguments give byte-identical videos, and a video does not depend on how many
    actors are asked for (only its split does).
    """
    if actors_per_action < 1:
        raise ValueError(f"actors_per_action {actors_per_action}, expected >= 1")
    for actor_index in range(actors_per_action):
        split = split_of_video(actor_index, actors_per_action)
        for action in ACTIONS:
            yield make_video(actor_index, action, image_size, n_frames, seed, split, **knobs)
