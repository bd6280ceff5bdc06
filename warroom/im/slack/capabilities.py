"""What Slack can do, as the core plans around it."""

from warroom.im.base import Capabilities, Dismissal

CAPABILITIES = Capabilities(
    edit_card=True,
    pin_card=True,
    dismissal=Dismissal.ARCHIVE,  # bots cannot delete channels; archiving keeps the history
    history=True,
    join_link=True,
    email_lookup=True,
    phone_lookup=False,  # Slack's Web API has no lookup by phone
    remove_members=True,
    max_invite_batch=100,
    private_notices=True,  # chat.postEphemeral
    edit_message=True,
    card_impact=True,
)
