"""Lambda's limits and timing constants (spec §18), in one place.

Sizes are bytes unless named otherwise. Source pages: https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html
"""

SYNC_PAYLOAD = 6_291_456  # Invoke request body, RequestResponse
ASYNC_PAYLOAD = 1_048_576  # Invoke request body, Event
RESPONSE_PAYLOAD = 6_291_556  # what a runtime may POST to /response (6 MiB + 100 B)
CLIENT_CONTEXT = 3_583  # X-Amz-Client-Context, base64 text
LOG_TAIL = 4_096  # X-Amz-Log-Result, before base64

ZIPPED_CODE = 52_428_800  # ZipFile, decoded
UNZIPPED_CODE = 262_144_000  # code size once extracted
CREATE_REQUEST = 70_167_211  # CreateFunction request body
MAX_ZIP_ENTRIES = 100_000  # more files than any real package has: refuse the rest
MAX_COMPRESSION_RATIO = 2_000  # an entry that expands more than this is a zip bomb

ENV_VARS = 4_096  # Environment.Variables, serialized JSON
TIMEOUT_RANGE = (1, 900)  # seconds
MEMORY_RANGE = (128, 10_240)  # MB
EPHEMERAL_RANGE = (512, 10_240)  # MB
HANDLER_MAX = 128
DESCRIPTION_MAX = 256
TAGS_PER_FUNCTION = 50
LAYERS_PER_FUNCTION = 5  # Layers of one function
TAG_KEY_MAX = 128
TAG_VALUE_MAX = 256
INIT_TIMEOUT_S = 10.0  # on-demand Init phase

ACCOUNT_CONCURRENCY = 1_000
MIN_UNRESERVED = 100
TOTAL_CODE_SIZE = 80_530_636_800  # 75 GB reported by GetAccountSettings
INVOKE_ASYNC_PAYLOAD = 262_144  # the deprecated InvokeAsync operation
STREAMED_RESPONSE = 209_715_200  # InvokeWithResponseStream, 200 MB
