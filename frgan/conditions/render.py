"""A batched, z-buffered triangle rasterizer in torch, with Lambertian shading and normal maps.

Runs on whatever device its inputs live on (CPU or GPU); no gradients are needed or kept.
Results are deterministic on the CPU; on a GPU the vertex normals are summed with atomic adds,
so shading and smooth normal maps may differ in the last bits from run to run.

Conventions (used by every function here and by the data generators built on top):

* Pixel centres sit at integer coordinates (the OpenCV / dlib convention): pixel (row i,
  column j) is centred on (x=j, y=i) and covers [j-0.5, j+0.5) x [i-0.5, i+0.5). A triangle
  covers a pixel when the pixel centre lies inside it or on its edge.
* Screen space: x to the right and y downwards in pixels, z is depth, growing away from the
  camera. So in screen space the camera looks along +z and the nearest surface has the
  smallest z (the z-buffer keeps the minimum).
* Camera frame (for normals and lights): x right, y up, z towards the viewer (the usual
  normal-map frame, where a surface facing the camera has n_z > 0). Screen space is this frame
  scaled and flipped in y and z: diag(1, -1, -1) is a rotation, so handedness and triangle
  winding are preserved.
* Projection (`project`): weak perspective, i.e. orthographic projection after a rotation and an
  isotropic scale: x_px = tx + s * X_cam, y_px = ty - s * Y_cam, z = -s * Z_cam, where
  X_cam = R(yaw, pitch, roll) X_model. Model space uses the camera frame's axes (a face looks
  along +z), so at zero rotation the model is seen from the front.
* Triangles are wound counter-clockwise seen from outside (right-handed normal
  (v1 - v0) x (v2 - v0) points outwards); in screen space such a camera-facing triangle has a
  negative signed area, since y points down.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence, Union

import torch

Colour = Union[float, Sequence[float], torch.Tensor]

# Depth keys pack (depth, triangle index) into one int64 so that a single scatter-min over
# pixels both z-tests and records the winner; the low 32 bits hold the triangle index.
_INDEX_BITS = 32
_INDEX_MASK = (1 << _INDEX_BITS) - 1
_NO_KEY = torch.iinfo(torch.int64).max
# Barycentric tolerance: a pixel centre exactly on an edge shared by two triangles must land in
# at least one of them despite rounding, so edges are inclusive with a little slack.
_EDGE_SLACK = 1e-5


@dataclass
class Fragments:
    """What the rasterizer found at each pixel.

    triangle: (B, H, W) int64 index into the triangle list, -1 where nothing was drawn.
    bary: (B, H, W, 3) barycentric weights of the pixel centre in that triangle (0 on background).
    depth: (B, H, W) screen-space depth of the visible surface (+inf on background).
    pixels: (P,) int64 flat indices (b * H * W + row * W + column) of the covered pixels, in
        increasing order: the rows that `interpolate_pixels` returns.
    """

    triangle: torch.Tensor
    bary: torch.Tensor
    depth: torch.Tensor
    pixels: torch.Tensor

    @property
    def mask(self) -> torch.Tensor:
        """(B, H, W) bool: where some triangle was drawn."""
        return self.triangle >= 0


# ---------------------------------------------------------------------------------------------
# pose and projection

def rotation_matrix(yaw: torch.Tensor, pitch: torch.Tensor, roll: torch.Tensor) -> torch.Tensor:
    """(...,) angles in radians -> (..., 3, 3) rotation R = Rz(roll) Rx(pitch) Ry(yaw).

    Right-handed rotations about the camera-frame axes (x right, y up, z to the viewer): yaw about
    y (positive turns the face's front towards +x, the viewer's right), pitch about x (positive
    turns the front downwards, i.e. the face looks down), roll about z (positive is
    counter-clockwise as seen by the viewer). Yaw is applied first, roll last.
    """
    cy, sy = torch.cos(yaw), torch.sin(yaw)
    cp, sp = torch.cos(pitch), torch.sin(pitch)
    cr, sr = torch.cos(roll), torch.sin(roll)
    one, zero = torch.ones_like(yaw), torch.zeros_like(yaw)
    r_yaw = torch.stack([cy, zero, sy, zero, one, zero, -sy, zero, cy], -1)
    r_pitch = torch.stack([one, zero, zero, zero, cp, -sp, zero, sp, cp], -1)
    r_roll = torch.stack([cr, -sr, zero, sr, cr, zero, zero, zero, one], -1)
    shape = yaw.shape + (3, 3)
    return r_roll.reshape(shape) @ r_pitch.reshape(shape) @ r_yaw.reshape(shape)


def rotate(vertices: torch.Tensor, pose: torch.Tensor) -> torch.Tensor:
    """Model-space vertices (B, V, 3) -> camera-frame vertices (B, V, 3), rotation only.

    pose: (B, 6) = yaw, pitch, roll (radians), tx, ty (px), scale (px per model unit).
    """
    rot = rotation_matrix(pose[:, 0], pose[:, 1], pose[:, 2])
    return vertices @ rot.transpose(1, 2)


def project(vertices: torch.Tensor, pose: torch.Tensor) -> torch.Tensor:
    """Model-space vertices (B, V, 3) -> screen-space vertices (B, V, 3) by weak perspective.

    x_px = tx + s X_cam, y_px = ty - s Y_cam (image y points down), z = -s Z_cam (depth grows away
    from the camera). (tx, ty) is where the model origin lands, in pixel-centre coordinates.
    """
    cam = rotate(vertices, pose)
    scale = pose[:, 5, None]
    return torch.stack([pose[:, 3, None] + scale * cam[..., 0],
                        pose[:, 4, None] - scale * cam[..., 1],
                        -scale * cam[..., 2]], dim=-1)


def screen_to_camera(screen_vertices: torch.Tensor) -> torch.Tensor:
    """Screen space -> a camera frame (x right, y up, z to the viewer), up to scale and offset.

    Flipping y and z is a rotation, so normals computed from the result are camera-frame normals.
    """
    return screen_vertices * screen_vertices.new_tensor([1.0, -1.0, -1.0])


# ---------------------------------------------------------------------------------------------
# rasterization

def _edge(ax, ay, bx, by, px, py):
    """Twice the signed area of (a, b, p); its sign says which side of a->b the point p is on."""
    return (bx - ax) * (py - ay) - (by - ay) * (px - ax)


def _ordered_depth_key(depth: torch.Tensor, triangle: torch.Tensor) -> torch.Tensor:
    """float32 depth + int64 triangle index -> int64 key whose order is (depth, triangle).

    A float's bit pattern read as int32 orders non-negative floats correctly; for negative
    floats flipping the 31 magnitude bits restores the order. Ties go to the lower index.
    """
    bits = depth.to(torch.float32).contiguous().view(torch.int32)
    ordered = torch.where(bits >= 0, bits, bits ^ 0x7FFFFFFF).to(torch.int64)
    return ordered * (1 << _INDEX_BITS) + triangle


def _triangle_pixel_boxes(x: torch.Tensor, y: torch.Tensor, height: int, width: int):
    """Per-triangle range of pixel centres inside its bounding box, clipped to the image.

    x, y: (N, 3) corner coordinates. Returns first column, first row, columns and rows (N,)
    each int64; a box that misses the image gets zero columns or rows.
    """
    col0 = torch.ceil(x.amin(1)).clamp(min=0)
    col1 = torch.floor(x.amax(1)).clamp(max=width - 1)
    row0 = torch.ceil(y.amin(1)).clamp(min=0)
    row1 = torch.floor(y.amax(1)).clamp(max=height - 1)
    n_cols = (col1 - col0 + 1).clamp(min=0).to(torch.int64)
    n_rows = (row1 - row0 + 1).clamp(min=0).to(torch.int64)
    return col0.to(torch.int64), row0.to(torch.int64), n_cols, n_rows


def _triangle_planes(corners: torch.Tensor, area2: torch.Tensor, col0: torch.Tensor,
                     row0: torch.Tensor) -> torch.Tensor:
    """(N, 9) affine functions of the pixel offset (dx, dy) from each box's first pixel:
    w0, w1 (barycentrics of corners 0 and 1) and depth, each as (d/dx, d/dy, value at offset 0).

    Evaluating at small offsets from the box origin, rather than at absolute pixel
    coordinates, keeps float32 round-off far below the edge tolerance.
    """
    x, y, z = corners[..., 0], corners[..., 1], corners[..., 2]
    ox, oy = col0.to(x.dtype), row0.to(y.dtype)
    inv = 1.0 / area2
    # w0 = edge(v1, v2, p) / area2, w1 = edge(v2, v0, p) / area2, with edge() from _edge.
    w0 = torch.stack([-(y[:, 2] - y[:, 1]) * inv, (x[:, 2] - x[:, 1]) * inv,
                      _edge(x[:, 1], y[:, 1], x[:, 2], y[:, 2], ox, oy) * inv], -1)
    w1 = torch.stack([-(y[:, 0] - y[:, 2]) * inv, (x[:, 0] - x[:, 2]) * inv,
                      _edge(x[:, 2], y[:, 2], x[:, 0], y[:, 0], ox, oy) * inv], -1)
    # depth = z2 + w0 (z0 - z2) + w1 (z1 - z2): affine as well.
    dz0, dz1 = (z[:, 0] - z[:, 2])[:, None], (z[:, 1] - z[:, 2])[:, None]
    depth = w0 * dz0 + w1 * dz1
    depth[:, 2] += z[:, 2]
    return torch.cat([w0, w1, depth], -1)


def _evaluate_planes(planes: torch.Tensor, dx: torch.Tensor, dy: torch.Tensor):
    """Barycentrics w0, w1, w2 and depth, each (N,), at pixel offsets (dx, dy) from box origins."""
    dx, dy = dx.to(planes.dtype), dy.to(planes.dtype)
    w0 = torch.addcmul(torch.addcmul(planes[:, 2], planes[:, 0], dx), planes[:, 1], dy)
    w1 = torch.addcmul(torch.addcmul(planes[:, 5], planes[:, 3], dx), planes[:, 4], dy)
    depth = torch.addcmul(torch.addcmul(planes[:, 8], planes[:, 6], dx), planes[:, 7], dy)
    return w0, w1, 1.0 - w0 - w1, depth


def _chunk_bounds(counts: torch.Tensor, max_candidates: int) -> list[int]:
    """Split a run of triangles so each chunk tests about max_candidates (pixel, triangle) pairs."""
    total = int(counts.sum())
    if total == 0:
        return [0, 0]
    cumulative = torch.cumsum(counts, 0)
    n_chunks = -(-total // max_candidates)
    thresholds = torch.arange(1, n_chunks, device=counts.device) * max_candidates
    inner = torch.searchsorted(cumulative, thresholds, right=True).tolist()
    return sorted({0, *inner, len(counts)})


def rasterize(screen_vertices: torch.Tensor, triangles: torch.Tensor, height: int, width: int,
              *, cull_backfaces: bool = False, max_candidates: int = 1 << 21) -> Fragments:
    """Z-buffered rasterization of a batch of meshes sharing one triangle list.

    screen_vertices: (B, V, 3) float, x and y in pixels, z depth (smaller is nearer).
    triangles: (F, 3) int64 vertex indices.
    cull_backfaces: skip triangles facing away from the camera (see the winding convention in the
        module docstring); use it for closed meshes, where those are hidden anyway.
    max_candidates: (pixel, triangle) pairs tested at once; bounds memory at about 100 bytes each.

    Every triangle is tested only against the pixel centres inside its own bounding box: the
    boxes are enumerated without padding (repeat_interleave over per-triangle pixel counts), and
    a scatter-min of packed (depth, triangle) keys resolves visibility, so the nearest surface
    wins whatever the order of triangles (ties go to the lower triangle index). Deterministic.
    """
    device = screen_vertices.device
    batch, n_vertices, _ = screen_vertices.shape
    triangles = triangles.to(device=device, dtype=torch.int64)
    n_triangles = triangles.shape[0]
    # index_select on flat tensors throughout: much faster on the CPU than advanced indexing.
    corner_ids = (torch.arange(batch, device=device)[:, None, None] * n_vertices + triangles).reshape(-1)
    corners = screen_vertices.to(torch.float32).reshape(-1, 3).index_select(0, corner_ids)
    corners = corners.view(batch * n_triangles, 3, 3)                # (B * F, 3 corners, xyz)
    x, y = corners[..., 0], corners[..., 1]
    area2 = _edge(x[:, 0], y[:, 0], x[:, 1], y[:, 1], x[:, 2], y[:, 2])
    drawable = area2.abs() > 1e-12
    if cull_backfaces:
        drawable &= area2 < 0                              # camera-facing has negative area (y down)

    # From here on a triangle is known by its position in the list of drawable ones.
    flat_index = torch.nonzero(drawable, as_tuple=True)[0]            # b * F + triangle
    batch_index, tri_index = flat_index // n_triangles, flat_index % n_triangles
    corners, area2 = corners.index_select(0, flat_index), area2.index_select(0, flat_index)
    col0, row0, n_cols, n_rows = _triangle_pixel_boxes(corners[..., 0], corners[..., 1], height, width)
    planes = _triangle_planes(corners, area2, col0, row0)
    box_origin = (batch_index * height + row0) * width + col0   # flat index of each box's first pixel
    counts = n_cols * n_rows

    keys = torch.full((batch * height * width,), _NO_KEY, dtype=torch.int64, device=device)
    bounds = _chunk_bounds(counts, max_candidates)
    for start, stop in zip(bounds[:-1], bounds[1:]):
        chunk_counts = counts[start:stop]
        owner = torch.repeat_interleave(torch.arange(start, stop, device=device), chunk_counts)
        if owner.numel() == 0:
            continue
        first = torch.cumsum(chunk_counts, 0) - chunk_counts
        local = torch.arange(owner.numel(), device=device) - first.index_select(0, owner - start)
        cols = n_cols.index_select(0, owner)
        dy = local // cols
        dx = local - dy * cols
        w0, w1, w2, depth = _evaluate_planes(planes.index_select(0, owner), dx, dy)
        inside = (w0 >= -_EDGE_SLACK) & (w1 >= -_EDGE_SLACK) & (w2 >= -_EDGE_SLACK)
        pixel = box_origin.index_select(0, owner) + dy * width + dx
        # Weak perspective keeps depth affine in screen space, so the plane's depth is exact.
        # Candidates outside their triangle keep the "nothing drawn" key and so never win.
        key = torch.where(inside, _ordered_depth_key(depth, owner), _NO_KEY)
        keys.scatter_reduce_(0, pixel, key, reduce="amin")

    # Decode the winner per pixel and evaluate its planes there once more.
    pixels = torch.nonzero(keys != _NO_KEY, as_tuple=True)[0]
    winner = keys.index_select(0, pixels) & _INDEX_MASK
    dx = pixels % width - col0.index_select(0, winner)
    dy = (pixels // width) % height - row0.index_select(0, winner)
    w0, w1, w2, depth = _evaluate_planes(planes.index_select(0, winner), dx, dy)
    n_pixels = batch * height * width
    triangle = torch.full((n_pixels,), -1, dtype=torch.int64, device=device)
    triangle[pixels] = tri_index.index_select(0, winner)
    bary_image = torch.zeros(n_pixels, 3, device=device)
    bary_image[pixels] = torch.stack([w0, w1, w2], -1)
    depth_image = torch.full((n_pixels,), float("inf"), device=device)
    depth_image[pixels] = depth
    return Fragments(triangle.view(batch, height, width), bary_image.view(batch, height, width, 3),
                     depth_image.view(batch, height, width), pixels)


def interpolate_pixels(fragments: Fragments, triangles: torch.Tensor,
                       vertex_values: torch.Tensor) -> torch.Tensor:
    """Per-vertex values (B, V, C) -> (P, C) at the covered pixels (`fragments.pixels` order)."""
    batch, height, width = fragments.triangle.shape
    n_vertices, channels = vertex_values.shape[1], vertex_values.shape[2]
    pixels = fragments.pixels
    b = pixels // (height * width)
    tri = fragments.triangle.reshape(-1).index_select(0, pixels)
    corner_ids = triangles.to(pixels.device).index_select(0, tri) + (b * n_vertices)[:, None]
    corner_values = vertex_values.reshape(batch * n_vertices, channels).index_select(0, corner_ids.reshape(-1))
    weights = fragments.bary.reshape(-1, 3).index_select(0, pixels).to(corner_values.dtype)
    return torch.bmm(weights[:, None, :], corner_values.view(-1, 3, channels))[:, 0]   # (P, C)


def interpolate(fragments: Fragments, triangles: torch.Tensor,
                vertex_values: torch.Tensor) -> torch.Tensor:
    """Per-vertex values (B, V, C) -> per-pixel values (B, H, W, C), barycentric; 0 on background."""
    batch, height, width = fragments.triangle.shape
    channels = vertex_values.shape[2]
    out = vertex_values.new_zeros(batch * height * width, channels)
    out[fragments.pixels] = interpolate_pixels(fragments, triangles, vertex_values)
    return out.view(batch, height, width, channels)


# ---------------------------------------------------------------------------------------------
# normals

def face_normals(vertices: torch.Tensor, triangles: torch.Tensor) -> torch.Tensor:
    """(B, V, 3) -> (B, F, 3) unnormalised normals (v1 - v0) x (v2 - v0); length = 2 x area."""
    corners = vertices[:, triangles.to(vertices.device)]
    return torch.linalg.cross(corners[:, :, 1] - corners[:, :, 0], corners[:, :, 2] - corners[:, :, 0])


def _unit(v: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    return v / v.norm(dim=-1, keepdim=True).clamp(min=eps)


def vertex_normals(vertices: torch.Tensor, triangles: torch.Tensor) -> torch.Tensor:
    """(B, V, 3) -> (B, V, 3) unit normals: area-weighted mean of the adjacent face normals."""
    triangles = triangles.to(vertices.device)
    normals = face_normals(vertices, triangles)            # area-weighted by construction
    out = torch.zeros_like(vertices)
    for corner in range(3):
        out.index_add_(1, triangles[:, corner], normals)
    return _unit(out)


def pixel_normals(fragments: Fragments, triangles: torch.Tensor, frame_vertices: torch.Tensor,
                  *, flat: bool = False) -> torch.Tensor:
    """Unit normals of the visible surface per pixel, (B, H, W, 3), in the frame of frame_vertices.

    flat: the winning triangle's own normal (as the authors' normal maps); otherwise the vertex
    normals interpolated and renormalised (smooth shading). Background pixels are 0.
    """
    batch, height, width = fragments.triangle.shape
    pixels = fragments.pixels
    if flat:
        per_face = _unit(face_normals(frame_vertices, triangles)).reshape(-1, 3)   # (B * F, 3)
        tri = fragments.triangle.reshape(-1)[pixels] + pixels // (height * width) * triangles.shape[0]
        normals = per_face[tri]
    else:
        normals = _unit(interpolate_pixels(fragments, triangles, vertex_normals(frame_vertices, triangles)))
    out = normals.new_zeros(batch * height * width, 3)
    out[pixels] = normals
    return out.view(batch, height, width, 3)


def normal_map(screen_vertices: torch.Tensor, triangles: torch.Tensor, height: int, width: int,
               *, frame_vertices: Optional[torch.Tensor] = None, flat: bool = False,
               cull_backfaces: bool = True) -> torch.Tensor:
    """Normal map of a batch of meshes: (B, 3, H, W) float in [0, 1], background exactly 0.

    screen_vertices: (B, V, 3) decide coverage and visibility (see `project`).
    frame_vertices: (B, V, 3) the same mesh in the right-handed frame the normals should be
        expressed in, e.g. the un-rotated model frame as in the authors' code; by default the
        camera frame (x right, y up, z to the viewer), where camera-facing normals have n_z > 0.
    Each unit normal n is encoded as (n + 1) / 2 per channel (x, y, z -> R, G, B).
    """
    frags = rasterize(screen_vertices, triangles, height, width, cull_backfaces=cull_backfaces)
    frame = screen_to_camera(screen_vertices) if frame_vertices is None else frame_vertices
    normals = pixel_normals(frags, triangles, frame.to(torch.float32), flat=flat)
    encoded = (normals + 1.0) * 0.5 * frags.mask[..., None]   # background stays exactly 0
    return encoded.permute(0, 3, 1, 2).contiguous()


# ---------------------------------------------------------------------------------------------
# shading

def _per_pixel(value: Colour, batch_of_pixel: torch.Tensor, batch: int) -> torch.Tensor:
    """A scalar, a per-channel (3,) or a per-image (B, 3) value -> broadcastable to (P, 3)."""
    v = torch.as_tensor(value, dtype=torch.float32, device=batch_of_pixel.device)
    if v.ndim == 2:
        if v.shape[0] != batch:
            raise ValueError(f"per-image value has {v.shape[0]} rows for a batch of {batch}")
        return v[batch_of_pixel]
    return v


def lambert(albedo: torch.Tensor, normals: torch.Tensor, *, light_dir: Colour = (0.0, 0.0, 1.0),
            ambient: Colour = 0.35, diffuse: Colour = 0.65) -> torch.Tensor:
    """Lambertian shading with an ambient term: albedo * (ambient + diffuse * max(n . l, 0)).

    albedo, normals: (..., 3), normals unit in the camera frame (x right, y up, z to the viewer).
    light_dir: direction towards the light, broadcastable to (..., 3); normalised here.
    ambient, diffuse: scalars, or per channel, broadcastable to (..., 3). Not clipped.
    """
    light = _unit(torch.as_tensor(light_dir, dtype=normals.dtype, device=normals.device))
    cosine = (normals * light).sum(-1, keepdim=True).clamp(min=0.0)
    amb = torch.as_tensor(ambient, dtype=albedo.dtype, device=albedo.device)
    dif = torch.as_tensor(diffuse, dtype=albedo.dtype, device=albedo.device)
    return albedo * (amb + dif * cosine)


def composite(fragments: Fragments, pixel_colours: torch.Tensor,
              background: Union[Colour, torch.Tensor] = 0.0) -> torch.Tensor:
    """Covered pixels' colours (P, 3) over a background -> image (B, H, W, 3).

    background: a scalar, a colour (3,), one colour per image (B, 3) or an image (B, H, W, 3).
    """
    batch, height, width = fragments.triangle.shape
    bg = torch.as_tensor(background, dtype=pixel_colours.dtype, device=pixel_colours.device)
    if bg.ndim == 2:
        bg = bg[:, None, None, :]
    image = bg.expand(batch, height, width, 3).reshape(-1, 3).clone()
    image[fragments.pixels] = pixel_colours
    return image.view(batch, height, width, 3)


def shade(screen_vertices: torch.Tensor, triangles: torch.Tensor, vertex_colors: torch.Tensor,
          height: int, width: int, *, light_dir: Colour = (0.0, 0.0, 1.0),
          ambient: Colour = 0.35, diffuse: Colour = 0.65,
          background: Union[Colour, torch.Tensor] = 0.0, cull_backfaces: bool = True) -> torch.Tensor:
    """Render Lambert-shaded meshes: (B, 3, H, W) float (not clipped).

    vertex_colors: (B, V, 3) albedo per vertex, interpolated across triangles. Normals are the
    smooth vertex normals in the camera frame. light_dir, ambient, diffuse: as in `lambert`,
    or one row per image (B, 3). background: as in `composite`.
    """
    batch = screen_vertices.shape[0]
    frags = rasterize(screen_vertices, triangles, height, width, cull_backfaces=cull_backfaces)
    camera = screen_to_camera(screen_vertices.to(torch.float32))
    normals = _unit(interpolate_pixels(frags, triangles, vertex_normals(camera, triangles)))
    albedo = interpolate_pixels(frags, triangles, vertex_colors.to(torch.float32))
    batch_of_pixel = frags.pixels // (height * width)
    lit = lambert(albedo, normals, light_dir=_per_pixel(light_dir, batch_of_pixel, batch),
                  ambient=_per_pixel(ambient, batch_of_pixel, batch),
                  diffuse=_per_pixel(diffuse, batch_of_pixel, batch))
    return composite(frags, lit, background).permute(0, 3, 1, 2).contiguous()
