"""Lamina's Python runtime: loads a handler and serves it over the Lambda Runtime API.

Runs inside an execution environment as `python -S bootstrap.py [--sdk-path DIR]`, with the
environment of spec §9.5, or ahead of need with `--standby` (a spare, runtime/spares.py),
then reading that environment from stdin. Standard library only, and compatible with Python 3.8+, because it
runs on whichever interpreter the function's runtime maps to.

It behaves as AWS's Python runtime does for the function: the handler string
`path/module.function`, the `context` object, the error documents and error types
(`Runtime.ImportModuleError`, `Runtime.HandlerNotFound`, `Runtime.MalformedHandlerName`,
`Runtime.UserCodeSyntaxError`, `Runtime.MarshalError`, `Runtime.UnmarshalError`), init errors
posted to `/runtime/init/error`, and log lines in Lambda's text format.

With `AWS_LAMBDA_MAX_CONCURRENCY` (Lambda Managed Instances) it forks that many worker
processes before the handler is imported, as AWS's Python runtime does (`run_workers`).

Its Runtime API client is a keep-alive socket with a minimal HTTP/1.1 parser: every invocation
crosses it twice, and `http.client` costs about twice as much per round trip.
"""

import json
import os
import socket
import sys
import time

_ERROR_TYPE = "Lambda-Runtime-Function-Error-Type"


class RuntimeClient:
    """A keep-alive HTTP/1.1 client for the Runtime API (requests may be pipelined).

    It reads into one buffer made at start: `recv(n)` would allocate n bytes per call, and
    above glibc's mmap threshold each allocation is an mmap and a munmap (measured: about
    30 % of the runtime's CPU per invocation with n = 256 KiB).
    """

    def __init__(self, address):
        host, _, port = address.rpartition(":")
        self.address = (host.strip("[]"), int(port))
        self.sock = None
        self.buffer = bytearray()  # received, not yet parsed (deleting its head is O(1))
        self._chunk = memoryview(bytearray(65536))

    def _connect(self):
        host, port = self.address
        try:  # a literal address needs no name lookup (nor the idna codec it imports)
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_STREAM)
            sock.connect((host, port))
        except (OSError, ValueError):
            sock = socket.create_connection(self.address)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = sock
        self.buffer = bytearray()

    def close(self):
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def message(self, method, path, body=b"", headers=()):
        head = ["%s %s HTTP/1.1\r\nHost: runtime\r\n" % (method, path)]
        if body or method != "GET":  # a GET has no body: one header less for the engine to read
            head.append("Content-Length: %d\r\n" % len(body))
        for name, value in headers:
            head.append("%s: %s\r\n" % (name, value))
        head.append("\r\n")
        return "".join(head).encode("latin-1") + body

    def request(self, method, path, body=b"", headers=()):
        return self.exchange((self.message(method, path, body, headers),))[0]

    def exchange(self, messages):
        """Send `messages` in one write (HTTP/1.1 pipelining) and read one response each.

        What was not answered is sent again on a new connection: after a `Connection: close`
        answer, and once after a connection found dropped.
        """
        responses = []
        retried = False
        while True:
            if self.sock is None:
                self._connect()
            try:
                self.sock.sendall(b"".join(messages[len(responses) :]))
                for _ in messages[len(responses) :]:
                    responses.append(self._read_response())
                    if self.sock is None:
                        break  # `Connection: close`: the rest goes out again
            except (ConnectionError, OSError):
                self.close()
                if retried:
                    raise
                retried = True
                continue
            if len(responses) == len(messages):
                return responses

    def _recv(self):
        size = self.sock.recv_into(self._chunk)
        if not size:
            raise ConnectionError("Runtime API closed the connection")
        self.buffer += self._chunk[:size]

    def _read_response(self):
        buffer = self.buffer
        while True:
            end = buffer.find(b"\r\n\r\n")
            while end < 0:
                self._recv()
                end = buffer.find(b"\r\n\r\n")
            lines = buffer[:end].decode("latin-1").split("\r\n")
            del buffer[: end + 4]
            status = int(lines[0].split(" ", 2)[1])
            if status >= 200:
                break  # 1xx: interim, read on
        headers = {}
        for line in lines[1:]:  # header names have no spaces around them (RFC 9112 §5.1)
            name, _, value = line.partition(":")
            headers[name.lower()] = value.strip()
        length = int(headers.get("content-length", 0))
        while len(buffer) < length:
            self._recv()
        body = buffer[:length]  # a bytearray of its own (json.loads takes it as it is)
        del buffer[:length]
        close = headers.get("connection")
        if close is not None and close.lower() == "close":
            self.close()
        return status, headers, body


class CognitoIdentity:
    __slots__ = ["cognito_identity_id", "cognito_identity_pool_id"]


class Client:
    __slots__ = [
        "installation_id",
        "app_title",
        "app_version_name",
        "app_version_code",
        "app_package_name",
    ]


class ClientContext:
    __slots__ = ["custom", "env", "client"]


def _make_obj(cls, values):
    if values is None:
        return None
    obj = cls()
    for name in cls.__slots__:
        setattr(obj, name, values.get(name))
    return obj


def _identity(cognito):
    identity = CognitoIdentity()
    if cognito:
        identity.cognito_identity_id = cognito.get("cognito_identity_id")
        identity.cognito_identity_pool_id = cognito.get("cognito_identity_pool_id")
    else:
        identity.cognito_identity_id = identity.cognito_identity_pool_id = None
    return identity


class LambdaContext:
    """The `context` argument of a handler, with the attributes AWS's runtime gives it.

    The function's names come from its environment, read once at start (`settle`) rather
    than five `os.environ` look-ups per invocation: Lambda sets them before the runtime
    starts and they do not change."""

    _static = (None, None, None, None, None)

    @classmethod
    def settle(cls):
        env = os.environ
        cls._static = (
            env.get("AWS_LAMBDA_LOG_GROUP_NAME"),
            env.get("AWS_LAMBDA_LOG_STREAM_NAME"),
            env.get("AWS_LAMBDA_FUNCTION_NAME"),
            env.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE"),
            env.get("AWS_LAMBDA_FUNCTION_VERSION"),
        )

    def __init__(self, request_id, deadline_ms, invoked_arn, client_context, cognito, tenant_id):
        self.aws_request_id = request_id
        (
            self.log_group_name,
            self.log_stream_name,
            self.function_name,
            self.memory_limit_in_mb,
            self.function_version,
        ) = self._static
        self.invoked_function_arn = invoked_arn
        self.tenant_id = tenant_id
        if client_context is None:
            self.client_context = None
        else:
            self.client_context = _make_obj(ClientContext, client_context)
            self.client_context.client = _make_obj(Client, self.client_context.client)
        self.identity = _identity(cognito)
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self):
        remaining = self._deadline_ms - int(time.time() * 1000)
        return remaining if remaining > 0 else 0

    def log(self, msg):
        sys.stdout.write(str(msg))

    def __repr__(self):
        return "LambdaContext([aws_request_id=%s,function_name=%s,function_version=%s])" % (
            self.aws_request_id,
            self.function_name,
            self.function_version,
        )


class FaultException(Exception):
    def __init__(self, error_type, message, trace=None):
        Exception.__init__(self, message)
        self.error_type = error_type
        self.message = message
        self.trace = trace


class _Encoder(json.JSONEncoder):
    def default(self, obj):
        decimal = sys.modules.get("decimal")  # only a function that made one has imported it
        if decimal is not None and isinstance(obj, decimal.Decimal):
            return int(obj) if obj == obj.to_integral_value() else float(obj)
        return json.JSONEncoder.default(self, obj)


def error_document(message, error_type, stack_trace, request_id):
    return {
        "errorMessage": message or "",
        "errorType": error_type or "",
        "requestId": request_id or "",
        "stackTrace": stack_trace or [],
    }


def fault_document(exc_info, request_id):
    import traceback

    kind, value, tb = exc_info
    frames = traceback.extract_tb(tb)
    for index, frame in enumerate(frames):
        if not frame.filename.endswith("/bootstrap.py"):
            frames = frames[index:]
            break
    return error_document(str(value), kind.__name__, traceback.format_list(frames), request_id)


def log_error(document):
    if json_log_format():
        record = {
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "log_level": "ERROR",
        }
        record.update(document)
        sys.stdout.write(json.dumps(record) + "\n")
        return
    text = "[ERROR] %s: %s" % (document["errorType"], document["errorMessage"])
    lines = [text, "Traceback (most recent call last):"]
    lines.extend(line.rstrip("\n") for line in document["stackTrace"])
    sys.stdout.write("\n".join(lines) + "\n")


def load_handler(handler):
    try:
        module_name, function_name = handler.rsplit(".", 1)
    except ValueError as exc:
        raise FaultException(
            "Runtime.MalformedHandlerName", "Bad handler '%s': %s" % (handler, exc)
        )
    if module_name.split(".")[0] in sys.builtin_module_names:
        raise FaultException(
            "Runtime.BuiltInModuleConflict",
            "Cannot use built-in module %s as a handler module" % module_name,
        )
    try:
        import importlib

        module = importlib.import_module(module_name.replace("/", "."))
    except ImportError as exc:
        raise FaultException(
            "Runtime.ImportModuleError", "Unable to import module '%s': %s" % (module_name, exc)
        )
    except SyntaxError as exc:
        trace = ['  File "%s" Line %s\n    %s' % (exc.filename, exc.lineno, exc.text)]
        raise FaultException(
            "Runtime.UserCodeSyntaxError",
            "Syntax error in module '%s': %s" % (module_name, exc),
            trace,
        )
    try:
        return getattr(module, function_name)
    except AttributeError:
        raise FaultException(
            "Runtime.HandlerNotFound",
            "Handler '%s' missing on module '%s'" % (function_name, module_name),
        )


class _RequestId:
    value = ""
    tenant = None


_RECORD_FIELDS = frozenset(
    (
        "name",
        "msg",
        "args",
        "levelname",
        "levelno",
        "pathname",
        "filename",
        "module",
        "exc_info",
        "exc_text",
        "stack_info",
        "lineno",
        "funcName",
        "created",
        "msecs",
        "relativeCreated",
        "thread",
        "threadName",
        "processName",
        "process",
        "taskName",
        "aws_request_id",
        "tenant_id",
    )
)


def json_log_format():
    return os.environ.get("AWS_LAMBDA_LOG_FORMAT", "").upper() == "JSON"


def log_level():
    """AWS_LAMBDA_LOG_LEVEL as a `logging` level name (TRACE is DEBUG, FATAL CRITICAL)."""
    level = os.environ.get("AWS_LAMBDA_LOG_LEVEL", "").upper()
    return {"TRACE": "DEBUG", "WARN": "WARNING", "FATAL": "CRITICAL"}.get(level, level)


def setup_logging(logging):
    """Lambda's log format on the root logger, as AWS's runtime sets it up: text lines, or
    with `AWS_LAMBDA_LOG_FORMAT=JSON` one JSON object per record (timestamp, level, message,
    logger, requestId, tenantId, the exception, and any `extra` fields)."""

    class RequestIdFilter(logging.Filter):
        def filter(self, record):
            record.aws_request_id = _RequestId.value
            record.tenant_id = _RequestId.tenant
            return True

    class LambdaFormatter(logging.Formatter):
        def formatTime(self, record, datefmt=None):
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            return "%s.%03dZ" % (stamp, record.msecs)

    class JsonFormatter(LambdaFormatter):
        def format(self, record):
            level = min(50, max(0, record.levelno)) // 10 * 10
            result = {
                "timestamp": self.formatTime(record),
                "level": logging.getLevelName(level),
                "message": record.getMessage(),
                "logger": record.name,
                "requestId": getattr(record, "aws_request_id", None) or None,
            }
            if record.exc_info:
                import traceback

                kind, value, trace = record.exc_info
                result["errorType"] = kind.__name__
                result["errorMessage"] = str(value)
                result["stackTrace"] = traceback.format_tb(trace)
                result["location"] = "%s:%s:%s" % (record.pathname, record.funcName, record.lineno)
            if getattr(record, "tenant_id", None) is not None:
                result["tenantId"] = record.tenant_id
            for key, value in record.__dict__.items():
                if key not in _RECORD_FIELDS and key not in result:
                    result[key] = value
            result = dict((k, v) for k, v in result.items() if v is not None)
            return json.dumps(result, default=str, ensure_ascii=False) + "\n"

    handler = logging.StreamHandler(sys.stdout)
    handler.terminator = ""
    if json_log_format():
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            LambdaFormatter("[%(levelname)s]\t%(asctime)s\t%(aws_request_id)s\t%(message)s\n")
        )
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    root.addHandler(handler)
    level = log_level()
    if level in ("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG"):
        root.setLevel(level)


class ConfigureLoggingOnImport:
    """Sets up `logging` the moment anything imports it: AWS's runtime configures it at
    start; importing it only when the function does saves ~8 ms of every cold start."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "logging":
            return None
        sys.meta_path.remove(self)
        import importlib.machinery

        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return spec
        run = spec.loader.exec_module

        def exec_module(module):
            run(module)
            setup_logging(module)

        spec.loader.exec_module = exec_module
        return spec


def _parse_json_header(value):
    if not value:
        return None
    try:
        return json.loads(value)
    except ValueError:
        return None


_RESPONSE_HEAD = (
    "POST /2018-06-01/runtime/invocation/%s/response HTTP/1.1\r\nHost: runtime\r\n"
    "Content-Length: %d\r\nContent-Type: application/json\r\n%s\r\n"
)


def serve(client, handler):
    """The invocation loop: next → run the handler → response or error, for ever."""
    dumps = json.dumps
    loads = json.loads
    decode = json.JSONDecoder().decode
    encode = _Encoder().encode  # json.dumps(result, cls=_Encoder), without an encoder per call
    flush_out, flush_err = sys.stdout.flush, sys.stderr.flush
    environ = os.environ
    LambdaContext.settle()
    # Each answer goes out with the next `next` in one write (pipelined): the runtime wakes
    # once per invocation, when the next event comes.
    next_message = client.message("GET", "/2018-06-01/runtime/invocation/next")
    status, headers, body = client.exchange((next_message,))[0]
    while True:
        if status != 200:
            sys.stdout.write(
                "Runtime API next failed with status %d: %r\n" % (status, bytes(body[:200]))
            )
            flush_out()
            sys.exit(1)
        get = headers.get
        request_id = get("lambda-runtime-aws-request-id", "")
        invocation_id = get("lambda-runtime-invocation-id")
        tenant_id = get("lambda-runtime-aws-tenant-id")
        _RequestId.value = request_id
        _RequestId.tenant = tenant_id
        trace_id = get("lambda-runtime-trace-id")
        if trace_id:
            environ["_X_AMZN_TRACE_ID"] = trace_id
        elif "_X_AMZN_TRACE_ID" in environ:
            del environ["_X_AMZN_TRACE_ID"]
        error = None
        try:
            context = LambdaContext(
                request_id,
                int(get("lambda-runtime-deadline-ms", 0)),
                get("lambda-runtime-invoked-function-arn"),
                _parse_json_header(get("lambda-runtime-client-context")),
                _parse_json_header(get("lambda-runtime-cognito-identity")),
                tenant_id,
            )
            try:
                if body.startswith(b"{") and not body.startswith(b"{\x00"):  # UTF-8
                    event = decode(body.decode("utf-8", "surrogatepass"))
                else:
                    event = loads(body) if body else {}
            except ValueError as exc:
                raise FaultException(
                    "Runtime.UnmarshalError", "Unable to unmarshal input: %s" % exc
                )
            result = handler(event, context)
            try:
                payload = encode(result).encode()
            except (TypeError, ValueError) as exc:
                raise FaultException("Runtime.MarshalError", "Unable to marshal response: %s" % exc)
        except FaultException as exc:
            error = error_document(exc.message, exc.error_type, exc.trace, request_id)
        except Exception:
            error = fault_document(sys.exc_info(), request_id)
        if error is not None:
            log_error(error)
        flush_out()
        flush_err()
        if error is None:
            head = _RESPONSE_HEAD % (
                request_id,
                len(payload),
                "Lambda-Runtime-Invocation-Id: %s\r\n" % invocation_id if invocation_id else "",
            )
            answer = head.encode("latin-1") + payload
        else:
            echo = (("Lambda-Runtime-Invocation-Id", invocation_id),) if invocation_id else ()
            answer = client.message(
                "POST",
                "/2018-06-01/runtime/invocation/%s/error" % request_id,
                dumps(error).encode(),
                ((_ERROR_TYPE, error["errorType"]), ("Content-Type", "application/json")) + echo,
            )
        status, headers, body = client.exchange((answer, next_message))[1]


def await_assignment():
    """`--standby`: started ahead of need (a spare); wait for a function's environment
    variables and working directory, then go on as if started with them."""
    line = sys.stdin.buffer.readline()
    if not line:
        sys.exit(0)
    assignment = json.loads(line)
    coerced = os.environ.get("LC_CTYPE")  # set by the interpreter's start (PEP 538), as
    os.environ.clear()  # it would be for the function's own start
    os.environ.update(assignment["env"])
    if coerced is not None and "LC_CTYPE" not in os.environ:
        os.environ["LC_CTYPE"] = coerced
    os.chdir(assignment["cwd"])
    if hasattr(time, "tzset"):
        time.tzset()


def start_debugger(setting):
    """`lamina debug`: debugpy listens on 127.0.0.1:PORT ("PORT" or "PORT:wait"); with
    wait, the handler loads once a client has attached (its configuration done)."""
    port, _, wait = setting.partition(":")
    try:  # the engine's debugpy, on the SDK path (not the standard library)
        import importlib

        debugpy = importlib.import_module("debugpy")
        debugpy.listen(("127.0.0.1", int(port)))
    except Exception as exc:  # not installed, port taken
        raise FaultException(
            "Runtime.DebuggerError",
            "Lamina could not start debugpy on 127.0.0.1:%s: %s" % (port, exc),
        )
    sys.stdout.write(
        "debugpy is listening on 127.0.0.1:%s%s\n"
        % (port, " (waiting for a client to attach)" if wait else "")
    )
    if wait:
        debugpy.wait_for_client()


def _exit_code(status):
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status) if os.WIFEXITED(status) else 1


def run_workers(count):
    """AWS_LAMBDA_MAX_CONCURRENCY (Lambda Managed Instances), as AWS's Python runtime does it:
    `count` worker processes, each with its own Init (the handler's module is imported once
    per process, so module globals are not shared) and its own `next` loop, one invocation at
    a time. Returns in each worker; this process stays to wait on them. A worker that ends
    leaves the others serving; the runtime ends with the last one, with its exit status."""
    sys.stdout.flush()
    sys.stderr.flush()
    workers = set()
    for _ in range(count):
        pid = os.fork()
        if pid == 0:
            return
        workers.add(pid)
    code = 0
    while workers:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        except InterruptedError:
            continue
        if pid in workers:
            workers.discard(pid)
            code = _exit_code(status)
    os._exit(code)


def layer_paths(opt_dir):
    """Where Lambda's Python finds layers, after the task root: /opt/python's site-packages
    for this Python, then /opt/python (without a sandbox, under LAMINA_OPT_DIR, the merged
    layers)."""
    if not opt_dir:
        return []
    python = os.path.join(opt_dir, "python")
    version = "python%d.%d" % sys.version_info[:2]
    return [os.path.join(python, "lib", version, "site-packages"), python]


def own_process_group():
    """In a sandbox, lead a process group of its own, which what the function starts joins.

    The runtime is then bwrap's init's child (pid 1 of the sandbox's PID namespace), and the
    engine freezes an idle environment by stopping this group alone (process.py,
    `SandboxedProcess`): bwrap's two processes, which only wait, are not woken by every
    SIGSTOP and SIGCONT. Started otherwise (no sandbox; under an exec wrapper that did not
    exec), it stays in the group it was given, which the engine then freezes whole."""
    if os.getppid() == 1:
        try:
            os.setpgid(0, 0)
        except OSError:
            pass  # a session leader already (it leads its group): nothing to do


def main(argv):
    own_process_group()
    if "--standby" in argv:
        await_assignment()
    if "--sdk-path" in argv:
        sdk_path = argv[argv.index("--sdk-path") + 1]
    else:
        sdk_path = None
    task_root = os.environ.get("LAMBDA_TASK_ROOT", os.getcwd())
    runtime_dir = sys.path.pop(0) if sys.path else None
    opt_dir = os.environ.get("LAMINA_OPT_DIR") or ("/opt" if task_root == "/var/task" else None)
    sys.path[0:0] = [task_root, *layer_paths(opt_dir)]
    if sdk_path:
        sys.path.append(sdk_path)
    if runtime_dir:
        sys.path.append(runtime_dir)
    sys.stdout.reconfigure(line_buffering=True)
    sys.stderr.reconfigure(line_buffering=True)
    if "logging" in sys.modules:
        setup_logging(sys.modules["logging"])
    else:
        sys.meta_path.insert(0, ConfigureLoggingOnImport())
    prefix = os.environ.pop("LAMINA_PYCACHE_PREFIX", None)
    if prefix:  # hot reload: bytecode kept outside the watched folder, never stale
        sys.pycache_prefix = prefix
    debug = os.environ.pop("LAMINA_DEBUG", None)
    workers = os.environ.get("AWS_LAMBDA_MAX_CONCURRENCY", "")
    if workers.isdigit() and int(workers) > 1 and not debug:
        run_workers(int(workers))
    client = RuntimeClient(os.environ["AWS_LAMBDA_RUNTIME_API"])
    try:
        if debug:
            start_debugger(debug)
        handler = load_handler(os.environ.get("_HANDLER", ""))
    except FaultException as exc:
        error = error_document(exc.message, exc.error_type, exc.trace, "")
    except Exception:
        error = fault_document(sys.exc_info(), "")
    else:
        error = None
    if error is not None:
        log_error(error)
        sys.stdout.flush()
        client.request(
            "POST",
            "/2018-06-01/runtime/init/error",
            json.dumps(error).encode(),
            ((_ERROR_TYPE, error["errorType"]), ("Content-Type", "application/json")),
        )
        sys.exit(1)
    try:
        serve(client, handler)
    except (ConnectionError, OSError):
        sys.exit(0)  # the engine went away: nothing left to serve


if __name__ == "__main__":
    main(sys.argv)
