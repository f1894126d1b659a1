"""Queue message bodies as Event Grid writes them for blob changes, in both delivery schemas."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime, timedelta

CREATED = "Microsoft.Storage.BlobCreated"
DELETED = "Microsoft.Storage.BlobDeleted"
RENAMED = "Microsoft.Storage.BlobRenamed"
TIER_CHANGED = "Microsoft.Storage.BlobTierChanged"
BASE_TIME = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def storage_account_id(account: str) -> str:
    return (f"/subscriptions/{uuid.UUID(int=1)}/resourceGroups/rag/providers/"
            f"Microsoft.Storage/storageAccounts/{account}")


def blob_event(event_type: str, account: str, container: str, blob: str, sequence: int, *,
               schema: str = "eventgrid", event_id: str | None = None, source_url: str = "") -> dict:
    """One blob event; ``sequence`` is both the sequencer (zero-padded hex, as Azure writes it)
    and the offset of its event time in seconds."""
    data = {
        "api": "PutBlob" if event_type == CREATED else "DeleteBlob",
        "contentType": "text/plain",
        "blobType": "BlockBlob",
        "url": f"https://{account}.blob.core.windows.net/{container}/{blob}",
        "sequencer": f"{sequence:032x}",
        "storageDiagnostics": {"batchId": str(uuid.UUID(int=sequence))},
    }
    if source_url:
        data["sourceUrl"], data["destinationUrl"] = source_url, data["url"]
    subject = f"/blobServices/default/containers/{container}/blobs/{blob}"
    when = (BASE_TIME + timedelta(seconds=sequence)).isoformat().replace("+00:00", "Z")
    event_id = event_id or str(uuid.uuid4())
    if schema == "cloudevents":
        return {"specversion": "1.0", "id": event_id, "type": event_type, "source": storage_account_id(account),
                "subject": subject, "time": when, "data": data}
    return {"id": event_id, "eventType": event_type, "topic": storage_account_id(account), "subject": subject,
            "eventTime": when, "data": data, "dataVersion": "", "metadataVersion": "1"}


def body(payload: dict | list, *, encoded: bool = False) -> str:
    """A queue message body: the JSON as is, or base64-encoded."""
    text = json.dumps(payload)
    return base64.b64encode(text.encode()).decode() if encoded else text
