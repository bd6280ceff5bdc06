"""War Room's search attributes in the Temporal namespace, registered by the processes themselves.

Workflows are started with IncidentId, IncidentStatus, … (workflows/incident/search.py); a
namespace without them refuses every start ("no mapping defined for search attribute"). `warroom
dev` and the Compose file register them, but a Temporal started any other way (a bare `temporal
server start-dev`, a new namespace) would leave every incident unable to start. So the worker and
the API register what is missing when they connect. Where the namespace does not allow it
(Temporal Cloud registers them through its own API), they say which ones to add and how.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest, ListSearchAttributesRequest
from temporalio.client import Client
from temporalio.common import SearchAttributeKey
from temporalio.service import RPCError, RPCStatusCode

log = logging.getLogger("warroom.temporal")

KEYWORD = IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD


async def ensure_search_attributes(client: Client, keys: Sequence[SearchAttributeKey]) -> list[str]:
    """Register the keys the namespace lacks (all Keyword); returns the names added. Never raises:
    a namespace that cannot be changed from here is logged with the commands that fix it."""
    namespace = client.namespace
    try:
        found = await client.operator_service.list_search_attributes(ListSearchAttributesRequest(namespace=namespace))
        known = set(found.custom_attributes) | set(found.system_attributes)
        missing = [k.name for k in keys if k.name not in known]
        if missing:
            await client.operator_service.add_search_attributes(
                AddSearchAttributesRequest(namespace=namespace, search_attributes=dict.fromkeys(missing, KEYWORD))
            )
            log.info("registered search attributes %s in namespace %s", ", ".join(missing), namespace)
        return missing
    except RPCError as e:
        if e.status is RPCStatusCode.ALREADY_EXISTS:  # another process registered them meanwhile
            return []
        create = "temporal operator search-attribute create -n {} --name {} --type Keyword"
        commands = "; ".join(create.format(namespace, k.name) for k in keys)
        log.warning(
            "cannot check or register War Room's search attributes in namespace %s (%s): incidents cannot "
            "start without them. Register them as Keyword: %s",
            namespace,
            e.message,
            commands,
        )
        return []
