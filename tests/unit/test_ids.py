from dbqueue import ids


def test_uuid7_is_version_7_and_increases_within_a_process():
    values = [ids.uuid7() for _ in range(10_000)]
    assert all(v.version == 7 for v in values)
    assert values == sorted(values)
    assert len(set(values)) == len(values)


def test_uuid7_values_behave_as_uuids_made_the_usual_way():
    import pickle
    import uuid

    value = ids.uuid7()
    same = uuid.UUID(str(value))
    assert value == same
    assert hash(value) == hash(same)
    assert value.variant == uuid.RFC_4122
    assert pickle.loads(pickle.dumps(value)) == same
    assert {value: 1}[same] == 1
