"""The gateway to NATS JetStream (``upbit-engine serve``) and its consumer API; needs the
``gateway`` extra (``pip install upbit-engine[gateway]``)."""

__all__ = ()
