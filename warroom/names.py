"""The names Temporal knows our activities and errors by.

Activities register under these names and raise these error types; workflows call the names and
match the types (retry policies, handlers). Both sides import them from here, so a rename is one
edit and a typo is an import error instead of an activity nobody polls for. Constants only: the
library never imports Temporal.
"""

from __future__ import annotations

# ---- activities: IM platforms (activities/im.py)
IM_CREATE_ROOM = "im_create_room"
IM_OPEN_ROOM = "im_open_room"
IM_INVITE_MEMBERS = "im_invite_members"
IM_REMOVE_MEMBERS = "im_remove_members"
IM_POST_CARD = "im_post_card"
IM_UPDATE_CARD = "im_update_card"
IM_POST_MESSAGE = "im_post_message"
IM_POST_NOTICE = "im_post_notice"
IM_DISMISS_ROOM = "im_dismiss_room"
IM_LINK_USERS = "im_link_users"

# ---- activities: the store (activities/incidents.py)
APPLY_ACTION = "apply_action"
RECORD = "record"

# ---- activities: the assistant (activities/ai.py)
AI_ANSWER = "ai_answer"
AI_IMPACT = "ai_impact"
AI_KNOWLEDGE = "ai_knowledge"
AI_REVIEW = "ai_review"
AI_CAPTURE = "ai_capture"
AI_SWEEP_TRANSCRIPT = "ai_sweep_transcript"

# ---- ApplicationError types raised by activities (activities/errors.py, activities/ai.py)
RATE_LIMITED = "RateLimited"  # retried after the platform's delay
IM_TRANSIENT = "ImTransient"  # retried with back-off
IM_PERMANENT = "ImPermanent"  # bad credentials, missing permission, user not found: never retried
CONFLICT = "Conflict"  # the source refuses the action in its current state
NOT_FOUND = "NotFound"
AI_RATE_LIMITED = "AiRateLimited"
AI_TRANSIENT = "AiTransient"
AI_PERMANENT = "AiPermanent"  # the model refuses for good: the offline assistant answers instead
# Failures no retry can fix, for every retry policy that calls our activities.
NON_RETRYABLE = [IM_PERMANENT, CONFLICT, NOT_FOUND]

# ---- ApplicationError types the incident workflow answers an update with
REFUSED = "Refused"  # `act`: the action was refused (not allowed now, or failed at the source)
REVIEW_FAILED = "ReviewFailed"  # `review`: no review could be generated
