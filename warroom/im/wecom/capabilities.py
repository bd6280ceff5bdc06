"""What WeCom can do with an `appchat` group and a self-built app, as the core plans around it."""

from warroom.im.base import Capabilities, Dismissal

MAX_INVITE_BATCH = 100  # appchat/update add_user_list: kept well below the group cap
GROUP_CAP = 2000  # current doc (older copies say 500)

CAPABILITIES = Capabilities(
    # The adapter "edits" the card itself: the group gets a new status message per version and each
    # responder's application template_card is updated (`message/update_template_card`).
    edit_card=True,
    pin_card=False,
    dismissal=Dismissal.NONE,  # no disband API: a closing message, then the group renamed as closed
    history=False,  # a self-built app cannot read group messages (msgaudit is a paid, native SDK)
    join_link=False,  # appchat groups have no link: the asking person is added
    email_lookup=True,  # user/get_userid_by_email
    phone_lookup=True,  # user/getuserid
    remove_members=True,
    max_invite_batch=MAX_INVITE_BATCH,
    private_notices=True,  # a message from the app to that person
)
