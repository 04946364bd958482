"""The producers' partitioner picks the partition aiokafka's (and the Java client's) would."""

from __future__ import annotations

from aiokafka.partitioner import DefaultPartitioner
from hypothesis import given
from hypothesis import strategies as st

from adapters.kafka import key_partitioner

partitions = st.integers(min_value=1, max_value=64).map(lambda n: list(range(n)))


@given(st.binary(max_size=64), partitions)
def test_a_keyed_message_goes_where_the_default_partitioner_sends_it(
    key: bytes, all_partitions: list[int]
) -> None:
    expected = DefaultPartitioner()(key, all_partitions, all_partitions)
    assert key_partitioner(key, all_partitions, all_partitions) == expected


@given(partitions, st.data())
def test_an_unkeyed_message_goes_to_an_available_partition(
    all_partitions: list[int], data: st.DataObject
) -> None:
    available = data.draw(st.lists(st.sampled_from(all_partitions), min_size=1, unique=True))
    assert key_partitioner(None, all_partitions, available) in available
