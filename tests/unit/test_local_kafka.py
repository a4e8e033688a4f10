from __future__ import annotations

import base64

from deploy.local_kafka import new_cluster_id


def test_cluster_ids_are_16_bytes_and_never_look_like_an_option():
    ids = [new_cluster_id() for _ in range(2000)]
    assert all(not i.startswith("-") for i in ids)
    assert all(len(base64.urlsafe_b64decode(i + "==")) == 16 for i in ids)
    assert len(set(ids)) == len(ids)
