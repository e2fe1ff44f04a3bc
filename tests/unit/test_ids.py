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


def test_a_forked_child_does_not_reuse_the_parents_random_bits():
    """Random bits are drawn in batches; a child must not take the parent's next ones."""
    import os

    ids.uuid7()  # the parent now holds a batch of drawn bytes
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_fd)
        os.write(write_fd, ids.uuid7().int.to_bytes(16, "big"))
        os._exit(0)
    os.close(write_fd)
    child = int.from_bytes(os.read(read_fd, 16), "big")
    os.close(read_fd)
    os.waitpid(pid, 0)
    parent = ids.uuid7().int
    assert child & ids.RAND_B != parent & ids.RAND_B


def test_a_forked_child_makes_ids_though_the_parent_held_the_lock_at_the_fork():
    """The lock another thread of the parent held at the fork is never released in the child."""
    import os
    import signal

    with ids._lock:  # as a thread of the parent making an id at that moment
        pid = os.fork()
        if pid == 0:
            signal.alarm(5)  # a child stuck on the lock is killed, not left hanging
            ids.uuid7()
            os._exit(0)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
