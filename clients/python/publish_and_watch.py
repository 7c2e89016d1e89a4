"""Hookline from Python: create an endpoint, publish an event, watch its delivery.

Stubs come from the same .proto files as every other client, generated with
the standard grpc_tools.protoc (Debian: python3-grpcio python3-grpc-tools):

    python3 -m grpc_tools.protoc -I proto --python_out=OUT --grpc_python_out=OUT proto/hookline/v1/*.proto
    PYTHONPATH=OUT HOOKLINE_TARGET=127.0.0.1:7070 RECEIVER_URL=https://example.com/hooks \\
        python3 clients/python/publish_and_watch.py

HOOKLINE_TOKEN, when set, is sent as the bearer token. Prints one JSON line
per step and exits 0 once every delivery of the event succeeded, 1 if one
failed.
"""

import json
import os
import sys
import time

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from hookline.v1 import delivery_pb2, event_ingest_pb2, event_ingest_pb2_grpc, webhook_admin_pb2, webhook_admin_pb2_grpc


def main() -> int:
    target = os.environ.get("HOOKLINE_TARGET", "127.0.0.1:7070")
    token = os.environ.get("HOOKLINE_TOKEN")
    metadata = [("authorization", f"Bearer {token}")] if token else []
    channel = grpc.insecure_channel(target)
    admin = webhook_admin_pb2_grpc.WebhookAdminStub(channel)
    ingest = event_ingest_pb2_grpc.EventIngestStub(channel)

    endpoint = admin.CreateEndpoint(
        webhook_admin_pb2.CreateEndpointRequest(
            tenant_id="acme-py",
            url=os.environ.get("RECEIVER_URL", "https://example.com/hooks"),
            event_types=["invoice.*"],
        ),
        metadata=metadata,
    ).endpoint
    print(json.dumps({"endpoint": endpoint.id}), flush=True)

    # From a moment before publishing, so no outcome slips by between the calls.
    since = Timestamp()
    since.FromSeconds(int(time.time()) - 1)
    published = ingest.Publish(
        event_ingest_pb2.PublishRequest(
            tenant_id="acme-py",
            event_type="invoice.paid",
            payload_json=json.dumps({"invoiceId": "inv_7", "amount": 700}),
        ),
        metadata=metadata,
    )
    print(json.dumps({"event": published.event_id, "deliveries": published.delivery_count}), flush=True)

    final = [delivery_pb2.DELIVERY_STATUS_SUCCEEDED, delivery_pb2.DELIVERY_STATUS_FAILED]
    updates = admin.WatchDeliveries(
        webhook_admin_pb2.WatchDeliveriesRequest(event_id=published.event_id, since=since, statuses=final),
        metadata=metadata,
        timeout=30,
    )
    ended, failed = 0, 0
    for update in updates:
        status = delivery_pb2.DeliveryStatus.Name(update.status)
        print(json.dumps({"delivery": update.delivery_id, "status": status, "http": update.response_status}), flush=True)
        ended += 1
        failed += update.status == delivery_pb2.DELIVERY_STATUS_FAILED
        if ended == published.delivery_count:
            updates.cancel()
            break
    channel.close()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
