"""What Feishu/Lark can do, as the core plans around it."""

from warroom.im.base import Capabilities, Dismissal

MAX_INVITE_BATCH = 50  # chat_members.create takes at most 50 ids per call

CAPABILITIES = Capabilities(
    edit_card=True,
    pin_card=True,
    dismissal=Dismissal.DISBAND,
    history=True,
    join_link=True,
    email_lookup=True,
    phone_lookup=True,
    remove_members=True,
    max_invite_batch=MAX_INVITE_BATCH,
    edit_message=True,
    card_impact=True,
)
