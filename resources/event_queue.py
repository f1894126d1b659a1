"""The Storage Queue that Event Grid delivers blob events to: receive messages, acknowledge
them, and set aside (poison) those that cannot be processed.

Bodies are read as the queue holds them (the SDK's default: no decode policy). Event Grid has
written both plain JSON and base64-encoded JSON to queues, and a base64 decode policy would
fail on the former; the event parser accepts both.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.storage.queue import QueueClient, StorageErrorCode
from dagster import ConfigurableResource
from pydantic import Field, PrivateAttr

# A queue message holds at most 64 KiB; the poison record keeps the start of a longer body.
MAX_POISONED_BODY_CHARS = 32_000
MAX_MESSAGES_PER_REQUEST = 32


@dataclass(frozen=True)
class Receipt:
    """What deleting a received message takes; valid until the message is received again."""

    id: str
    pop_receipt: str


@dataclass(frozen=True)
class QueueMessage:
    id: str
    pop_receipt: str
    body: str
    dequeue_count: int

    @property
    def receipt(self) -> Receipt:
        return Receipt(self.id, self.pop_receipt)


class AzureStorageQueue(ConfigurableResource):
    """An Azure Storage Queue and its poison queue. Authenticates with ``connection_string``
    when set (a secret: pass ``EnvVar``), else with ``DefaultAzureCredential`` against
    ``account_url`` (Workload Identity on AKS). Transient errors retry with the SDK's policy.

    A received message stays invisible for ``visibility_timeout_s``, which must outlast the
    interval between sensor ticks: the next tick deletes it by its pop receipt.
    """

    queue_name: str
    account_url: str = ""
    connection_string: str = Field(default="", description="Secret: pass EnvVar, never the value.")
    poison_queue_name: str = Field(default="", description='Default: "<queue_name>-poison".')
    visibility_timeout_s: int = 300
    max_dequeue_count: int = 5
    _clients: dict[str, QueueClient] = PrivateAttr(default_factory=dict)
    _credential: Any = PrivateAttr(default=None)

    @property
    def poison_queue(self) -> str:
        return self.poison_queue_name or f"{self.queue_name}-poison"

    def client(self, name: str) -> QueueClient:
        if name not in self._clients:
            if self.connection_string:
                self._clients[name] = QueueClient.from_connection_string(self.connection_string, name)
            else:
                if self._credential is None:
                    from azure.identity import DefaultAzureCredential

                    self._credential = DefaultAzureCredential()
                self._clients[name] = QueueClient(self.account_url, name, credential=self._credential)
        return self._clients[name]

    def receive(self, max_messages: int) -> list[QueueMessage]:
        """Up to ``max_messages`` messages, each hidden for ``visibility_timeout_s``."""
        received = self.client(self.queue_name).receive_messages(
            max_messages=max_messages, messages_per_page=min(max_messages, MAX_MESSAGES_PER_REQUEST),
            visibility_timeout=self.visibility_timeout_s,
        )
        return [QueueMessage(message.id, message.pop_receipt, message.content or "", message.dequeue_count or 0)
                for message in received]

    def delete(self, receipt: Receipt) -> None:
        """Delete a received message; one already deleted, or received again since (its pop
        receipt changed), is left alone: it is gone, or someone else now holds it."""
        try:
            self.client(self.queue_name).delete_message(receipt.id, receipt.pop_receipt)
        except ResourceNotFoundError:
            pass
        except HttpResponseError as error:
            if error.error_code != StorageErrorCode.POP_RECEIPT_MISMATCH:
                raise

    def to_poison(self, message: QueueMessage, reason: str) -> None:
        """Record the message and the reason on the poison queue (created if missing), then
        delete the original."""
        record = json.dumps({
            "reason": reason,
            "message_id": message.id,
            "dequeue_count": message.dequeue_count,
            "body": message.body[:MAX_POISONED_BODY_CHARS],
            "body_truncated": len(message.body) > MAX_POISONED_BODY_CHARS,
        })
        poison = self.client(self.poison_queue)
        try:
            poison.send_message(record)
        except ResourceNotFoundError:
            poison.create_queue()
            poison.send_message(record)
        self.delete(message.receipt)
