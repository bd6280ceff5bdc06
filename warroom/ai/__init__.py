"""The war-room assistant: grounded Q&A, impact analysis, runbook push and post-incident reviews.

Small modules, one job each:

- `transcript`  who said what in the room, as citable lines
- `retrieval`   offline BM25 (and an embeddings endpoint when configured)
- `runbooks`    the knowledge base: a folder of Markdown runbooks plus the API's
- `redact`      emails, phones and secrets out of anything that leaves for a model
- `prompts`     prompts that quote the chat as untrusted data
- `model`       the OpenAI-compatible client: timeouts, retries, token budgets
- `offline`     the deterministic assistant used when no model is configured
- `impact`      services, regions and users affected; similar past incidents
- `review`      the post-incident review: sections, citations, sources
- `context`     everything the assistant may know about one incident, loaded from the store
- `assistant`   the façade the activities call: model when configured, offline otherwise

Nothing here imports Temporal; nothing here changes an incident. The assistant may only
suggest an action, which a person has to click.
"""
