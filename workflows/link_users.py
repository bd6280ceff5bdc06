"""LinkUsers: one-click bulk linking, run as a short workflow so it lands on the platform's queue."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from warroom.messages import LINK_USERS_WORKFLOW_TYPE, LinkUsersInput, LinkUsersResult, WarRoomConfig
    from workflows.incident.options import IM_RETRY


@workflow.defn(name=LINK_USERS_WORKFLOW_TYPE)
class LinkUsers:
    @workflow.run
    async def run(self, inp: LinkUsersInput, config: WarRoomConfig | None = None) -> LinkUsersResult:
        queue = (config.im_task_queues.get(inp.platform) if config else None) or workflow.info().task_queue
        return await workflow.execute_activity(
            "im_link_users",
            inp,
            result_type=LinkUsersResult,
            task_queue=queue,
            start_to_close_timeout=timedelta(minutes=2),
            schedule_to_close_timeout=timedelta(minutes=30),
            retry_policy=IM_RETRY,
        )
