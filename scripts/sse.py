"""Server-sent events as the OpenAI-compatible streaming endpoints send them, for the
load and throughput scripts (stdlib only)."""
import json


def sse_events(resp):
    """Yields each `data:` event of an http.client response as it arrives: the parsed JSON
    object, or None for the closing `data: [DONE]`. Other lines (comments, keep-alives)
    are skipped; the generator ends when the server closes the stream."""
    buf = b""
    while True:
        chunk = resp.read1(65536) if hasattr(resp, "read1") else resp.read(1)
        if not chunk:
            return
        buf += chunk
        while b"\n\n" in buf:
            event, buf = buf.split(b"\n\n", 1)
            if not event.startswith(b"data: "):
                continue
            payload = event[6:]
            yield None if payload == b"[DONE]" else json.loads(payload)
