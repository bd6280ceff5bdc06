"""What DingTalk can do, as the core plans around it."""

from warroom.im.base import Capabilities, Dismissal

# sceneGroup/member/add takes a list; a group holds at most 1,000 people, so batches stay well below.
MAX_INVITE_BATCH = 100
GROUP_CAP = 1000

CAPABILITIES = Capabilities(
    edit_card=True,  # PUT card/instances by outTrackId
    pin_card=False,
    dismissal=Dismissal.DISBAND,  # scenegroup/disband
    history=False,  # no history API: a robot sees only the messages that @mention it
    join_link=True,  # topapi/chat/qrcode/get
    email_lookup=True,  # through the organization's directory (no email API)
    phone_lookup=True,  # topapi/v2/user/getbymobile
    remove_members=True,
    max_invite_batch=MAX_INVITE_BATCH,
)
