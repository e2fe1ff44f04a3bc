from dbqueue import ids


def test_uuid7_is_version_7_and_increases_within_a_process():
    values = [ids.uuid7() for _ in range(10_000)]
    assert all(v.version == 7 for v in values)
    assert values == sorted(values)
    assert len(set(values)) == len(values)
