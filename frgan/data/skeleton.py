"""Penn Action's skeleton: its 13 joints, the 12 limbs between them, and the paper's 8 actions.

Joint order is Penn Action's own (its annotation columns 1..13), 0-based here. "Left" and
"right" are the person's own sides, as in Penn's annotations, not the image's.
"""
from __future__ import annotations

JOINT_NAMES = (
    "head",            # 0  (Penn 1)
    "left_shoulder",   # 1  (Penn 2)
    "right_shoulder",  # 2  (Penn 3)
    "left_elbow",      # 3  (Penn 4)
    "right_elbow",     # 4  (Penn 5)
    "left_wrist",      # 5  (Penn 6)
    "right_wrist",     # 6  (Penn 7)
    "left_hip",        # 7  (Penn 8)
    "right_hip",       # 8  (Penn 9)
    "left_knee",       # 9  (Penn 10)
    "right_knee",      # 10 (Penn 11)
    "left_ankle",      # 11 (Penn 12)
    "right_ankle",     # 12 (Penn 13)
)
N_JOINTS = len(JOINT_NAMES)
JOINT_INDEX = {name: i for i, name in enumerate(JOINT_NAMES)}

HEAD = 0
L_SHOULDER, R_SHOULDER = 1, 2
L_ELBOW, R_ELBOW = 3, 4
L_WRIST, R_WRIST = 5, 6
L_HIP, R_HIP = 7, 8
L_KNEE, R_KNEE = 9, 10
L_ANKLE, R_ANKLE = 11, 12

# The 12 bones of a tree over the 13 joints (13 nodes, 12 edges): the head hangs from both
# shoulders (Penn has no neck joint), each shoulder carries its arm and its side of the trunk
# down to the hip, each hip carries its leg. Pose heatmaps draw one stroke per limb.
LIMBS = (
    (HEAD, L_SHOULDER),
    (HEAD, R_SHOULDER),
    (L_SHOULDER, L_ELBOW),
    (L_ELBOW, L_WRIST),
    (R_SHOULDER, R_ELBOW),
    (R_ELBOW, R_WRIST),
    (L_SHOULDER, L_HIP),
    (R_SHOULDER, R_HIP),
    (L_HIP, L_KNEE),
    (L_KNEE, L_ANKLE),
    (R_HIP, R_KNEE),
    (R_KNEE, R_ANKLE),
)
N_LIMBS = len(LIMBS)

# The 8 of Penn Action's 15 actions the paper keeps (section 4.1, after Villegas et al. 2017),
# spelled as in Penn's label files; this order fixes the class indices.
ACTIONS = (
    "baseball_pitch",
    "baseball_swing",
    "clean_and_jerk",
    "golf_swing",
    "jumping_jacks",
    "jump_rope",
    "tennis_forehand",
    "tennis_serve",
)
ACTION_INDEX = {name: i for i, name in enumerate(ACTIONS)}

assert N_JOINTS == 13 and N_LIMBS == 12 and len(ACTIONS) == 8
