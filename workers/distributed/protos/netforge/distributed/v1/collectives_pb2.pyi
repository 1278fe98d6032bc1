from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class Piece(_message.Message):
    __slots__ = ("group", "sender_rank", "collective", "ring_step", "offset", "data", "stop")
    GROUP_FIELD_NUMBER: _ClassVar[int]
    SENDER_RANK_FIELD_NUMBER: _ClassVar[int]
    COLLECTIVE_FIELD_NUMBER: _ClassVar[int]
    RING_STEP_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    STOP_FIELD_NUMBER: _ClassVar[int]
    group: str
    sender_rank: int
    collective: int
    ring_step: int
    offset: int
    data: bytes
    stop: bool
    def __init__(self, group: _Optional[str] = ..., sender_rank: _Optional[int] = ..., collective: _Optional[int] = ..., ring_step: _Optional[int] = ..., offset: _Optional[int] = ..., data: _Optional[bytes] = ..., stop: _Optional[bool] = ...) -> None: ...

class SendChunkResponse(_message.Message):
    __slots__ = ("received_bytes",)
    RECEIVED_BYTES_FIELD_NUMBER: _ClassVar[int]
    received_bytes: int
    def __init__(self, received_bytes: _Optional[int] = ...) -> None: ...

class PullSumRequest(_message.Message):
    __slots__ = ("group", "rank", "collective")
    GROUP_FIELD_NUMBER: _ClassVar[int]
    RANK_FIELD_NUMBER: _ClassVar[int]
    COLLECTIVE_FIELD_NUMBER: _ClassVar[int]
    group: str
    rank: int
    collective: int
    def __init__(self, group: _Optional[str] = ..., rank: _Optional[int] = ..., collective: _Optional[int] = ...) -> None: ...

class PushGradientResponse(_message.Message):
    __slots__ = ("received_bytes",)
    RECEIVED_BYTES_FIELD_NUMBER: _ClassVar[int]
    received_bytes: int
    def __init__(self, received_bytes: _Optional[int] = ...) -> None: ...

class SetWeightsResponse(_message.Message):
    __slots__ = ("received_bytes",)
    RECEIVED_BYTES_FIELD_NUMBER: _ClassVar[int]
    received_bytes: int
    def __init__(self, received_bytes: _Optional[int] = ...) -> None: ...
