"""Prefect automations that alert on rpx-bench: a regression of a nightly run, and a failed or crashed run.

``ensure_alerting`` (called by ``deployments/setup_prefect.py``) creates or updates, by name:

- ``rpx-benchmark-regressed``: on each event ``rpx.benchmark.regressed`` (emitted by the ``compare-previous``
  step when the primary metric got worse than in the previous comparable run), a notification naming the
  benchmark, the metric, its delta and 95% CI, both run ids and the flow run's URL;
- ``rpx-bench-failed``: on each ``prefect.flow-run.Failed`` / ``prefect.flow-run.Crashed`` event of a flow
  run of flow ``rpx-bench`` (a deployment's run, a matrix subflow run, or ``rpx bench``), a notification
  naming the flow run, its state and message.

Both notify through one notification block: the custom-webhook block ``rpx-alerts`` (JSON POST of
``subject``, ``body`` and ``text``), created or updated from a URL, or any notification block saved before
(Slack, Microsoft Teams, SendGrid e-mail, ...), named by its slug ``<block type>/<name>``.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from rpx_tasks.errors import ConfigError

ALERT_BLOCK_NAME = "rpx-alerts"
WEBHOOK_URL_VARIABLE = "RPX_ALERT_WEBHOOK_URL"
REGRESSION_AUTOMATION = "rpx-benchmark-regressed"
FAILURE_AUTOMATION = "rpx-bench-failed"
REGRESSION_EVENT = "rpx.benchmark.regressed"  # rpx_tasks.steps.compare_previous.REGRESSION_EVENT
BENCH_FLOW = "rpx-bench"

# What the webhook receives (JSON): the notification's subject and body, and both as one text (Slack-style).
WEBHOOK_JSON = {"subject": "{{subject}}", "body": "{{body}}", "text": "{{subject}}\n{{body}}"}

REGRESSION_SUBJECT = (
    "RPX regression: {{ event.payload.task }} / {{ event.payload.model }} / {{ event.payload.split }} "
    "({{ event.payload.metric }})"
)
REGRESSION_BODY = """\
{{ event.payload.metric }} regressed on {{ event.payload.task }} / {{ event.payload.model }} / \
{{ event.payload.split }} (data {{ event.payload.data }}, {{ event.payload.device }}).
Delta (this run - previous run): {{ event.payload.delta }}, 95% CI {{ event.payload.ci }}.
Previous run: {{ event.payload.previous_run_id }}
This run: {{ event.payload.run_id }}
Flow run: {{ event.payload.flow_run_url }}"""

FAILURE_SUBJECT = "RPX flow run {{ flow_run.name }}: {{ flow_run.state.name }}"
FAILURE_BODY = """\
Flow run {{ flow_run.name }} ({{ flow_run.id }}) of flow {{ flow.name }} entered {{ flow_run.state.name }}.
{{ flow_run.state.message }}
Flow run: {{ flow_run|ui_url }}"""


def ensure_webhook_block(url: str, name: str = ALERT_BLOCK_NAME) -> UUID:
    """Create or overwrite the custom-webhook notification block ``name`` posting JSON (``WEBHOOK_JSON``) to
    ``url``; returns its block document id. Raises ConfigError for a URL that is not http(s), Prefect's
    errors when the API does not answer."""
    from prefect.blocks.notifications import CustomWebhookNotificationBlock

    if not url.startswith(("http://", "https://")):
        raise ConfigError(
            f"The alert webhook URL {url!r} is not an http(s) URL.",
            hint=f"pass --webhook-url https://... (or set {WEBHOOK_URL_VARIABLE})",
        )
    block = CustomWebhookNotificationBlock(name=name, url=url, method="POST", json_data=dict(WEBHOOK_JSON))
    return block.save(name, overwrite=True)


def saved_block_id(slug: str) -> UUID:
    """Return the block document id of the saved notification block ``<block type>/<name>``.

    Raises ConfigError when the slug is malformed or no such block is saved.
    """
    from prefect.blocks.core import Block

    if "/" not in slug:
        raise ConfigError(
            f"--notification-block {slug!r} is not <block type>/<name>.",
            hint="e.g. slack-webhook/team-alerts (`prefect block ls` lists the saved blocks)",
        )
    try:
        block = Block.load(slug)
    except (ValueError, KeyError) as error:
        raise ConfigError(
            f"No notification block {slug!r} on this Prefect server ({error}).",
            hint="save it first (UI: Blocks, or `prefect block create slack-webhook`), then run this again",
        ) from error
    if not hasattr(block, "notify"):
        raise ConfigError(
            f"Block {slug!r} cannot send notifications.",
            hint="use a notification block: slack-webhook, ms-teams-webhook, sendgrid-email, custom-webhook, ...",
        )
    return block._block_document_id


def regression_automation(block_id: UUID) -> Any:
    """Return the ``rpx-benchmark-regressed`` automation: each ``rpx.benchmark.regressed`` event of any
    ``rpx.benchmark.*`` resource sends one notification through block ``block_id``."""
    from prefect.events.actions import SendNotification
    from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture

    return AutomationCore(
        name=REGRESSION_AUTOMATION,
        description="A benchmark's primary metric regressed against its previous comparable run (compare-previous).",
        trigger=EventTrigger(
            expect={REGRESSION_EVENT},
            match={"prefect.resource.id": "rpx.benchmark.*"},
            posture=Posture.Reactive,
            threshold=1,
            within=0,
        ),
        actions=[SendNotification(block_document_id=block_id, subject=REGRESSION_SUBJECT, body=REGRESSION_BODY)],
    )


def failure_automation(block_id: UUID) -> Any:
    """Return the ``rpx-bench-failed`` automation: each flow run of flow ``rpx-bench`` that enters Failed or
    Crashed sends one notification through block ``block_id``."""
    from prefect.events.actions import SendNotification
    from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture

    return AutomationCore(
        name=FAILURE_AUTOMATION,
        description=f"A flow run of {BENCH_FLOW} failed or crashed.",
        trigger=EventTrigger(
            expect={"prefect.flow-run.Failed", "prefect.flow-run.Crashed"},
            match={"prefect.resource.id": "prefect.flow-run.*"},
            match_related={"prefect.resource.role": "flow", "prefect.resource.name": BENCH_FLOW},
            posture=Posture.Reactive,
            threshold=1,
            within=0,
        ),
        actions=[SendNotification(block_document_id=block_id, subject=FAILURE_SUBJECT, body=FAILURE_BODY)],
    )


def ensure_automation(client: Any, automation: Any) -> str:
    """Create ``automation`` (an AutomationCore), or update the automation(s) of the same name in place;
    returns what happened. Raises Prefect's errors when the API does not answer."""
    existing = client.read_automations_by_name(automation.name)
    if not existing:
        client.create_automation(automation)
        return f"automation {automation.name}: created"
    for found in existing:
        client.update_automation(found.id, automation)
    return f"automation {automation.name}: updated"


def ensure_alerting(*, webhook_url: str | None = None, notification_block: str | None = None) -> list[str]:
    """Create or update the notification target and both automations; returns what happened, one line each.

    ``webhook_url`` creates or updates the custom-webhook block ``rpx-alerts``; ``notification_block`` (a slug,
    ``slack-webhook/NAME``) uses a saved block instead. Raises ConfigError without a target, for a bad URL or an
    unknown block, Prefect's errors when the API does not answer.
    """
    from prefect.client.orchestration import get_client

    if notification_block:
        block_id, target = saved_block_id(notification_block), f"notification block {notification_block}: found"
    elif webhook_url:
        block_id = ensure_webhook_block(webhook_url)
        target = f"notification block custom-webhook/{ALERT_BLOCK_NAME}: saved (POST {webhook_url})"
    else:
        raise ConfigError(
            "No alert target.", hint=f"pass --webhook-url URL, set {WEBHOOK_URL_VARIABLE}, or --notification-block"
        )
    lines = [target]
    with get_client(sync_client=True) as client:
        for automation in (regression_automation(block_id), failure_automation(block_id)):
            lines.append(ensure_automation(client, automation))
    return lines
