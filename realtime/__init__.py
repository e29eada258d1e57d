"""The domain-free realtime layer every app publishes through and every socket stands on.

It knows no rooms, messages or users: group names (``groups``), frames and close codes
(``frames``), publishing after commit (``publish``), the per-process hub (``hub``),
presence (``presence``), per-socket and per-process limits (``limits``), ordering a
stream by position with gap fill through a callback (``ordering``), and the consumer
base (``consumer``). The map of a message's path through it is docs/architecture.md.
"""
