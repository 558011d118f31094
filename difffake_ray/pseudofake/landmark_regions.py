"""iBUG 68-point index groups used by the mask schemes."""

JAW = list(range(0, 17))
RIGHT_BROW = list(range(17, 22))
LEFT_BROW = list(range(22, 27))
NOSE_RIDGE = list(range(27, 31))
NOSE_BASE = list(range(31, 36))
RIGHT_EYE = list(range(36, 42))
LEFT_EYE = list(range(42, 48))
MOUTH = list(range(48, 68))

ALL = list(range(68))
EYES_AND_BROWS = RIGHT_BROW + LEFT_BROW + RIGHT_EYE + LEFT_EYE
NOSE = NOSE_RIDGE + NOSE_BASE

# DiffFake's four landmark schemes (paper, Sec. 3.2)
DIFFFAKE_SCHEMES = {
    "all": ALL,
    "eyes": EYES_AND_BROWS,
    "lower": JAW[4:13] + MOUTH + NOSE_BASE,  # lower jaw, mouth and nose apex
    "jaw_nose": JAW + [30],  # the whole jawline and the nose tip
}

# BBMG local regions
BBMG_PARTS = {"left_eye": LEFT_EYE + LEFT_BROW, "right_eye": RIGHT_EYE + RIGHT_BROW, "nose": NOSE,
              "mouth": MOUTH}

# The published DiffFake code's own landmark sets (method notes, "Facts from the reference
# implementation"): eyes add jaw points 0-1 and 14-15; lower head is jaw 1-15 and nose ridge 29-30.
REFERENCE_EYES = RIGHT_BROW + LEFT_BROW + RIGHT_EYE + LEFT_EYE + [0, 1, 14, 15]
REFERENCE_MOUTH = MOUTH + JAW[4:13] + NOSE_BASE
REFERENCE_LOWER_HEAD = JAW[1:16] + [29, 30]

# Face-X-ray style hulls of the reference's "global" choice (our reading of the four types it names):
# the DeepFaceLab full-face hull, the same extended up the forehead, the union of eight component
# hulls, and the hull of all 68 points.
DFL_FULL = JAW + RIGHT_BROW + LEFT_BROW + NOSE_RIDGE
FACE_COMPONENTS = [
    JAW[0:9] + NOSE_RIDGE,  # right jaw
    JAW[8:17] + NOSE_RIDGE,  # left jaw
    JAW[0:5] + RIGHT_EYE + [31],  # right cheek
    JAW[12:17] + LEFT_EYE + [35],  # left cheek
    NOSE_RIDGE + NOSE_BASE,  # nose
    RIGHT_BROW + RIGHT_EYE,  # right eye
    LEFT_BROW + LEFT_EYE,  # left eye
    NOSE_BASE + MOUTH,  # mouth
]
