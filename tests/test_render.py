"""The torch rasterizer: coverage, z-test, normals, shading and the pose helpers."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from frgan.conditions import render


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _triangle_batch(*triangles_xyz) -> tuple[torch.Tensor, torch.Tensor]:
    """Screen-space triangles given as 3x3 corner lists -> one mesh (1, 3n, 3) and its faces."""
    verts = torch.tensor([c for tri in triangles_xyz for c in tri], dtype=torch.float32)[None]
    faces = torch.arange(verts.shape[1]).view(-1, 3)
    return verts, faces


def uv_sphere(n_lat: int = 32, n_lon: int = 48) -> tuple[torch.Tensor, torch.Tensor]:
    """Unit sphere, counter-clockwise seen from outside (outward normals), poles at +-y."""
    lat = torch.linspace(-math.pi / 2, math.pi / 2, n_lat)
    lon = torch.linspace(0, 2 * math.pi, n_lon + 1)[:-1]
    la, lo = torch.meshgrid(lat, lon, indexing="ij")
    verts = torch.stack([la.cos() * lo.sin(), la.sin(), la.cos() * lo.cos()], -1).reshape(-1, 3)
    faces = []
    for i in range(n_lat - 1):
        for j in range(n_lon):
            a, b = i * n_lon + j, i * n_lon + (j + 1) % n_lon
            c, d = a + n_lon, b + n_lon
            faces += [[a, b, d], [a, d, c]]
    return verts, torch.tensor(faces)


def cube() -> tuple[torch.Tensor, torch.Tensor]:
    """Cube [-1, 1]^3, counter-clockwise seen from outside."""
    verts = torch.tensor([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], dtype=torch.float32)
    index = {tuple(v.int().tolist()): i for i, v in enumerate(verts)}
    faces = []
    for axis in range(3):
        for sign in (-1, 1):
            u, v = (axis + 1) % 3, (axis + 2) % 3
            quad = []
            for a, b in ((-1, -1), (1, -1), (1, 1), (-1, 1)):     # counter-clockwise about +axis
                p = [0, 0, 0]
                p[axis], p[u], p[v] = sign, a, b
                quad.append(index[tuple(p)])
            if sign < 0:
                quad = quad[::-1]
            faces += [[quad[0], quad[1], quad[2]], [quad[0], quad[2], quad[3]]]
    return verts, torch.tensor(faces)


def frontal(verts: torch.Tensor, centre: float, scale: float, yaw_deg: float = 0.0) -> torch.Tensor:
    pose = torch.tensor([[math.radians(yaw_deg), 0.0, 0.0, centre, centre, scale]])
    return render.project(verts[None], pose)


def test_one_triangle_covers_exactly_the_pixel_centres_inside_it():
    verts, faces = _triangle_batch([[1, 1, 0], [8, 1, 0], [1, 8, 0]])
    frags = render.rasterize(verts, faces, 10, 10)
    rows, cols = np.mgrid[0:10, 0:10]
    expected = (cols >= 1) & (rows >= 1) & (cols + rows <= 9)       # closed triangle, centres on integers
    assert expected.sum() == 36
    np.testing.assert_array_equal(frags.mask[0].numpy(), expected)
    # Barycentrics reproduce the pixel centre.
    corners = verts[0, :, :2]
    at = frags.bary[0][frags.mask[0]] @ corners
    np.testing.assert_allclose(at.numpy(), np.stack([cols[expected], rows[expected]], -1), atol=1e-4)
    assert torch.isinf(frags.depth[0][~frags.mask[0]]).all()


def test_the_nearer_of_two_overlapping_triangles_wins_in_either_order():
    far = [[0, 0, 5.0], [12, 0, 5.0], [0, 12, 5.0]]
    near = [[2, 2, 2.0], [12, 2, 2.0], [2, 12, 2.0]]
    for order in ((far, near), (near, far)):
        verts, faces = _triangle_batch(*order)
        frags = render.rasterize(verts, faces, 12, 12)
        near_index = order.index(near)
        both = (frags.bary[0].sum(-1) > 0) & (frags.depth[0] < 3)
        assert both.sum() > 30
        assert (frags.triangle[0][both] == near_index).all()
        assert torch.allclose(frags.depth[0][both], torch.tensor(2.0))
        assert (frags.triangle[0, 0, 0] == order.index(far)).item()   # only the far one reaches (0, 0)


def test_a_cube_seen_from_the_front_covers_its_square_and_faces_the_camera():
    verts, faces = cube()
    screen = frontal(verts, centre=15.5, scale=10.0)            # x, y in [5.5, 25.5]
    frags = render.rasterize(screen, faces, 32, 32, cull_backfaces=True)
    expected = np.zeros((32, 32), bool)
    expected[6:26, 6:26] = True                                  # centres 6..25: 20 x 20
    np.testing.assert_array_equal(frags.mask[0].numpy(), expected)
    nmap = render.normal_map(screen, faces, 32, 32, flat=True)[0]
    inside = torch.from_numpy(expected)
    np.testing.assert_allclose(nmap[:, inside].T.numpy(), np.tile([0.5, 0.5, 1.0], (400, 1)), atol=1e-5)
    assert (nmap[:, ~inside] == 0).all()


def test_back_face_culling_keeps_a_closed_mesh_looking_the_same():
    verts, faces = cube()
    screen = frontal(verts, centre=15.5, scale=8.0, yaw_deg=30.0)
    culled = render.rasterize(screen, faces, 32, 32, cull_backfaces=True)
    full = render.rasterize(screen, faces, 32, 32)
    assert torch.equal(culled.triangle, full.triangle)


def test_sphere_normals_point_at_the_camera():
    verts, faces = uv_sphere()
    radius, centre, size = 20.0, 31.5, 64
    screen = frontal(verts, centre=centre, scale=radius)
    for flat in (False, True):
        nmap = render.normal_map(screen, faces, size, size, flat=flat)[0]
        drawn = nmap.abs().sum(0) > 0
        area = drawn.sum().item()
        assert abs(area - math.pi * radius ** 2) < 0.03 * math.pi * radius ** 2
        normals = nmap * 2 - 1
        assert (normals[2][drawn] > 0).all()                     # camera-facing: n_z > 0 everywhere
        assert (nmap[:, ~drawn] == 0).all()                      # background exactly 0
        c = int(round(centre))
        # Half a pixel off the centre; a flat facet of the 48-segment sphere spans 7.5 degrees.
        np.testing.assert_allclose(normals[:, c, c].numpy(), [0, 0, 1], atol=0.07 if flat else 0.04)
    # Smooth normals match the sphere's analytic normal (the pixel's direction from the centre).
    nmap = render.normal_map(screen, faces, size, size)[0] * 2 - 1
    rows, cols = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    nx, ny = (cols - centre) / radius, -(rows - centre) / radius
    inner = (nx ** 2 + ny ** 2) < 0.8
    assert (nmap[0][inner] - nx[inner]).abs().max() < 0.05
    assert (nmap[1][inner] - ny[inner]).abs().max() < 0.05


def test_normals_can_be_expressed_in_the_model_frame():
    verts, faces = cube()
    screen = frontal(verts, centre=15.5, scale=7.0, yaw_deg=20.0)
    camera = render.normal_map(screen, faces, 32, 32, flat=True)[0] * 2 - 1
    model = render.normal_map(screen, faces, 32, 32, flat=True, frame_vertices=verts[None])[0] * 2 - 1
    centre = (slice(None), 16, 16)                               # on the front face (+z in the model)
    np.testing.assert_allclose(model[centre].numpy(), [0, 0, 1], atol=1e-5)
    yaw = math.radians(20.0)
    np.testing.assert_allclose(camera[centre].numpy(), [math.sin(yaw), 0, math.cos(yaw)], atol=1e-5)


def test_results_do_not_depend_on_chunking_and_are_deterministic():
    verts, faces = uv_sphere(20, 30)
    screen = torch.cat([frontal(verts, 20.0, 14.0, yaw) for yaw in (0.0, 25.0, -40.0)])
    whole = render.rasterize(screen, faces, 40, 40, cull_backfaces=True)
    chunked = render.rasterize(screen, faces, 40, 40, cull_backfaces=True, max_candidates=97)
    again = render.rasterize(screen, faces, 40, 40, cull_backfaces=True)
    for a, b in ((whole, chunked), (whole, again)):
        assert torch.equal(a.triangle, b.triangle)
        assert torch.equal(a.bary, b.bary) and torch.equal(a.depth, b.depth)


def test_interpolating_positions_gives_back_the_pixel_centres():
    verts, faces = uv_sphere(20, 30)
    screen = frontal(verts, 20.0, 15.0, yaw_deg=10.0)
    frags = render.rasterize(screen, faces, 40, 40, cull_backfaces=True)
    xy = render.interpolate(frags, faces, screen[..., :2])[0]
    rows, cols = torch.meshgrid(torch.arange(40.0), torch.arange(40.0), indexing="ij")
    mask = frags.mask[0]
    assert (xy[..., 0][mask] - cols[mask]).abs().max() < 1e-3
    assert (xy[..., 1][mask] - rows[mask]).abs().max() < 1e-3
    assert (xy[~mask] == 0).all()


def test_lambert_shading_of_a_sphere():
    verts, faces = uv_sphere()
    screen = frontal(verts, 31.5, 20.0)
    colours = torch.full((1, verts.shape[0], 3), 0.5)
    image = render.shade(screen, faces, colours, 64, 64, light_dir=(0, 0, 1), ambient=0.2,
                         diffuse=0.8, background=(0.1, 0.2, 0.3))[0]
    np.testing.assert_allclose(image[:, 31, 31].numpy(), [0.5, 0.5, 0.5], atol=0.01)   # n = l: full light
    np.testing.assert_allclose(image[:, 0, 0].numpy(), [0.1, 0.2, 0.3])
    assert image[0, 31, 31] > image[0, 31, 50] > 0.5 * 0.2 - 1e-6   # darker towards the rim
    # One light per image: lit from the viewer's left, the left half is brighter.
    both = render.shade(screen.repeat(2, 1, 1), faces, colours.repeat(2, 1, 1), 64, 64,
                        light_dir=torch.tensor([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.3]]))
    assert both[1, 0, 31, 20] > both[1, 0, 31, 43]
    assert torch.allclose(both[0], render.shade(screen, faces, colours, 64, 64)[0])


def test_rotation_and_projection_conventions():
    angles = torch.tensor([0.3, -0.2, 0.5])
    rot = render.rotation_matrix(*angles)
    assert torch.allclose(rot @ rot.T, torch.eye(3), atol=1e-6)
    assert torch.isclose(torch.linalg.det(rot), torch.tensor(1.0))
    nose = torch.tensor([[[0.0, 0.0, 1.0], [0.0, 1.0, 0.0]]])
    def px(yaw=0.0, pitch=0.0, roll=0.0):
        return render.project(nose, torch.tensor([[yaw, pitch, roll, 50.0, 40.0, 10.0]]))[0]
    rest = px()
    assert torch.allclose(rest[0], torch.tensor([50.0, 40.0, -10.0]))   # nearest: smallest depth
    assert torch.allclose(rest[1, :2], torch.tensor([50.0, 30.0]))      # model up is image up
    assert px(yaw=0.2)[0, 0] > 50.0                                    # yaw turns the face to image right
    assert px(pitch=0.2)[0, 1] > 40.0                                  # pitch turns it down
    assert px(roll=0.2)[1, 0] < 50.0                                   # roll: counter-clockwise on screen
