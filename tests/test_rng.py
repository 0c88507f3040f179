"""SRStream / hashing: kernels equal the plain-Python oracle; streams are pure functions."""
import numba
import numpy as np
import pytest

from intsim import SRStream
from intsim.kernels.hashing import element_bits, element_bits_reference, mix64, \
    mix64_reference


@numba.njit
def _bits_block(key, n, offset):
    out = np.empty(n, np.uint64)
    for i in range(n):
        out[i] = element_bits(key, offset + i)
    return out


def test_mix64_known_values():
    # SplitMix64 with state 0: first output is mix64(GAMMA) = 0xE220A8397B1DCDAF
    assert mix64_reference(0x9E3779B97F4A7C15) == 0xE220A8397B1DCDAF
    assert mix64_reference(0) == 0


@pytest.mark.parametrize("z", [0, 1, 2**63, 2**64 - 1, 0x0123456789ABCDEF])
def test_mix64_kernel_equals_reference(z):
    assert int(mix64(np.uint64(z))) == mix64_reference(z)


def test_element_bits_kernel_equals_reference():
    for key in (0, 1, 2**64 - 1, SRStream(7).draw(3).key):
        got = _bits_block(np.uint64(key), 200, 1000)
        want = [element_bits_reference(key, 1000 + i) for i in range(200)]
        assert [int(g) for g in got] == want


def test_streams_are_pure_functions_of_seed_path_and_counter():
    a, b = SRStream(5, "x"), SRStream(5, "x")
    assert [a.next_draw() for _ in range(3)] == [b.next_draw() for _ in range(3)]
    assert SRStream(5).child("layer1").draw(2) == SRStream(5).child("layer1").draw(2)
    keys = {SRStream(5).draw(0).key, SRStream(6).draw(0).key, SRStream(5, 1).draw(0).key,
            SRStream(5).child("a").draw(0).key, SRStream(5).child("b").draw(0).key,
            SRStream(5).draw(1).key}
    assert len(keys) == 6


def test_child_does_not_advance_parent_and_state_roundtrips():
    s = SRStream(3)
    s.next_draw()
    c = s.child("fc")
    assert s.draws == 1 and c.draws == 0
    c.next_draw()
    again = SRStream.from_state(c.state())
    assert again.next_draw() == c.next_draw()


def test_shifted_draw_offsets_elements():
    d = SRStream(1).draw(0)
    assert d.shifted(10).offset == 10 and d.shifted(10).shifted(5).offset == 15


@pytest.mark.parametrize("bad", [-1, 2**64, 1.5, "3", True])
def test_bad_seed_is_rejected(bad):
    with pytest.raises(ValueError, match="seed"):
        SRStream(bad)


def test_bad_stream_component_is_rejected():
    with pytest.raises(ValueError, match="stream"):
        SRStream(1, stream=-3)


def test_children_persist_and_state_restores_the_tree():
    s = SRStream(4)
    c = s.child("fc1").child("g_in")
    c.next_draw()
    assert s.child("fc1").child("g_in") is c and c.draws == 1
    r = SRStream.from_state(s.state())
    assert r.child("fc1").child("g_in").next_draw() == c.next_draw()
