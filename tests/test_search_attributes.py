"""A Temporal namespace without War Room's search attributes (a bare `temporal server start-dev`):
the worker and the API register them when they connect, so incidents start; a second process
finds them there. Real dev server, started without them."""

from __future__ import annotations

import pytest
from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from connection.search_attributes import ensure_search_attributes
from starters.service import WarRoomService
from warroom.models import IncidentIn, Source
from warroom.settings import Settings
from warroom.store import Store
from workflows.incident import SEARCH_ATTRIBUTES

from .conftest import binary

pytestmark = pytest.mark.timeout(120)


async def test_a_bare_namespace_gets_the_search_attributes(store: Store, settings: Settings) -> None:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=binary("temporal"), data_converter=pydantic_data_converter
    )
    try:
        client = env.client
        svc = WarRoomService(client, store, settings)
        with pytest.raises(Exception, match="search attribute"):  # what every incident met before
            await svc.upsert_incident(IncidentIn(title="Before"), actor="ann@example.com", source=Source.API)

        added = await ensure_search_attributes(client, SEARCH_ATTRIBUTES)
        assert sorted(added) == sorted(k.name for k in SEARCH_ATTRIBUTES)
        assert await ensure_search_attributes(client, SEARCH_ATTRIBUTES) == []  # the next process: nothing to do
        listed = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=client.namespace)
        )
        assert {k.name for k in SEARCH_ATTRIBUTES} <= set(listed.custom_attributes)

        incident, _ = await svc.upsert_incident(IncidentIn(title="After"), actor="ann@example.com", source=Source.API)
        desc = await svc.handle(incident.id).describe()
        assert desc.typed_search_attributes.get(SEARCH_ATTRIBUTES[0]) == incident.id
    finally:
        await env.shutdown()
