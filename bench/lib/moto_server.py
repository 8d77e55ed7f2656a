#!/usr/bin/env python3
"""moto's server mode (`python -m moto.server`), with the costs that grow with queue depth or
stream length taken out, for bench/esm.py.

    python bench/lib/moto_server.py [--plain] [--verbose] -H 127.0.0.1 -p PORT

moto 5.x's SQS does O(queue depth) work per *message*, and each of those steps reads the
clock through `unix_time()` (a datetime subtraction, ~3 µs):

* `SendMessage` and every received message compute all the queue's attributes (three scans of
  the whole queue for the `ApproximateNumberOf*` counts) only to read one attribute
  (`ContentBasedDeduplication` on send; `MessageRetentionPeriod` on receive).
* `DeleteMessage` scans the whole queue twice per receipt handle and rebuilds the list.

With 2,000 messages queued a `ReceiveMessage` of 10 took ~0.9 s and a `SendMessageBatch` of
10 ~0.3 s here, so a pre-filled queue of a few thousand messages drains at under 10
messages/s: the benchmark would measure nothing but moto. Kinesis is milder: `PutRecord`
copies the shard's keys to find the last one, and `GetRecords` scans the shard from its
first record to the iterator's position on every call. This launcher patches those spots
before it starts the same server; what the API answers is unchanged:

1. `unix_time()` without an argument is `time.time()` (what it computes, minus the datetime
   arithmetic).
2. The retention check on receive reads `queue.message_retention_period` directly.
3. `send_message` reads the queue's `ContentBasedDeduplication` setting directly (FIFO queues
   only, as `Queue.attributes` has it).
4. `Queue.delete_message` finds the one message with that receipt handle and removes it
   (`list.remove`), instead of two full scans and a rebuilt list.
5. Kinesis `Shard.get_records` starts at the iterator's position (sequence numbers in a moto
   shard are 1, 2, 3 …; otherwise it falls back to the original), and the shard's first and
   last sequence numbers are read without copying its keys.

What stays O(depth): `ReceiveMessage` still lists the visible messages of the queue once per
call (~1 µs per queued message). `--plain` runs moto unpatched; `--verbose` keeps
werkzeug's log line per request (off by default, for moto's sake). Each patch checks that the
code it replaces is there; if moto changed, the launcher says so on stderr and runs that part
unpatched.
"""

from __future__ import annotations

import inspect
import itertools
import logging
import sys
import textwrap
import time


def _warn(what: str) -> None:
    print(f"moto_server: {what}; left unpatched", file=sys.stderr, flush=True)


def patch_sqs() -> None:
    import moto.core.utils as core_utils
    import moto.sqs.models as sqs_models

    original_unix_time = core_utils.unix_time

    def unix_time(dt=None):  # type: ignore[no-untyped-def]
        return time.time() if dt is None else original_unix_time(dt)

    def unix_time_millis(dt=None):  # type: ignore[no-untyped-def]
        return unix_time(dt) * 1000.0

    for module in (core_utils, sqs_models):
        module.unix_time = unix_time
        module.unix_time_millis = unix_time_millis
    _patch_sqs_backend(sqs_models)
    _patch_sqs_queue(sqs_models)


def _patch_sqs_backend(sqs_models) -> None:  # type: ignore[no-untyped-def]
    backend = sqs_models.SQSBackend

    def is_message_valid_based_on_retention_period(self, queue_name, message):  # type: ignore
        queue = self.get_queue(queue_name)
        return int(queue.message_retention_period) + message.sent_timestamp / 1000 > time.time()

    if "MessageRetentionPeriod" in inspect.getsource(
        backend.is_message_valid_based_on_retention_period
    ):
        backend.is_message_valid_based_on_retention_period = (
            is_message_valid_based_on_retention_period
        )
    else:
        _warn("SQSBackend.is_message_valid_based_on_retention_period changed")

    old = 'queue.attributes.get("ContentBasedDeduplication") == "true"'
    source = textwrap.dedent(inspect.getsource(backend.send_message))
    if source.count(old) == 1:
        namespace = dict(vars(sqs_models))
        namespace["_content_dedup"] = lambda queue: (
            bool(queue.fifo_queue)
            and str(getattr(queue, "content_based_deduplication", "false")).lower() == "true"
        )
        exec(source.replace(old, "_content_dedup(queue)"), namespace)  # noqa: S102
        backend.send_message = namespace["send_message"]
    else:
        _warn("SQSBackend.send_message changed")


def _patch_sqs_queue(sqs_models) -> None:  # type: ignore[no-untyped-def]
    queue_class = sqs_models.Queue

    def delete_message(self, receipt_handle):  # type: ignore[no-untyped-def]
        if receipt_handle in self.deleted_messages:
            return  # already deleted: moto answers success
        for message in self._messages:
            if (
                message.receipt_handle == receipt_handle
                or receipt_handle in message._old_receipt_handles
            ):
                break
        else:
            raise sqs_models.ReceiptHandleIsInvalid()
        self.pending_messages.discard(message)
        self.deleted_messages.update(message.all_receipt_handles)
        try:
            self._messages.remove(message)
        except ValueError:  # deleted meanwhile by a concurrent request
            pass

    if "had_receipt_handle" in inspect.getsource(queue_class.delete_message) and hasattr(
        sqs_models.Message, "all_receipt_handles"
    ):
        queue_class.delete_message = delete_message
    else:
        _warn("Queue.delete_message changed")


def patch_kinesis() -> None:
    import moto.kinesis.models as kinesis_models

    shard = kinesis_models.Shard
    original_get_records = shard.get_records

    def get_records(self, last_sequence_id, limit):  # type: ignore[no-untyped-def]
        records = self.records
        if not records:
            return original_get_records(self, last_sequence_id, limit)
        first, last = next(iter(records)), next(reversed(records))
        if not isinstance(first, int) or last - first + 1 != len(records):
            return original_get_records(self, last_sequence_id, limit)  # not 1, 2, 3 …
        after = int(last_sequence_id)
        newest = records[last]
        results, behind = [], 0.0
        for number, record in itertools.islice(records.items(), max(0, after - first + 1), None):
            if number > after:
                results.append(record)
                after = number
                behind = newest.created_at - record.created_at
            if len(results) == limit:
                break
        return results, after, int(behind * 1000)

    if "for sequence_number, record in self.records.items()" in inspect.getsource(
        original_get_records
    ):
        shard.get_records = get_records
    else:
        _warn("kinesis Shard.get_records changed")
    if "list(self.records.keys())" in inspect.getsource(shard.get_max_sequence_number):
        shard.get_max_sequence_number = lambda self: (
            next(reversed(self.records)) if self.records else 0
        )
        shard.get_min_sequence_number = lambda self: next(iter(self.records)) if self.records else 0
    else:
        _warn("kinesis Shard.get_max_sequence_number changed")


def main() -> None:
    argv = sys.argv[1:]
    if "--verbose" in argv:
        argv.remove("--verbose")
    else:  # werkzeug's line per request costs moto a write per call
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
    if "--plain" in argv:
        argv.remove("--plain")
    else:
        patch_sqs()
        patch_kinesis()
    from moto.server import main as moto_main

    moto_main(argv)


if __name__ == "__main__":
    main()
