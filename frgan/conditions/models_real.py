"""Real morphable face models behind the `MorphableModel` interface: the Surrey Face Model (SFM)
and the Basel Face Model 2009 (BFM, the model of the paper, section 4.1).

Neither is shipped: both are read from a path the user gives (params.yaml
`conditions.face_model_path`), never copied into the repository.

Both are brought into the procedural model's model space (`frgan.conditions.morphable`): axes
x to the image right, y up, z towards the viewer (the SFM and the BFM 2009 already use these
axes); lengths divided by half the mean mesh's x-extent, so one unit is about half the face's
width whatever the file's unit (SFM: mm, BFM: um); the origin moved to the centre of the mean
mesh's bounding box; triangles wound counter-clockwise seen from outside (checked, and flipped
where a file winds them the other way). Identity bases are the PCA components scaled by their
standard deviations, so alpha ~ N(0, 1) as for the procedural model.

iBUG landmarks a model does not define are -1 in `landmark_ids`; the fitter
(`frgan.conditions.fitting`) ignores them.
"""
from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from frgan.conditions.morphable import N_LANDMARKS, MorphableModel
from frgan.data.errors import DatasetError

SFM_SHAPE = "sfm_shape_3448.bin"
SFM_BLENDSHAPES = "expression_blendshapes_3448.bin"
SFM_LANDMARKS = "ibug_to_sfm.txt"
SFM_FILES = (SFM_SHAPE, SFM_BLENDSHAPES, SFM_LANDMARKS)

# BFM 2009 (01_MorphableModel.mat): the fields read, and what each holds.
BFM_FIELDS = {
    "shapeMU": "(3V, 1) mean shape, x y z of each vertex in turn",
    "shapePC": "(3V, n) orthonormal principal components",
    "shapeEV": "(n, 1) standard deviation of each component",
    "tl": "(F, 3) triangles, 1-based vertex indices",
}
# Expression basis file (a .mat, e.g. 3DDFA's Model_Expression.mat on the same vertices).
BFM_EXPRESSION_FIELDS = {
    "w_exp": "(3V, n_expr) expression components",
    "sigma_exp": "optional (n_expr,) standard deviations: components are scaled by them",
    "mu_exp": "optional (3V,) mean expression offset, added to the mean shape",
}
# Landmarks: a .txt of 68 vertex ids (0-based, -1 where the model has none), or a .mat with a
# field `keypoints` of 68 1-based ids (MATLAB's convention; 0 where none). Without a file, the
# BFM .mat's own `keypoints` field is used when present.
LANDMARK_FIELD = "keypoints"


class ModelFileError(DatasetError):
    """A morphable-model file is missing or lacks what is needed; the message names it."""


# ---------------------------------------------------------------------------------------------
# shared conversions

def _model_space(mean: np.ndarray, id_basis: np.ndarray, expr_basis: np.ndarray):
    """Recentre the mean on its bounding box and scale all three so the mean is 2 units wide."""
    low, high = mean.min(0), mean.max(0)
    unit = (high[0] - low[0]) / 2.0
    if not unit > 0:
        raise ValueError("the mean shape has no width in x")
    return (mean - (low + high) / 2.0) / unit, id_basis / unit, expr_basis / unit


def outward_triangles(vertices: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """Triangles wound so their right-hand normals point away from the mesh's bounding-box centre
    on the whole (true of a closed head or of a face mask bulging towards the viewer)."""
    corners = vertices[triangles]
    normals = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    centre = (vertices.min(0) + vertices.max(0)) / 2.0
    outward = np.einsum("fc,fc->", normals.astype(np.float64), corners.mean(1) - centre)
    return triangles if outward >= 0 else triangles[:, ::-1].copy()


def _interleaved(flat: np.ndarray, n_vertices: int, what: str, path: Path) -> np.ndarray:
    """(3V, n) columns of x y z per vertex -> (n, V, 3)."""
    flat = np.asarray(flat, dtype=np.float64)
    flat = flat.reshape(-1, 1) if flat.ndim == 1 else flat
    if flat.shape[0] != 3 * n_vertices:
        raise ModelFileError(f"{path}: {what} has {flat.shape[0]} rows, expected 3 x {n_vertices} "
                             "(x y z of each vertex of the model)")
    return flat.T.reshape(flat.shape[1], n_vertices, 3)


# ---------------------------------------------------------------------------------------------
# the Surrey Face Model

def read_ibug_mapping(path: str | Path) -> np.ndarray:
    """ibug_to_sfm.txt (TOML: [landmark_mappings] 1-based iBUG number = vertex id) -> (68,) int64
    vertex ids in iBUG order, -1 for the points the mapping leaves out (the contour 1-8 and
    10-17, the inner mouth corners 61 and 65)."""
    path = Path(path)
    try:
        mapping = tomllib.loads(path.read_text())["landmark_mappings"]
    except (OSError, tomllib.TOMLDecodeError, KeyError) as exc:
        raise ModelFileError(f"{path}: not a landmark mapping with a [landmark_mappings] table ({exc})") from None
    ids = np.full(N_LANDMARKS, -1, dtype=np.int64)
    for key, vertex in mapping.items():
        number = int(key)
        if not 1 <= number <= N_LANDMARKS:
            raise ModelFileError(f"{path}: landmark {number} outside the iBUG 1-{N_LANDMARKS}")
        ids[number - 1] = int(vertex)
    return ids


def load_sfm(folder: str | Path) -> MorphableModel:
    """The Surrey Face Model from a folder holding SFM_FILES (eos's share/ folder), via eos-py.

    Identity: the shape PCA's rescaled basis (components times their standard deviations), so
    alpha ~ N(0, 1). Expression: the six blendshapes (anger, disgust, fear, happiness, sadness,
    surprise, in the file's order), beta = 1 is each full expression.
    """
    folder = Path(folder)
    for name in SFM_FILES:
        if not (folder / name).is_file():
            raise ModelFileError(f"{folder / name}: missing; the Surrey Face Model needs {', '.join(SFM_FILES)} "
                                 "(from the eos repository's share/ folder)")
    try:
        import eos
    except ImportError:
        raise ModelFileError("the Surrey Face Model needs eos-py (pip install eos-py==1.5.0)") from None
    shape_model = eos.morphablemodel.load_model(str(folder / SFM_SHAPE)).get_shape_model()
    blendshapes = eos.morphablemodel.load_blendshapes(str(folder / SFM_BLENDSHAPES))
    mean = np.asarray(shape_model.get_mean(), dtype=np.float64).reshape(-1, 3)
    n_vertices = mean.shape[0]
    id_basis = _interleaved(np.asarray(shape_model.get_rescaled_pca_basis()), n_vertices,
                            "the rescaled PCA basis", folder / SFM_SHAPE)
    expr_basis = np.stack([_interleaved(np.asarray(b.deformation), n_vertices, f"blendshape {b.name}",
                                        folder / SFM_BLENDSHAPES)[0] for b in blendshapes])
    triangles = np.asarray(shape_model.get_triangle_list(), dtype=np.int64)
    landmark_ids = read_ibug_mapping(folder / SFM_LANDMARKS)
    if landmark_ids.max() >= n_vertices:
        raise ModelFileError(f"{folder / SFM_LANDMARKS}: vertex {landmark_ids.max()} outside the model's "
                             f"{n_vertices} vertices")
    mean, id_basis, expr_basis = _model_space(mean, id_basis, expr_basis)
    return MorphableModel(mean, id_basis, expr_basis, outward_triangles(mean, triangles), landmark_ids,
                          [b.name for b in blendshapes])


# ---------------------------------------------------------------------------------------------
# the Basel Face Model 2009

def _load_mat(path: Path, fields: Sequence[str], optional: Sequence[str] = ()) -> dict[str, np.ndarray]:
    """The named fields of a MATLAB file; a ModelFileError naming the file and the first missing one."""
    if not path.is_file():
        raise ModelFileError(f"{path}: file not found")
    from scipy.io import loadmat
    try:
        content = loadmat(str(path), variable_names=list(fields) + list(optional))
    except (ValueError, NotImplementedError, OSError) as exc:
        raise ModelFileError(f"{path}: not a MATLAB file scipy can read ({exc}); save it with -v7") from None
    for name in fields:
        if name not in content:
            raise ModelFileError(f"{path}: missing field '{name}'")
    return {k: np.asarray(content[k]) for k in list(fields) + list(optional) if k in content}


def _bfm_expression(path: Path, n_vertices: int) -> tuple[np.ndarray, np.ndarray]:
    """(n_expr, V, 3) expression basis and a (V, 3) mean offset from an expression .mat."""
    fields = _load_mat(path, ["w_exp"], ["sigma_exp", "mu_exp"])
    basis = _interleaved(fields["w_exp"], n_vertices, "w_exp", path)
    if "sigma_exp" in fields:
        sigma = fields["sigma_exp"].astype(np.float64).reshape(-1)
        if sigma.shape[0] != basis.shape[0]:
            raise ModelFileError(f"{path}: sigma_exp has {sigma.shape[0]} values for {basis.shape[0]} components")
        basis = basis * sigma[:, None, None]
    offset = (_interleaved(fields["mu_exp"], n_vertices, "mu_exp", path)[0] if "mu_exp" in fields
              else np.zeros((n_vertices, 3)))
    return basis, offset


def read_landmark_ids(path: Path, n_vertices: int, bfm: Optional[dict] = None) -> np.ndarray:
    """68 landmark vertex ids from a .txt (0-based, -1 none) or a .mat `keypoints` (1-based, 0 none);
    path None: the BFM file's own `keypoints` (fields in `bfm`)."""
    if path is None:
        if bfm is None or LANDMARK_FIELD not in bfm:
            raise ModelFileError("the BFM file has no 'keypoints' field: set conditions.face_landmarks_path "
                                 "to a file of 68 landmark vertex ids")
        ids = bfm[LANDMARK_FIELD].astype(np.int64).reshape(-1) - 1
    elif Path(path).suffix.lower() == ".mat":
        ids = _load_mat(Path(path), [LANDMARK_FIELD])[LANDMARK_FIELD].astype(np.int64).reshape(-1) - 1
    else:
        try:
            ids = np.loadtxt(path, dtype=np.int64, ndmin=1).reshape(-1)
        except (OSError, ValueError) as exc:
            raise ModelFileError(f"{path}: expected 68 whitespace-separated vertex ids ({exc})") from None
    where = path or "the BFM file's keypoints"
    if ids.shape != (N_LANDMARKS,):
        raise ModelFileError(f"{where}: {ids.size} landmark ids, expected {N_LANDMARKS} in iBUG order")
    if ids.min() < -1 or ids.max() >= n_vertices:
        raise ModelFileError(f"{where}: landmark ids outside [-1, {n_vertices})")
    return ids


def load_bfm(path: str | Path, expression_path: str | Path | None = None,
             landmarks_path: str | Path | None = None) -> MorphableModel:
    """The Basel Face Model 2009 from its 01_MorphableModel.mat (fields: BFM_FIELDS), with an
    optional expression basis (BFM_EXPRESSION_FIELDS; without it the model has no expression
    components and every beta is empty) and 68 landmark ids (see LANDMARK_FIELD)."""
    path = Path(path)
    bfm = _load_mat(path, list(BFM_FIELDS), [LANDMARK_FIELD])
    mean_flat = bfm["shapeMU"].astype(np.float64).reshape(-1)
    if mean_flat.size % 3:
        raise ModelFileError(f"{path}: shapeMU has {mean_flat.size} values, not 3 per vertex")
    n_vertices = mean_flat.size // 3
    mean = mean_flat.reshape(n_vertices, 3)
    components = _interleaved(bfm["shapePC"], n_vertices, "shapePC", path)
    deviations = bfm["shapeEV"].astype(np.float64).reshape(-1)
    if deviations.shape[0] != components.shape[0]:
        raise ModelFileError(f"{path}: shapeEV has {deviations.shape[0]} values for "
                             f"{components.shape[0]} components in shapePC")
    id_basis = components * deviations[:, None, None]
    triangles = bfm["tl"].astype(np.int64) - 1
    if triangles.ndim != 2 or triangles.shape[1] != 3 or triangles.min() < 0 or triangles.max() >= n_vertices:
        raise ModelFileError(f"{path}: tl is not (F, 3) 1-based vertex indices of the {n_vertices} vertices")
    if expression_path is not None:
        expr_basis, offset = _bfm_expression(Path(expression_path), n_vertices)
        mean = mean + offset
        names = None
    else:
        expr_basis, names = np.zeros((0, n_vertices, 3)), []
    landmark_ids = read_landmark_ids(None if landmarks_path is None else Path(landmarks_path), n_vertices, bfm)
    mean, id_basis, expr_basis = _model_space(mean, id_basis, expr_basis)
    return MorphableModel(mean, id_basis, expr_basis, outward_triangles(mean, triangles), landmark_ids, names)
