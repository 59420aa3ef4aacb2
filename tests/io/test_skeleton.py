"""BVH: channel values equal to the numbers in the file; hierarchy; forward kinematics by hand."""
import numpy as np
import pytest

import sigconv.io as sio
from sigconv.errors import ArgumentError


def numbers_in_file(path):
    """The motion block read the plainest way: every line after 'Frame Time' split on spaces."""
    lines = path.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().startswith("Frame Time")) + 1
    return np.array([[float(v) for v in line.split()] for line in lines[start:] if line.strip()])


@pytest.mark.parametrize("name", ["freebvh.bvh", "mocapbank.bvh"])
def test_channels_equal_the_numbers_in_the_file(shared_data, name):
    path = shared_data / "mocap" / name
    expected = numbers_in_file(path)                      # (T, C)
    signal = sio.load(path, dtype=np.float64)
    assert signal.kind == "skeleton" and signal.axes == ("channel", "time")
    np.testing.assert_array_equal(signal.data, expected.T)
    float32 = sio.load(path)
    assert float32.dtype == np.float32
    np.testing.assert_array_equal(float32.data, expected.T.astype(np.float32))


def test_names_hierarchy_and_rate(shared_data):
    signal = sio.load(shared_data / "mocap" / "mocapbank.bvh")
    text = (shared_data / "mocap" / "mocapbank.bvh").read_text()
    assert signal.frame_rate == pytest.approx(1 / 0.033333)
    assert signal.channel_names[:6] == ("Hips.Xposition", "Hips.Yposition", "Hips.Zposition",
                                        "Hips.Zrotation", "Hips.Xrotation", "Hips.Yrotation")
    joints = [j for j in signal.joints if not j.end_site]
    assert len(joints) == text.count("JOINT") + text.count("ROOT")
    assert sum(j.end_site for j in signal.joints) == text.count("End Site")
    assert joints[0].name == "Hips" and joints[0].parent == -1
    for j in signal.joints[1:]:
        assert 0 <= j.parent < signal.joints.index(j)
    assert len(signal.channel_names) == signal.shape[0] == sum(len(j.channels) for j in joints)


def test_radians_converts_rotations_only(shared_data):
    path = shared_data / "mocap" / "freebvh.bvh"
    deg = sio.load_skeleton(path, dtype=np.float64)
    rad = sio.load_skeleton(path, radians=True, dtype=np.float64)
    for c, name in enumerate(deg.channel_names):
        factor = np.pi / 180 if name.endswith("rotation") else 1.0
        np.testing.assert_allclose(rad.data[c], deg.data[c] * factor)


ARM = """HIERARCHY
ROOT Root
{
  OFFSET 0 0 0
  CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation
  JOINT Upper Arm
  {
    OFFSET 1 0 0
    CHANNELS 3 Zrotation Xrotation Yrotation
    End Site
    {
      OFFSET 2 0 0
    }
  }
}
MOTION
Frames: 3
Frame Time: 0.5
0 0 0 0 0 0 0 0 0
10 0 0 90 0 0 0 0 0
0 0 0 0 0 0 0 0 90
"""


def test_forward_kinematics_by_hand(tmp_path):
    path = tmp_path / "arm.bvh"
    path.write_text(ARM)
    s = sio.load_skeleton(path, dtype=np.float64)
    assert [j.name for j in s.joints] == ["Root", "Upper Arm", "Upper Arm.End"]
    assert s.frame_rate == 2.0
    xyz = sio.forward_kinematics(s)                      # (T, J, 3)
    np.testing.assert_allclose(xyz[0], [[0, 0, 0], [1, 0, 0], [3, 0, 0]], atol=1e-12)
    # root moved +10 in x and turned 90 degrees about z: the arm points along +y
    np.testing.assert_allclose(xyz[1], [[10, 0, 0], [10, 1, 0], [10, 3, 0]], atol=1e-12)
    # the upper arm turned 90 degrees about y: its child goes to -z
    np.testing.assert_allclose(xyz[2], [[0, 0, 0], [1, 0, 0], [1, 0, -2]], atol=1e-12)
    pos = sio.load_skeleton(path, positions=True, dtype=np.float64)
    assert pos.channel_names[:3] == ("Root.X", "Root.Y", "Root.Z") and pos.shape == (9, 3)
    np.testing.assert_allclose(pos.data.T.reshape(3, 3, 3), xyz)
    with pytest.raises(ArgumentError, match="needs the channel values"):
        sio.forward_kinematics(pos)


def test_forward_kinematics_matches_bvhio(shared_data):
    bvhio = pytest.importorskip("bvhio", reason="bvhio is an optional oracle")
    path = shared_data / "mocap" / "mocapbank.bvh"
    signal = sio.load_skeleton(path, dtype=np.float64)
    xyz = sio.forward_kinematics(signal)
    root = bvhio.readAsHierarchy(str(path))
    by_name = {joint.Name: joint for joint, _, _ in root.layout()}
    for frame in (0, 200, 454):
        root.loadPose(frame)
        for j, joint in enumerate(signal.joints):
            if joint.end_site:
                continue
            expected = np.array(by_name[joint.name].PositionWorld)
            np.testing.assert_allclose(xyz[frame, j], expected, atol=1e-3)


def test_forward_kinematics_needs_channel_names(tmp_path):
    # a skeleton without channel_names once reached list(None): a bare TypeError
    path = tmp_path / "arm.bvh"
    path.write_text(ARM)
    s = sio.load_skeleton(path, dtype=np.float64).replace(channel_names=None)
    with pytest.raises(ArgumentError, match="forward_kinematics needs a skeleton signal"):
        sio.forward_kinematics(s)
