"""The one signal of a lost compare-and-set race."""


class ConcurrentUpdate(Exception):
    """Someone else wrote this row since we read it; handle the update again from fresh state."""
