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
