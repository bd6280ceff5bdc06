"""What the built-in sandbox IM can do: everything a platform offers, so every path of the core
runs without an IM account."""

from warroom.im.base import Capabilities, Dismissal

CAPABILITIES = Capabilities(
    edit_card=True,
    pin_card=False,  # the sandbox page shows the newest card on top: nothing to pin
    dismissal=Dismissal.DISBAND,
    history=True,
    join_link=True,
    email_lookup=True,
    phone_lookup=True,
    remove_members=True,
    max_invite_batch=50,
    edit_message=True,
    card_impact=True,
)
