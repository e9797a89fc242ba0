/**
 * The one server-sent-events parser of this repository: the SDK's event stream
 * (`kassa.events.stream()`) and the `kassa listen` command (src/cli/listen.ts) both read
 * GET /v1/events/stream with it. No dependencies, so the CLI can load it without the rest of the SDK.
 */

/** One event of a text/event-stream body. */
export interface SseEvent {
  /** The `id:` field, when the event has one. */
  id?: string;
  /** The `event:` field (absent means the default type, "message"). */
  event?: string;
  /** The `data:` lines, joined with "\n". */
  data: string;
}

/**
 * Parses a text/event-stream body (WHATWG rules: one field per line, `:` starts a comment, a blank
 * line ends an event; CRLF, CR and LF line ends). An event is yielded only when it has data, as a
 * browser's EventSource does; `retry:` and unknown fields are ignored.
 */
export async function* parseSse(body: ReadableStream<Uint8Array>): AsyncGenerator<SseEvent> {
  const decoder = new TextDecoder();
  let buffer = '';
  let cur: { id?: string; event?: string } = {};
  let data: string[] = [];
  /** One line; returns the event a blank line completes. */
  const take = (line: string): SseEvent | undefined => {
    if (line === '') {
      const ev = data.length ? { ...cur, data: data.join('\n') } : undefined;
      cur = {};
      data = [];
      return ev;
    }
    if (line.startsWith(':')) return undefined;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') data.push(value);
    else if (field === 'event') cur.event = value;
    else if (field === 'id') cur.id = value;
    return undefined;
  };
  for await (const chunk of body as unknown as AsyncIterable<Uint8Array>) {
    buffer += decoder.decode(chunk, { stream: true });
    let nl: number;
    while ((nl = buffer.search(/\r\n|\r|\n/)) >= 0) {
      // A CR at the very end may be the first half of a CRLF split across chunks: wait for more.
      if (nl === buffer.length - 1 && buffer[nl] === '\r') break;
      const line = buffer.slice(0, nl);
      buffer = buffer.slice(nl + (buffer.startsWith('\r\n', nl) ? 2 : 1));
      const ev = take(line);
      if (ev) yield ev;
    }
  }
  // The stream ended right after a CR: that CR ended a line.
  if (buffer.endsWith('\r')) {
    const ev = take(buffer.slice(0, -1));
    if (ev) yield ev;
  }
}
